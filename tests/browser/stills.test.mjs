// Still images in the page against `bisenet segment`: one pass on the CPU and on WebGPU, refined
// (six scales, mirrored) and the auto choice.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { hasShared, serve, launch, open, pageLabels } from './helpers.mjs';
import { nativeLabels, smallPhotoRefinedByCli, segmentPhotoInPage, agreement, PHOTO } from './compare.mjs';

let site;
before(async () => { site = await serve(); });
after(() => site.server.close());

test('a dropped photo on the CPU backend matches `bisenet segment` at native size', { skip: !hasShared && 'no ../shared/data' }, async () => {
  const { labels, shownSize } = await segmentPhotoInPage(site, 'cpu', 'native');
  assert.equal(shownSize, '2048x1024');
  const native = await nativeLabels(null);
  assert.equal(native.width * native.height, labels.length);
  const match = agreement(labels, native.data);
  console.log(`CPU backend vs native CLI: ${(match * 100).toFixed(3)} % of pixels agree`);
  assert.ok(match >= 0.995, `only ${match} of pixels agree`);
});

test('the photo on WebGPU, read back (small inference size), matches `bisenet segment --size`', { skip: !hasShared && 'no ../shared/data' }, async () => {
  const { labels, shownSize } = await segmentPhotoInPage(site, 'webgpu', '240', '&gpuview=0');
  assert.equal(shownSize, '480x240');
  const native = await nativeLabels('480x240');
  const match = agreement(labels, native.data);
  console.log(`WebGPU backend vs native CLI: ${(match * 100).toFixed(3)} % of pixels agree`);
  assert.ok(match >= 0.995, `only ${match} of pixels agree`);
});

test('refined stills (6 scales, mirrored) match `bisenet segment --flip --scales` and change the labels', { skip: !hasShared && 'no ../shared/data' }, async () => {
  const { labels, shownSize } = await segmentPhotoInPage(site, 'cpu', '240', '', 'refined');
  assert.equal(shownSize, '480x240, 12 passes');
  const refined = await nativeLabels('480x240', ['--flip', '--scales', '0.75,1.0,1.25,1.5,1.75,2.0']);
  const match = agreement(labels, refined.data);
  console.log(`refined stills, CPU backend vs native CLI: ${(match * 100).toFixed(3)} % of pixels agree`);
  assert.ok(match >= 0.995, `only ${match} of pixels agree`);
  const onePass = agreement(refined.data, (await nativeLabels('480x240')).data);
  console.log(`refined vs one pass (CLI): ${(onePass * 100).toFixed(3)} % of pixels agree`);
  assert.ok(onePass < 0.99, `refining changed only ${((1 - onePass) * 100).toFixed(2)} % of the labels`);
});

