// The page itself: backends, bad inputs (not an image, a denied camera, truncated weights), the
// model cache, pasting, offline use and the bench page.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT, BINARY, serve, launch, open, scratchDir } from './helpers.mjs';

let site;
before(async () => { site = await serve(); });
after(() => site.server.close());

test('without WebGPU the CPU backend runs and says so', async () => {
  const context = await launch({ webgpu: false });
  try {
    const { page } = await open(context, site.url);
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'ready');
    assert.equal(await page.evaluate(() => document.body.dataset.backend), 'cpu');
    const notice = await page.textContent('#notice');
    assert.match(notice, /CPU/);
    assert.equal(await page.isVisible('#notice'), true);
    // What the shipped model knows comes from its weights file.
    const about = await page.textContent('#model-about');
    assert.match(about, /trained on CamVid/);
    assert.match(about, /street scenes only/);
  } finally {
    await context.close();
  }
});

test('a file that is not an image is reported and the page stays usable', async () => {
  const context = await launch({ webgpu: false });
  try {
    const { page } = await open(context, site.url);
    await page.setInputFiles('#file-input', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('hello') });
    await page.waitForSelector('#alert:not([hidden])');
    assert.match(await page.textContent('#alert'), /notes\.txt.*not an image/);
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'ready');
  } finally {
    await context.close();
  }
});

test('a denied camera is reported', async () => {
  const context = await launch({ webgpu: false, denyCamera: true });
  try {
    const { page } = await open(context, site.url);
    await page.click('#camera-toggle');
    await page.waitForSelector('#alert:not([hidden])');
    assert.match(await page.textContent('#alert'), /[Cc]amera permission was denied/);
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'ready');
  } finally {
    await context.close();
  }
});

test('a truncated weights file is an error message, not a hang', async () => {
  const weights = await readFile(join(ROOT, 'models/bisenet-camvid.safetensors'));
  const broken = await serve((path) => (path === '/models/bisenet-camvid.safetensors' ? weights.subarray(0, weights.length >> 1) : null));
  const context = await launch({ webgpu: false });
  try {
    const { page } = await open(context, broken.url);
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'error');
    assert.match(await page.textContent('#alert'), /truncated/);
    // Without a model, the camera button says so instead of starting a camera it cannot label.
    await page.click('#camera-toggle');
    await page.waitForFunction(() => /not loaded yet/.test(document.getElementById('alert').textContent));
    assert.equal(await page.textContent('#camera-toggle'), 'Start camera');
  } finally {
    await context.close();
    broken.server.close();
  }
});

test('a cached model is revalidated: kept while unchanged, replaced when the server has a new one', async () => {
  const newer = join(await scratchDir('update-'), 'newer.safetensors');
  execFileSync(BINARY, ['init', '--backbone', 'xception39', '--classes', 'camvid', '-o', newer]);
  let model = await readFile(join(ROOT, 'models/bisenet-camvid.safetensors'));
  const site2 = await serve((path) => (path === '/models/bisenet-camvid.safetensors' ? model : null));
  const context = await launch({ webgpu: false });
  const visit = async () => {
    const { page, requests } = await open(context, `${site2.url}?backend=cpu`);
    try {
      assert.equal(await page.evaluate(() => document.body.dataset.state), 'ready');
      return {
        weights: await page.evaluate(() => document.body.dataset.weights),
        info: await page.evaluate(() => JSON.stringify(window.bisenet.state.info)),
        asked: requests.some((u) => u.endsWith('/models/bisenet-camvid.safetensors')),
      };
    } finally {
      await page.close();
    }
  };
  try {
    const first = await visit();
    assert.equal(first.weights, 'network');
    const unchanged = await visit();
    assert.ok(unchanged.asked, 'the cached copy must be revalidated with the server');
    assert.equal(unchanged.weights, 'cache');
    assert.equal(unchanged.info, first.info);
    model = await readFile(newer);
    const updated = await visit();
    assert.equal(updated.weights, 'network');
    assert.notEqual(updated.info, first.info, 'the new model must replace the cached one');
    const again = await visit();
    assert.equal(again.weights, 'cache');
    assert.equal(again.info, updated.info);
  } finally {
    await context.close();
    site2.server.close();
  }
});

test('a pasted image is segmented, with class shares in the legend', async () => {
  const context = await launch({ webgpu: false });
  try {
    const { page } = await open(context, site.url);
    await page.evaluate(async () => {
      const canvas = new OffscreenCanvas(64, 48);
      const ctx = canvas.getContext('2d');
      ctx.fillStyle = '#808080';
      ctx.fillRect(0, 0, 64, 24);
      ctx.fillStyle = '#804080';
      ctx.fillRect(0, 24, 64, 24);
      const blob = await canvas.convertToBlob({ type: 'image/png' });
      const data = new DataTransfer();
      data.items.add(new File([blob], 'pasted.png', { type: 'image/png' }));
      document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data }));
    });
    await page.waitForFunction(() => window.bisenet.state.last?.name === 'pasted' && document.body.dataset.state === 'ready');
    const shares = await page.$$eval('#legend .share', (els) => els.map((e) => parseFloat(e.textContent)));
    assert.equal(shares.length, 11);
    assert.ok(Math.abs(shares.reduce((a, b) => a + b, 0) - 100) < 0.5, `shares sum to ${shares}`);
    assert.equal(await page.isDisabled('#download-labels'), false);
  } finally {
    await context.close();
  }
});

test('a second visit works offline from the Cache API', async () => {
  const context = await launch({ webgpu: false });
  try {
    const first = await open(context, site.url);
    assert.equal(await first.page.evaluate(() => document.body.dataset.weights), 'network');
    // The model can no longer be downloaded: the page must use its cached, verified copy.
    await context.route('**/models/**', (route) => route.abort());
    const { page } = await open(context, site.url);
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'ready');
    assert.equal(await page.evaluate(() => document.body.dataset.weights), 'cache');
  } finally {
    await context.close();
  }
});

test('the bench page times every stage per backend and size', async () => {
  const context = await launch({ webgpu: false });
  try {
    const page = await context.newPage();
    await page.goto(`${site.url}www/bench.html?frames=2&warmup=1&sizes=48x64,60x80&backends=webgpu,cpu`);
    await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state), null, { timeout: 300_000 });
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'done', await page.textContent('#alert'));
    const results = await page.evaluate(() => window.benchResults);
    // No WebGPU in this browser: the webgpu runs are skipped, the CPU ones measured.
    assert.deepEqual(results.map((r) => `${r.backend} ${r.size}`), ['cpu 48x64', 'cpu 60x80']);
    for (const r of results) {
      assert.ok(r.total_ms.min > 0 && r.total_ms.min <= r.total_ms.median && r.total_ms.median <= r.total_ms.max);
      const stages = r.stages_ms.upload + r.stages_ms.network + r.stages_ms.draw;
      assert.ok(stages <= r.total_ms.max * 1.01 + 0.5, `stages ${stages} vs total ${r.total_ms.max}`);
      assert.ok(Math.abs(r.fps - 1000 / r.total_ms.median) < 1e-9);
    }
    assert.equal(await page.locator('#results tbody tr').count(), 2);
  } finally {
    await context.close();
  }
});
