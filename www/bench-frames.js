// What the page's bench (bench.js) and the ONNX Runtime Web peer (tools/browser/ort-web/) time
// their frames with, so that both see the same frames and report the same statistic.

/** An RGBA frame that changes with `seed`: no frame repeats the last one's work on a GPU. */
export function syntheticFrame(width, height, seed) {
  const rgba = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      rgba[i] = (x * 3 + seed * 17) & 255;
      rgba[i + 1] = (y * 5 + seed * 29) & 255;
      rgba[i + 2] = ((x ^ y) + seed * 7) & 255;
      rgba[i + 3] = 255;
    }
  }
  return rgba;
}

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
