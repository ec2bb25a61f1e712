//! The Detail Branch: wide channels and shallow layers that keep spatial detail at 1/8.

use burn::prelude::*;

use crate::model::Width;
use crate::model::conv_bn_relu::ConvBnRelu;

/// `S1` (3x3 64 s2, 3x3 64), `S2` (3x3 64 s2, 2x 3x3 64), `S3` (3x3 128 s2, 2x 3x3 128):
/// `[N, 3, H, W]` -> `[N, 128, H/8, W/8]` (sizes rounded up).
#[derive(Module, Debug)]
pub struct DetailBranch {
    pub s1: Vec<ConvBnRelu>,
    pub s2: Vec<ConvBnRelu>,
    pub s3: Vec<ConvBnRelu>,
}

/// `layers` 3x3 ConvBNReLUs, the first with stride 2.
fn stage(input: usize, output: usize, layers: usize, device: &Device) -> Vec<ConvBnRelu> {
    (0..layers)
        .map(|i| match i {
            0 => ConvBnRelu::new(input, output, 3, 2, device),
            _ => ConvBnRelu::new(output, output, 3, 1, device),
        })
        .collect()
}

impl DetailBranch {
    pub const OUT_CHANNELS: usize = 128;

    pub fn new(width: Width, device: &Device) -> Self {
        let [c64, c128] = [64, Self::OUT_CHANNELS].map(|c| width.of(c));
        Self {
            s1: stage(3, c64, 2, device),
            s2: stage(c64, c64, 3, device),
            s3: stage(c64, c128, 3, device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.layers().fold(x, |x, layer| layer.forward(x))
    }

    fn layers(&self) -> impl Iterator<Item = &ConvBnRelu> {
        self.s1.iter().chain(&self.s2).chain(&self.s3)
    }

    pub fn fold_batch_norms(&mut self) {
        for layer in self.s1.iter_mut().chain(&mut self.s2).chain(&mut self.s3) {
            layer.fold_batch_norm();
        }
    }
}
