// What each control of the page does: the camera, files (opened, dropped or pasted), the
// backend, resolution, stills, view and opacity menus, the downloads and the pointer.
import { state, ui, setState, showError, clearError, errorText } from './page.js';
import { startCamera, startVideo, stopLoop } from './live.js';
import { segmentImageFile } from './stills.js';
import { downloadPicture, downloadLabels, showHover } from './downloads.js';
import { drawResult } from './view.js';

/** Labels an image file, or plays a video file and labels its frames. */
async function openFile(file) {
  clearError();
  if (!state.info) return showError('The model is not loaded yet.');
  if (file.type.startsWith('video/')) {
    if (state.video) URL.revokeObjectURL(state.video.url);
    state.video = { url: URL.createObjectURL(file), name: file.name };
    return startVideo(state.video);
  }
  await segmentImageFile(file);
}

/** Connects the controls; `switchBackend(name)` starts another backend in the worker. */
export function wireControls({ switchBackend }) {
  const reportErrors = (promise) => promise.catch((e) => showError(errorText(e)));
  ui.cameraToggle.addEventListener('click', () => (state.looping ? stopLoop() : reportErrors(startCamera())));
  ui.cameraSelect.addEventListener('change', () => reportErrors(startCamera(ui.cameraSelect.value)));
  ui.fileInput.addEventListener('change', () => {
    const file = ui.fileInput.files[0];
    if (file) reportErrors(openFile(file));
    ui.fileInput.value = '';
  });
  document.addEventListener('dragover', (e) => { e.preventDefault(); document.body.classList.add('dragging'); });
  document.addEventListener('dragleave', () => document.body.classList.remove('dragging'));
  document.addEventListener('drop', (e) => {
    e.preventDefault();
    document.body.classList.remove('dragging');
    const file = e.dataTransfer?.files[0];
    if (file) reportErrors(openFile(file));
  });
  document.addEventListener('paste', (e) => {
    const file = [...(e.clipboardData?.files ?? [])][0];
    if (file) reportErrors(openFile(file));
  });
  ui.backendSelect.addEventListener('change', async () => {
    const running = state.looping;
    stopLoop();
    clearError();
    // A result the GPU drew lives in the worker, which forgets it with the backend.
    if (state.last?.gpu) {
      state.last = null;
      ui.downloadColor.disabled = true;
      ui.downloadLabels.disabled = true;
    }
    try {
      await switchBackend(ui.backendSelect.value);
    } catch (e) {
      showError(`The ${ui.backendSelect.value} backend could not start: ${errorText(e)}`);
      setState(state.info ? 'ready' : 'error');
      return;
    }
    // What was on screen comes back on the new backend.
    if (state.source === 'image' && state.imageFile) reportErrors(segmentImageFile(state.imageFile));
    else if (running && state.source === 'camera') reportErrors(startCamera());
    else if (running && state.source === 'video') reportErrors(startVideo(state.video));
  });
  ui.stillsSelect.addEventListener('change', () => {
    const idle = document.body.dataset.state === 'ready';
    if (state.source === 'image' && state.imageFile && idle) reportErrors(segmentImageFile(state.imageFile));
  });
  const redraw = () => {
    if (!state.last) return;
    const [view, alpha] = [ui.viewSelect.value, Number(ui.alpha.value)];
    if (state.last.gpu) reportErrors(state.worker.call('redraw', { view, alpha }));
    else drawResult(ui.output, state.last, view, alpha);
  };
  for (const control of [ui.viewSelect, ui.alpha]) control.addEventListener('input', redraw);
  ui.downloadColor.addEventListener('click', () => reportErrors(downloadPicture()));
  ui.downloadLabels.addEventListener('click', () => reportErrors(downloadLabels()));
  for (const canvas of [ui.output, ui.gpuOutput]) {
    canvas.addEventListener('mousemove', showHover);
    canvas.addEventListener('mouseleave', () => { ui.hover.hidden = true; });
  }
}
