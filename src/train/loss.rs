use burn::prelude::*;
use burn::tensor::activation::log_softmax;

use super::lovasz::lovasz_softmax;
use crate::model::NetworkOutput;

/// Online hard example mining cross-entropy (as in the PyTorch BiSeNet reference): only pixels
/// the model gets wrong with confidence (`p(true class)` below `probability_threshold`, 0.7 by
/// default) contribute, but never fewer than 1/16 of the labelled pixels; the hardest are kept
/// then. Pixels labelled with the ignore id (any id `>= classes`) never contribute.
///
/// With `class_weights`, each kept pixel counts with its true class's weight (a weighted mean),
/// so thin and rare classes are not outvoted by road and sky; which pixels are hard is still
/// decided on the unweighted loss.
#[derive(Debug, Clone)]
pub struct OhemCrossEntropy {
    /// Pixels whose true-class probability is below this are "hard"; 1 makes every pixel hard
    /// (plain cross-entropy).
    pub probability_threshold: f32,
    /// Minimum share of the labelled pixels kept.
    pub min_kept: f32,
    /// One weight per class, or `None` for all equal.
    pub class_weights: Option<Vec<f32>>,
}

impl Default for OhemCrossEntropy {
    fn default() -> Self {
        Self {
            probability_threshold: 0.7,
            min_kept: 1.0 / 16.0,
            class_weights: None,
        }
    }
}

impl OhemCrossEntropy {
    /// `logits: [N, C, H, W]`, `labels: [N, H, W]` -> scalar loss `[1]`.
    pub fn forward(&self, logits: Tensor<4>, labels: Tensor<3, Int>) -> Tensor<1> {
        let [_, classes, _, _] = logits.dims();
        let device = logits.device();
        let valid = labels.clone().lower_elem(classes as i64); // [N, H, W]
        let safe_labels = labels.clone().mask_fill(valid.clone().bool_not(), 0);
        let nll = match crate::kernels::pixel_nll(&logits, &labels) {
            Some(nll) => nll, // the fused kernel on flex
            None => log_softmax(logits, 1)
                .gather(1, safe_labels.clone().unsqueeze_dim(1))
                .squeeze_dim::<3>(1)
                .neg()
                .mask_fill(valid.clone().bool_not(), 0.0),
        }; // [N, H, W], 0 where unlabelled

        let cut = self.cut_off(&nll, &valid);
        let mut kept = nll.clone().greater_elem(cut).bool_and(valid).float(); // [N, H, W]
        if let Some(weights) = &self.class_weights {
            assert_eq!(weights.len(), classes, "one class weight per class");
            let dims = safe_labels.dims();
            let weights = Tensor::<1>::from_floats(weights.as_slice(), &device);
            let per_pixel = weights
                .select(0, safe_labels.flatten::<1>(0, 2))
                .reshape(dims);
            kept = kept * per_pixel;
        }
        let total_weight = kept.clone().sum().clamp_min(1e-6);
        (nll * kept).sum().div(total_weight)
    }

    /// The loss value above which pixels are kept: `-ln(threshold)`, lowered to the loss of the
    /// `min_kept`-th hardest pixel when too few pixels are above it. Chosen on read-back values,
    /// outside the autodiff graph.
    fn cut_off(&self, nll: &Tensor<3>, valid: &Tensor<3, Bool>) -> f32 {
        if self.probability_threshold >= 1.0 {
            // Every pixel is "hard": plain cross-entropy, the pixels of zero loss included.
            return f32::NEG_INFINITY;
        }
        let losses: Vec<f32> = nll.clone().detach().into_data().iter::<f32>().collect();
        let mask: Vec<bool> = valid.clone().into_data().iter::<bool>().collect();
        let mut valid_losses: Vec<f32> = losses
            .into_iter()
            .zip(mask)
            .filter_map(|(loss, valid)| valid.then_some(loss))
            .collect();
        let threshold = -self.probability_threshold.ln();
        let min_kept = (valid_losses.len() as f32 * self.min_kept) as usize;
        let hard = valid_losses.iter().filter(|&&l| l > threshold).count();
        if hard >= min_kept || min_kept == 0 {
            return threshold;
        }
        // The min_kept-th largest loss; pixels strictly above (min_kept - 1) of them plus ties.
        let (_, kth, _) = valid_losses.select_nth_unstable_by(min_kept - 1, |a, b| b.total_cmp(a));
        // `greater` keeps strictly larger values: step just below the k-th value.
        kth.next_down()
    }
}

/// The loss of a training step: OHEM cross-entropy on the main head and on each auxiliary head
/// (those weighted by `aux_weight`), plus, when `lovasz_weight` is above 0, Lovász-softmax on
/// the main head only (the auxiliary heads only speed up learning, and its sort costs CPU time).
#[derive(Debug, Clone)]
pub struct TrainingLoss {
    pub ohem: OhemCrossEntropy,
    pub aux_weight: f32,
    pub lovasz_weight: f32,
}

