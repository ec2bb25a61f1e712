// The BiSeNet demo page: captures camera frames, videos and still images, hands them to the
// inference worker (worker.js, which owns the model) and draws what comes back. The main thread
// never runs the network, so the controls stay responsive while a frame is labelled. Everything
// runs locally; the page only fetches its own files.
import { InferenceWorker } from './inference.js';
import { openCamera, listCameras, FrameClock } from './camera.js';
import { drawResult, renderLegend, classAt, labelPosition } from './view.js';
import { describeModel } from './model-about.js';
import { AutoSize } from './auto-size.js';

const DEFAULT_WEIGHTS_URL = 'models/bisenet-camvid.safetensors';
const MAX_SIDE = 4096; // larger still images are downscaled to this
/** Frame rate auto resolution aims for: what each backend can hold on modest hardware. */
const TARGET_FPS = { cpu: 10, webgpu: 30 };

const $ = (id) => document.getElementById(id);
const ui = {
  alert: $('alert'), notice: $('notice'), progress: $('weights-progress'), weightsStatus: $('weights-status'),
  cameraToggle: $('camera-toggle'), cameraSelect: $('camera-select'), fileInput: $('file-input'),
  backendSelect: $('backend-select'), sizeSelect: $('size-select'), viewSelect: $('view-select'),
  stillsSelect: $('stills-select'), stillsRefined: $('stills-refined'), stillsAuto: $('stills-auto'),
  alpha: $('alpha'), downloadColor: $('download-color'), downloadLabels: $('download-labels'),
  output: $('output'), gpuOutput: $('gpu-output'), hover: $('hover'), legend: $('legend'), video: $('video'),
  about: $('model-about'),
};
const stats = Object.fromEntries(
  ['backend', 'fps', 'capture', 'upload', 'network', 'draw', 'size'].map((k) => [k, $(`stat-${k}`)]));

const state = {
  worker: null, info: null,
  refined: null,       // how refined stills are labelled: { scales, flip, passes, cost } (from Rust)
  gpuView: { active: false, reason: '' }, // WebGPU draws on its own canvas, from the worker
  notices: { load: '', backend: '', gpu: '', image: '' },
  source: null,        // 'camera' | 'video' | 'image'
  imageFile: null,     // the still image on screen (labelled again when the stills choice changes)
  stillsAuto: null,    // the last "auto" choice: { onePassMs, estimate, budget, refined }
  video: null,         // the opened video file: { url, name } (a blob URL, revoked when replaced)
  stream: null, looping: false, loopRun: 0, clock: null,
  // { frame, mask, labels, width, height, shares, name }: frame and mask are ImageBitmaps; a
  // result of the GPU path has `gpu: true` and keeps its labels in the worker
  last: null,
  sharesAt: 0,         // when the legend's shares were last refreshed
  frames: 0,           // results drawn since the page opened
  fps: 0,
  auto: new AutoSize(10), // the auto resolution of live frames (target set per backend)
};

// ---------- status ----------

function setState(s) { document.body.dataset.state = s; }

function showError(message) {
  ui.alert.textContent = message;
  ui.alert.hidden = false;
  console.error(message);
}

function clearError() { ui.alert.hidden = true; ui.alert.textContent = ''; }

function showNotices() {
  const text = Object.values(state.notices).filter(Boolean).join(' ');
  ui.notice.textContent = text;
  ui.notice.hidden = !text;
}

function notice(kind, text) { state.notices[kind] = text; showNotices(); }

const errorText = (e) => (e instanceof Error ? e.message : String(e));

// ---------- model ----------

// `?model=models/NAME.safetensors` runs another weights file (one made by `bisenet import`, say),
// served from this page's own origin: nothing is fetched from elsewhere.
function weightsUrl() {
  const asked = new URLSearchParams(location.search).get('model');
  const url = new URL(asked ?? DEFAULT_WEIGHTS_URL, location.href);
  if (url.origin !== location.origin) {
    throw new Error(`?model=${asked} is not on this site; copy the file next to the page and name it relatively`);
  }
  return url.href;
}

