//! Test-time augmentation: the standard multi-scale + flip inference of segmentation papers.
//! The network runs on the image at several scales and mirrored, and the class probabilities
//! of every variant are averaged before the argmax. It costs one pass per variant and buys a
//! few points of mIoU, most on thin and small classes (Pole, SignSymbol, Sidewalk) that
//! a larger scale resolves better: a choice for stills and evaluation, not for live video.

use burn::prelude::*;
use burn::tensor::activation::softmax;

use crate::model::Network;
use crate::model::upsample::resize_bilinear;
use crate::preprocess::round_up_to_multiple;

/// The variants whose predictions are averaged.
#[derive(Debug, Clone, PartialEq)]
pub struct TestTimeAugmentation {
    /// Input scales, relative to the base size (`[1.0]`: single scale).
    scales: Vec<f32>,
    /// Also run the mirrored image.
    flip: bool,
}

/// Scales outside this range make inputs of a few pixels or of many gigabytes.
const SCALE_RANGE: std::ops::RangeInclusive<f32> = 0.1..=4.0;

impl Default for TestTimeAugmentation {
    /// One pass: the image at its size, not mirrored.
    fn default() -> Self {
        Self {
            scales: vec![1.0],
            flip: false,
        }
    }
}

impl TestTimeAugmentation {
    /// Checks that there is at least one scale and that each lies in 0.1–4.
    pub fn new(scales: Vec<f32>, flip: bool) -> Result<Self, String> {
        if scales.is_empty() || !scales.iter().all(|s| SCALE_RANGE.contains(s)) {
            return Err(format!(
                "scales {scales:?}: give at least one, each between {} and {}",
                SCALE_RANGE.start(),
                SCALE_RANGE.end()
            ));
        }
        Ok(Self { scales, flip })
    }

    /// Six scales from 0.75 to 2, each also mirrored: twelve passes, the set chosen on
    /// CamVid's held-out drive (`docs/experiments/camvid.md`: 43.3 against 40.8 mIoU for one
    /// pass).
    pub fn multi_scale_flip() -> Self {
        Self {
            scales: vec![0.75, 1.0, 1.25, 1.5, 1.75, 2.0],
            flip: true,
        }
    }

    pub fn scales(&self) -> &[f32] {
        &self.scales
    }

    pub fn flip(&self) -> bool {
        self.flip
    }

    /// How many times the network runs: once per scale, twice with `flip`.
    pub fn passes(&self) -> usize {
        self.scales.len() * self.directions()
    }

    /// The work against one pass at scale 1, in input pixels: `Σ s²`, twice with `flip`
    /// (24.9 for [`Self::multi_scale_flip`]). The page multiplies a measured pass by it to
    /// decide whether refining a still is quick enough.
    pub fn relative_cost(&self) -> f32 {
        self.scales.iter().map(|s| s * s).sum::<f32>() * self.directions() as f32
    }

    fn directions(&self) -> usize {
        if self.flip { 2 } else { 1 }
    }

    /// One pass at scale 1, not mirrored: callers then take their fast single-pass path.
    pub fn is_single_pass(&self) -> bool {
        self.scales == [1.0] && !self.flip
    }

    /// Class ids `[1, H, W]` at `out_size` for `input` (`[1, 3, h, w]`, any size): the
    /// argmax of the class probabilities summed over every scale of `base_size = [h, w]`
    /// (each rounded up to `size_multiple`) and, with `flip`, over the mirrored input. The
    /// probabilities are summed at `base_size` and the sum resized to `out_size` once: a
    /// large photo labelled at a small size does not hold a full-size map per pass.
    pub fn predict(
        &self,
        model: &Network,
        input: Tensor<4>,
        base_size: [usize; 2],
        out_size: [usize; 2],
        size_multiple: Option<usize>,
    ) -> Tensor<3, Int> {
        if self.is_single_pass() {
            let run_size = round_up_to_multiple(base_size, size_multiple);
            return model.predict(resize_bilinear(input, run_size), out_size);
        }
        let mut sum: Option<Tensor<4>> = None;
        for &scale in &self.scales {
            let run_size = round_up_to_multiple(scaled(base_size, scale), size_multiple);
            // Resizing to the input's own size is free: the resize returns its input.
            let scaled = resize_bilinear(input.clone(), run_size);
            let mut variants = vec![model.logits(scaled.clone(), base_size)];
            if self.flip {
                variants.push(model.logits(scaled.flip([3]), base_size).flip([3]));
            }
            for logits in variants {
                // [1, classes, h, w]
                let probs = softmax(logits, 1);
                sum = Some(match sum {
                    Some(total) => total + probs,
                    None => probs,
                });
            }
        }
        let sum = sum.expect("TestTimeAugmentation::new requires a scale");
        resize_bilinear(sum, out_size).argmax(1).squeeze_dim(1)
    }
}

/// `size` times `scale`, rounded, at least 8 pixels a side (one cell of the 1/8 feature map).
fn scaled(size: [usize; 2], scale: f32) -> [usize; 2] {
    size.map(|side| ((side as f32 * scale).round() as usize).max(8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_no_scales_and_scales_out_of_range() {
        assert!(TestTimeAugmentation::new(vec![], true).is_err());
        assert!(TestTimeAugmentation::new(vec![1.0, 0.05], false).is_err());
        assert!(TestTimeAugmentation::new(vec![4.5], false).is_err());
        assert!(TestTimeAugmentation::new(vec![f32::NAN], false).is_err());
        let tta = TestTimeAugmentation::new(vec![0.75, 1.0, 2.0], true).unwrap();
        assert_eq!(tta.scales(), [0.75, 1.0, 2.0]);
        assert!(!tta.is_single_pass());
        assert!(TestTimeAugmentation::default().is_single_pass());
    }

    #[test]
    fn cost_counts_passes_and_their_pixels() {
        let one = TestTimeAugmentation::default();
        assert_eq!((one.passes(), one.relative_cost()), (1, 1.0));
        let tta = TestTimeAugmentation::new(vec![0.5, 2.0], true).unwrap();
        assert_eq!((tta.passes(), tta.relative_cost()), (4, 8.5));
        let refined = TestTimeAugmentation::multi_scale_flip();
        assert_eq!(refined.passes(), 12);
        assert!((refined.relative_cost() - 24.875).abs() < 1e-4);
    }

    #[test]
    fn scaled_sizes_round_and_keep_a_feature_cell() {
        assert_eq!(scaled([360, 480], 0.75), [270, 360]);
        assert_eq!(scaled([10, 20], 0.1), [8, 8]);
    }
}
