// The inference worker: owns the WebAssembly module, the weights and the model, so that the
// page's main thread only captures frames, draws and answers the user while a frame is labelled.
//
// Requests `{ id, type, ...arguments }` are answered `{ id, value }` or `{ id, error }`; while a
// model loads the worker also posts `{ type: 'progress', received, total }` and
// `{ type: 'notice', text }`. Frames arrive as transferred ImageBitmaps. On the read-back path
// (`segment`) labels and the colour mask go back transferred, never copied; on the WebGPU GPU path
// (`draw`) the frame stays on the GPU and is drawn on the canvas the page transferred here, and
// only small read-backs asked for (shares, the label under the pointer, downloads) come back.
import init, { Model, checkWeights } from './pkg/bisenet.js';
import { loadWeights } from './model-cache.js';
import { chooseBackend } from './backend.js';
import { canvasProblem } from './gpu-canvas.js';
import { countGpuWork, takeGpuWork } from './gpu-counter.js';

countGpuWork();

let weights = null; // verified bytes of the weights file
let model = null;
// The GPU path (WebGPU): the page's canvas, transferred here, shows results drawn on the GPU.
let gpuCanvas = null;
// 'canvas' (draw there), or the reason there is no GPU view.
let canvasMode = 'the page has not offered a canvas';
let gpuView = { active: false, reason: canvasMode };
let shown = null; // the size of the frame the GPU path drew last ({ width, height })
const pixels = new OffscreenCanvas(1, 1);
const pixelsCtx = pixels.getContext('2d', { willReadFrequently: true });
const maskCanvas = new OffscreenCanvas(1, 1);
const maskCtx = maskCanvas.getContext('2d');

const errorText = (e) => (e instanceof Error ? e.message : String(e));

/** Starts `backend` on the loaded weights; a WebGPU that cannot start falls back to the CPU. */
async function start(backend, reason) {
  let next;
  try {
    next = await Model.load(weights, backend);
  } catch (e) {
    if (backend !== 'webgpu') throw e;
    return start('cpu', `WebGPU could not start (${errorText(e)}), so the model runs on the CPU.`);
  }
  model?.free();
  model = next;
  shown = null; // the GPU path's labels went with the old model
  await attachGpuView();
  return { backend, reason, info: JSON.parse(model.infoJson()), refined: JSON.parse(Model.refinedJson()), gpuView };
}

/** Gives the canvas to a WebGPU model; on the CPU, or when that fails, the page draws itself. */
async function attachGpuView() {
  const usable = canvasMode === 'canvas';
  gpuView = { active: false, reason: usable ? 'the CPU backend draws through the page' : canvasMode };
  if (!usable || model.backend !== 'webgpu') return;
  try {
    await model.attachCanvas(gpuCanvas);
    gpuView = { active: true, reason: '' };
  } catch (e) {
    gpuView = { active: false, reason: errorText(e) };
  }
}

/** The RGBA bytes of `bitmap` drawn at `width x height` (the browser scales when they differ). */
function readPixels(bitmap, width, height) {
  if (pixels.width !== width || pixels.height !== height) {
    pixels.width = width;
    pixels.height = height;
  }
  pixelsCtx.drawImage(bitmap, 0, 0, width, height);
  bitmap.close();
  return pixelsCtx.getImageData(0, 0, width, height).data;
}

/** The GPU canvas takes the frame's size (twice its width side by side). */
function sizeGpuCanvas(view) {
  if (!gpuCanvas) return;
  const width = view === 'side' ? shown.width * 2 : shown.width;
  if (gpuCanvas.width !== width || gpuCanvas.height !== shown.height) {
    gpuCanvas.width = width;
    gpuCanvas.height = shown.height;
  }
}

/** The colour mask of `labels` as an ImageBitmap the page can draw over its frame. */
function maskBitmap(labels, width, height) {
  const rgba = model.colorize(labels, width, height);
  maskCanvas.width = width;
  maskCanvas.height = height;
  maskCtx.putImageData(new ImageData(new Uint8ClampedArray(rgba.buffer, rgba.byteOffset, rgba.length), width, height), 0, 0);
  return maskCanvas.transferToImageBitmap();
}

