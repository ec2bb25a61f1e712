//! Bilateral Guided Aggregation: each branch gates the other. The detail feature (1/8) is
//! gated by the upsampled semantic feature, and the semantic feature (1/32) by the downsampled
//! detail feature; the two results are summed at 1/8.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;

use super::gather_expansion::ConvBn;
use crate::kernels;
use crate::model::conv_bn_relu::conv;
use crate::model::upsample::{resize_nearest, spatial_size};

/// 3x3 depthwise conv + BN, then a 1x1 conv (no BN): `left1` and `right2`.
#[derive(Module, Debug)]
pub struct DepthwisePointwise {
    pub depthwise: ConvBn,
    pub pointwise: Conv2d,
}

impl DepthwisePointwise {
    fn new(channels: usize, device: &Device) -> Self {
        Self {
            depthwise: ConvBn::new(
                conv(channels, channels, 3, 1, channels, device),
                channels,
                device,
            ),
            pointwise: conv(channels, channels, 1, 1, 1, device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        kernels::conv2d(&self.pointwise, self.depthwise.forward(x), None, false)
    }
}

#[derive(Module, Debug)]
pub struct BilateralGuidedAggregation {
    /// Detail, kept at 1/8.
    pub left1: DepthwisePointwise,
    /// Detail, brought to 1/32: 3x3 s2 + BN, then a 3x3 average pool s2.
    pub left2: ConvBn,
    pub left2_pool: AvgPool2d,
    /// Semantic, 3x3 + BN, upsampled to 1/8 as the gate of `left1`.
    pub right1: ConvBn,
    /// Semantic, at 1/32, the gate's counterpart for `left2`.
    pub right2: DepthwisePointwise,
    /// 3x3 + BN + ReLU on the sum.
    pub conv: ConvBn,
}

impl BilateralGuidedAggregation {
    pub fn new(channels: usize, device: &Device) -> Self {
        let dense = |stride| {
            ConvBn::new(
                conv(channels, channels, 3, stride, 1, device),
                channels,
                device,
            )
        };
        Self {
            left1: DepthwisePointwise::new(channels, device),
            left2: dense(2),
            // PyTorch's AvgPool2d counts the zero padding in its average.
            left2_pool: AvgPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_count_include_pad(true)
                .init(),
            right1: dense(1),
            right2: DepthwisePointwise::new(channels, device),
            conv: dense(1),
        }
    }

    /// `detail [N, C, H/8, W/8]`, `semantic [N, C, H/32, W/32]` -> `[N, C, H/8, W/8]`.
    pub fn forward(&self, detail: Tensor<4>, semantic: Tensor<4>) -> Tensor<4> {
        let size = spatial_size(&detail);
        let gate_detail = sigmoid(resize_nearest(self.right1.forward(semantic.clone()), size));
        let left = self.left1.forward(detail.clone()) * gate_detail;
        let left2 = kernels::avg_pool2d(&self.left2_pool, self.left2.forward(detail));
        let right = left2 * sigmoid(self.right2.forward(semantic));
        self.conv.forward_relu(left + resize_nearest(right, size))
    }

    pub fn fold_batch_norms(&mut self) {
        for block in [
            &mut self.left1.depthwise,
            &mut self.left2,
            &mut self.right1,
            &mut self.right2.depthwise,
            &mut self.conv,
        ] {
            block.fold_batch_norm();
        }
    }
}
