use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::activation::sigmoid;

use super::arm::global_average;
use crate::model::conv_bn_relu::{ConvBnRelu, batch_norm, batch_norm_forward, conv};

/// Feature Fusion Module (paper, Fig. 2c): the spatial path's detail and the context path's
/// semantics live at different levels of representation, so they are concatenated, mixed by a
/// 1x1 conv and re-weighted by a squeeze-and-excitation style channel attention.
#[derive(Module, Debug)]
pub struct FeatureFusionModule {
    pub convblk: ConvBnRelu,
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

impl FeatureFusionModule {
    pub fn new(in_channels: usize, out_channels: usize, device: &Device) -> Self {
        Self {
            convblk: ConvBnRelu::new(in_channels, out_channels, 1, 1, device),
            conv: conv(out_channels, out_channels, 1, 1, 1, device),
            bn: batch_norm(out_channels, device),
        }
    }

    /// `spatial: [N, C_s, H, W]`, `context: [N, C_c, H, W]` -> `[N, C_out, H, W]`
    pub fn forward(&self, spatial: Tensor<4>, context: Tensor<4>) -> Tensor<4> {
        let fused = Tensor::cat(vec![spatial, context], 1); // [N, C_s + C_c, H, W]
        let feat = self.convblk.forward(fused); // [N, C_out, H, W]
        let atten = global_average(feat.clone()); // [N, C_out, 1, 1]
        let atten = sigmoid(batch_norm_forward(&self.bn, self.conv.forward(atten)));
        feat.clone() * atten + feat
    }
}
