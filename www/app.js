// The BiSeNet demo page: loads the wasm module and the weights, picks a backend, and segments
// camera frames, videos and still images. Everything runs locally; the page only fetches its
// own files.
import init, { Model, checkWeights } from './pkg/bisenet.js';
import { describeModel } from './model-about.js';
import { AutoSize } from './auto-size.js';

const DEFAULT_WEIGHTS_URL = 'models/bisenet-camvid.safetensors';
const CACHE_NAME = 'bisenet-weights-v1';
const MAX_SIDE = 4096; // larger still images are downscaled to this

const $ = (id) => document.getElementById(id);
const ui = {
  alert: $('alert'), notice: $('notice'), progress: $('weights-progress'), weightsStatus: $('weights-status'),
  cameraToggle: $('camera-toggle'), cameraSelect: $('camera-select'), fileInput: $('file-input'),
  backendSelect: $('backend-select'), sizeSelect: $('size-select'), viewSelect: $('view-select'),
  alpha: $('alpha'), downloadColor: $('download-color'), downloadLabels: $('download-labels'),
  output: $('output'), hover: $('hover'), legend: $('legend'), video: $('video'),
  about: $('model-about'),
};
const stats = Object.fromEntries(
  ['backend', 'fps', 'capture', 'upload', 'network', 'draw', 'size'].map((k) => [k, $(`stat-${k}`)]));

const state = {
  model: null, info: null, weights: null,
  source: null,        // 'camera' | 'video' | 'image'
  stream: null, looping: false,
  last: null,          // { rgba, width, height, labels, name }
  frames: 0,           // results drawn since the page opened
  fps: 0,
  auto: new AutoSize(10), // the auto resolution of live frames (target set per backend)
};

/** Frame rate auto resolution aims for: what each backend can hold on modest hardware. */
const TARGET_FPS = { cpu: 10, webgpu: 30 };

// ---------- status ----------

function setState(s) { document.body.dataset.state = s; }

function showError(message) {
  ui.alert.textContent = message;
  ui.alert.hidden = false;
  console.error(message);
}

function clearError() { ui.alert.hidden = true; ui.alert.textContent = ''; }

function showNotice(message) {
  ui.notice.textContent = message;
  ui.notice.hidden = !message;
}

function errorText(e) { return e instanceof Error ? e.message : String(e); }

// ---------- weights: fetch with progress, Cache API, verification ----------

// Reads a response body, showing progress; refuses a body shorter than its Content-Length.
async function readWithProgress(response) {
  const total = Number(response.headers.get('Content-Length')) || 0;
  const reader = response.body.getReader();
  const chunks = [];
  let received = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.length;
    if (total) ui.progress.value = received / total;
    ui.weightsStatus.textContent = `downloading model ${(received / 1e6).toFixed(1)} MB` +
      (total ? ` of ${(total / 1e6).toFixed(1)} MB` : '');
  }
  if (total && received !== total) {
    throw new Error(`the model download stopped at ${received} of ${total} bytes; reload to retry`);
  }
  const bytes = new Uint8Array(received);
  let offset = 0;
  for (const chunk of chunks) { bytes.set(chunk, offset); offset += chunk.length; }
  return bytes;
}

// `?model=models/NAME.safetensors` runs another weights file (one made by `bisenet import`, say),
// served from this page's own origin: nothing is fetched from elsewhere.
function weightsUrl() {
  const asked = new URLSearchParams(location.search).get('model');
  if (!asked) return DEFAULT_WEIGHTS_URL;
  const url = new URL(asked, location.href);
  if (url.origin !== location.origin) {
    throw new Error(`?model=${asked} is not on this site; copy the file next to the page and name it relatively`);
  }
  return url.pathname;
}

// The validators a server gave with a response, kept with the cached copy so that a later visit
// can ask "has it changed?" instead of downloading the model again.
const VALIDATORS = [['ETag', 'If-None-Match'], ['Last-Modified', 'If-Modified-Since']];