function showProgress(received, total) {
  if (total) ui.progress.value = received / total;
  ui.weightsStatus.textContent = `downloading model ${(received / 1e6).toFixed(1)} MB` +
    (total ? ` of ${(total / 1e6).toFixed(1)} MB` : '');
}

/**
 * Takes in what the worker says after starting a backend: `{ backend, reason, info, refined,
 * gpuView }`, where `refined` is how refined stills are labelled (`{ scales, flip, passes, cost }`).
 */
function backendStarted({ backend, reason, info, refined, gpuView }) {
  state.info = info;
  state.refined = refined;
  ui.stillsRefined.textContent = `refined: ${refined.scales.length} scales${refined.flip ? ' + mirrored' : ''} (${refined.passes} passes)`;
  state.gpuView = gpuView;
  const readBack = backend === 'webgpu' && !gpuView.active;
  notice('gpu', readBack ? `Results are read back from the GPU and drawn by the page: ${gpuView.reason}.` : '');
  ui.about.textContent = describeModel(info);
  state.auto = new AutoSize(TARGET_FPS[backend]);
  document.body.dataset.backend = backend;
  ui.backendSelect.value = backend;
  stats.backend.textContent = backend === 'webgpu' ? 'WebGPU' : 'CPU (wasm)';
  notice('backend', reason);
  renderLegend(ui.legend, info.classes);
  setState('ready');
}

async function switchBackend(backend) {
  setState('loading');
  ui.weightsStatus.textContent = `starting the ${backend === 'webgpu' ? 'WebGPU' : 'CPU'} backend`;
  backendStarted(await state.worker.useBackend(backend));
}

// ---------- frames ----------

function inferenceSize(width, height) {
  const choice = ui.sizeSelect.value;
  if (choice === 'native') return [width, height];
  // Auto: live frames follow the controller; a still image gets 360 (there is no rate to hold).
  const h = choice === 'auto' ? (state.looping ? state.auto.height : 360) : Number(choice);
  // The options name 4:3 sizes; other shapes keep their aspect at the chosen height.
  return [Math.max(8, Math.round((h * width) / height)), h];
}

/** Draws a result and shows its stage times; `captureMs` is the main thread's share. */
function show(result, captureMs, drawStart) {
  const previous = state.last;
  state.last = result;
  if (!result.gpu) drawResult(ui.output, result, ui.viewSelect.value, Number(ui.alpha.value));
  ui.output.hidden = Boolean(result.gpu);
  ui.gpuOutput.hidden = !result.gpu;
  previous?.frame?.close();
  previous?.mask?.close();
  state.frames += 1;
  const { upload, network, render } = result.ms;
  stats.capture.textContent = `${captureMs.toFixed(1)} ms`;
  stats.upload.textContent = `${upload.toFixed(1)} ms`;
  stats.network.textContent = `${network.toFixed(1)} ms`;
  stats.draw.textContent = `${(render + performance.now() - drawStart).toFixed(1)} ms`;
  const passes = result.refined ? `, ${state.refined.passes} passes` : '';
  stats.size.textContent = `${result.inference}${ui.sizeSelect.value === 'auto' ? ' (auto)' : ''}${passes}`;
  document.body.dataset.inferenceSize = result.inference;
  ui.downloadColor.disabled = false;
  ui.downloadLabels.disabled = false;
}

