// The benchmark page: the stages of labelling a frame (upload, network with read-back, draw)
// timed on fresh frames, for each backend and inference size. Upload and network are the
// demo's; the draw blends the overlay in wasm and puts it on a canvas, where the demo's worker
// colours a mask and the page layers it over the frame. Results go to the table and to
// `window.benchResults`; `document.body.dataset.state` becomes `done` (or `error`).
import init, { Model, checkWeights } from './pkg/bisenet.js';
import { canvasProblem } from './gpu-canvas.js';
import { syntheticFrame, median } from './bench-frames.js';

const params = new URLSearchParams(location.search);
const FRAMES = Math.max(1, Number(params.get('frames') ?? 30));
const WARMUP = Math.max(0, Number(params.get('warmup') ?? 3));
const SIZES = (params.get('sizes') ?? '240x320,360x640').split(',').map((s) => s.split('x').map(Number));
const BACKENDS = (params.get('backends') ?? 'webgpu,webgpu-gpu,cpu').split(',');
const WEIGHTS = new URL(params.get('model') ?? 'models/bisenet-camvid.safetensors', new URL('..', location.href));

const $ = (id) => document.getElementById(id);
// The GPU path: the frame goes to the GPU as an ImageBitmap (made outside the timing, as the
// page's capture), the input is made, labelled and drawn there; "network" is until the GPU is
// done, and nothing is read back.
async function benchGpuPath(model, [height, width]) {
  const times = { upload: [], network: [], draw: [], total: [] };
  for (let frame = 0; frame < WARMUP + FRAMES; frame++) {
    const bitmap = await createImageBitmap(new ImageData(new Uint8ClampedArray(syntheticFrame(width, height, frame).buffer), width, height));
    const t0 = performance.now();
    model.labelFrame(bitmap, width, height);
    const t1 = performance.now();
    await model.present('overlay', 0.5);
    const t2 = performance.now();
    bitmap.close();
    if (frame >= WARMUP) {
      times.upload.push(t1 - t0);
      times.network.push(t2 - t1);
      times.draw.push(0);
      times.total.push(t2 - t0);
    }
  }
  return summary(`${model.backend}, GPU path (${gpuTarget})`, [height, width], times);
}

// The GPU path draws into a texture of its own unless `?gpucanvas=1` asks for a canvas (which
// needs a browser that can show WebGPU on one; see gpu-canvas.js).
const GPU_CANVAS = params.get('gpucanvas') === '1';
const gpuTarget = GPU_CANVAS ? 'canvas' : 'offscreen texture';
let gpuCanvas;

async function attachGpuCanvas(model) {
  if (GPU_CANVAS && gpuCanvas === undefined) {
    gpuCanvas = $('gpu-output').transferControlToOffscreen();
    const problem = await canvasProblem(gpuCanvas);
    if (problem) throw new Error(`?gpucanvas=1: ${problem}`);
  }
  await model.attachCanvas(gpuCanvas ?? null);
}

function summary(backend, [height, width], times) {
  const total = median(times.total);
  return {
    backend,
    size: `${height}x${width}`,
    frames: FRAMES,
    fps: 1000 / total,
    total_ms: { median: total, min: Math.min(...times.total), max: Math.max(...times.total) },
    stages_ms: { upload: median(times.upload), network: median(times.network), draw: median(times.draw) },
  };
}

async function benchOne(model, [height, width]) {
  const canvas = $('output');
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d');
  const times = { upload: [], network: [], draw: [], total: [] };
  for (let frame = 0; frame < WARMUP + FRAMES; frame++) {
    const rgba = syntheticFrame(width, height, frame);
    const t0 = performance.now();
    const input = model.upload(rgba, width, height, width, height);
    const t1 = performance.now();
    const labels = await model.run(input);
    const t2 = performance.now();
    const picture = model.overlay(rgba, width, height, labels, 0.5);
    ctx.putImageData(new ImageData(new Uint8ClampedArray(picture.buffer), width, height), 0, 0);
    const t3 = performance.now();
    if (frame >= WARMUP) {
      times.upload.push(t1 - t0);
      times.network.push(t2 - t1);
      times.draw.push(t3 - t2);
      times.total.push(t3 - t0);
    }
  }
  return summary(model.backend, [height, width], times);
}

function addRow(r) {
  const cells = [r.backend, r.size, r.frames, r.fps.toFixed(1), r.total_ms.median.toFixed(1),
    r.total_ms.min.toFixed(1), r.total_ms.max.toFixed(1), r.stages_ms.upload.toFixed(1),
    r.stages_ms.network.toFixed(1), r.stages_ms.draw.toFixed(1)];
  const row = document.createElement('tr');
  for (const c of cells) row.appendChild(Object.assign(document.createElement('td'), { textContent: String(c) }));
  $('results').tBodies[0].appendChild(row);
}

async function main() {
  window.benchResults = [];
  try {
    await init();
    if (WEIGHTS.origin !== location.origin) throw new Error(`?model=${WEIGHTS}: only this site's own files are loaded`);
    const response = await fetch(WEIGHTS);
    if (!response.ok) throw new Error(`${WEIGHTS}: HTTP ${response.status}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    checkWeights(bytes);
    for (const backend of BACKENDS) {
      const gpuPath = backend === 'webgpu-gpu';
      const device = gpuPath ? 'webgpu' : backend;
      if (device === 'webgpu' && !('gpu' in navigator && await navigator.gpu.requestAdapter())) {
        $('status').textContent = `no WebGPU adapter here: skipping ${backend}`;
        continue;
      }
      $('status').textContent = `starting ${backend}`;
      const model = await Model.load(bytes, device);
      if (gpuPath) await attachGpuCanvas(model);
      for (const size of SIZES) {
        $('status').textContent = `running ${backend} at ${size.join('x')}`;
        const result = await (gpuPath ? benchGpuPath : benchOne)(model, size);
        window.benchResults.push(result);
        addRow(result);
      }
      model.free();
    }
    $('status').textContent = 'done';
    document.body.dataset.state = 'done';
  } catch (e) {
    $('alert').hidden = false;
    $('alert').textContent = `The benchmark failed: ${e?.message ?? e}`;
    document.body.dataset.state = 'error';
  }
}

main();
