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

use super::flex::{contiguous, made_contiguous};

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
    with_vectors(|| image_forward_with(logits, labels, classes, nll, lse));
}

#[inline(always)]
fn image_forward_with(
    logits: &[f32],
    labels: &[i64],
    classes: usize,
    nll: &mut [f32],
    lse: &mut [f32],
) {
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
                .for_each(|(s, (&v, &m))| *s += exp(v - m));
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
        dx.par_chunks_mut(classes * pixels)
            .enumerate()
            .for_each(|(image, dx)| {
                let x = &values[image * classes * pixels..][..classes * pixels];
                let base = image * pixels;
                let (labels, lse, g) = (
                    &labels[base..][..pixels],
                    &log_sum_exp[base..][..pixels],
                    &upstream[base..][..pixels],
                );
                with_vectors(|| image_backward(x, labels, lse, g, classes, dx));
            });
        grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(dx, shape)));
    }
}

/// One image's `dlogits[c, p] = g[p] * (softmax[c, p] - [c == label[p]])`, 0 for ignored
/// pixels, a block of pixels at a time: the block's labels, log-sum-exp and `g` are read once
/// for every class (a pass per class plane read them once per class: memory-bound, 2.7 times
/// the forward). Blocks whose `g` is all zero, which OHEM makes common, stay zero.
#[inline(always)]
fn image_backward(
    x: &[f32],
    labels: &[i64],
    lse: &[f32],
    g: &[f32],
    classes: usize,
    dx: &mut [f32],
) {
    let pixels = labels.len();
    let mut scale = [0.0f32; BLOCK];
    let mut label = [0u32; BLOCK];
    for start in (0..pixels).step_by(BLOCK) {
        let len = BLOCK.min(pixels - start);
        let (scale, label) = (&mut scale[..len], &mut label[..len]);
        // Branch-free, so that it vectorises: ignored pixels get scale 0 and a label no class has.
        for p in 0..len {
            let id = labels[start + p];
            let valid = (0..classes as i64).contains(&id);
            scale[p] = f32::from(u8::from(valid)) * g[start + p];
            label[p] = if valid { id as u32 } else { u32::MAX };
        }
        if scale.iter().all(|&s| s == 0.0) {
            continue; // dx was allocated zeroed
        }
        let lse = &lse[start..][..len];
        for c in 0..classes {
            let x = &x[c * pixels + start..][..len];
            let dx = &mut dx[c * pixels + start..][..len];
            for p in 0..len {
                let onehot = f32::from(u8::from(label[p] == c as u32));
                dx[p] = scale[p] * (exp(x[p] - lse[p]) - onehot);
            }
        }
    }
}

/// Runs `work` compiled for AVX2 + FMA where the CPU has them (baseline x86-64 has 4-lane SSE2
/// and no fused multiply-add, which left [`exp`]'s loops as slow as libm's calls).
#[inline(always)]
fn with_vectors(work: impl FnOnce()) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        #[target_feature(enable = "avx2,fma")]
        fn run(work: impl FnOnce()) {
            work()
        }
        // SAFETY: the features `run` is compiled for were detected above.
        return unsafe { run(work) };
    }
    work()
}

/// `e^x` for `x <= 88` (here always `<= 0`), within a few ulp of libm's, as plain arithmetic
/// that vectorises: libm's `expf` is a call per value, and the loss takes one per class, head
/// and label pixel, forward and backward (`docs/kernels.md`). Cephes' `expf`: `x = n ln 2 + r`
/// with `|r| <= ln 2 / 2`, a degree-7 polynomial for `e^r`, and `2^n` built in the exponent
/// bits. Below -87 it returns `e^-87` (1.6e-38) instead of a denormal or 0, nothing next to the
/// softmax's largest term, which is 1.
#[inline(always)]
fn exp(x: f32) -> f32 {
    // Adding and taking away 1.5 * 2^23 rounds to the nearest integer in plain float arithmetic
    // (`floor` is a libm call on baseline x86-64, and would stop the loop vectorising).
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    // `ln 2` in two parts, so that `n * LN2_HIGH` is exact.
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let mut p = 1.987_569_1e-4_f32;
    for c in [
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        0.166_666_65,
        0.5,
    ] {
        p = p * r + c;
    }
    let e_r = p * r * r + r + 1.0;
    // SAFETY: `n` is an integer in [-126, 127] (from the clamp), which `i32` holds.
    let n = unsafe { n.to_int_unchecked::<i32>() };
    e_r * f32::from_bits(((n + 127) as u32) << 23)
}

#[cfg(test)]
mod tests {
    use burn::tensor::Distribution;
    use burn::tensor::activation::log_softmax;

    use super::*;

    /// Within a few ulp of libm over the range the loss uses, and negligible below it.
    #[test]
    fn exp_matches_libm() {
        let mut x = -100.0f32;
        while x <= 10.0 {
            let (ours, libm) = (exp(x), x.exp());
            if x >= -87.0 {
                let error = ((ours - libm) / libm).abs();
                assert!(
                    error < 4e-7,
                    "exp({x}) = {ours}, libm {libm}: relative {error}"
                );
            } else {
                assert!(ours < 2e-38, "exp({x}) = {ours}");
            }
            x += 0.001_3;
        }
    }

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
        // Upstream gradients with zeros, as OHEM gives: all of the first image (whole blocks
        // skipped) and about a third of the second.
        let r = Tensor::<3>::random([batch, height, width], Distribution::Default, &device);
        let r = r.clone().mask_fill(r.lower_elem(0.3), 0.0);
        let first = Tensor::<3>::zeros([1, height, width], &device);
        let r = r.slice_assign([0..1, 0..height, 0..width], first);

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
