// A result on screen: the inference size a frame is labelled at, the result drawn with its stage
// times, and the legend's class shares. Shared by live frames and still images.
import { state, stats, ui } from './page.js';
import { drawResult, renderLegend } from './view.js';

/** The `[width, height]` to label a `width x height` frame at, from the resolution menu. */
export function inferenceSize(width, height) {
  const choice = ui.sizeSelect.value;
  if (choice === 'native') return [width, height];
  // Auto: live frames follow the controller; a still image gets 360 (there is no rate to hold).
  const h = choice === 'auto' ? (state.looping ? state.auto.height : 360) : Number(choice);
  // The options name 4:3 sizes; other shapes keep their aspect at the chosen height.
  return [Math.max(8, Math.round((h * width) / height)), h];
}

/** Draws a result and shows its stage times; `captureMs` is the main thread's share. */
export function show(result, captureMs, drawStart) {
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
  // The GPU work of a frame (WebGPU only): what kernel fusion drives down.
  const work = result.gpuWork;
  stats.gpu.textContent = work ? `${work.dispatches} dispatches, ${work.submits} submits` : '–';
  document.body.dataset.gpuDispatches = work ? String(work.dispatches) : '';
  document.body.dataset.gpuSubmits = work ? String(work.submits) : '';
  ui.downloadColor.disabled = false;
  ui.downloadLabels.disabled = false;
}

/** The legend's class shares: with every still image, a few times a second while live. */
export async function refreshShares(now) {
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
