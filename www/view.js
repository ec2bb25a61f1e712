// What the page shows of a result: the frame with its colour mask (overlay, mask or side by
// side), the legend with class shares, and the class under the pointer. Drawing is canvas
// compositing of two ImageBitmaps; no pixel passes through JavaScript.

/**
 * Draws `result` (`{ frame, mask }`, two ImageBitmaps; the mask may be smaller: it is scaled to
 * the frame) on `canvas` in `view` ('overlay' | 'mask' | 'side'), the mask at opacity `alpha`.
 */
export function drawResult(canvas, result, view, alpha) {
  const { frame, mask } = result;
  const [width, height] = [frame.width, frame.height];
  const canvasWidth = view === 'side' ? width * 2 : width;
  if (canvas.width !== canvasWidth || canvas.height !== height) {
    canvas.width = canvasWidth;
    canvas.height = height;
  }
  const ctx = canvas.getContext('2d');
  ctx.globalAlpha = 1;
  if (view === 'side') {
    ctx.drawImage(frame, 0, 0);
    ctx.drawImage(mask, width, 0, width, height);
  } else if (view === 'mask') {
    ctx.drawImage(mask, 0, 0, width, height);
  } else {
    ctx.drawImage(frame, 0, 0);
    ctx.globalAlpha = alpha;
    ctx.drawImage(mask, 0, 0, width, height);
    ctx.globalAlpha = 1;
  }
}

/** Fills the legend from the model's classes; `shares` (one per class) adds percentages. */
export function renderLegend(list, classes, shares = null) {
  list.replaceChildren(...classes.names.map((name, i) => {
    const [r, g, b] = classes.palette[i];
    const li = document.createElement('li');
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.background = `rgb(${r},${g},${b})`;
    const label = document.createElement('span');
    label.textContent = name;
    li.append(swatch, label);
    if (shares) {
      const share = document.createElement('span');
      share.className = 'share';
      share.textContent = `${(shares[i] * 100).toFixed(1)} %`;
      li.append(share);
    }
    return li;
  }));
}

/**
 * The class name under the pointer of `event` on `canvas`, or null off the picture. `result`
 * holds the labels (`width x height`, which may be smaller than the frame drawn).
 */
export function classAt(event, canvas, result, names) {
  const rect = canvas.getBoundingClientRect();
  const frameWidth = result.frame.width;
  let x = ((event.clientX - rect.left) / rect.width) * canvas.width;
  const y = ((event.clientY - rect.top) / rect.height) * canvas.height;
  if (x >= frameWidth) x -= frameWidth; // right half of the side-by-side view
  const lx = Math.floor((x * result.width) / frameWidth);
  const ly = Math.floor((y * result.height) / result.frame.height);
  if (lx < 0 || ly < 0 || lx >= result.width || ly >= result.height) return null;
  const id = result.labels[ly * result.width + lx];
  return names[id] ?? `class ${id}`;
}
