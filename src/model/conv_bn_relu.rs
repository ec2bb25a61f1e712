use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

/// He-normal initialisation (fan-out, ReLU gain), as torchvision uses for ResNets trained
/// from scratch; burn's default (PyTorch's `kaiming_uniform(a=sqrt(5))`) trains slower here.
pub(crate) fn he_normal() -> Initializer {
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

/// Convolution, BatchNorm and (optionally) ReLU: PyTorch's `ConvBNReLU` with fields `conv`, `bn`.
#[derive(Module, Debug)]
pub struct ConvBnRelu {
    pub conv: Conv2d,
    pub bn: BatchNorm,
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
            bn: batch_norm(out_channels, device),
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
        let x = self.bn.forward(self.conv.forward(x));
        if self.relu { relu(x) } else { x }
    }
}