const handlers = {
  /** Loads the weights at `url` and starts `backend` (chosen here when not given). */
  async load({ url, backend }) {
    await init();
    const loaded = await loadWeights(url, {
      verify: checkWeights,
      progress: (received, total) => postMessage({ type: 'progress', received, total }),
      notice: (text) => postMessage({ type: 'notice', text }),
    });
    weights = loaded.bytes;
    const choice = await chooseBackend(backend);
    return { value: { ...await start(choice.backend, choice.reason), weights: loaded.source } };
  },

  /** Takes the page's canvas for the GPU path (once per page: a canvas is transferred once). */
  async attachCanvas({ canvas, reason }) {
    gpuCanvas = canvas;
    if (canvas) canvasMode = (await canvasProblem(canvas)) || 'canvas';
    else canvasMode = reason;
    if (model) await attachGpuView();
    return { value: gpuView };
  },

  /** The last GPU result as a PNG (drawn again into a texture and read back: on request only). */
  async snapshot({ view, alpha }) {
    const rgba = await model.renderedPixels(view, alpha);
    const width = view === 'side' ? shown.width * 2 : shown.width;
    const canvas = new OffscreenCanvas(width, shown.height);
    canvas.getContext('2d').putImageData(new ImageData(new Uint8ClampedArray(rgba.buffer), width, shown.height), 0, 0);
    return { value: await canvas.convertToBlob({ type: 'image/png' }) };
  },

  /** The last GPU result's picture as RGBA bytes (read back: for tests). */
  async renderedPixels({ view, alpha }) {
    const rgba = await model.renderedPixels(view, alpha);
    return { value: rgba, transfer: [rgba.buffer] };
  },

  /**
   * The GPU path: `frame` is copied to the GPU, where the input is made at `inferenceWidth x
   * inferenceHeight`, labelled, and drawn over on the canvas; nothing comes back but the labels'
   * size and the stage times.
   */
  async draw({ frame, inferenceWidth, inferenceHeight, view, alpha }) {
    if (!gpuView.active) throw new Error(`the GPU view is off: ${gpuView.reason}`);
    takeGpuWork();
    const t0 = performance.now();
    let labelled;
    try {
      labelled = model.labelFrame(frame, inferenceWidth, inferenceHeight);
      shown = { width: frame.width, height: frame.height };
    } finally {
      frame.close(); // copied to the GPU
    }
    const t1 = performance.now();
    sizeGpuCanvas(view);
    await model.present(view, alpha);
    const t2 = performance.now();
    const gpuWork = takeGpuWork();
    return { value: { width: labelled[0], height: labelled[1], ms: { upload: t1 - t0, network: t2 - t1, render: 0 }, gpuWork } };
  },

  /** Draws the last GPU result again, in another view or opacity. */
  async redraw({ view, alpha }) {
    if (!shown) return { value: null };
    sizeGpuCanvas(view);
    await model.present(view, alpha);
    return { value: null };
  },

  /** Read-backs of the GPU path's last labels, on request only (never per frame). */
  async drawnLabels() {
    const labels = await model.readDrawnLabels();
    return { value: labels, transfer: [labels.buffer] };
  },
  async drawnShares() { return { value: await model.drawnClassShares() }; },
  async drawnLabelAt({ x, y }) { return { value: await model.drawnLabelAt(x, y) }; },

  /** Switches the loaded model to another backend. */
  async backend({ backend }) {
    if (!weights) throw new Error('the model is not loaded yet');
    return { value: await start(backend, '') };
  },

  /**
   * Labels a frame: `bitmap` is read at `width x height`, the network runs at
   * `inferenceWidth x inferenceHeight` (`refined`: at six scales of it, each also mirrored), and
   * the labels come back at `width x height`.
   */
  async segment({ bitmap, width, height, inferenceWidth, inferenceHeight, refined = false }) {
    if (!model) throw new Error('the model is not loaded yet');
    takeGpuWork();
    const t0 = performance.now();
    const rgba = readPixels(bitmap, width, height);
    let labels;
    let t1;
    if (refined) {
      t1 = performance.now();
      labels = await model.refine(rgba, width, height, inferenceWidth, inferenceHeight);
    } else {
      const input = model.upload(rgba, width, height, inferenceWidth, inferenceHeight);
      t1 = performance.now();
      labels = await model.run(input);
    }
    const t2 = performance.now();
    const mask = maskBitmap(labels, width, height);
    const shares = model.classShares(labels);
    const t3 = performance.now();
    const gpuWork = model.backend === 'webgpu' ? takeGpuWork() : null;
    return {
      value: { labels, mask, shares, width, height, ms: { upload: t1 - t0, network: t2 - t1, render: t3 - t2 }, gpuWork },
      transfer: [labels.buffer, mask],
    };
  },

  /** The label map as a grayscale PNG of class ids. */
  labelsPng({ labels, width, height }) {
    const png = model.labelsPng(labels, width, height);
    return { value: png, transfer: [png.buffer] };
  },
};

onmessage = async ({ data: { id, type, ...args } }) => {
  try {
    const handler = handlers[type];
    if (!handler) throw new Error(`unknown request ${type}`);
    const { value, transfer = [] } = await handler(args);
    postMessage({ id, value }, transfer);
  } catch (e) {
    postMessage({ id, error: errorText(e) });
  }
};
