//! Per-pixel cross-entropy (`-log softmax(logits)[label]`) for training on flex, forward and
//! backward in one pass each.
//!
//! As tensor ops the loss is `log_softmax` (max, subtract, exp, sum, log, subtract), a gather
//! and a mask, each a full pass over `N x C x H x W` logits at label resolution, three heads a
//! step, and as many again backward. Here the forward makes one pass per block of pixels and
//! keeps only the per-pixel log-sum-exp; the backward writes `g * (softmax - onehot)` directly.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::{DType, TensorData};
use rayon::prelude::*;

use super::conv::{contiguous, made_contiguous};

/// Pixels per block: the block's logits (`C x BLOCK` floats) stay in L1 between the passes.
const BLOCK: usize = 256;

/// `-log softmax(logits)[label]` per pixel, `[N, C, H, W]` logits and `[N, H, W]` labels ->
/// `[N, H, W]`, 0 where the label is not a class (the ignore id). For autodiff flex tensors;
/// `None` elsewhere.
pub(super) fn try_pixel_nll(logits: &Tensor<4>, labels: &Tensor<3, Int>) -> Option<Tensor<3>> {
    if logits.dtype() != DType::F32 {
        return None;
    }
    let tracked = logits.clone().try_into_primitive::<Autodiff<Flex>>().ok()?;
    let [batch, classes, height, width] = logits.dims();
    let pixels = height * width;
    let labels: Arc<[i64]> = labels.clone().into_data().iter::<i64>().collect();
    if labels.len() != batch * pixels {
        return None; // let burn report the shape mismatch
    }
    let x = made_contiguous(tracked.primitive().clone());
    let mut nll = vec![0.0f32; batch * pixels];
    let mut log_sum_exp = vec![0.0f32; batch * pixels];
    let values = contiguous(&x);
    nll.par_chunks_mut(pixels)
        .zip(log_sum_exp.par_chunks_mut(pixels))
        .enumerate()
        .for_each(|(image, (nll, lse))| {
            let logits = &values[image * classes * pixels..][..classes * pixels];
            let labels = &labels[image * pixels..][..pixels];
            image_forward(logits, labels, classes, nll, lse);
        });
    let output = FlexTensor::from_data(TensorData::new(nll, [batch, height, width]));
    let state = NllState {
        logits: x,
        labels,
        log_sum_exp: log_sum_exp.into(),
        shape: [batch, classes, height, width],
    };
    let output = match NllBackward
        .prepare::<NoCheckpointing>([tracked.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(state, output),
        OpsKind::UnTracked(prep) => prep.finish(output),
    };
    Some(Tensor::from_primitive::<Autodiff<Flex>>(output))
}

/// One image: `nll` and `lse` (the log-sum-exp) per pixel, a block of pixels at a time.
fn image_forward(logits: &[f32], labels: &[i64], classes: usize, nll: &mut [f32], lse: &mut [f32]) {
    let pixels = labels.len();
    let mut sums = [0.0f32; BLOCK];
    for start in (0..pixels).step_by(BLOCK) {
        let len = BLOCK.min(pixels - start);
        let channel = |c: usize| &logits[c * pixels + start..][..len];
        let max = &mut lse[start..][..len];
        max.copy_from_slice(channel(0));
        for c in 1..classes {
            max.iter_mut()
                .zip(channel(c))
                .for_each(|(m, &v)| *m = m.max(v));
        }
        let sums = &mut sums[..len];
        sums.fill(0.0);
        for c in 0..classes {
            sums.iter_mut()
                .zip(channel(c).iter().zip(max.iter()))
                .for_each(|(s, (&v, &m))| *s += (v - m).exp());
        }
        for (p, (l, s)) in max.iter_mut().zip(sums.iter()).enumerate() {
            *l += s.ln();
            let pixel = start + p;
            nll[pixel] = match usize::try_from(labels[pixel]) {
                Ok(label) if label < classes => *l - logits[label * pixels + pixel],
                _ => 0.0,
            };
        }
    }
}

/// What the backward pass needs: the logits, labels and per-pixel log-sum-exp.
#[derive(Debug, Clone)]
struct NllState {
    logits: FlexTensor,
    labels: Arc<[i64]>,
    log_sum_exp: Arc<[f32]>,
    /// `[N, C, H, W]` of the logits.
    shape: [usize; 4],
}

#[derive(Debug)]
struct NllBackward;

impl Backward<Flex, 1> for NllBackward {
    type State = NllState;

    fn backward(self, ops: Ops<NllState, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let upstream = made_contiguous(grads.consume::<Flex>(&ops.node));
        let [Some(node)] = &ops.parents else { return };
        let NllState {
            logits,
            labels,
            log_sum_exp,
            shape,
        } = ops.state;
        let [_, classes, height, width] = shape;
        let pixels = height * width;
        let values = contiguous(&logits);
        let upstream = contiguous(&upstream);
        let mut dx = vec![0.0f32; values.len()];
        // dlogits[c, p] = g[p] * (softmax[c, p] - [c == label[p]]), 0 for ignored pixels.
        dx.par_chunks_mut(pixels).enumerate().for_each(|(row, dx)| {
            let (image, class) = (row / classes, row % classes);
            let base = image * pixels;
            let x = &values[row * pixels..][..pixels];
            for (p, d) in dx.iter_mut().enumerate() {
                let label = labels[base + p];
                if !(0..classes as i64).contains(&label) {
                    continue;
                }
                let softmax = (x[p] - log_sum_exp[base + p]).exp();
                *d = upstream[base + p] * (softmax - f32::from(label as usize == class));
            }
        });
        grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(dx, shape)));
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::Distribution;
    use burn::tensor::activation::log_softmax;

    use super::*;

    /// burn's tensor ops for the same per-pixel loss.
    fn reference(logits: Tensor<4>, labels: Tensor<3, Int>) -> Tensor<3> {
        let [_, classes, _, _] = logits.dims();
        let valid = labels.clone().lower_elem(classes as i64);
        let safe = labels.mask_fill(valid.clone().bool_not(), 0);
        log_softmax(logits, 1)
            .gather(1, safe.unsqueeze_dim(1))
            .squeeze_dim::<3>(1)
            .neg()
            .mask_fill(valid.bool_not(), 0.0)
    }

    /// Values and logit gradients equal burn's `log_softmax` + `gather`, ignored pixels
    /// included, over sizes that leave a partial pixel block.
    #[test]
    fn matches_log_softmax_and_its_gradient() {
        let device = Device::flex().autodiff();
        let [batch, classes, height, width] = [2, 5, 13, 23];
        let logits = Tensor::<4>::random(
            [batch, classes, height, width],
            Distribution::Uniform(-4.0, 4.0),
            &device,
        )
        .require_grad();
        // Class ids with some 255 (ignored) and some 5 (= classes, also not a class).
        let labels = Tensor::<3, Int>::random(
            [batch, height, width],
            Distribution::Uniform(0.0, 6.2),
            &device,
        );
        let labels = labels.clone().mask_fill(labels.equal_elem(6), 255);
        let r = Tensor::<3>::random([batch, height, width], Distribution::Default, &device);

        let ours = try_pixel_nll(&logits, &labels).expect("applies on flex autodiff");
        let theirs = reference(logits.clone(), labels);
        let diff: f32 = (ours.clone() - theirs.clone()).abs().max().into_scalar();
        assert!(diff < 1e-5, "values off by {diff}");
        let grad = |loss: Tensor<3>| {
            let grads = (loss * r.clone()).sum().backward();
            logits.grad(&grads).unwrap().inner()
        };
        let diff: f32 = (grad(ours) - grad(theirs)).abs().max().into_scalar();
        assert!(diff < 1e-5, "gradients off by {diff}");
    }
}
