// tools/browser/ort-web.mjs's worker: loads ONNX Runtime Web (from node_modules, installed by hand),
// opens one ONNX graph on one execution provider and times frames. GPU work is counted with the
// demo's own counter, started here before ORT creates its WebGPU device, so dispatches and submits
// are counted exactly as www/worker.js counts them.
import { countGpuWork, takeGpuWork } from '/www/gpu-counter.js';
import { syntheticFrame, median } from '/www/bench-frames.js';

countGpuWork();

// ORT's C++ WebGPU EP labels its shader modules with the program's name (`Conv2dMM`, `MatMul`,
// ...) but not its pipelines, which are what the counter names kernels by: a pipeline created
// without a label takes its module's. Only labels change; ORT's JSEP EP labels both itself.
if (typeof GPUDevice !== 'undefined') {
  for (const name of ['createComputePipeline', 'createComputePipelineAsync']) {
    const original = GPUDevice.prototype[name];
    GPUDevice.prototype[name] = function (descriptor, ...rest) {
      const label = descriptor?.label || descriptor?.compute?.module?.label;
      return original.call(this, label ? { ...descriptor, label } : descriptor, ...rest);
    };
  }
}

const DIST = '/node_modules/onnxruntime-web/dist/';
// EP name on the command line -> [ORT build, executionProviders entry]. `webgpu` is what
// `import 'onnxruntime-web/webgpu'` gives (ORT's C++ WebGPU EP, the asyncify build);
// `webgpu-jsep` is the default bundle's older JavaScript WebGPU EP (JSEP).
const BUILDS = {
  webgpu: ['ort.webgpu.min.mjs', 'webgpu'],
  'webgpu-jsep': ['ort.min.mjs', 'webgpu'],
  wasm: ['ort.wasm.min.mjs', 'wasm'],
};

self.onmessage = async ({ data: job }) => {
  try {
    self.postMessage(await measure(job));
  } catch (e) {
    self.postMessage({ error: e?.stack ?? e?.message ?? String(e) });
  }
};

async function measure({ ep, model, width, height, mean, std, frames, warmup }) {
  const build = BUILDS[ep];
  if (!build) throw new Error(`unknown EP ${ep} (one of ${Object.keys(BUILDS).join(', ')})`);
  const ort = await import(DIST + build[0]);
  ort.env.wasm.wasmPaths = DIST;
  ort.env.wasm.numThreads = 1; // the demo's CPU backend is single-threaded
  ort.env.wasm.simd = true; // fixed-width SIMD, as the demo's wasm (+simd128)
  ort.env.logLevel = 'error';

  let start = performance.now();
  const session = await ort.InferenceSession.create(model, { executionProviders: [build[1]] });
  const createMs = performance.now() - start;
  const [inputName] = session.inputNames;
  const [outputName] = session.outputNames;
  takeGpuWork(); // the session's set-up (weights upload, ...) is not a frame's work

  // RGB / 255, minus mean, over std, in NCHW planes: x * scale[c] + offset[c].
  const scale = std.map((s) => 1 / (255 * s));
  const offset = mean.map((m, c) => -m / std[c]);
  const plane = width * height;
  const times = { total: [], input: [], run: [] };
  const work = [];
  let labels = null;
  for (let frame = 0; frame < warmup + frames; frame++) {
    const rgba = syntheticFrame(width, height, frame);
    takeGpuWork();
    start = performance.now();
    const data = new Float32Array(3 * plane);
    for (let i = 0; i < plane; i++) {
      data[i] = rgba[4 * i] * scale[0] + offset[0];
      data[plane + i] = rgba[4 * i + 1] * scale[1] + offset[1];
      data[2 * plane + i] = rgba[4 * i + 2] * scale[2] + offset[2];
    }
    const input = new ort.Tensor('float32', data, [1, 3, height, width]);
    const made = performance.now();
    const outputs = await session.run({ [inputName]: input });
    const result = await outputs[outputName].getData(); // on the CPU: read back from the GPU for webgpu
    const end = performance.now();
    const counted = takeGpuWork();
    if (frame >= warmup) {
      times.total.push(end - start);
      times.input.push(made - start);
      times.run.push(end - made);
      work.push(counted);
    }
    if (frame === warmup + frames - 1) labels = Array.from(result, Number);
    for (const value of Object.values(outputs)) value.dispose?.();
  }
  await session.release();

  const last = work.at(-1);
  const dispatches = work.map((w) => w.dispatches);
  const submits = work.map((w) => w.submits);
  return {
    ep,
    size: `${height}x${width}`,
    frames,
    crossOriginIsolated: self.crossOriginIsolated,
    createMs,
    totalMs: { median: median(times.total), min: Math.min(...times.total), max: Math.max(...times.total) },
    inputMs: median(times.input),
    runMs: median(times.run),
    // The steady-state frame: the last one (after warm-up), with the spread over measured frames.
    dispatches: { last: last.dispatches, min: Math.min(...dispatches), max: Math.max(...dispatches) },
    submits: { last: last.submits, min: Math.min(...submits), max: Math.max(...submits) },
    kernels: last.kernels,
    labels,
  };
}
