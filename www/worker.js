// The inference worker: owns the WebAssembly module, the weights and the model, so that the
// page's main thread only captures frames, draws and answers the user while a frame is labelled.
//
// Requests `{ id, type, ...arguments }` are answered `{ id, value }` or `{ id, error }`; while a
// model loads the worker also posts `{ type: 'progress', received, total }` and
// `{ type: 'notice', text }`. Frames arrive as transferred ImageBitmaps; labels and the colour
// mask go back transferred, never copied.
import init, { Model, checkWeights } from './pkg/bisenet.js';
import { loadWeights } from './model-cache.js';
import { chooseBackend } from './backend.js';

let weights = null; // verified bytes of the weights file
let model = null;
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
  return { backend, reason, info: JSON.parse(model.infoJson()) };
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

  /** Switches the loaded model to another backend. */
  async backend({ backend }) {
    return { value: await start(backend, '') };
  },

  /**
   * Labels a frame: `bitmap` is read at `width x height`, the network runs at
   * `inferenceWidth x inferenceHeight`, and the labels come back at `width x height`.
   */
  async segment({ bitmap, width, height, inferenceWidth, inferenceHeight }) {
    if (!model) throw new Error('the model is not loaded yet');
    const t0 = performance.now();
    const rgba = readPixels(bitmap, width, height);
    const input = model.upload(rgba, width, height, inferenceWidth, inferenceHeight);
    const t1 = performance.now();
    const labels = await model.run(input);
    const t2 = performance.now();
    const mask = maskBitmap(labels, width, height);
    const shares = model.classShares(labels);
    const t3 = performance.now();
    return {
      value: { labels, mask, shares, width, height, ms: { upload: t1 - t0, network: t2 - t1, render: t3 - t2 } },
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
