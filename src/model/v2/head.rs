//! BiSeNet V2's segmentation heads: the main head and the booster heads that deep-supervise
//! the Semantic Branch's stages during training.
//!
//! The widely used implementation has had two head layouts, and checkpoints of both exist:
//! the earlier one ends in a 1x1 classifier and a bilinear upsampling (booster heads first
//! upsample x2 and expand to `up_factor^2` channels); the current one ends in a 1x1 conv to
//! `classes * up_factor^2` channels and a `PixelShuffle(up_factor)` (booster heads expand
//! without the x2 upsampling). `pixel_shuffle` picks the second.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Dropout, DropoutConfig};
use burn::prelude::*;

use crate::kernels;
use crate::model::conv_bn_relu::{ConvBnRelu, add_to_bias};
use crate::model::upsample::{resize_bilinear, resize_nearest, spatial_size};

/// 3x3 ConvBNReLU, dropout 0.1 (training only), for booster heads a 3x3 ConvBNReLU to
/// `up_factor^2` channels (after a x2 nearest upsampling in the bilinear layout), a 1x1 conv
/// with bias, a pixel shuffle in the pixel-shuffle layout, and a bilinear resize to the input
/// size. State-dict names: `conv`, `booster` (`conv_out.0.1` or `conv_out.0` in PyTorch),
/// `conv_out` (`conv_out.1` or, for the main pixel-shuffle head, `conv_out.0`).
#[derive(Module, Debug)]
pub struct SegmentHead {
    pub conv: ConvBnRelu,
    pub drop: Dropout,
    pub booster: Option<ConvBnRelu>,
    pub conv_out: Conv2d,
    /// Upsampling factor of the pixel shuffle, in the pixel-shuffle layout.
    #[module(skip)]
    pub pixel_shuffle: Option<usize>,
}

impl SegmentHead {
    /// The main head: `mid` channels, no booster stage, 8x upsampling.
    pub fn main(
        input: usize,
        mid: usize,
        classes: usize,
        pixel_shuffle: bool,
        device: &Device,
    ) -> Self {
        Self::new(input, mid, 8, false, classes, pixel_shuffle, device)
    }

    /// A booster head for a feature at `1 / up_factor` of the input.
    pub fn booster(
        input: usize,
        mid: usize,
        up_factor: usize,
        classes: usize,
        pixel_shuffle: bool,
        device: &Device,
    ) -> Self {
        Self::new(input, mid, up_factor, true, classes, pixel_shuffle, device)
    }

    fn new(
        input: usize,
        mid: usize,
        up_factor: usize,
        booster: bool,
        classes: usize,
        pixel_shuffle: bool,
        device: &Device,
    ) -> Self {
        let expanded = up_factor * up_factor;
        let classifier_input = if booster { expanded } else { mid };
        let outputs = if pixel_shuffle {
            classes * expanded
        } else {
            classes
        };
        Self {
            conv: ConvBnRelu::new(input, mid, 3, 1, device),
            drop: DropoutConfig::new(0.1).init(),
            booster: booster.then(|| ConvBnRelu::new(mid, expanded, 3, 1, device)),
            conv_out: Conv2dConfig::new([classifier_input, outputs], [1, 1]).init(device),
            pixel_shuffle: pixel_shuffle.then_some(up_factor),
        }
    }

    /// Number of classes the head predicts.
    pub fn num_classes(&self) -> usize {
        let [outputs, _, _, _] = self.conv_out.weight.dims();
        outputs / self.pixel_shuffle.map_or(1, |factor| factor * factor)
    }

    /// Moves every pixel's logit of class `c` by `offsets[c]` (`[classes]`), through the
    /// classifier's bias: in the pixel-shuffle layout, class `c` is the `factor^2` channels from
    /// `c * factor^2` on, each of which becomes one pixel of its cell.
    pub fn shift_logits(&mut self, offsets: Tensor<1>) {
        let [classes] = offsets.dims();
        let expanded = self.pixel_shuffle.map_or(1, |factor| factor * factor);
        let per_channel = offsets
            .reshape([classes, 1])
            .repeat_dim(1, expanded)
            .reshape([classes * expanded]);
        add_to_bias(&mut self.conv_out, per_channel);
    }

    /// Logits before the final resize: `[N, C_in, h, w]` -> `[N, classes, h, w]` (bilinear
    /// main head), `[N, classes, 2h, 2w]` (bilinear booster heads) or
    /// `[N, classes, factor * h, factor * w]` (pixel-shuffle heads).
    pub fn forward_low_res(&self, x: Tensor<4>) -> Tensor<4> {
        let mut feat = self.drop.forward(self.conv.forward(x));
        if let Some(booster) = &self.booster {
            if self.pixel_shuffle.is_none() {
                let [h, w] = spatial_size(&feat);
                feat = resize_nearest(feat, [2 * h, 2 * w]);
            }
            feat = booster.forward(feat);
        }
        let logits = kernels::conv2d(&self.conv_out, feat, None, false);
        match self.pixel_shuffle {
            Some(factor) => pixel_shuffle(logits, factor),
            None => logits,
        }
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

/// PyTorch's `PixelShuffle(r)`: `[N, C r^2, H, W]` -> `[N, C, H r, W r]`, output
/// `(c, h r + i, w r + j)` read from input channel `c r^2 + i r + j` at `(h, w)`.
fn pixel_shuffle(x: Tensor<4>, r: usize) -> Tensor<4> {
    let [n, channels, h, w] = x.dims();
    let c = channels / (r * r);
    x.reshape([n, c, r, r, h, w])
        .permute([0, 1, 4, 2, 5, 3]) // [N, C, H, r, W, r]
        .reshape([n, c, h * r, w * r])
}
