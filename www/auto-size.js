// Auto resolution: the inference height that holds a target frame rate. It judges the median
// of a few frames at a time, steps down a size when they are too slow, and steps up only when
// the next size, whose cost grows with its pixel count, would still hold the target.

const HEIGHTS = [120, 180, 240, 360, 480, 720];
const FRAMES_PER_JUDGMENT = 5;
/** Judgments without a change after which the size counts as settled. */
const SETTLED_AFTER = 3;

export class AutoSize {
  /** @param {number} targetFps frames per second to hold (10 on the CPU, 30 on WebGPU) */
  constructor(targetFps, startHeight = 240) {
    this.target = targetFps;
    this.index = Math.max(0, HEIGHTS.indexOf(startHeight));
    this.frameMs = [];
    this.steady = 0;
    /** The frame rate of the last judgment (the median of its frames), null before the first. */
    this.judgedFps = null;
  }

  get height() { return HEIGHTS[this.index]; }

  /** Whether the last few judgments kept the size. */
  get settled() { return this.steady >= SETTLED_AFTER; }

  /** Records the time of one whole frame (capture to drawn) in ms. */
  record(ms) {
    this.frameMs.push(ms);
    if (this.frameMs.length < FRAMES_PER_JUDGMENT) return;
    const sorted = [...this.frameMs].sort((a, b) => a - b);
    this.frameMs = [];
    const fps = 1000 / sorted[sorted.length >> 1];
    this.judgedFps = fps;
    const next = HEIGHTS[this.index + 1];
    let step = 0;
    if (fps < this.target && this.index > 0) step = -1;
    else if (next && fps * (this.height / next) ** 2 >= this.target * 1.1) step = 1;
    this.index += step;
    this.steady = step === 0 ? this.steady + 1 : 0;
  }
}
