// Runs www/bench.html in headless Chromium and prints its table. Not a test: run it by hand,
//   node tools/browser/bench.mjs [frames] [sizes HxW,...] [backends] [weights path from the repo root]
// e.g. `node tools/browser/bench.mjs 30 240x320,360x640 webgpu,cpu` (the shipped model), or with
// `target/v2.safetensors` made by `bisenet init --arch v2 -o target/v2.safetensors`. The GPU path
// (webgpu-gpu) draws on a canvas. On a machine with a GPU, CHROMIUM_GPU=1 launches Chromium with
// its Vulkan WebGPU backend instead of SwiftShader.
import { serve, launch } from '../../tests/browser/helpers.mjs';

const [frames = '10', sizes = '240x320,360x640', backends = 'webgpu,webgpu-gpu,cpu', model] = process.argv.slice(2);
const site = await serve();
const context = await launch({ webgpu: true, gpu: Boolean(process.env.CHROMIUM_GPU), canvas: true });
try {
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') console.error('[page]', m.text()); });
  const weights = model ? `&model=${encodeURIComponent(model)}` : '';
  await page.goto(`${site.url}www/bench.html?frames=${frames}&sizes=${sizes}&backends=${backends}${weights}&gpucanvas=1`);
  await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state), null, { timeout: 0 });
  const adapter = await page.evaluate(async () => {
    const a = 'gpu' in navigator ? await navigator.gpu.requestAdapter() : null;
    return a ? `${a.info?.vendor ?? '?'} ${a.info?.architecture ?? ''} ${a.info?.description ?? ''}`.trim() : 'none';
  });
  console.log(`WebGPU adapter: ${adapter}`);
  console.log('| backend | HxW | fps | total ms | upload ms | network + read-back ms | draw ms |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of await page.evaluate(() => window.benchResults)) {
    console.log(`| ${r.backend} | ${r.size} | ${r.fps.toFixed(1)} | ${r.total_ms.median.toFixed(1)} | ` +
      `${r.stages_ms.upload.toFixed(1)} | ${r.stages_ms.network.toFixed(1)} | ${r.stages_ms.draw.toFixed(1)} |`);
  }
  const error = await page.textContent('#alert');
  if (error) console.error(error);
} finally {
  await context.close();
  site.server.close();
}
