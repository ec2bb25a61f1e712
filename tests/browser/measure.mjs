// Prints the page's frame rate and per-stage times for each backend and inference size, on
// the fake webcam fed with the shared driving clip (640x480). Not a test: run it by hand,
//   node tests/browser/measure.mjs [frames]
// (needs www/pkg, /usr/bin/chromium, ffmpeg and ../shared/data).
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { SHARED, serve, launch, open, scratchDir } from './helpers.mjs';

const frames = Number(process.argv[2] ?? 10);
const clip = join(await scratchDir('clip-'), 'clip.y4m');
execFileSync('ffmpeg', ['-loglevel', 'error', '-y', '-i', join(SHARED, 'samples/driving.mp4'),
  '-t', '4', '-vf', 'scale=640:480', '-pix_fmt', 'yuv420p', clip]);
const site = await serve();
const runs = [['cpu', '240'], ['cpu', '360'], ['cpu', '720'], ['webgpu', '240'], ['webgpu', '360']];
console.log('backend | inference | fps | capture | upload | network+readback | draw (ms, last frame)');
for (const [backend, size] of runs) {
  const context = await launch({ webgpu: true, camera: clip });
  try {
    const { page } = await open(context, `${site.url}?backend=${backend}`);
    await page.selectOption('#size-select', size);
    await page.click('#camera-toggle');
    await page.waitForFunction((n) => window.bisenet.state.frames >= n, frames, { timeout: 600_000, polling: 100 });
    const row = await page.evaluate(() => ['fps', 'capture', 'upload', 'network', 'draw', 'size']
      .map((k) => document.getElementById(`stat-${k}`).textContent));
    console.log(`${backend} | ${row[5]} | ${row.slice(0, 5).join(' | ')}`);
  } finally {
    await context.close();
  }
}
site.server.close();
