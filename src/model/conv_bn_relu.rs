use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

use crate::kernels;

/// He-normal initialisation (fan-out, ReLU gain), as torchvision uses for ResNets trained
/// from scratch; burn's default (PyTorch's `kaiming_uniform(a=sqrt(5))`) trains slower here.
fn he_normal() -> Initializer {
    Initializer::KaimingNormal {
        gain: std::f64::consts::SQRT_2,
        fan_out_only: true,
    }
}

/// A bias-free convolution with "same"-style symmetric padding, the building block of every
/// BiSeNet layer (BatchNorm follows, so a bias would be redundant).
pub(crate) fn conv(
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
    stride: usize,
    groups: usize,
    device: &Device,
) -> Conv2d {
    Conv2dConfig::new([in_channels, out_channels], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(
            kernel / 2,
            kernel / 2,
            kernel / 2,
            kernel / 2,
        ))
        .with_groups(groups)
        .with_bias(false)
        .with_initializer(he_normal())
        .init(device)
}

pub(crate) fn batch_norm(channels: usize, device: &Device) -> BatchNorm {
    BatchNormConfig::new(channels).init(device)
}

/// `bn(x)`, with a training step's update of the running statistics merged at once.
///
/// burn's `RunningState` keeps each thread's latest update apart until the next read from that
/// thread, and then averages whatever updates the threads left. A training step runs on
/// whichever rayon worker takes it, so unmerged, the running statistics averaged updates
/// from different steps (the exported model depended on thread scheduling), and a checkpoint,
/// which reads the merged value, missed the latest update (a resumed run drifted from an
/// uninterrupted one).
pub(crate) fn batch_norm_forward<const D: usize>(bn: &BatchNorm, x: Tensor<D>) -> Tensor<D> {
    let updates_statistics = x.device().is_autodiff() && bn.training.is_enabled();
    let y = bn.forward(x);
    if updates_statistics {
        bn.running_mean.value_sync();
        bn.running_var.value_sync();
    }
    y
}

/// `bn(conv(x))`, or just `conv(x)` once the BatchNorm is folded into the convolution:
/// `[N, C_in, H, W]` -> `[N, C_out, H', W']`.
pub(crate) fn conv_bn(conv: &Conv2d, bn: &Option<BatchNorm>, x: Tensor<4>) -> Tensor<4> {
    conv_bn_act(conv, bn, x, None, false)
}

/// `bn(conv(x)) + residual`, then ReLU if `apply_relu`: `[N, C_in, H, W]` -> `[N, C_out, H', W']`.
/// On the CPU the convolution is this crate's own (`crate::kernels`); once the BatchNorm is
/// folded into it, the residual and ReLU are fused into it too.
pub(crate) fn conv_bn_act(
    conv: &Conv2d,
    bn: &Option<BatchNorm>,
    x: Tensor<4>,
    residual: Option<Tensor<4>>,
    apply_relu: bool,
) -> Tensor<4> {
    let Some(bn) = bn else {
        return kernels::conv2d(conv, x, residual, apply_relu);
    };
    let z = kernels::conv2d(conv, x, None, false);
    if let Some(y) = kernels::batch_norm_train(bn, &z, residual.as_ref(), apply_relu) {
        return y;
    }
    let mut y = batch_norm_forward(bn, z);
    if let Some(residual) = residual {
        y = y + residual;
    }
    if apply_relu { relu(y) } else { y }
}

/// Folds an inference-mode BatchNorm into the convolution before it: with
/// `s = gamma / sqrt(running_var + eps)`, the conv weights are scaled by `s` per output channel
/// and the bias becomes `beta - running_mean * s` (plus `s * bias` if the conv had one). The
/// network then skips four full-size elementwise passes per layer. Inference only: the folded
/// conv no longer has the parameters training or the weights file need.
pub(crate) fn fold_batch_norm(conv: &mut Conv2d, bn: &mut Option<BatchNorm>) {
    let Some(norm) = bn.take() else { return };
    let scale = norm.gamma.val() / norm.running_var.value().add_scalar(norm.epsilon).sqrt(); // [C_out]
    let shift = norm.beta.val() - norm.running_mean.value() * scale.clone(); // [C_out]
    let [channels] = scale.dims();
    let weight = conv.weight.val() * scale.clone().reshape([channels, 1, 1, 1]);
    let bias = match conv.bias.take() {
        Some(bias) => bias.val() * scale + shift,
        None => shift,
    };
    conv.weight = Param::from_tensor(weight);
    conv.bias = Some(Param::from_tensor(bias));
}

