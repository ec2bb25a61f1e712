use burn::prelude::*;
use rayon::prelude::*;

use super::{DataError, Dataset, LabelPolicy, LabeledImage, Sample, load_sample};
use crate::image_io::frame;
use crate::preprocess::{Normalization, normalize_chw};

/// Decodes samples in parallel (rayon); each keeps its own result so one bad file names itself
/// without hiding the others. Memory is bounded by the slice the caller passes.
pub fn load_parallel(
    samples: &[Sample],
    dataset: &Dataset,
    policy: LabelPolicy,
) -> Vec<Result<LabeledImage, DataError>> {
    samples
        .par_iter()
        .map(|sample| load_sample(sample, dataset, policy))
        .collect()
}

/// A batch on the device: normalised images `[B, 3, H, W]` and class ids `[B, H, W]`.
#[derive(Debug, Clone)]
pub struct Batch {
    pub images: Tensor<4>,
    pub labels: Tensor<3, Int>,
}

/// Stacks same-sized labelled images into a batch.
pub fn batch_tensors(items: &[LabeledImage], norm: &Normalization, device: &Device) -> Batch {
    let (width, height) = items[0].image.dimensions();
    let [w, h] = [width as usize, height as usize];
    let mut pixels = Vec::with_capacity(items.len() * 3 * h * w);
    let mut labels = Vec::with_capacity(items.len() * h * w);
    for item in items {
        assert_eq!(
            item.image.dimensions(),
            (width, height),
            "a batch needs one size"
        );
        pixels.extend(normalize_chw(&frame(&item.image), norm));
        labels.extend(item.label.as_raw().iter().map(|&id| id as i64));
    }
    Batch {
        images: Tensor::from_data(TensorData::new(pixels, [items.len(), 3, h, w]), device),
        labels: Tensor::from_data(TensorData::new(labels, [items.len(), h, w]), device),
    }
}
