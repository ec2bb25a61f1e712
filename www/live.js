// Live frames: the camera and opened videos, labelled one frame after another while they play,
// with the frame rate and the auto resolution that follows it.
import { openCamera, listCameras, FrameClock } from './camera.js';
import { state, stats, ui, setState, showError, clearError, errorText } from './page.js';
import { inferenceSize, show, refreshShares } from './results.js';
import { renderLegend } from './view.js';

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

/** Stops the camera or video, if one runs. */
export function stopLoop() {
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

/** Starts the camera `deviceId` (the default one without) and labels its frames. */
export async function startCamera(deviceId) {
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

/** Plays the opened video `{ url, name }` in a loop and labels its frames. */
export async function startVideo({ url, name }) {
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
