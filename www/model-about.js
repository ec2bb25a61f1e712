// What the loaded model knows, said from its weights file alone: the architecture, what it was
// trained on (the `dataset` the trainer recorded) or where it was imported from, and its classes.
// Nothing here names a dataset the file does not.

const DATASETS = {
  camvid: {
    name: 'CamVid',
    scenes: 'street scenes filmed from a driving car',
    hint: 'It labels street scenes only: point the camera at a street, or open a dashcam video.',
  },
  cityscapes: {
    name: 'Cityscapes',
    scenes: 'street scenes filmed from a driving car in European cities',
    hint: 'It labels street scenes only: point the camera at a street, or open a dashcam video.',
  },
};

/** One or two sentences about the model a weights file describes (its `ModelInfo` JSON). */
export function describeModel(info) {
  const network = info.architecture === 'bisenet-v2' ? 'BiSeNet V2' : `BiSeNet V1 (${info.backbone})`;
  const names = info.classes.names;
  const classes = `${names.length} classes: ${names.join(', ')}`;
  const notes = info.notes ?? {};
  const dataset = DATASETS[notes.dataset];
  if (dataset) {
    return `${network}, trained on ${dataset.name} (${dataset.scenes}); ${classes}. ${dataset.hint}`;
  }
  if (notes.imported_from) return `${network}, imported from ${notes.imported_from}; ${classes}.`;
  if (notes.dataset) return `${network}, trained on a ${notes.dataset} dataset; ${classes}.`;
  return `${network}; ${classes}. The weights file does not say what it was trained on.`;
}
