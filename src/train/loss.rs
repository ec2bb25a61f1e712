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
