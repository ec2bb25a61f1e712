// Shared by the browser tests and tools/browser's measuring scripts: a static server for the
// repository, a headless Chromium with the flags that work on these machines, the native CLI's
// path, and a minimal PNG reader for 8-bit label maps.
import { createServer } from 'node:http';
import { createHash } from 'node:crypto';
import { readFile, mkdtemp } from 'node:fs/promises';
import { existsSync, rmSync } from 'node:fs';
import { extname, join, normalize, resolve } from 'node:path';
import { inflateSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { execFileSync } from 'node:child_process';
import { chromium } from 'playwright-core';

export const ROOT = resolve(import.meta.dirname, '../..');
export const SHARED = resolve(ROOT, '../shared/data');
export const hasShared = existsSync(SHARED);
/** The native CLI the page is compared with: `cargo build --release`'s, in `$CARGO_TARGET_DIR` if set. */
export const BINARY = join(resolve(process.env.CARGO_TARGET_DIR || join(ROOT, 'target')), 'release/bisenet');

const TYPES = {
  '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.css': 'text/css',
  '.wasm': 'application/wasm', '.png': 'image/png', '.json': 'application/json',
  '.safetensors': 'application/octet-stream', '.y4m': 'video/x-yuv4mpeg',
};

/**
 * Serves the repository root on 127.0.0.1 (a random port); `override(path)` may answer a path.
 * Every answer carries an ETag (a hash of the body) and a matching `If-None-Match` gets 304,
 * as a real static server does with its validators.
 */
export async function serve(override = () => null) {
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    let body = override(path);
    let type = 'application/octet-stream';
    if (!body) {
      const file = normalize(join(ROOT, path === '/' ? 'index.html' : path));
      if (!file.startsWith(ROOT)) { res.writeHead(403); return res.end(); }
      try {
        body = await readFile(file);
        type = TYPES[extname(file)] ?? type;
      } catch {
        res.writeHead(404);
        return res.end();
      }
    }
    const etag = `"${createHash('sha1').update(body).digest('hex')}"`;
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, { ETag: etag });
      return res.end();
    }
    res.writeHead(200, { 'Content-Type': type, 'Content-Length': body.length, ETag: etag });
    res.end(body);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${server.address().port}/` };
}

let scratchRoot = null;

/** A fresh temporary folder, under one per-process root that is removed when the process exits. */
export async function scratchDir(prefix) {
  if (!scratchRoot) {
    scratchRoot = mkdtemp(join(tmpdir(), 'bisenet-test-'));
    const root = await scratchRoot;
    process.on('exit', () => rmSync(root, { recursive: true, force: true }));
  }
  return mkdtemp(join(await scratchRoot, prefix));
}

/**
 * A fake webcam: `sample` (a file of ../shared/data/samples) as a y4m clip at `size` (WxH),
 * cut to `seconds`, or played `loops` extra times, for `--use-file-for-fake-video-capture`.
 */
export async function cameraClip(sample, size, { seconds = null, loops = 0 } = {}) {
  const clip = join(await scratchDir('clip-'), 'clip.y4m');
  const input = loops ? ['-stream_loop', String(loops)] : [];
  const length = seconds ? ['-t', String(seconds)] : [];
  execFileSync('ffmpeg', ['-loglevel', 'error', '-y', ...input, '-i', join(SHARED, 'samples', sample),
    ...length, '-vf', `scale=${size.replace('x', ':')}`, '-pix_fmt', 'yuv420p', clip]);
  return clip;
}

/**
 * Headless Chromium; `webgpu: false` leaves WebGPU off; `gpu: true` asks for a real GPU through
 * Vulkan (for machines that have one; without, WebGPU is SwiftShader). `canvas: true` lets
 * software WebGPU show on canvases: with its default compositing, headless Chromium fails to
 * configure a WebGPU canvas ("A valid external Instance reference no longer exists"); with
 * SwiftShader's Vulkan for the GPU process and ANGLE it composites WebGPU canvases like a real GPU.
 */
export async function launch({ webgpu = true, gpu = false, canvas = false, camera = null, denyCamera = false } = {}) {
  const args = [
    '--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync',
  ];
  if (webgpu) args.push('--enable-unsafe-webgpu');
  if (gpu) args.push('--enable-features=Vulkan', '--use-vulkan', '--use-angle=vulkan', '--ignore-gpu-blocklist');
  else if (canvas) args.push('--enable-features=Vulkan', '--use-vulkan=swiftshader', '--use-angle=swiftshader');
  if (camera) {
    args.push('--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
      `--use-file-for-fake-video-capture=${camera}`);
  }
  // A camera exists, but the permission prompt is answered "block".
  if (denyCamera) args.push('--use-fake-device-for-media-stream', '--deny-permission-prompts');
  const userDataDir = await scratchDir('chromium-');
  return chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', headless: true, args,
  });
}

/** Opens the page and waits until it is `ready` (or `error`); collects console errors. */
export async function open(context, url) {
  const page = await context.newPage();
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('console', (m) => { if (m.type() === 'error') console.error('[page]', m.text()); });
  await page.goto(url);
  await page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.state), null, { timeout: 300_000 });
  return { page, requests };
}

/** The class ids of the page's last result, as a Uint8Array (read back from the GPU path too). */
export async function pageLabels(page) {
  const base64 = await page.evaluate(async () => {
    const labels = await window.bisenet.readLabels();
    let s = '';
    for (let i = 0; i < labels.length; i += 0x8000) s += String.fromCharCode(...labels.subarray(i, i + 0x8000));
    return btoa(s);
  });
  return new Uint8Array(Buffer.from(base64, 'base64'));
}

/** Decodes a non-interlaced 8-bit grayscale PNG (what `bisenet segment --output labels` writes). */
export function readGrayPng(bytes) {
  const { width, height, channels, data } = readPng(bytes);
  if (channels !== 1) throw new Error('not a grayscale PNG');
  return { width, height, data };
}

/**
 * Decodes a non-interlaced 8-bit PNG, gray, RGB or RGBA (label maps, Playwright's screenshots):
 * `data` holds `channels` bytes per pixel, row by row.
 */
export function readPng(bytes) {
  const CHANNELS = { 0: 1, 2: 3, 6: 4 };
  let offset = 8;
  let width = 0, height = 0, channels = 0;
  const idat = [];
  while (offset < bytes.length) {
    const length = bytes.readUInt32BE(offset);
    const type = bytes.toString('ascii', offset + 4, offset + 8);
    const data = bytes.subarray(offset + 8, offset + 8 + length);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      channels = CHANNELS[data[9]];
      if (data[8] !== 8 || !channels || data[12] !== 0) throw new Error('not an 8-bit gray/RGB/RGBA non-interlaced PNG');
    } else if (type === 'IDAT') idat.push(data);
    offset += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const out = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const i = y * stride + x;
      const a = x >= channels ? out[i - channels] : 0;
      const b = y > 0 ? out[i - stride] : 0;
      const c = x >= channels && y > 0 ? out[i - stride - channels] : 0;
      let predictor = 0;
      if (filter === 1) predictor = a;
      else if (filter === 2) predictor = b;
      else if (filter === 3) predictor = (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        predictor = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      out[i] = (line[x] + predictor) & 0xff;
    }
  }
  return { width, height, channels, data: out };
}
