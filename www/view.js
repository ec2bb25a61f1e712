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
 * The position `[x, y]` in a `width x height` label map under the pointer of `event` on
 * `canvas`, which shows the labelled frame in `view` (side by side: either half, the photo or
 * its mask), or null off the picture. The label map may be smaller than the frame drawn.
 */
export function labelPosition(event, canvas, width, height, view) {
  const rect = canvas.getBoundingClientRect();
  let x = (event.clientX - rect.left) / rect.width;
  const y = (event.clientY - rect.top) / rect.height;
  if (!(x >= 0 && x < 1 && y >= 0 && y < 1)) return null;
  if (view === 'side') x = x < 0.5 ? x * 2 : x * 2 - 1;
  return [Math.floor(x * width), Math.floor(y * height)];
}

/** The class name under the pointer on `canvas` showing `result` (its labels), or null. */
export function classAt(event, canvas, result, names, view) {
  const at = labelPosition(event, canvas, result.width, result.height, view);
  if (!at) return null;
  const id = result.labels[at[1] * result.width + at[0]];
  return names[id] ?? `class ${id}`;
}
