// What the browser tests compare: the native CLI's labels of the same inputs, and the page's.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT, SHARED, BINARY, serve, launch, open, pageLabels, readGrayPng, scratchDir } from './helpers.mjs';

export const PHOTO = join(SHARED, 'samples/cityscapes_example.png');

/** Labels written by the native CLI for the photo at `size` (WxH), or at its own size. */
export async function nativeLabels(size, extra = []) {
  const dir = await scratchDir('native-');
  const args = ['segment', PHOTO, '--output', 'labels', '-o', dir, '--weights', join(ROOT, 'models/bisenet-camvid.safetensors'), ...extra];
  if (size) args.push('--size', size);
  execFileSync(BINARY, args);
  return readGrayPng(await readFile(join(dir, 'cityscapes_example.png')));
}

/** The photo scaled to `width x height` as `NAME.png`, and the CLI's refined labels of it (six
 * scales, mirrored: the page's "refined"). */
export async function smallPhotoRefinedByCli(name, width, height) {
  const dir = await scratchDir(`${name}-refined-`);
  const photo = join(dir, `${name}.png`);
  execFileSync('ffmpeg', ['-loglevel', 'error', '-y', '-i', PHOTO, '-vf', `scale=${width}:${height}`, photo]);
  const labelsDir = join(dir, 'labels');
  execFileSync(BINARY, ['segment', photo, '--output', 'labels', '-o', labelsDir, '--flip', '--scales', '0.75,1.0,1.25,1.5,1.75,2.0',
    '--weights', join(ROOT, 'models/bisenet-camvid.safetensors')]);
  return { photo, native: readGrayPng(await readFile(join(labelsDir, `${name}.png`))) };
}

export async function segmentPhotoInPage(site, backend, sizeOption, query = '', stills = 'fast') {
  const context = await launch({ webgpu: true });
  try {
    const { page, requests } = await open(context, `${site.url}?backend=${backend}${query}`);
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'ready');
    assert.equal(await page.evaluate(() => document.body.dataset.backend), backend);
    await page.selectOption('#size-select', sizeOption);
    await page.selectOption('#stills-select', stills);
    await page.setInputFiles('#file-input', PHOTO);
    await page.waitForFunction(() => window.bisenet.state.last?.name === 'cityscapes_example'
      && document.body.dataset.state === 'ready', null, { timeout: 600_000 });
    const labels = await pageLabels(page);
    const shownSize = await page.textContent('#stat-size');
    const origin = new URL(site.url).origin;
    assert.deepEqual(requests.filter((u) => new URL(u).origin !== origin && !u.startsWith('blob:') && !u.startsWith('data:')), [],
      'the page must only request its own origin');
    return { labels, shownSize };
  } finally {
    await context.close();
  }
}

/** Makes the page's worker record the size of every buffer it maps from now on (`self.mapped`):
 * WebGPU's only way back to the CPU. Returns the worker. */
export async function countMappedBuffers(page) {
  const [worker] = page.workers();
  await worker.evaluate(() => {
    self.mapped = [];
    const map = GPUBuffer.prototype.mapAsync;
    GPUBuffer.prototype.mapAsync = function (...args) { self.mapped.push(this.size); return map.apply(this, args); };
  });
  return worker;
}

export function agreement(a, b) {
  assert.equal(a.length, b.length);
  let same = 0;
  for (let i = 0; i < a.length; i++) same += a[i] === b[i];
  return same / a.length;
}

/** Imports a fixture checkpoint with the CLI, serves it to the page with `?model=` and checks
 * the page's labels on `backend` against `bisenet segment`'s. */
export async function importedModelMatchesCli(checkpoint, backend = 'cpu') {
  const dir = await scratchDir('import-');
  const weights = join(dir, 'imported.safetensors');
  execFileSync(BINARY, ['import', join(ROOT, 'tests/fixtures/torch_reference', checkpoint),
    '--classes', 'camvid', '--mean', '0.3257,0.3690,0.3223', '--std', '0.2112,0.2148,0.2115', '-o', weights]);
  const image = join(dir, 'pattern.png');
  execFileSync('ffmpeg', ['-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=90x70', '-frames:v', '1', image]);
  const labelsDir = join(dir, 'labels');
  execFileSync(BINARY, ['segment', image, '--output', 'labels', '-o', labelsDir, '--weights', weights]);
  const native = readGrayPng(await readFile(join(labelsDir, 'pattern.png')));

  const bytes = await readFile(weights);
  const imported = await serve((path) => (path === '/models/imported.safetensors' ? bytes : null));
  const context = await launch({ webgpu: backend === 'webgpu' });
  try {
    const { page, requests } = await open(context, `${imported.url}?backend=${backend}&model=models/imported.safetensors`);
    assert.equal(await page.evaluate(() => document.body.dataset.backend), backend);
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'ready');
    assert.ok(requests.some((u) => u.endsWith('/models/imported.safetensors')));
    assert.ok(!requests.some((u) => u.endsWith('/models/bisenet-camvid.safetensors')));
    const about = await page.textContent('#model-about');
    assert.match(about, new RegExp(`imported from ${checkpoint.replace('.', '\\.')}`));
    assert.doesNotMatch(about, /CamVid/, 'nothing of the shipped model is said of another');
    await page.selectOption('#size-select', 'native');
    await page.selectOption('#stills-select', 'fast');
    await page.setInputFiles('#file-input', image);
    await page.waitForFunction(() => window.bisenet.state.last?.name === 'pattern'
      && document.body.dataset.state === 'ready');
    const labels = await pageLabels(page);
    const match = agreement(labels, native.data);
    console.log(`imported ${checkpoint} on ${backend}, page vs native CLI: ${(match * 100).toFixed(3)} % of pixels agree`);
    assert.ok(match >= 0.999, `only ${match} of pixels agree`);
  } finally {
    await context.close();
    imported.server.close();
  }
}
