use burn::prelude::*;

use super::config::Width;
use crate::model::conv_bn_relu::ConvBnRelu;

/// Spatial Path (paper, Sec. 3.1): three stride-2 ConvBNReLU layers keep a wide, 1/8-resolution
/// feature map rich in spatial detail, then a 1x1 conv projects it to 128 channels.
#[derive(Module, Debug)]
pub struct SpatialPath {
    pub conv1: ConvBnRelu,
    pub conv2: ConvBnRelu,
    pub conv3: ConvBnRelu,
    pub conv_out: ConvBnRelu,
}

impl SpatialPath {
    /// Output channels of the spatial path (at full width).
    pub const OUT_CHANNELS: usize = 128;

    pub fn new(width: Width, device: &Device) -> Self {
        let c = width.of(64);
        Self {
            conv1: ConvBnRelu::new(3, c, 7, 2, device),
            conv2: ConvBnRelu::new(c, c, 3, 2, device),
            conv3: ConvBnRelu::new(c, c, 3, 2, device),
            conv_out: ConvBnRelu::new(c, width.of(Self::OUT_CHANNELS), 1, 1, device),
        }
    }

    /// Folds every BatchNorm into its convolution (inference only).
    pub fn fold_batch_norms(&mut self) {
        for block in [
            &mut self.conv1,
            &mut self.conv2,
            &mut self.conv3,
            &mut self.conv_out,
        ] {
            block.fold_batch_norm();
        }
    }

    /// `[N, 3, H, W]` -> `[N, 128, ceil(H/8), ceil(W/8)]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self.conv1.forward(x); // 1/2
        let x = self.conv2.forward(x); // 1/4
        let x = self.conv3.forward(x); // 1/8
        self.conv_out.forward(x)
    }
}
