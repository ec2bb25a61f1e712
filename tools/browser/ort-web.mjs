// The ONNX Runtime Web peer of tools/browser/bench.mjs: runs an exported BiSeNet ONNX graph with
// ORT-web in headless Chromium, in a module worker as the demo runs its model (www/worker.js), and
// prints per execution provider and input size the median ms per frame (input tensor made from
// RGBA + session.run + output read back on the CPU) and, on WebGPU, the compute dispatches and
// queue submits of a steady-state frame, counted by the demo's own www/gpu-counter.js. Not a
// test, and onnxruntime-web is not a dependency (CI would download it): install it by hand,
//   npm install --no-save onnxruntime-web@1.31.1
// (measured with 1.31.1; `npm ci` or a plain `npm install` later removes it again). Then
//   python tools/torch_reference/export_onnx.py models/bisenet-camvid.safetensors \
//       -o /tmp/bisenet-240x320.onnx --size 240x320 --argmax
//   node tools/browser/ort-web.mjs [--frames 10] [--warmup 2] [--eps webgpu,wasm] [--kernels [N]] \
//       [--size HxW] /tmp/bisenet-240x320.onnx [/tmp/bisenet-360x480.onnx ...]
// One graph per size (sizes are fixed at export); the size is read from the graph's input shape
// (`--size` only for a graph with free dimensions), the normalisation from its `mean`/`std`
// metadata. EPs: `webgpu` (`onnxruntime-web/webgpu`: ORT's C++ WebGPU EP), `webgpu-jsep` (the
// default bundle's JavaScript WebGPU EP), `wasm` (1 thread, fixed SIMD, as the demo's CPU
// backend; the page is not cross-origin isolated, so ORT could not use more anyway).
// `--kernels` adds the N (default 10) most dispatched kernels (pipeline labels) of a WebGPU frame.
// The last column compares each run's labels on its last frame with the first EP's at that size.
// WebGPU here is SwiftShader (seconds per frame at larger sizes); CHROMIUM_GPU=1 launches
// Chromium on a real GPU through Vulkan where there is one.
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { serve, launch, open, ROOT } from '../../tests/browser/helpers.mjs';

const VERSION = '1.31.1';
const ORT = join(ROOT, 'node_modules/onnxruntime-web');
if (!existsSync(join(ORT, 'dist/ort.webgpu.min.mjs'))) {
  console.error(`onnxruntime-web is not installed (it is not a dependency of package.json). Install it with\n` +
    `  npm install --no-save onnxruntime-web@${VERSION}\nin ${ROOT}, then run this again.`);
  process.exit(1);
}
const installed = JSON.parse(readFileSync(join(ORT, 'package.json'), 'utf8')).version;

const args = process.argv.slice(2);
const options = { frames: 10, warmup: 2, eps: 'webgpu,wasm', kernels: 0, size: null };
const paths = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--kernels') options.kernels = /^\d+$/.test(args[i + 1] ?? '') ? Number(args[++i]) : 10;
  else if (['--frames', '--warmup', '--eps', '--size'].includes(a)) options[a.slice(2)] = args[++i];
  else if (a.startsWith('--')) { console.error(`unknown option ${a} (see the header of ${import.meta.filename})`); process.exit(2); }
  else paths.push(a);
}
if (!paths.length) { console.error('usage: node tools/browser/ort-web.mjs [--frames N] [--warmup N] [--eps webgpu,wasm] [--kernels [N]] [--size HxW] graph.onnx ...'); process.exit(2); }
const frames = Math.max(1, Number(options.frames));
const warmup = Math.max(0, Number(options.warmup));
const eps = options.eps.split(',');

// --- A minimal protobuf reader: the graph's first input shape and the model's metadata. ---
function* fields(buf) {
  let i = 0;
  const varint = () => {
    let v = 0, mul = 1;
    for (;;) {
      const b = buf[i++];
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
    }
  };
  while (i < buf.length) {
    const key = varint();
    const field = Math.floor(key / 8), wire = key % 8;
    if (wire === 0) yield { field, value: varint() };
    else if (wire === 2) { const n = varint(); yield { field, bytes: buf.subarray(i, i + n) }; i += n; }
    else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else throw new Error(`unsupported protobuf wire type ${wire}`);
  }
}
const first = (buf, n) => { for (const f of fields(buf)) if (f.field === n) return f; return null; };
const all = (buf, n) => [...fields(buf)].filter((f) => f.field === n);
const text = (f) => (f ? Buffer.from(f.bytes).toString('utf8') : null);

