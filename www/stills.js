// Still images: labelled in one pass, refined (several scales and their mirror images, averaged)
// or "auto" (one pass at once, then refined when that is quick on this machine).
import { state, ui, setState, notice } from './page.js';
import { inferenceSize, show, refreshShares } from './results.js';
import { stopLoop } from './live.js';

const MAX_SIDE = 4096; // larger still images are downscaled to this

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

/** Labels the image `file` as the stills menu says (stopping the camera or video first). */
export async function segmentImageFile(file) {
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
