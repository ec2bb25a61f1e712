// The WebGPU path: labels and colours drawn on the GPU into the canvas, no read-back of the
// label map, and the read-back fallback where a canvas cannot show WebGPU output.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT, BINARY, hasShared, serve, launch, open, pageLabels, readGrayPng, readPng, scratchDir, cameraClip } from './helpers.mjs';
import { countMappedBuffers, agreement, PHOTO } from './compare.mjs';

// The GPU path's compute dispatches per live frame of the shipped model: 267 with burn's kernel
// fusion, 376 without (docs/web.md#gpu-work-per-frame).
const MAX_DISPATCHES_PER_FRAME = 280;

let site;
before(async () => { site = await serve(); });
after(() => site.server.close());

test('the GPU path: labels like the CLI, colours drawn on the GPU into the canvas, no read-back of the label map', { skip: !hasShared && 'no ../shared/data' }, async () => {
  const dir = await scratchDir('gpu-path-');
  const photo = join(dir, 'street.png');
  execFileSync('ffmpeg', ['-loglevel', 'error', '-y', '-i', PHOTO, '-vf', 'scale=480:240', photo]);
  const labelsDir = join(dir, 'labels');
  execFileSync(BINARY, ['segment', photo, '--output', 'labels', '-o', labelsDir, '--weights', join(ROOT, 'models/bisenet-camvid.safetensors')]);
  const native = readGrayPng(await readFile(join(labelsDir, 'street.png')));
  const context = await launch({ webgpu: true, canvas: true });
  try {
    const { page } = await open(context, `${site.url}?backend=webgpu`);
    assert.equal(await page.evaluate(() => document.body.dataset.backend), 'webgpu');
    assert.deepEqual(await page.evaluate(() => window.bisenet.state.gpuView), { active: true, reason: '' });
    const worker = await countMappedBuffers(page);
    await page.selectOption('#size-select', 'native');
    await page.selectOption('#stills-select', 'fast'); // one pass, all on the GPU
    await page.setInputFiles('#file-input', photo);
    await page.waitForFunction(() => window.bisenet.state.last?.name === 'street' && document.body.dataset.state === 'ready', null, { timeout: 600_000 });
    await page.selectOption('#view-select', 'mask'); // a redraw, from the labels kept on the GPU
    await page.waitForFunction(() => document.body.dataset.state === 'ready');
    const mapped = await worker.evaluate(() => self.mapped);
    console.log(`GPU path: buffers mapped while labelling, drawing, redrawing and sharing out the classes: ${JSON.stringify(mapped)} bytes`);
    // Nothing that could hold the label map (480x240, even at a byte per pixel) came back.
    assert.ok(mapped.every((bytes) => bytes < 480 * 240), `a read-back as large as the label map: ${mapped}`);
    const shares = await page.$$eval('#legend .share', (els) => els.map((e) => parseFloat(e.textContent)));
    assert.ok(Math.abs(shares.reduce((a, b) => a + b, 0) - 100) < 0.5, `shares from the GPU sum to ${shares}`);

    const labels = new Uint8Array(await page.evaluate(async () => [...await window.bisenet.readLabels()]));
    const match = agreement(labels, native.data);
    console.log(`GPU path vs native CLI at 480x240: ${(match * 100).toFixed(3)} % of pixels agree`);
    assert.ok(match >= 0.999, `only ${match} of pixels agree`);
    // The picture the GPU drew: in the mask view, each pixel is its label's palette colour.
    const { rgba, palette } = await page.evaluate(async () => ({
      rgba: [...await window.bisenet.state.worker.call('renderedPixels', { view: 'mask', alpha: 1 })],
      palette: window.bisenet.state.info.classes.palette,
    }));
    assert.equal(rgba.length, 480 * 240 * 4);
    let coloured = 0;
    for (let i = 0; i < labels.length; i++) {
      const [r, g, b] = palette[labels[i]];
      coloured += rgba[4 * i] === r && rgba[4 * i + 1] === g && rgba[4 * i + 2] === b;
    }
    assert.equal(coloured, labels.length, 'every pixel of the mask has its class colour');
    // And the canvas shows it: a screenshot of the canvas at one CSS pixel per canvas pixel.
    const pinned = await page.addStyleTag({ content: '#gpu-output { position: fixed; left: 0; top: 0; z-index: 9; width: 480px !important; height: 240px !important; border-radius: 0 !important; }' });
    const shown = readPng(await page.screenshot({ clip: { x: 0, y: 0, width: 480, height: 240 } }));
    await pinned.evaluate((style) => style.remove()); // the pinned canvas would cover the controls
    assert.deepEqual([shown.width, shown.height], [480, 240]);
    let onScreen = 0;
    for (let i = 0; i < labels.length; i++) {
      const [r, g, b] = palette[labels[i]];
      const p = shown.channels * i;
      onScreen += shown.data[p] === r && shown.data[p + 1] === g && shown.data[p + 2] === b;
    }
    console.log(`GPU path on the canvas: ${(onScreen / labels.length * 100).toFixed(3)} % of screen pixels are their label's colour`);
    assert.equal(onScreen, labels.length, 'the canvas shows every pixel in its class colour');
    // The class under the pointer (one value read back) and the downloads work on this path too.
    const box = await page.locator('#gpu-output').boundingBox();
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.5);
    await page.waitForSelector('#hover:not([hidden])');
    const names = await page.evaluate(() => window.bisenet.state.info.classes.names);
    const underPointer = labels[120 * 480 + 240];
    assert.equal(await page.textContent('#hover'), names[underPointer]);
    const [picture] = await Promise.all([page.waitForEvent('download'), page.click('#download-color')]);
    const png = await readFile(await picture.path());
    assert.equal(png.readUInt32BE(16), 480, 'the downloaded picture is the frame\'s width');
    assert.equal(png.readUInt32BE(20), 240);
    const [labelMap] = await Promise.all([page.waitForEvent('download'), page.click('#download-labels')]);
    assert.deepEqual(readGrayPng(await readFile(await labelMap.path())).data, labels);

    // The GPU's resize: a 960x480 frame at inference size 480x240 is an exact 2x2 average
    // (align_corners = false), which is what ffmpeg's area scaling gives the CLI to label.
    const big = join(dir, 'big.png');
    const halved = join(dir, 'halved.png');
    execFileSync('ffmpeg', ['-loglevel', 'error', '-y', '-i', PHOTO, '-vf', 'scale=960:480', big]);
    execFileSync('ffmpeg', ['-loglevel', 'error', '-y', '-i', big, '-vf', 'scale=480:240:flags=area', halved]);
    execFileSync(BINARY, ['segment', halved, '--output', 'labels', '-o', labelsDir, '--weights', join(ROOT, 'models/bisenet-camvid.safetensors')]);
    const nativeHalved = readGrayPng(await readFile(join(labelsDir, 'halved.png')));
    await page.selectOption('#size-select', '240');
    await page.setInputFiles('#file-input', big);
    await page.waitForFunction(() => window.bisenet.state.last?.name === 'big' && document.body.dataset.state === 'ready', null, { timeout: 600_000 });
    const resized = new Uint8Array(await page.evaluate(async () => [...await window.bisenet.readLabels()]));
    const resizedMatch = agreement(resized, nativeHalved.data);
    console.log(`GPU path resizing 960x480 to 480x240 vs the CLI on an area-halved copy: ${(resizedMatch * 100).toFixed(3)} % of pixels agree`);
    // The halved copy is rounded to bytes, and this model is that sensitive: rounding the same
    // averages down instead of to nearest moves 0.7 % of its labels (measured), while a resize
    // off by half a pixel moves 4.3 %. So 99 % tells a right resize from a wrong one.
    assert.ok(resizedMatch >= 0.99, `only ${resizedMatch} of pixels agree`);
  } finally {
    await context.close();
  }
});

