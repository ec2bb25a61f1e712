// Live camera against bench.html, same run: for each backend and inference size, the page's
// frame rate on the fake webcam (a 640x480 street clip), then bench.html's at the same size.
// Not a test: run it by hand,
//   node tools/browser/measure.mjs [frames] [backend:height,...]
// e.g. `node tools/browser/measure.mjs 10 cpu:240,cpu:360` (needs www/pkg, /usr/bin/chromium,
// ffmpeg and ../shared/data). Prints a Markdown table.
import { serve, launch, open, cameraClip } from '../../tests/browser/helpers.mjs';

const frames = Number(process.argv[2] ?? 10);
const runs = (process.argv[3] ?? 'cpu:240,cpu:360,cpu:720,webgpu:240').split(',').map((r) => r.split(':'));
const WARMUP = 3;
const clip = await cameraClip('street.mp4', '640x480', { loops: 3 });
const site = await serve();

/** The live loop's mean fps over `frames` frames after a warm-up, and its last frame's stages. */
async function live(backend, height) {
  const context = await launch({ webgpu: true, camera: clip });
  try {
    const { page } = await open(context, `${site.url}?backend=${backend}`);
    await page.selectOption('#size-select', height);
    await page.click('#camera-toggle');
    const wait = (n) => page.waitForFunction((k) => window.bisenet.state.frames >= k, n, { timeout: 0, polling: 20 });
    await wait(WARMUP);
    const start = await page.evaluate(() => [window.bisenet.state.frames, performance.now()]);
    await wait(WARMUP + frames);
    const end = await page.evaluate(() => [window.bisenet.state.frames, performance.now()]);
    const stages = await page.evaluate(() => Object.fromEntries(['capture', 'upload', 'network', 'draw', 'size']
      .map((k) => [k, document.getElementById(`stat-${k}`).textContent])));
    return { fps: ((end[0] - start[0]) * 1000) / (end[1] - start[1]), stages };
  } finally {
    await context.close();
  }
}

async function bench(backend, size) {
  const context = await launch({ webgpu: true });
  try {
    const page = await context.newPage();
    await page.goto(`${site.url}www/bench.html?frames=${frames}&warmup=${WARMUP}&sizes=${size}&backends=${backend}`);
    await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state), null, { timeout: 0 });
    const [result] = await page.evaluate(() => window.benchResults);
    if (!result) throw new Error(await page.textContent('#alert'));
    return result;
  } finally {
    await context.close();
  }
}

console.log('| backend | HxW | live fps | bench.html fps | live / bench | live capture, upload, network, draw (last frame) | bench upload, network, draw (median) |');
console.log('|---|---|---|---|---|---|---|');
for (const [backend, height] of runs) {
  const l = await live(backend, height);
  const [w, h] = l.stages.size.split(' ')[0].split('x');
  const b = await bench(backend, `${h}x${w}`);
  const ms = (x) => `${x.toFixed(1)} ms`;
  console.log(`| ${backend} | ${h}x${w} | ${l.fps.toFixed(1)} | ${b.fps.toFixed(1)} | ${(l.fps / b.fps).toFixed(2)} | ` +
    `${l.stages.capture}, ${l.stages.upload}, ${l.stages.network}, ${l.stages.draw} | ` +
    `${ms(b.stages_ms.upload)}, ${ms(b.stages_ms.network)}, ${ms(b.stages_ms.draw)} |`);
}
site.server.close();