// Returns verified weight bytes. A cached copy is revalidated with a conditional request when
// the server can be reached: "not modified" keeps it, a new file replaces it (so a returning
// visitor gets an updated model). Offline, or when the server fails, the cached copy is used.
async function loadWeights() {
  const url = weightsUrl();
  const cache = 'caches' in self ? await caches.open(CACHE_NAME).catch(() => null) : null;
  let cached = null;
  const stored = cache && await cache.match(url);
  if (stored) {
    const bytes = new Uint8Array(await stored.arrayBuffer());
    try {
      checkWeights(bytes);
      cached = { bytes, headers: stored.headers };
    } catch (e) {
      await cache.delete(url); // a bad cached copy is replaced, never used
    }
  }
  const fromCache = () => {
    document.body.dataset.weights = 'cache';
    return cached.bytes;
  };

  const conditions = {};
  for (const [validator, condition] of VALIDATORS) {
    const value = cached?.headers.get(validator);
    if (value) conditions[condition] = value;
  }
  let response;
  try {
    response = await fetch(url, { cache: 'no-store', headers: conditions });
  } catch (e) {
    if (cached) return fromCache();
    throw new Error(`the model ${url} could not be downloaded (${errorText(e)}); check the connection and reload`);
  }
  if (!response.ok) { // 304 "not modified" included
    if (cached) return fromCache();
    throw new Error(`the model ${url} could not be downloaded (HTTP ${response.status})`);
  }
  let bytes;
  try {
    bytes = await readWithProgress(response);
    checkWeights(bytes); // throws with the reason: truncated, not a weights file, ...
  } catch (e) {
    if (!cached) throw e;
    showNotice(`The new model could not be used (${errorText(e)}); running the copy saved earlier.`);
    return fromCache();
  }
  document.body.dataset.weights = 'network';
  if (cache) {
    const headers = { 'Content-Type': 'application/octet-stream', 'Content-Length': String(bytes.length) };
    for (const [validator] of VALIDATORS) {
      const value = response.headers.get(validator);
      if (value) headers[validator] = value;
    }
    await cache.put(url, new Response(bytes, { headers })).catch(() => {});
  }
  return bytes;
}

// ---------- backend ----------