// A live frame is captured by the browser, off the main thread. On the GPU path the full frame
// goes to the worker, which resizes, labels and draws it on the GPU. Otherwise it is captured
// twice: at full size to draw, and already scaled to the inference size for the worker, so the
// network, the labels and the mask all stay at the inference size (the mask is scaled up when
// drawn).
async function segmentVideoFrame(video) {
  const t0 = performance.now();
  const [width, height] = [video.videoWidth, video.videoHeight];
  const [iw, ih] = inferenceSize(width, height);
  const inference = `${iw}x${ih}`;
  if (state.gpuView.active) {
    // The GPU path takes the full frame: it is resized on the GPU.
    const frame = await createImageBitmap(video);
    const t1 = performance.now();
    const result = await state.worker.draw(frame, iw, ih, ui.viewSelect.value, Number(ui.alpha.value));
    show({ ...result, gpu: true, name: 'frame', inference }, t1 - t0, performance.now());
  } else {
    const [frame, small] = await Promise.all([
      createImageBitmap(video),
      createImageBitmap(video, { resizeWidth: iw, resizeHeight: ih, resizeQuality: 'medium' }),
    ]);
    const t1 = performance.now();
    let result;
    try {
      result = await state.worker.segment(small, iw, ih, iw, ih);
    } catch (e) {
      frame.close();
      throw e;
    }
    show({ ...result, frame, name: 'frame', inference }, t1 - t0, performance.now());
  }
  refreshShares(false);
}

/** The legend's class shares: with every still image, a few times a second while live. */
async function refreshShares(now) {
  const last = state.last;
  if (!last || (!now && performance.now() - state.sharesAt < 500)) return;
  state.sharesAt = performance.now();
  let shares;
  try {
    shares = last.gpu ? await state.worker.call('drawnShares') : last.shares;
  } catch (e) {
    return; // the legend keeps its last shares; the frame's own error, if any, is reported
  }
  if (state.last === last || now) renderLegend(ui.legend, state.info.classes, shares);
}

// ---------- still images ----------

/**
 * "auto" refines a still when the refined labels should follow the first ones within this. The
 * estimate is one pass's time times `state.refined.cost`, the refined passes' input pixels in
 * one-pass units (24.9 for six scales and mirrors). It is an upper bound: measured less on
 * small images, where each pass's fixed costs weigh more, and a first pass at a new size pays
 * one-time set-up; both only make "auto" refine less often than it could.
 */
const REFINE_BUDGET_MS = 1500;
ui.stillsAuto.textContent = `auto: refined when it takes under ${REFINE_BUDGET_MS / 1000} s`;

/**
 * Labels `frame`, shows it and returns the worker's time for it (upload and network, ms).
 * `frame` is consumed: shown, or handed to the worker on the GPU path.
 */
async function labelStill(frame, { width, height, iw, ih, name, refined }) {
  const inference = `${iw}x${ih}`;
  let result;
  if (state.gpuView.active && !refined) {
    // The GPU path labels at the inference size and draws the full frame (transferred).
    result = await state.worker.draw(frame, iw, ih, ui.viewSelect.value, Number(ui.alpha.value));
    show({ ...result, gpu: true, name, inference }, 0, performance.now());
  } else {
    // Refined labels average several passes, which the GPU path does not do: they come back.
    const t0 = performance.now();
    const copy = await createImageBitmap(frame); // the worker gets its own, the page draws this one
    const t1 = performance.now();
    result = await state.worker.segment(copy, width, height, iw, ih, refined);
    show({ ...result, frame, name, inference, refined }, t1 - t0, performance.now());
  }
  return result.ms.upload + result.ms.network;
}