/// Adds `offsets` (`[C_out]`) to a convolution's bias, creating the bias if it has none: every
/// output channel then reads `offsets[c]` higher, wherever the kernel sits. A classifier's
/// logits are moved this way at no cost at run time. The new bias is a parameter of its own,
/// not a result of the old one, so a network being trained can be shifted too.
pub(crate) fn add_to_bias(conv: &mut Conv2d, offsets: Tensor<1>) {
    let bias = match conv.bias.take() {
        Some(bias) => bias.val() + offsets,
        None => offsets,
    };
    conv.bias = Some(Param::from_tensor(bias.detach()));
}

/// Convolution, BatchNorm and (optionally) ReLU: PyTorch's `ConvBNReLU` with fields `conv`, `bn`.
/// The BatchNorm is `None` once folded into the convolution for inference.
#[derive(Module, Debug)]
pub struct ConvBnRelu {
    pub conv: Conv2d,
    pub bn: Option<BatchNorm>,
    #[module(skip)]
    pub relu: bool,
}

impl ConvBnRelu {
    /// `kernel x kernel` convolution with padding `kernel / 2`, followed by BN and ReLU.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        stride: usize,
        device: &Device,
    ) -> Self {
        Self {
            conv: conv(in_channels, out_channels, kernel, stride, 1, device),
            bn: Some(batch_norm(out_channels, device)),
            relu: true,
        }
    }

    /// The same block without the final ReLU (projections, last conv of a residual branch).
    pub fn without_relu(mut self) -> Self {
        self.relu = false;
        self
    }

    /// `[N, C_in, H, W]` -> `[N, C_out, ceil(H / stride), ceil(W / stride)]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        conv_bn_act(&self.conv, &self.bn, x, None, self.relu)
    }

    /// `relu(bn(conv(x)) + shortcut)`, whatever `relu` says: the last block of a residual
    /// branch, with the shortcut's addition and the ReLU after it fused into the convolution.
    pub fn forward_residual(&self, x: Tensor<4>, shortcut: Tensor<4>) -> Tensor<4> {
        conv_bn_act(&self.conv, &self.bn, x, Some(shortcut), true)
    }

    /// Folds the BatchNorm into the convolution (inference only).
    pub fn fold_batch_norm(&mut self) {
        fold_batch_norm(&mut self.conv, &mut self.bn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two training steps on two threads, as rayon may schedule them, then the running mean
    /// read as a checkpoint reads it: one chain of updates, `0.9 (0.9 * 0 + 0.1 * 1) + 0.1 * 3`,
    /// through burn's BatchNorm and through the fused CPU kernel.
    #[test]
    fn running_statistics_follow_one_chain_across_threads() {
        let device = Device::flex().autodiff();
        for fused in [false, true] {
            let bn = batch_norm(1, &device); // running mean 0, momentum 0.1
            let step = |value: f32| {
                let x = Tensor::<4>::full([2, 1, 2, 2], value, &device);
                std::thread::scope(|scope| {
                    scope.spawn(|| match fused {
                        true => kernels::batch_norm_train(&bn, &x, None, false)
                            .expect("the fused kernel applies on flex autodiff"),
                        false => batch_norm_forward(&bn, x.clone()),
                    });
                });
            };
            step(1.0);
            step(3.0);
            let mean = bn.running_mean.value().into_scalar::<f32>();
            assert!(
                (mean - 0.39).abs() < 1e-6,
                "fused {fused}: running mean {mean}"
            );
        }
    }
}
