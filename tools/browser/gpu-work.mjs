// GPU work per live frame of the page on WebGPU: compute dispatches and queue submits, counted
// in the worker (www/gpu-counter.js), and the kernels launched most. Not a test: run it by hand,
//   node tools/browser/gpu-work.mjs [frames] [sizes WxH] [paths]
// e.g. `node tools/browser/gpu-work.mjs 3 160x120,320x240 gpu,readback`: the fake webcam plays
// the street clip at each size, labelled at that size; `gpu` draws on the canvas (the GPU path),
// `readback` reads labels back. Needs www/pkg, /usr/bin/chromium, ffmpeg and ../shared/data.
// Frames on software WebGPU take seconds; the counts do not depend on the GPU's speed.
import { serve, launch, open, cameraClip, hasShared, SHARED } from '../../tests/browser/helpers.mjs';

if (!hasShared) {
  console.error(`gpu-work.mjs needs the street clip of ${SHARED}/samples (the fake webcam)`);
  process.exit(1);
}

const frames = Number(process.argv[2] ?? 3);
const sizes = (process.argv[3] ?? '160x120').split(',');
const paths = (process.argv[4] ?? 'gpu,readback').split(',');
const WARMUP = 2; // the first frames compile pipelines and, with autotune, try kernels
const site = await serve();

/** The GPU work of `frames` live frames after the warm-up, one entry a frame. */
async function measure(path, size) {
  const clip = await cameraClip('street.mp4', size, { seconds: 10 });
  const context = await launch({ webgpu: true, canvas: path === 'gpu', camera: clip });
  try {
    const { page } = await open(context, `${site.url}?backend=webgpu`);
    const gpuView = await page.evaluate(() => window.bisenet.state.gpuView.active);
    if (gpuView !== (path === 'gpu')) throw new Error(`the GPU path is ${gpuView ? 'on' : 'off'} for ${path}`);
    await page.selectOption('#size-select', 'native');
    await page.evaluate(() => { window.gpuWork = []; });
    await page.click('#camera-toggle');
    const work = [];
    for (let frame = 1; frame <= WARMUP + frames; frame++) {
      await page.waitForFunction((k) => window.bisenet.state.frames >= k, frame, { timeout: 0, polling: 50 });
      const { gpuWork, size } = await page.evaluate(() => ({
        gpuWork: window.bisenet.state.last.gpuWork, size: document.body.dataset.inferenceSize,
      }));
      if (frame > WARMUP) work.push({ ...gpuWork, size });
    }
    await page.click('#camera-toggle');
    return work;
  } finally {
    await context.close();
  }
}

console.log('| path | inference size | dispatches per frame | submits per frame |');
console.log('|---|---|---|---|');
const kernels = [];
for (const path of paths) {
  for (const size of sizes) {
    const work = await measure(path, size);
    const list = (key) => work.map((w) => w[key]).join(', ');
    console.log(`| ${path} | ${work[0].size} | ${list('dispatches')} | ${list('submits')} |`);
    kernels.push(`${path} ${work[0].size}: ${work.at(-1).kernels.slice(0, 10).map(([k, n]) => `${n}x ${k}`).join(', ')}`);
  }
}
console.log(`\nmost launched (last frame):\n${kernels.join('\n')}`);
site.server.close();