async function segmentImageFile(file) {
  let frame;
  try {
    frame = await createImageBitmap(file);
  } catch (e) {
    throw new Error(`"${file.name}" is not an image this browser can read.`);
  }
  stopLoop(); // only now: a file that is not an image leaves the camera or video running
  let { width, height } = frame;
  notice('image', '');
  const scale = Math.min(1, MAX_SIDE / Math.max(width, height));
  if (scale < 1) {
    const original = `${width}x${height}`;
    width = Math.round(width * scale);
    height = Math.round(height * scale);
    frame.close();
    frame = await createImageBitmap(file, { resizeWidth: width, resizeHeight: height, resizeQuality: 'high' });
    notice('image', `"${file.name}" is ${original}; it was downscaled to ${width}x${height} to fit in memory.`);
  }
  state.source = 'image';
  state.imageFile = file;
  setState('busy');
  const mode = ui.stillsSelect.value; // 'fast' | 'refined' | 'auto'
  // "auto" shows one pass at once, then refines if that is quick on this machine.
  let spare = null;
  try {
    const [iw, ih] = inferenceSize(width, height);
    const still = { width, height, iw, ih, name: file.name.replace(/\.[^.]*$/, '') };
    if (mode === 'auto') spare = await createImageBitmap(frame);
    const onePassMs = await labelStill(frame, { ...still, refined: mode === 'refined' });
    if (mode === 'auto') {
      const estimate = onePassMs * state.refined.cost;
      const refine = estimate <= REFINE_BUDGET_MS;
      state.stillsAuto = { onePassMs, estimate, budget: REFINE_BUDGET_MS, refined: refine };
      if (refine) {
        [frame, spare] = [spare, null];
        await labelStill(frame, { ...still, refined: true });
      }
    }
    await refreshShares(true);
  } catch (e) {
    if (state.last?.frame !== frame) frame.close(); // (a transferred bitmap is already closed)
    throw e;
  } finally {
    spare?.close();
    setState('ready');
  }
}

async function openFile(file) {
  clearError();
  if (!state.info) return showError('The model is not loaded yet.');
  if (file.type.startsWith('video/')) {
    if (state.video) URL.revokeObjectURL(state.video.url);
    state.video = { url: URL.createObjectURL(file), name: file.name };
    return startVideo(state.video);
  }
  await segmentImageFile(file);
}

// ---------- camera and video ----------

function stopLoop() {
  state.looping = false;
  state.clock?.stop();
  state.clock = null;
  state.stream?.getTracks().forEach((t) => t.stop());
  state.stream = null;
  ui.video.pause();
  ui.video.removeAttribute('src');
  ui.video.srcObject = null;
  ui.cameraToggle.textContent = 'Start camera';
  delete document.body.dataset.fps;
}

// Labels frames one after another, each a frame the video has not shown before: the next frame
// is taken when the previous result is drawn, so one frame is in flight and the newest wins.
async function loop() {
  const run = ++state.loopRun;
  state.looping = true;
  state.clock = new FrameClock(ui.video);
  const clock = state.clock;
  const live = () => state.looping && state.loopRun === run;
  let previous = performance.now();
  renderLegend(ui.legend, state.info.classes);
  while (live()) {
    await clock.next();
    const video = ui.video;
    if (!live()) break;
    if (video.readyState < 2 || !video.videoWidth) continue;
    setState('busy');
    try {
      await segmentVideoFrame(video);
    } catch (e) {
      if (live()) {
        showError(`Segmentation failed: ${errorText(e)}`);
        stopLoop();
      }
      break;
    }
    const now = performance.now();
    const instant = 1000 / (now - previous);
    if (ui.sizeSelect.value === 'auto') {
      state.auto.record(now - previous);
      document.body.dataset.autoSettled = String(state.auto.settled);
      document.body.dataset.autoFps = String(state.auto.judgedFps);
    }
    previous = now;
    state.fps = state.fps ? 0.8 * state.fps + 0.2 * instant : instant;
    stats.fps.textContent = state.fps.toFixed(1);
    document.body.dataset.fps = state.fps.toFixed(2);
  }
  if (state.loopRun === run) setState('ready');
}

async function showCameras() {
  const cameras = await listCameras();
  ui.cameraSelect.hidden = cameras.length < 2;
  const current = state.stream?.getVideoTracks()[0]?.getSettings().deviceId;
  ui.cameraSelect.replaceChildren(...cameras.map((c, i) => {
    const option = new Option(c.label || `camera ${i + 1}`, c.deviceId);
    option.selected = c.deviceId === current;
    return option;
  }));
}

