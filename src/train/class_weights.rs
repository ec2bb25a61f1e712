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

/// The logit offsets that take back `strength` of a class weighting at inference:
/// `-strength * ln(w_c)` for class `c` (all zero for uniform weights).
///
/// A loss that weighs class `c` by `w_c` is minimised by `p(c | x)` scaled by `w_c`, so the
/// trained network's logits are an unweighted network's plus `ln(w_c)` (the prior shift of
/// Menon et al., *Long-tail learning via logit adjustment*, ICLR 2021). The weighting teaches
/// the features the thin classes, but on a drive the model has not seen its prior shows as rare
/// classes (Fence, Sidewalk) painted over common ones (Road). Strength 1 takes the prior back
/// entirely, 0 keeps it.
pub fn prior_correction_offsets(weights: &[f32], strength: f32) -> Vec<f32> {
    // ln(1 / w) rather than -ln(w): a weight of 1 then gives +0, not -0.
    weights.iter().map(|w| strength * w.recip().ln()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_correction_lowers_a_weighted_class_by_its_log_weight() {
        let offsets = prior_correction_offsets(&[0.5, 1.0, 2.0], 0.5);
        let expected = [0.5 * 2f32.ln(), 0.0, -0.5 * 2f32.ln()];
        for (offset, expected) in offsets.iter().zip(expected) {
            assert!((offset - expected).abs() < 1e-6, "{offsets:?}");
        }
        assert!(
            prior_correction_offsets(&[1.0; 4], 0.7)
                .iter()
                .all(|&o| o == 0.0)
        );
    }
}