test('auto stills: a quick image is refined after its first labels, a slow one is not, each as its one pass predicts', { skip: !hasShared && 'no ../shared/data' }, async () => {
  const { photo: tiny, native: refinedNative } = await smallPhotoRefinedByCli('tiny', 64, 32);
  const context = await launch({ webgpu: false });
  try {
    const { page } = await open(context, site.url);
    assert.equal(await page.inputValue('#stills-select'), 'auto', 'auto is the default');
    // The page takes the refined passes from the model (src/tta.rs), not from a copy of its own.
    assert.equal(await page.textContent('#stills-refined'), 'refined: 6 scales + mirrored (12 passes)');
    assert.equal(await page.textContent('#stills-auto'), 'auto: refined when it takes under 1.5 s');
    await page.selectOption('#size-select', 'native');
    /** Runs `action`, which labels a still in auto mode, and returns the page's choice. */
    const decided = async (action, name) => {
      await page.evaluate(() => { window.bisenet.state.stillsAuto = null; });
      await action();
      await page.waitForFunction(() => window.bisenet.state.stillsAuto && document.body.dataset.state === 'ready', null, { timeout: 600_000 });
      const auto = await page.evaluate(() => window.bisenet.state.stillsAuto);
      console.log(`auto stills, ${name}: one pass ${auto.onePassMs.toFixed(0)} ms, refined estimated at ${auto.estimate.toFixed(0)} ms: ${auto.refined ? 'refined' : 'one pass'}`);
      assert.equal(auto.refined, auto.estimate <= auto.budget);
      assert.ok(Math.abs(auto.estimate - auto.onePassMs * 24.875) < 1e-6, 'the estimate weighs one pass by the pixels of 12');
      assert.equal(await page.evaluate(() => window.bisenet.state.last.refined ?? false), auto.refined);
      return auto;
    };
    // 64x32: a pass of about 20 ms once warm (the first pass at a size also sets things up), so
    // the refined work fits in the budget. Choosing auto labels the image on screen again.
    await page.selectOption('#stills-select', 'fast');
    await page.setInputFiles('#file-input', tiny);
    await page.waitForFunction(() => window.bisenet.state.last?.name === 'tiny' && document.body.dataset.state === 'ready');
    assert.equal((await decided(() => page.selectOption('#stills-select', 'auto'), '64x32')).refined, true);
    assert.equal(await page.textContent('#stat-size'), '64x32, 12 passes');
    const match = agreement(await pageLabels(page), refinedNative.data);
    console.log(`auto-refined tiny still vs \`bisenet segment --flip --scales\`: ${(match * 100).toFixed(3)} % of pixels agree`);
    assert.ok(match >= 0.99, `only ${match} of pixels agree`);
    // 2048x1024 at its own size: a one pass of seconds on the CPU backend.
    assert.equal((await decided(() => page.setInputFiles('#file-input', PHOTO), '2048x1024')).refined, false);
    assert.equal(await page.textContent('#stat-size'), '2048x1024');
  } finally {
    await context.close();
  }
});

test('refined stills on WebGPU come back, match the CLI, and the stills choice labels the image again', { skip: !hasShared && 'no ../shared/data' }, async () => {
  const { photo, native } = await smallPhotoRefinedByCli('small', 160, 80);
  const context = await launch({ webgpu: true, canvas: true });
  try {
    const { page } = await open(context, `${site.url}?backend=webgpu`);
    assert.deepEqual(await page.evaluate(() => window.bisenet.state.gpuView), { active: true, reason: '' });
    await page.selectOption('#size-select', 'native');
    await page.selectOption('#stills-select', 'refined');
    await page.setInputFiles('#file-input', photo);
    await page.waitForFunction(() => window.bisenet.state.last?.name === 'small' && document.body.dataset.state === 'ready', null, { timeout: 600_000 });
    assert.equal(await page.textContent('#stat-size'), '160x80, 12 passes');
    assert.equal(await page.evaluate(() => window.bisenet.state.last.gpu ?? false), false, 'refined labels are read back');
    assert.equal(await page.isVisible('#output'), true);
    const match = agreement(await pageLabels(page), native.data);
    console.log(`refined stills, WebGPU vs native CLI at 160x80: ${(match * 100).toFixed(3)} % of pixels agree`);
    assert.ok(match >= 0.99, `only ${match} of pixels agree`);
    // Back to one pass: the image on screen is labelled again, on the GPU path.
    await page.selectOption('#stills-select', 'fast');
    await page.waitForFunction(() => window.bisenet.state.last?.gpu === true && document.body.dataset.state === 'ready', null, { timeout: 600_000 });
    assert.equal(await page.textContent('#stat-size'), '160x80');
    // Another backend forgets what the GPU drew; the image on screen is labelled again there.
    await page.selectOption('#backend-select', 'cpu');
    await page.waitForFunction(() => document.body.dataset.backend === 'cpu' && window.bisenet.state.last?.name === 'small'
      && !window.bisenet.state.last.gpu && document.body.dataset.state === 'ready', null, { timeout: 600_000 });
    assert.equal(await page.isVisible('#output'), true);
    assert.equal(await page.isEnabled('#download-labels'), true);
    assert.equal((await pageLabels(page)).length, 160 * 80);
  } finally {
    await context.close();
  }
});