// WebGPU when a real GPU adapter is there; the CPU backend otherwise, with the reason.
async function defaultBackend() {
  const forced = new URLSearchParams(location.search).get('backend');
  if (forced === 'cpu' || forced === 'webgpu') return { backend: forced, reason: '' };
  if (!('gpu' in navigator)) {
    return { backend: 'cpu', reason: 'This browser has no WebGPU, so the model runs on the CPU (slower).' };
  }
  let adapter = null;
  try { adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' }); } catch (e) { /* none */ }
  if (!adapter) {
    return { backend: 'cpu', reason: 'WebGPU found no usable GPU here, so the model runs on the CPU (slower).' };
  }
  const fallback = adapter.isFallbackAdapter ?? adapter.info?.isFallbackAdapter ?? false;
  if (fallback) {
    return {
      backend: 'cpu',
      reason: 'WebGPU only offers a software (CPU-emulated) adapter here, which is slower than the ' +
        'CPU backend, so the model runs on the CPU. You can still switch to WebGPU.',
    };
  }
  return { backend: 'webgpu', reason: '' };
}

async function useBackend(backend, reason = '') {
  setState('loading');
  ui.weightsStatus.textContent = `starting the ${backend === 'webgpu' ? 'WebGPU' : 'CPU'} backend`;
  const previous = state.model;
  try {
    state.model = await Model.load(state.weights, backend);
  } catch (e) {
    if (backend === 'webgpu') {
      // WebGPU failed to start: stay usable on the CPU.
      state.model = previous;
      return useBackend('cpu', `WebGPU could not start (${errorText(e)}), so the model runs on the CPU.`);
    }
    throw e;
  }
  previous?.free();
  state.info = JSON.parse(state.model.infoJson());
  ui.about.textContent = describeModel(state.info);
  state.auto = new AutoSize(TARGET_FPS[backend]);
  document.body.dataset.backend = backend;
  ui.backendSelect.value = backend;
  stats.backend.textContent = backend === 'webgpu' ? 'WebGPU' : 'CPU (wasm)';
  showNotice(reason);
  renderLegend(null);
  setState('ready');
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

const work = document.createElement('canvas');
const workCtx = work.getContext('2d', { willReadFrequently: true });

function capture(source, width, height) {
  work.width = width;
  work.height = height;
  workCtx.drawImage(source, 0, 0, width, height);
  return workCtx.getImageData(0, 0, width, height).data;
}

async function segmentFrame(source, width, height, name) {
  const t0 = performance.now();
  const rgba = capture(source, width, height);
  const t1 = performance.now();
  const [iw, ih] = inferenceSize(width, height);
  const input = state.model.upload(rgba, width, height, iw, ih);
  const t2 = performance.now();
  const labels = await state.model.run(input);
  const t3 = performance.now();
  state.last = { rgba, width, height, labels, name };
  draw();
  state.frames += 1;
  const t4 = performance.now();
  stats.capture.textContent = `${(t1 - t0).toFixed(1)} ms`;
  stats.upload.textContent = `${(t2 - t1).toFixed(1)} ms`;
  stats.network.textContent = `${(t3 - t2).toFixed(1)} ms`;
  stats.draw.textContent = `${(t4 - t3).toFixed(1)} ms`;
  stats.size.textContent = `${iw}x${ih}${ui.sizeSelect.value === 'auto' ? ' (auto)' : ''}`;
  document.body.dataset.inferenceSize = `${iw}x${ih}`;
  ui.downloadColor.disabled = false;
  ui.downloadLabels.disabled = false;
  return t4 - t0;
}

function draw() {
  const last = state.last;
  if (!last) return;
  const { rgba, width, height, labels } = last;
  const view = ui.viewSelect.value;
  const alpha = Number(ui.alpha.value);
  const ctx = ui.output.getContext('2d');
  const picture = (mode) => new ImageData(
    new Uint8ClampedArray(state.model.render(rgba, width, height, labels, mode, alpha).buffer), width, height);
  if (view === 'side') {
    ui.output.width = width * 2;
    ui.output.height = height;
    ctx.putImageData(new ImageData(new Uint8ClampedArray(rgba), width, height), 0, 0);
    ctx.putImageData(picture('mask'), width, 0);
  } else {
    ui.output.width = width;
    ui.output.height = height;
    ctx.putImageData(picture(view === 'mask' ? 'mask' : 'overlay'), 0, 0);
  }
}

function renderLegend(labels) {
  if (!state.info) return;
  const shares = labels ? state.model.classShares(labels) : null;
  ui.legend.replaceChildren(...state.info.classes.names.map((name, i) => {
    const [r, g, b] = state.info.classes.palette[i];
    const li = document.createElement('li');
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.background = `rgb(${r},${g},${b})`;
    const label = document.createElement('span');
    label.textContent = name;
    li.append(swatch, label);
    if (shares) {
      const share = document.createElement('span');
      share.className = 'share';
      share.textContent = `${(shares[i] * 100).toFixed(1)} %`;
      li.append(share);
    }
    return li;
  }));
}

// ---------- still images ----------

async function segmentImageFile(file) {
  stopLoop();
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch (e) {
    throw new Error(`"${file.name}" is not an image this browser can read.`);
  }
  let { width, height } = bitmap;
  const scale = Math.min(1, MAX_SIDE / Math.max(width, height));
  if (scale < 1) {
    const original = `${width}x${height}`;
    width = Math.round(width * scale);
    height = Math.round(height * scale);
    showNotice(`"${file.name}" is ${original}; it was downscaled to ${width}x${height} to fit in memory.`);
  }
  state.source = 'image';
  setState('busy');
  try {
    await segmentFrame(bitmap, width, height, file.name.replace(/\.[^.]*$/, ''));
    renderLegend(state.last.labels);
  } finally {
    bitmap.close();
    setState('ready');
  }
}

async function openFile(file) {
  clearError();
  if (!state.model) return showError('The model is not loaded yet.');
  if (file.type.startsWith('video/')) return startVideo(URL.createObjectURL(file), file.name);
  await segmentImageFile(file);
}

// ---------- camera and video ----------

function stopLoop() {
  state.looping = false;
  state.stream?.getTracks().forEach((t) => t.stop());
  state.stream = null;
  ui.video.pause();
  ui.video.removeAttribute('src');
  ui.video.srcObject = null;
  ui.cameraToggle.textContent = 'Start camera';
  delete document.body.dataset.fps;
}

// Segments frames one after another: the next frame is taken once the previous result is
// drawn, so no queue builds up whatever the speed.
async function loop() {
  state.looping = true;
  let previous = performance.now();
  renderLegend(null);
  while (state.looping) {
    const video = ui.video;
    if (video.readyState < 2 || !video.videoWidth) {
      await new Promise((r) => requestAnimationFrame(r));
      continue;
    }
    setState('busy');
    try {
      await segmentFrame(video, video.videoWidth, video.videoHeight, 'frame');
    } catch (e) {
      showError(`Segmentation failed: ${errorText(e)}`);
      stopLoop();
      break;
    }
    const now = performance.now();
    const instant = 1000 / (now - previous);
    if (ui.sizeSelect.value === 'auto') {
      state.auto.record(now - previous);
      document.body.dataset.autoSettled = String(state.auto.settled);
    }
    previous = now;
    state.fps = state.fps ? 0.8 * state.fps + 0.2 * instant : instant;
    stats.fps.textContent = state.fps.toFixed(1);
    document.body.dataset.fps = state.fps.toFixed(2);
    await new Promise((r) => requestAnimationFrame(r));
  }
  setState('ready');
}

async function startCamera(deviceId) {
  clearError();
  stopLoop();
  if (!navigator.mediaDevices?.getUserMedia) {
    return showError('This browser cannot open a camera here (camera access needs https or localhost).');
  }
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({
      video: deviceId ? { deviceId: { exact: deviceId } } : { width: { ideal: 640 }, height: { ideal: 480 } },
      audio: false,
    });
  } catch (e) {
    const messages = {
      NotAllowedError: 'Camera permission was denied. Allow the camera for this page in the browser settings, or open an image instead.',
      NotFoundError: 'No camera was found. Connect one, or open an image or video instead.',
      NotReadableError: 'The camera is in use by another application.',
      OverconstrainedError: 'The selected camera cannot deliver video.',
    };
    return showError(messages[e.name] ?? `The camera could not start: ${errorText(e)}`);
  }
  state.source = 'camera';
  ui.video.srcObject = state.stream;
  await ui.video.play();
  ui.cameraToggle.textContent = 'Stop camera';
  await listCameras();
  loop();
}

async function startVideo(url, name) {
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

async function listCameras() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  const cameras = devices.filter((d) => d.kind === 'videoinput');
  ui.cameraSelect.hidden = cameras.length < 2;
  const current = state.stream?.getVideoTracks()[0]?.getSettings().deviceId;
  ui.cameraSelect.replaceChildren(...cameras.map((c, i) => {
    const option = new Option(c.label || `camera ${i + 1}`, c.deviceId);
    option.selected = c.deviceId === current;
    return option;
  }));
}

// ---------- downloads and hover ----------

function download(blob, filename) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = filename;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

function downloadLabels() {
  const { labels, width, height, name } = state.last;
  const png = state.model.labelsPng(labels, width, height);
  download(new Blob([png], { type: 'image/png' }), `${name}-labels.png`);
}

function showHover(event) {
  const last = state.last;
  if (!last || !state.info) return;
  const rect = ui.output.getBoundingClientRect();
  let x = Math.floor(((event.clientX - rect.left) / rect.width) * ui.output.width);
  const y = Math.floor(((event.clientY - rect.top) / rect.height) * ui.output.height);
  if (x >= last.width) x -= last.width; // right half of the side-by-side view
  if (x < 0 || y < 0 || x >= last.width || y >= last.height) { ui.hover.hidden = true; return; }
  const id = last.labels[y * last.width + x];
  ui.hover.textContent = state.info.classes.names[id] ?? `class ${id}`;
  ui.hover.style.left = `${event.clientX - rect.left + 12}px`;
  ui.hover.style.top = `${event.clientY - rect.top + 12}px`;
  ui.hover.hidden = false;
}

// ---------- wiring ----------

function wire() {
  ui.cameraToggle.addEventListener('click', () => (state.looping ? stopLoop() : startCamera()));
  ui.cameraSelect.addEventListener('change', () => startCamera(ui.cameraSelect.value));
  ui.fileInput.addEventListener('change', () => {
    const file = ui.fileInput.files[0];
    if (file) openFile(file).catch((e) => showError(errorText(e)));
    ui.fileInput.value = '';
  });
  document.addEventListener('dragover', (e) => { e.preventDefault(); document.body.classList.add('dragging'); });
  document.addEventListener('dragleave', () => document.body.classList.remove('dragging'));
  document.addEventListener('drop', (e) => {
    e.preventDefault();
    document.body.classList.remove('dragging');
    const file = e.dataTransfer?.files[0];
    if (file) openFile(file).catch((err) => showError(errorText(err)));
  });
  document.addEventListener('paste', (e) => {
    const file = [...(e.clipboardData?.files ?? [])][0];
    if (file) openFile(file).catch((err) => showError(errorText(err)));
  });
  ui.backendSelect.addEventListener('change', async () => {
    const running = state.looping;
    stopLoop();
    clearError();
    try {
      await useBackend(ui.backendSelect.value);
    } catch (e) {
      showError(`The ${ui.backendSelect.value} backend could not start: ${errorText(e)}`);
      setState('ready');
    }
    if (running && state.source === 'camera') startCamera();
  });
  for (const control of [ui.viewSelect, ui.alpha]) control.addEventListener('input', draw);
  ui.downloadColor.addEventListener('click', () =>
    ui.output.toBlob((blob) => download(blob, `${state.last.name}-segmented.png`), 'image/png'));
  ui.downloadLabels.addEventListener('click', downloadLabels);
  ui.output.addEventListener('mousemove', showHover);
  ui.output.addEventListener('mouseleave', () => { ui.hover.hidden = true; });
}

async function main() {
  wire();
  try {
    ui.weightsStatus.textContent = 'loading the WebAssembly module';
    await init();
    state.weights = await loadWeights();
    const { backend, reason } = await defaultBackend();
    await useBackend(backend, reason);
  } catch (e) {
    setState('error');
    showError(`The model could not be loaded: ${errorText(e)}`);
  }
}

// Exposed for tests and the console.
window.bisenet = { state, segmentImageFile, inferenceSize };
main();
