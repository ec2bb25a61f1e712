// What the user takes away from a result: the picture and the label map as PNG downloads, and
// the class under the pointer. A result the GPU drew is read back from the worker on request.
import { state, ui } from './page.js';
import { classAt, labelPosition } from './view.js';

function download(blob, filename) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = filename;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

/** The last result's class ids (`width x height`): the GPU path reads them back on request. */
export async function readLabels() {
  const last = state.last;
  return last.gpu ? state.worker.call('drawnLabels') : last.labels;
}

export async function downloadPicture() {
  const { name, gpu } = state.last;
  const blob = gpu ? await state.worker.call('snapshot', { view: ui.viewSelect.value, alpha: Number(ui.alpha.value) })
    : await new Promise((resolve) => ui.output.toBlob(resolve, 'image/png'));
  download(blob, `${name}-segmented.png`);
}

export async function downloadLabels() {
  const { width, height, name } = state.last;
  const png = await state.worker.labelsPng(await readLabels(), width, height);
  download(new Blob([png], { type: 'image/png' }), `${name}-labels.png`);
}

// The GPU path asks the worker for the one label under the pointer, one question at a time.
let hoverBusy = false;
/** The class name under the pointer, null off the picture, undefined while a question is out. */
async function gpuClassAt(event) {
  const last = state.last;
  const at = labelPosition(event, ui.gpuOutput, last.width, last.height, ui.viewSelect.value);
  if (!at) return null;
  const [lx, ly] = at;
  if (hoverBusy) return undefined;
  hoverBusy = true;
  try {
    const id = await state.worker.call('drawnLabelAt', { x: lx, y: ly });
    return state.info.classes.names[id] ?? `class ${id}`;
  } finally {
    hoverBusy = false;
  }
}

/** Shows the class under the pointer beside it. */
export async function showHover(event) {
  if (!state.last || !state.info) return;
  const canvas = state.last.gpu ? ui.gpuOutput : ui.output;
  const name = state.last.gpu ? await gpuClassAt(event).catch(() => null)
    : classAt(event, ui.output, state.last, state.info.classes.names, ui.viewSelect.value);
  if (name === undefined) return;
  if (!name) { ui.hover.hidden = true; return; }
  const rect = canvas.getBoundingClientRect();
  ui.hover.textContent = name;
  ui.hover.style.left = `${event.clientX - rect.left + 12}px`;
  ui.hover.style.top = `${event.clientY - rect.top + 12}px`;
  ui.hover.hidden = false;
}