/** ModelProto -> { input, dims (numbers, or names of free dimensions), metadata }. */
function describe(bytes) {
  const metadata = {};
  for (const entry of all(bytes, 14)) metadata[text(first(entry.bytes, 1))] = text(first(entry.bytes, 2));
  const graph = first(bytes, 7);
  // torch.onnx.export lists only the real inputs (initializers are not inputs since IR 4).
  const input = first(graph.bytes, 11);
  const tensor = first(first(input.bytes, 2).bytes, 1);
  const shape = first(tensor.bytes, 2);
  const dims = shape ? all(shape.bytes, 1).map((d) => first(d.bytes, 1)?.value ?? text(first(d.bytes, 2)) ?? '?') : [];
  return { input: text(first(input.bytes, 1)), dims, metadata };
}

const models = paths.map((path, index) => {
  const bytes = readFileSync(path);
  const { input, dims, metadata } = describe(bytes);
  let [height, width] = dims.slice(-2);
  if (!Number.isInteger(height) || !Number.isInteger(width)) {
    if (!options.size) { console.error(`${path}: input ${input} has free dimensions [${dims}]: give --size HxW`); process.exit(2); }
    [height, width] = options.size.split('x').map(Number);
  }
  const parse = (key, fallback) => (metadata[key] ? JSON.parse(metadata[key]) : fallback);
  return { path, url: `/ort-web-model/${index}.onnx`, bytes, width, height, mean: parse('mean', [0, 0, 0]), std: parse('std', [1, 1, 1]) };
});

const site = await serve((path) => models.find((m) => m.url === path)?.bytes ?? null);
const context = await launch({ webgpu: true, gpu: Boolean(process.env.CHROMIUM_GPU) });
try {
  const { page } = await open(context, `${site.url}tools/browser/ort-web/index.html`);
  page.on('console', (m) => { if (m.type() === 'warning') console.error('[page]', m.text()); });
  console.log(`onnxruntime-web ${installed}; WebGPU adapter: ${await page.evaluate(() => window.adapterInfo())}; ` +
    `${frames} frames after ${warmup} warm-up`);
  const results = [];
  for (const model of models) {
    let reference = null;
    for (const ep of eps) {
      process.stderr.write(`${ep} ${model.height}x${model.width} (${model.path}) ...\n`);
      let r;
      try {
        r = await page.evaluate((job) => window.measure(job), {
          ep, model: model.url, width: model.width, height: model.height, mean: model.mean, std: model.std, frames, warmup,
        });
      } catch (e) {
        console.error(`${ep} at ${model.height}x${model.width} failed: ${e.message}`);
        continue;
      }
      reference ??= r;
      const same = r.labels.reduce((n, v, i) => n + (v === reference.labels[i]), 0) / r.labels.length;
      results.push({ ...r, agreement: `${(100 * same).toFixed(3)} % (vs ${reference.ep})` });
    }
  }
  const spread = ({ last, min, max }) => (min === max ? String(last) : `${last} (${min}–${max})`);
  const gpu = (r) => r.ep.startsWith('webgpu');
  console.log('| EP | HxW | ms/frame (median) | min–max | input ms | run + read-back ms | dispatches/frame | submits/frame | session create ms | labels equal |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    console.log(`| ${r.ep}${r.ep === 'wasm' ? ' (1 thread)' : ''} | ${r.size} | ${r.totalMs.median.toFixed(1)} | ` +
      `${r.totalMs.min.toFixed(1)}–${r.totalMs.max.toFixed(1)} | ${r.inputMs.toFixed(1)} | ${r.runMs.toFixed(1)} | ` +
      `${gpu(r) ? spread(r.dispatches) : '–'} | ${gpu(r) ? spread(r.submits) : '–'} | ${r.createMs.toFixed(0)} | ${r.agreement} |`);
  }
  if (results.some((r) => r.crossOriginIsolated)) console.log('\nThe worker was cross-origin isolated: ORT could have used threads (numThreads is 1).');
  if (options.kernels) {
    for (const r of results.filter(gpu)) {
      console.log(`\n${r.ep} ${r.size}: the ${options.kernels} most dispatched kernels of a frame (of ${r.dispatches.last} dispatches, ${r.kernels.length} kernels)`);
      console.log('| kernel (pipeline label) | dispatches |');
      console.log('|---|---|');
      for (const [kernel, count] of r.kernels.slice(0, options.kernels)) console.log(`| ${kernel.replaceAll('|', '\\|')} | ${count} |`);
    }
  }
} finally {
  await context.close();
  site.server.close();
}