impl TrainingLoss {
    /// The network's outputs on a batch and its `labels: [N, H, W]` -> scalar loss `[1]`.
    pub fn forward(&self, output: NetworkOutput, labels: Tensor<3, Int>) -> Tensor<1> {
        let mut loss = self.ohem.forward(output.logits.clone(), labels.clone());
        if self.lovasz_weight > 0.0 {
            loss =
                loss + lovasz_softmax(output.logits, labels.clone()).mul_scalar(self.lovasz_weight);
        }
        for logits in output.aux {
            loss = loss
                + self
                    .ohem
                    .forward(logits, labels.clone())
                    .mul_scalar(self.aux_weight);
        }
        loss
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ohem_keeps_hard_pixels_and_ignores_void() {
        let device = Device::flex();
        // 2 classes, 4 pixels: two confident-right, one confident-wrong, one void (label 9).
        let logits = Tensor::<1>::from_floats([5.0, 5.0, -5.0, 0.0, -5.0, -5.0, 5.0, 0.0], &device)
            .reshape([1, 2, 2, 2]);
        let labels = Tensor::<1, Int>::from_ints([0, 0, 0, 9], &device).reshape([1, 2, 2]);
        let loss: f32 = OhemCrossEntropy::default()
            .forward(logits, labels)
            .into_scalar();
        // Only the wrong pixel (p = sigmoid(-10)) is hard: loss = -ln(sigmoid(-10)).
        let expected = (1.0f32 + 10f32.exp()).ln();
        assert!((loss - expected).abs() < 1e-3, "{loss} vs {expected}");
    }

    #[test]
    fn ohem_keeps_at_least_a_sixteenth_when_everything_is_easy() {
        let device = Device::flex();
        let logits = Tensor::<4>::zeros([1, 2, 8, 8], &device).slice_assign(
            [0..1, 0..1, 0..8, 0..8],
            Tensor::<4>::ones([1, 1, 8, 8], &device).mul_scalar(3.0),
        );
        let labels = Tensor::<3, Int>::zeros([1, 8, 8], &device);
        let loss: f32 = OhemCrossEntropy::default()
            .forward(logits, labels)
            .into_scalar();
        // Every pixel has p = sigmoid(3) > 0.7 (easy); the 4 kept all have loss ln(1 + e^-3).
        assert!(
            (loss - (1.0f32 + (-3f32).exp()).ln()).abs() < 1e-4,
            "{loss}"
        );
    }

    /// A threshold of 1 is plain cross-entropy: the mean over every labelled pixel, the easy ones
    /// and one whose loss rounds to 0 included.
    #[test]
    fn ohem_threshold_one_trains_on_every_labelled_pixel() {
        let device = Device::flex();
        // 2 classes, 4 pixels: easy (margin 3), certain (margin 40: p rounds to 1, loss 0), hard
        // (margin -2), void.
        let logits = Tensor::<1>::from_floats([3.0, 40.0, -2.0, 0.0, 0.0, 0.0, 0.0, 0.0], &device)
            .reshape([1, 2, 2, 2]);
        let labels = Tensor::<1, Int>::from_ints([0, 0, 0, 9], &device).reshape([1, 2, 2]);
        let loss: f32 = OhemCrossEntropy {
            probability_threshold: 1.0,
            ..OhemCrossEntropy::default()
        }
        .forward(logits, labels)
        .into_scalar();
        let nll = |margin: f32| (1.0f32 + (-margin).exp()).ln();
        let expected = (nll(3.0) + nll(40.0) + nll(-2.0)) / 3.0;
        assert!((loss - expected).abs() < 1e-5, "{loss} vs {expected}");
    }

    #[test]
    fn all_void_batch_has_zero_loss() {
        let device = Device::flex();
        let logits = Tensor::<4>::ones([1, 3, 4, 4], &device);
        let labels = Tensor::<3, Int>::full([1, 4, 4], 255, &device);
        let loss: f32 = OhemCrossEntropy::default()
            .forward(logits, labels)
            .into_scalar();
        assert_eq!(loss, 0.0);
    }

    /// Class weights make the loss a weighted mean over the kept pixels: equal weights change
    /// nothing, and weighting one class pulls the loss toward that class's pixels.
    #[test]
    fn class_weights_give_a_weighted_mean_of_the_kept_pixels() {
        let device = Device::flex();
        // 2 classes, 2 pixels, both hard: pixel 0 (class 0) has p = sigmoid(-1), pixel 1 (class 1)
        // has p = sigmoid(-3).
        let logits =
            || Tensor::<1>::from_floats([-1.0, 3.0, 0.0, 0.0], &device).reshape([1, 2, 1, 2]);
        let labels = || Tensor::<1, Int>::from_ints([0, 1], &device).reshape([1, 1, 2]);
        let loss = |weights: Option<Vec<f32>>| -> f32 {
            OhemCrossEntropy {
                class_weights: weights,
                ..OhemCrossEntropy::default()
            }
            .forward(logits(), labels())
            .into_scalar()
        };
        let nll = |margin: f32| (1.0f32 + margin.exp()).ln();
        let (l0, l1) = (nll(1.0), nll(3.0));
        assert!((loss(None) - (l0 + l1) / 2.0).abs() < 1e-5);
        assert!((loss(Some(vec![2.0, 2.0])) - loss(None)).abs() < 1e-5);
        let weighted = loss(Some(vec![3.0, 1.0]));
        assert!(
            (weighted - (3.0 * l0 + l1) / 4.0).abs() < 1e-5,
            "{weighted}"
        );
    }
}