async function startCamera(deviceId) {
  clearError();
  if (!state.info) return showError('The model is not loaded yet.');
  stopLoop();
  try {
    state.stream = await openCamera(deviceId);
  } catch (e) {
    return showError(errorText(e));
  }
  state.source = 'camera';
  // A camera unplugged (or its permission revoked) while running ends the track.
  state.stream.getVideoTracks()[0]?.addEventListener('ended', () => {
    if (state.source !== 'camera' || !state.looping) return;
    stopLoop();
    showError('The camera stopped (unplugged, or taken by another application). Start it again, or open an image.');
  });
  ui.video.srcObject = state.stream;
  await ui.video.play();
  ui.cameraToggle.textContent = 'Stop camera';
  await showCameras();
  loop();
}

async function startVideo({ url, name }) {
  stopLoop();
  state.source = 'video';
  ui.video.src = url;
  ui.video.loop = true;
  try {
    await ui.video.play();
  } catch (e) {
    return showError(`"${name}" cannot be played by this browser.`);
  }
  ui.cameraToggle.textContent = 'Stop video';
  loop();
}

// ---------- downloads and hover ----------

function download(blob, filename) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = filename;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

/** The last result's class ids (`width x height`): the GPU path reads them back on request. */
async function readLabels() {
  const last = state.last;
  return last.gpu ? state.worker.call('drawnLabels') : last.labels;
}

async function downloadPicture() {
  const { name, gpu } = state.last;
  const blob = gpu ? await state.worker.call('snapshot', { view: ui.viewSelect.value, alpha: Number(ui.alpha.value) })
    : await new Promise((resolve) => ui.output.toBlob(resolve, 'image/png'));
  download(blob, `${name}-segmented.png`);
}

async function downloadLabels() {
  const { width, height, name } = state.last;
  const png = await state.worker.labelsPng(await readLabels(), width, height);
  download(new Blob([png], { type: 'image/png' }), `${name}-labels.png`);
}

// The GPU path asks the worker for the one label under the pointer, one question at a time.
let hoverBusy = false;
/** The class name under the pointer, null off the picture, undefined while a question is out. */
async function gpuClassAt(event) {
  const last = state.last;
  const at = labelPosition(event, ui.gpuOutput, last.width, last.height, ui.viewSelect.value);
  if (!at) return null;
  const [lx, ly] = at;
  if (hoverBusy) return undefined;
  hoverBusy = true;
  try {
    const id = await state.worker.call('drawnLabelAt', { x: lx, y: ly });
    return state.info.classes.names[id] ?? `class ${id}`;
  } finally {
    hoverBusy = false;
  }
}

async function showHover(event) {
  if (!state.last || !state.info) return;
  const canvas = state.last.gpu ? ui.gpuOutput : ui.output;
  const name = state.last.gpu ? await gpuClassAt(event).catch(() => null)
    : classAt(event, ui.output, state.last, state.info.classes.names, ui.viewSelect.value);
  if (name === undefined) return;
  if (!name) { ui.hover.hidden = true; return; }
  const rect = canvas.getBoundingClientRect();
  ui.hover.textContent = name;
  ui.hover.style.left = `${event.clientX - rect.left + 12}px`;
  ui.hover.style.top = `${event.clientY - rect.top + 12}px`;
  ui.hover.hidden = false;
}

// ---------- wiring ----------

