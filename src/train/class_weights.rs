//! Class weights for the loss, from the label frequencies of the training split.

use serde::{Deserialize, Serialize};

use crate::data::{DataError, Dataset, LabelPolicy, load_parallel};

/// How the loss weighs the classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ClassWeighting {
    /// Every labelled pixel counts the same (the paper's recipe).
    #[default]
    Uniform,
    /// `sqrt(median_frequency / frequency)`: the square root of SegNet's median-frequency
    /// balancing. Full balancing weighs a Pole pixel ~30x a Road pixel on CamVid and floods
    /// the map with false thin classes; the square root (~5x) lifts them without that.
    SqrtMedianFrequency,
}

impl ClassWeighting {
    /// Per-class weights for `dataset` (reads every label map once), or `None` for uniform.
    pub fn weights(self, dataset: &Dataset) -> Result<Option<Vec<f32>>, DataError> {
        match self {
            ClassWeighting::Uniform => Ok(None),
            ClassWeighting::SqrtMedianFrequency => {
                let counts = class_pixel_counts(dataset)?;
                Ok(Some(sqrt_median_frequency(&counts)))
            }
        }
    }
}

/// Labelled pixels of each class over a dataset split (the ignore id is not counted).
pub fn class_pixel_counts(dataset: &Dataset) -> Result<Vec<u64>, DataError> {
    let classes = dataset.classes.len();
    let mut counts = vec![0u64; classes];
    // Chunks bound the memory of decoded images.
    for chunk in dataset.samples.chunks(32) {
        for sample in load_parallel(chunk, dataset, LabelPolicy::Strict) {
            for &id in sample?.label.as_raw() {
                if let Some(count) = counts.get_mut(id as usize) {
                    *count += 1;
                }
            }
        }
    }
    Ok(counts)
}

/// `sqrt(median / frequency)` per class; a class with no pixels gets weight 1 (it never
/// appears in a label, so its weight is never used).
pub fn sqrt_median_frequency(counts: &[u64]) -> Vec<f32> {
    let mut present: Vec<u64> = counts.iter().copied().filter(|&c| c > 0).collect();
    if present.is_empty() {
        return vec![1.0; counts.len()];
    }
    present.sort_unstable();
    let median = present[present.len() / 2] as f64;
    counts
        .iter()
        .map(|&c| {
            if c == 0 {
                1.0
            } else {
                (median / c as f64).sqrt() as f32
            }
        })
        .collect()
}
