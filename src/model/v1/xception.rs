//! Xception39, the paper's lightweight context-path backbone.
//!
//! Layer table, taken from the authors' own code (TorchSeg, `furnace/seg_opr/.../xception.py`,
//! `xception39 = Xception(Block, [4, 8, 4], [16, 32, 64])`), for a `H x W` input:
//!
//! | stage  | operator                                  | stride | out ch | size   |
//! |--------|-------------------------------------------|--------|--------|--------|
//! | conv1  | 3x3 ConvBNReLU                            | 2      | 8      | 1/2    |
//! | pool   | 3x3 max-pool                              | 2      | 8      | 1/4    |
//! | layer1 | 4 blocks, mid 16, expansion 4             | 2      | 64     | 1/8    |
//! | layer2 | 8 blocks, mid 32, expansion 4             | 2      | 128    | 1/16   |
//! | layer3 | 4 blocks, mid 64, expansion 4             | 2      | 256    | 1/32   |
//!
//! A block is three separable convs (3x3 depthwise + 1x1 pointwise + BN; ReLU after the first
//! two) on the residual branch, plus a separable-conv projection on the shortcut of the first,
//! strided block of each stage, and a ReLU after the sum. The backbone has 0.30 M parameters.

use burn::nn::pool::MaxPool2d;
use burn::prelude::*;

use super::config::Width;
use crate::kernels;
use crate::model::conv_bn_relu::{ConvBnRelu, conv};
use crate::model::pooling::stem_max_pool;
use burn::nn::conv::Conv2d;

/// Depthwise 3x3 conv followed by a pointwise 1x1 ConvBN(ReLU).
#[derive(Module, Debug)]
pub struct SeparableConvBn {
    pub depthwise: Conv2d,
    pub pointwise: ConvBnRelu,
}

impl SeparableConvBn {
    fn new(in_channels: usize, out_channels: usize, stride: usize, device: &Device) -> Self {
        Self {
            depthwise: conv(in_channels, in_channels, 3, stride, in_channels, device),
            pointwise: ConvBnRelu::new(in_channels, out_channels, 1, 1, device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.pointwise
            .forward(kernels::conv2d(&self.depthwise, x, None, false))
    }

    /// `relu(forward(x) + shortcut)`, the end of a residual block, in one fused step.
    fn forward_residual(&self, x: Tensor<4>, shortcut: Tensor<4>) -> Tensor<4> {
        self.pointwise
            .forward_residual(kernels::conv2d(&self.depthwise, x, None, false), shortcut)
    }

    fn fold_batch_norm(&mut self) {
        self.pointwise.fold_batch_norm();
    }
}

/// Xception residual block with expansion 4.
#[derive(Module, Debug)]
pub struct XceptionBlock {
    pub proj: Option<SeparableConvBn>,
    pub residual: Vec<SeparableConvBn>,
}

impl XceptionBlock {
    const EXPANSION: usize = 4;

    fn new(in_channels: usize, mid_channels: usize, stride: usize, device: &Device) -> Self {
        let out_channels = mid_channels * Self::EXPANSION;
        let proj = (stride > 1).then(|| {
            let mut proj = SeparableConvBn::new(in_channels, out_channels, stride, device);
            proj.pointwise = proj.pointwise.without_relu();
            proj
        });
        let mut last = SeparableConvBn::new(mid_channels, out_channels, 1, device);
        last.pointwise = last.pointwise.without_relu();
        Self {
            proj,
            residual: vec![
                SeparableConvBn::new(in_channels, mid_channels, stride, device),
                SeparableConvBn::new(mid_channels, mid_channels, 1, device),
                last,
            ],
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let shortcut = match &self.proj {
            Some(proj) => proj.forward(x.clone()),
            None => x.clone(),
        };
        let (last, first) = self.residual.split_last().expect("three separable convs");
        let x = first.iter().fold(x, |x, conv| conv.forward(x));
        last.forward_residual(x, shortcut)
    }

    fn fold_batch_norms(&mut self) {
        self.proj
            .iter_mut()
            .chain(&mut self.residual)
            .for_each(SeparableConvBn::fold_batch_norm);
    }
}

/// Xception39 returning the 1/8, 1/16 and 1/32 feature maps.
#[derive(Module, Debug)]
pub struct Xception39 {
    pub conv1: ConvBnRelu,
    pub maxpool: MaxPool2d,
    pub layer1: Vec<XceptionBlock>,
    pub layer2: Vec<XceptionBlock>,
    pub layer3: Vec<XceptionBlock>,
}

impl Xception39 {
    /// Middle channels of the three stages (at full width).
    const MID_CHANNELS: [usize; 3] = [16, 32, 64];

    /// Channels of the 1/8, 1/16 and 1/32 features: 64, 128 and 256 at full width.
    pub fn channels(width: Width) -> [usize; 3] {
        Self::MID_CHANNELS.map(|mid| width.of(mid) * XceptionBlock::EXPANSION)
    }

    pub fn new(width: Width, device: &Device) -> Self {
        let stem = width.of(8);
        let [mid8, mid16, mid32] = Self::MID_CHANNELS.map(|mid| width.of(mid));
        let [c8, c16, _] = Self::channels(width);
        let stage = |in_channels: usize, mid_channels: usize, blocks: usize| {
            let out_channels = mid_channels * XceptionBlock::EXPANSION;
            (0..blocks)
                .map(|i| match i {
                    0 => XceptionBlock::new(in_channels, mid_channels, 2, device),
                    _ => XceptionBlock::new(out_channels, mid_channels, 1, device),
                })
                .collect()
        };
        Self {
            conv1: ConvBnRelu::new(3, stem, 3, 2, device),
            maxpool: stem_max_pool(),
            layer1: stage(stem, mid8, 4),
            layer2: stage(c8, mid16, 8),
            layer3: stage(c16, mid32, 4),
        }
    }

    /// `[N, 3, H, W]` -> `([N, 64, H/8, W/8], [N, 128, H/16, W/16], [N, 256, H/32, W/32])`
    pub fn forward(&self, x: Tensor<4>) -> [Tensor<4>; 3] {
        let x = kernels::max_pool2d(&self.maxpool, self.conv1.forward(x)); // 1/4
        let run = |x, blocks: &[XceptionBlock]| blocks.iter().fold(x, |x, b| b.forward(x));
        let feat8 = run(x, &self.layer1);
        let feat16 = run(feat8.clone(), &self.layer2);
        let feat32 = run(feat16.clone(), &self.layer3);
        [feat8, feat16, feat32]
    }

    /// Folds every BatchNorm into its convolution (inference only).
    pub fn fold_batch_norms(&mut self) {
        self.conv1.fold_batch_norm();
        for layer in [&mut self.layer1, &mut self.layer2, &mut self.layer3] {
            layer.iter_mut().for_each(XceptionBlock::fold_batch_norms);
        }
    }
}