test('live frames on the GPU path: one at a time, nothing as large as the label map read back', { skip: !hasShared && 'no ../shared/data' }, async () => {
  const clip = await cameraClip('street.mp4', '160x120', { seconds: 2 });
  const context = await launch({ webgpu: true, canvas: true, camera: clip });
  try {
    const { page } = await open(context, `${site.url}?backend=webgpu`);
    await page.selectOption('#size-select', 'native'); // 160x120: SwiftShader takes seconds a frame
    const worker = await countMappedBuffers(page);
    await page.click('#camera-toggle');
    await page.waitForFunction(() => window.bisenet.state.frames >= 3, null, { timeout: 300_000, polling: 200 });
    await page.click('#camera-toggle');
    const mapped = await worker.evaluate(() => self.mapped);
    const last = await page.evaluate(() => ({ gpu: window.bisenet.state.last.gpu, size: document.body.dataset.inferenceSize }));
    console.log(`GPU path, 3+ live frames at ${last.size}: buffers mapped ${JSON.stringify(mapped)} bytes`);
    assert.equal(last.gpu, true);
    assert.ok(mapped.every((bytes) => bytes < 160 * 120), `a read-back as large as the label map: ${mapped}`);
    // Kernel launches, not arithmetic, set a small network's GPU time at batch 1; burn's kernel
    // fusion merges them. The count of the last frame is guarded: more means fusion is off.
    const work = await page.evaluate(() => window.bisenet.state.last.gpuWork);
    const top = work.kernels.slice(0, 6).map(([kernel, n]) => `${n}x ${kernel}`).join(', ');
    console.log(`GPU path, a live frame: ${work.dispatches} compute dispatches, ${work.submits} queue submits (most launched: ${top})`);
    assert.equal(await page.textContent('#stat-gpu'), `${work.dispatches} dispatches, ${work.submits} submits`);
    assert.ok(work.dispatches <= MAX_DISPATCHES_PER_FRAME, `${work.dispatches} dispatches per frame (at most ${MAX_DISPATCHES_PER_FRAME})`);
  } finally {
    await context.close();
  }
});

test('WebGPU on a browser that cannot show it on a canvas reads results back and says why', async () => {
  const context = await launch({ webgpu: true });
  try {
    const { page } = await open(context, `${site.url}?backend=webgpu`);
    const gpuView = await page.evaluate(() => window.bisenet.state.gpuView);
    // On this machine's software WebGPU the canvas check fails; with a real GPU it passes.
    if (gpuView.active) return;
    assert.match(gpuView.reason, /cannot show WebGPU output on a canvas/);
    assert.match(await page.textContent('#notice'), /read back from the GPU/);
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'ready');
    // And the read-back path still labels an image.
    const image = join(await scratchDir('fallback-'), 'tiny.png');
    execFileSync('ffmpeg', ['-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=64x48', '-frames:v', '1', image]);
    await page.selectOption('#size-select', 'native');
    await page.setInputFiles('#file-input', image);
    await page.waitForFunction(() => window.bisenet.state.last?.name === 'tiny' && document.body.dataset.state === 'ready', null, { timeout: 300_000 });
    assert.equal((await pageLabels(page)).length, 64 * 48);
    assert.equal(await page.evaluate(() => window.bisenet.state.last.gpu), undefined);
  } finally {
    await context.close();
  }
});