function wire() {
  const reportErrors = (promise) => promise.catch((e) => showError(errorText(e)));
  ui.cameraToggle.addEventListener('click', () => (state.looping ? stopLoop() : reportErrors(startCamera())));
  ui.cameraSelect.addEventListener('change', () => reportErrors(startCamera(ui.cameraSelect.value)));
  ui.fileInput.addEventListener('change', () => {
    const file = ui.fileInput.files[0];
    if (file) reportErrors(openFile(file));
    ui.fileInput.value = '';
  });
  document.addEventListener('dragover', (e) => { e.preventDefault(); document.body.classList.add('dragging'); });
  document.addEventListener('dragleave', () => document.body.classList.remove('dragging'));
  document.addEventListener('drop', (e) => {
    e.preventDefault();
    document.body.classList.remove('dragging');
    const file = e.dataTransfer?.files[0];
    if (file) reportErrors(openFile(file));
  });
  document.addEventListener('paste', (e) => {
    const file = [...(e.clipboardData?.files ?? [])][0];
    if (file) reportErrors(openFile(file));
  });
  ui.backendSelect.addEventListener('change', async () => {
    const running = state.looping;
    stopLoop();
    clearError();
    // A result the GPU drew lives in the worker, which forgets it with the backend.
    if (state.last?.gpu) {
      state.last = null;
      ui.downloadColor.disabled = true;
      ui.downloadLabels.disabled = true;
    }
    try {
      await switchBackend(ui.backendSelect.value);
    } catch (e) {
      showError(`The ${ui.backendSelect.value} backend could not start: ${errorText(e)}`);
      setState(state.info ? 'ready' : 'error');
      return;
    }
    // What was on screen comes back on the new backend.
    if (state.source === 'image' && state.imageFile) reportErrors(segmentImageFile(state.imageFile));
    else if (running && state.source === 'camera') reportErrors(startCamera());
    else if (running && state.source === 'video') reportErrors(startVideo(state.video));
  });
  ui.stillsSelect.addEventListener('change', () => {
    const idle = document.body.dataset.state === 'ready';
    if (state.source === 'image' && state.imageFile && idle) reportErrors(segmentImageFile(state.imageFile));
  });
  const redraw = () => {
    if (!state.last) return;
    const [view, alpha] = [ui.viewSelect.value, Number(ui.alpha.value)];
    if (state.last.gpu) reportErrors(state.worker.call('redraw', { view, alpha }));
    else drawResult(ui.output, state.last, view, alpha);
  };
  for (const control of [ui.viewSelect, ui.alpha]) control.addEventListener('input', redraw);
  ui.downloadColor.addEventListener('click', () => reportErrors(downloadPicture()));
  ui.downloadLabels.addEventListener('click', () => reportErrors(downloadLabels()));
  for (const canvas of [ui.output, ui.gpuOutput]) {
    canvas.addEventListener('mousemove', showHover);
    canvas.addEventListener('mouseleave', () => { ui.hover.hidden = true; });
  }
}

// The GPU path draws on its own canvas, handed to the worker once. `?gpuview=0` keeps WebGPU
// results on the read-back path (to compare the two).
async function offerGpuCanvas() {
  const asked = new URLSearchParams(location.search).get('gpuview');
  if (asked === '0') {
    return state.worker.call('attachCanvas', { canvas: null, reason: 'the GPU view is off (?gpuview=0)' });
  }
  if (!('transferControlToOffscreen' in ui.gpuOutput)) {
    return state.worker.call('attachCanvas', { canvas: null, reason: 'this browser cannot hand a canvas to a worker' });
  }
  const canvas = ui.gpuOutput.transferControlToOffscreen();
  return state.worker.attachCanvas(canvas);
}

async function main() {
  wire();
  try {
    ui.weightsStatus.textContent = 'loading the model';
    const url = weightsUrl();
    state.worker = new InferenceWorker({ onProgress: showProgress, onNotice: (text) => notice('load', text) });
    await offerGpuCanvas();
    const loaded = await state.worker.load(url, new URLSearchParams(location.search).get('backend'));
    document.body.dataset.weights = loaded.weights;
    backendStarted(loaded);
  } catch (e) {
    setState('error');
    showError(`The model could not be loaded: ${errorText(e)}`);
  }
}

// Exposed for tests and the console.
window.bisenet = { state, segmentImageFile, readLabels };
main();
