use burn::prelude::*;
use burn::tensor::activation::softmax;

use super::ConfusionMatrix;
use crate::data::{DataError, Dataset, LabelPolicy, load_parallel};
use crate::image_io::frame;
use crate::model::Network;
use crate::model::upsample::resize_bilinear;
use crate::postprocess::{ids_from_data, labels_from_logits, labels_on_cpu};
use crate::preprocess::{Normalization, frame_to_tensor, round_up_to_multiple};

/// How to run the network over each image.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalOptions {
    /// Input scales whose predictions are averaged (`[1.0]`: single scale).
    pub scales: Vec<f32>,
    /// Also average the prediction of the mirrored image.
    pub flip: bool,
    pub label_policy: LabelPolicy,
    /// Run the network at sizes rounded up to this multiple (the model's own setting).
    pub size_multiple: Option<usize>,
    /// Images decoded in parallel at a time (bounds memory).
    pub chunk: usize,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self {
            scales: vec![1.0],
            flip: false,
            label_policy: LabelPolicy::Strict,
            size_multiple: None,
            chunk: 4,
        }
    }
}

impl EvalOptions {
    /// One pass per image: no extra scales, no mirrored copy.
    fn is_single_scale(&self) -> bool {
        self.scales == [1.0] && !self.flip
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

/// The size the network runs at for an image of `size` at `scale`: rounded up to the model's
/// size multiple. (Resizing to the image's own size is free: the resize returns its input.)
fn run_size(size: [usize; 2], scale: f32, options: &EvalOptions) -> [usize; 2] {
    let scaled = size.map(|s| ((s as f32 * scale).round() as usize).max(8));
    round_up_to_multiple(scaled, options.size_multiple)
}

/// Class ids at `size`, row-major. On the CPU backend, single-scale labels come from the
/// low-resolution logits through the fused [`labels_from_logits`], as in the segmenter.
fn predict_ids(
    model: &Network,
    input: Tensor<4>,
    size: [usize; 2],
    options: &EvalOptions,
    device: &Device,
) -> Vec<u8> {
    if !(options.is_single_scale() && labels_on_cpu(device)) {
        return ids_from_data(&predict_averaged(model, input, size, options).into_data());
    }
    let input = resize_bilinear(input, run_size(size, 1.0, options));
    labels_from_logits(&model.forward_low_res(input).into_data(), size)
}

/// Class ids `[1, H, W]`; with several scales or flipping, the argmax of the summed class
/// probabilities of every variant (the standard multi-scale + flip evaluation).
pub fn predict_averaged(
    model: &Network,
    input: Tensor<4>,
    size: [usize; 2],
    options: &EvalOptions,
) -> Tensor<3, Int> {
    if options.is_single_scale() {
        return model.predict(resize_bilinear(input, run_size(size, 1.0, options)), size);
    }
    let mut sum: Option<Tensor<4>> = None;
    for &scale in &options.scales {
        let scaled = resize_bilinear(input.clone(), run_size(size, scale, options));
        let mut variants = vec![softmax(model.logits(scaled.clone(), size), 1)];
        if options.flip {
            let flipped = model.logits(scaled.flip([3]), size).flip([3]);
            variants.push(softmax(flipped, 1));
        }
        for probs in variants {
            sum = Some(match sum {
                Some(total) => total + probs,
                None => probs,
            });
        }
    }
    sum.expect("at least one scale").argmax(1).squeeze_dim(1)
}
