//! BiSeNet V2's segmentation heads: the main head and the booster heads that deep-supervise
//! the Semantic Branch's stages during training.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Dropout, DropoutConfig};
use burn::prelude::*;

use crate::kernels;
use crate::model::conv_bn_relu::ConvBnRelu;
use crate::model::upsample::{resize_bilinear, resize_nearest, spatial_size};

/// 3x3 ConvBNReLU, dropout 0.1 (training only), for booster heads a x2 nearest upsampling and
/// a 3x3 ConvBNReLU to `up_factor^2` channels, a 1x1 classifier with bias, and a bilinear resize
/// to the input size. State-dict names: `conv`, `conv_out.0.1` (booster), `conv_out.1`.
#[derive(Module, Debug)]
pub struct SegmentHead {
    pub conv: ConvBnRelu,
    pub drop: Dropout,
    pub booster: Option<ConvBnRelu>,
    pub conv_out: Conv2d,
}

impl SegmentHead {
    /// The main head: `mid` channels, no booster stage.
    pub fn main(input: usize, mid: usize, classes: usize, device: &Device) -> Self {
        Self::new(input, mid, None, classes, device)
    }

    /// A booster head for a feature at `1 / up_factor` of the input.
    pub fn booster(
        input: usize,
        mid: usize,
        up_factor: usize,
        classes: usize,
        device: &Device,
    ) -> Self {
        Self::new(input, mid, Some(up_factor * up_factor), classes, device)
    }

    fn new(
        input: usize,
        mid: usize,
        booster: Option<usize>,
        classes: usize,
        device: &Device,
    ) -> Self {
        Self {
            conv: ConvBnRelu::new(input, mid, 3, 1, device),
            drop: DropoutConfig::new(0.1).init(),
            booster: booster.map(|channels| ConvBnRelu::new(mid, channels, 3, 1, device)),
            conv_out: Conv2dConfig::new([booster.unwrap_or(mid), classes], [1, 1]).init(device),
        }
    }

    /// Logits before the final resize: `[N, C_in, h, w]` -> `[N, classes, h, w]` (main head) or
    /// `[N, classes, 2h, 2w]` (booster heads).
    pub fn forward_low_res(&self, x: Tensor<4>) -> Tensor<4> {
        let mut feat = self.drop.forward(self.conv.forward(x));
        if let Some(booster) = &self.booster {
            let [h, w] = spatial_size(&feat);
            feat = booster.forward(resize_nearest(feat, [2 * h, 2 * w]));
        }
        kernels::conv2d(&self.conv_out, feat, None, false)
    }

    /// Logits at `size`: `[N, C_in, h, w]` -> `[N, classes, size[0], size[1]]`.
    pub fn forward(&self, x: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
        resize_bilinear(self.forward_low_res(x), size)
    }

    pub fn fold_batch_norms(&mut self) {
        self.conv.fold_batch_norm();
        if let Some(booster) = &mut self.booster {
            booster.fold_batch_norm();
        }
    }
}
