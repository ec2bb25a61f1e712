// The BiSeNet demo page: captures camera frames, videos and still images, hands them to the
// inference worker (worker.js, which owns the model) and draws what comes back. The main thread
// never runs the network, so the controls stay responsive while a frame is labelled. Everything
// runs locally; the page only fetches its own files.
//
// This file starts the page: the model, its backend and the GPU canvas. The rest is in
// page.js (elements, state, status), controls.js, live.js (camera and video), stills.js,
// results.js (drawing a result) and downloads.js.
import { InferenceWorker } from './inference.js';
import { renderLegend } from './view.js';
import { describeModel } from './model-about.js';
import { AutoSize } from './auto-size.js';
import { state, stats, ui, setState, showError, notice, errorText } from './page.js';
import { wireControls } from './controls.js';
import { segmentImageFile } from './stills.js';
import { readLabels } from './downloads.js';

const DEFAULT_WEIGHTS_URL = 'models/bisenet-camvid.safetensors';
/** Frame rate auto resolution aims for: what each backend can hold on modest hardware. */
const TARGET_FPS = { cpu: 10, webgpu: 30 };

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
  wireControls({ switchBackend });
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
