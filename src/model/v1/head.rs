use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::prelude::*;

use crate::model::conv_bn_relu::{ConvBnRelu, add_to_bias};
use crate::model::upsample::resize_bilinear;

/// A segmentation head (PyTorch's `BiSeNetOutput`): 3x3 ConvBNReLU, a 1x1 classifier with bias,
/// and a bilinear resize of the logits to the input size. Used for the main output and for the
/// two auxiliary outputs that deep-supervise the context path during training.
#[derive(Module, Debug)]
pub struct SegmentationHead {
    pub conv: ConvBnRelu,
    pub conv_out: Conv2d,
}

impl SegmentationHead {
    pub fn new(
        in_channels: usize,
        mid_channels: usize,
        num_classes: usize,
        device: &Device,
    ) -> Self {
        Self {
            conv: ConvBnRelu::new(in_channels, mid_channels, 3, 1, device),
            conv_out: Conv2dConfig::new([mid_channels, num_classes], [1, 1]).init(device),
        }
    }

    /// Moves every pixel's logit of class `c` by `offsets[c]` (`[classes]`), through the
    /// classifier's bias.
    pub fn shift_logits(&mut self, offsets: Tensor<1>) {
        add_to_bias(&mut self.conv_out, offsets);
    }

    /// Logits at the feature's own resolution: `[N, C_in, h, w]` -> `[N, classes, h, w]`.
    pub fn forward_low_res(&self, x: Tensor<4>) -> Tensor<4> {
        self.conv_out.forward(self.conv.forward(x))
    }

    /// Logits at `size`: `[N, C_in, h, w]` -> `[N, classes, size[0], size[1]]`.
    pub fn forward(&self, x: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
        resize_bilinear(self.forward_low_res(x), size)
    }
}
