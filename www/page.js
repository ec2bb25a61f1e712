// What every part of the demo page shares: its elements, its state, and the status it shows
// (`document.body.dataset.state`, the alert and the notices).
import { AutoSize } from './auto-size.js';

const $ = (id) => document.getElementById(id);

export const ui = {
  alert: $('alert'), notice: $('notice'), progress: $('weights-progress'), weightsStatus: $('weights-status'),
  cameraToggle: $('camera-toggle'), cameraSelect: $('camera-select'), fileInput: $('file-input'),
  backendSelect: $('backend-select'), sizeSelect: $('size-select'), viewSelect: $('view-select'),
  stillsSelect: $('stills-select'), stillsRefined: $('stills-refined'), stillsAuto: $('stills-auto'),
  alpha: $('alpha'), downloadColor: $('download-color'), downloadLabels: $('download-labels'),
  output: $('output'), gpuOutput: $('gpu-output'), hover: $('hover'), legend: $('legend'), video: $('video'),
  about: $('model-about'),
};

export const stats = Object.fromEntries(
  ['backend', 'fps', 'capture', 'upload', 'network', 'draw', 'size', 'gpu'].map((k) => [k, $(`stat-${k}`)]));

export const state = {
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

export function setState(s) { document.body.dataset.state = s; }

export function showError(message) {
  ui.alert.textContent = message;
  ui.alert.hidden = false;
  console.error(message);
}

export function clearError() { ui.alert.hidden = true; ui.alert.textContent = ''; }

function showNotices() {
  const text = Object.values(state.notices).filter(Boolean).join(' ');
  ui.notice.textContent = text;
  ui.notice.hidden = !text;
}

/** Sets the notice of `kind` (one of `state.notices`); an empty `text` clears it. */
export function notice(kind, text) { state.notices[kind] = text; showNotices(); }

export const errorText = (e) => (e instanceof Error ? e.message : String(e));
