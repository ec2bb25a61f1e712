use burn::prelude::*;

use super::ConfusionMatrix;
use crate::data::{DataError, Dataset, LabelPolicy, load_parallel};
use crate::image_io::frame;
use crate::model::Network;
use crate::model::upsample::resize_bilinear;
use crate::postprocess::{ids_from_data, labels_from_logits, labels_on_cpu};
use crate::preprocess::{Normalization, frame_to_tensor, round_up_to_multiple};
use crate::tta::TestTimeAugmentation;

/// How to run the network over each image.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalOptions {
    /// Scales and mirroring whose predictions are averaged (default: one pass).
    pub tta: TestTimeAugmentation,
    pub label_policy: LabelPolicy,
    /// Run the network at sizes rounded up to this multiple (the model's own setting).
    pub size_multiple: Option<usize>,
    /// Images decoded in parallel at a time (bounds memory).
    pub chunk: usize,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self {
            tta: TestTimeAugmentation::default(),
            label_policy: LabelPolicy::Strict,
            size_multiple: None,
            chunk: 4,
        }
    }
}

/// Runs a model over a dataset split and accumulates one confusion matrix at label
/// resolution. `progress` is called after each image. The first bad sample stops the run
/// with an error naming its file.
pub fn evaluate(
    model: &Network,
    dataset: &Dataset,
    norm: &Normalization,
    options: &EvalOptions,
    device: &Device,
    mut progress: impl FnMut(),
) -> Result<ConfusionMatrix, DataError> {
    let num_classes = model.num_classes();
    let mut confusion = ConfusionMatrix::new(num_classes);
    for chunk in dataset.samples.chunks(options.chunk.max(1)) {
        for loaded in load_parallel(chunk, dataset, options.label_policy) {
            let sample = loaded?;
            let image = frame(&sample.image);
            let input = frame_to_tensor(&image, norm, None, device);
            let size = [image.height, image.width];
            let ids = predict_ids(model, input, size, options, device);
            confusion.add(sample.label.as_raw(), &ids);
            progress();
        }
    }
    Ok(confusion)
}

/// Class ids at `size`, row-major. On the CPU backend, single-pass labels come from the
/// low-resolution logits through the fused [`labels_from_logits`], as in the segmenter.
fn predict_ids(
    model: &Network,
    input: Tensor<4>,
    size: [usize; 2],
    options: &EvalOptions,
    device: &Device,
) -> Vec<u8> {
    let tta = &options.tta;
    if tta.is_single_pass() && labels_on_cpu(device) {
        let input = resize_bilinear(input, round_up_to_multiple(size, options.size_multiple));
        return labels_from_logits(&model.forward_low_res(input).into_data(), size);
    }
    let ids = tta.predict(model, input, size, size, options.size_multiple);
    ids_from_data(&ids.into_data())
}
