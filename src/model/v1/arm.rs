use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::activation::sigmoid;

use crate::model::conv_bn_relu::{ConvBnRelu, batch_norm, batch_norm_forward, conv};

/// Global average over the spatial axes: `[N, C, H, W]` -> `[N, C, 1, 1]`.
pub(crate) fn global_average(x: Tensor<4>) -> Tensor<4> {
    x.mean_dim(2).mean_dim(3)
}

/// Attention Refinement Module (paper, Fig. 2b): re-weights the channels of a context feature
/// by an attention vector computed from its global average, at negligible cost.
#[derive(Module, Debug)]
pub struct AttentionRefinementModule {
    pub conv: ConvBnRelu,
    pub conv_atten: Conv2d,
    pub bn_atten: BatchNorm,
}

impl AttentionRefinementModule {
    pub fn new(in_channels: usize, out_channels: usize, device: &Device) -> Self {
        Self {
            conv: ConvBnRelu::new(in_channels, out_channels, 3, 1, device),
            conv_atten: conv(out_channels, out_channels, 1, 1, 1, device),
            bn_atten: batch_norm(out_channels, device),
        }
    }

    /// `[N, C_in, H, W]` -> `[N, C_out, H, W]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let feat = self.conv.forward(x); // [N, C, H, W]
        let atten = global_average(feat.clone()); // [N, C, 1, 1]
        let atten = sigmoid(batch_norm_forward(
            &self.bn_atten,
            self.conv_atten.forward(atten),
        ));
        feat * atten
    }
}
