//! The Semantic Branch: narrow channels, deep layers and a fast downsampling to 1/32 for
//! high-level context. Stem Block, Gather-and-Expansion stages, Context Embedding.

use burn::nn::BatchNorm;
use burn::nn::pool::MaxPool2d;
use burn::prelude::*;

use super::gather_expansion::GatherExpansion;
use crate::kernels;
use crate::model::Width;
use crate::model::conv_bn_relu::{ConvBnRelu, batch_norm, batch_norm_forward};
use crate::model::pooling::stem_max_pool;

/// Stem Block: a strided 3x3 conv, then a conv branch (1x1 halving, 3x3 s2) beside a 3x3
/// max-pool s2, concatenated and fused by a 3x3: `[N, 3, H, W]` -> `[N, 16, H/4, W/4]`.
#[derive(Module, Debug)]
pub struct StemBlock {
    pub conv: ConvBnRelu,
    pub left: Vec<ConvBnRelu>,
    pub right: MaxPool2d,
    pub fuse: ConvBnRelu,
}

impl StemBlock {
    fn new(width: Width, device: &Device) -> Self {
        let [c8, c16] = [8, 16].map(|c| width.of(c));
        Self {
            conv: ConvBnRelu::new(3, c16, 3, 2, device),
            left: vec![
                ConvBnRelu::new(c16, c8, 1, 1, device),
                ConvBnRelu::new(c8, c16, 3, 2, device),
            ],
            right: stem_max_pool(),
            fuse: ConvBnRelu::new(2 * c16, c16, 3, 1, device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self.conv.forward(x);
        let left = self.left.iter().fold(x.clone(), |x, l| l.forward(x));
        self.fuse.forward(Tensor::cat(
            vec![left, kernels::max_pool2d(&self.right, x)],
            1,
        ))
    }
}

/// Context Embedding: global average pooling, BN, 1x1 ConvBNReLU, added to every pixel, then
/// a 3x3 ConvBNReLU: `[N, 128, h, w]` -> `[N, 128, h, w]`.
#[derive(Module, Debug)]
pub struct ContextEmbedding {
    pub bn: Option<BatchNorm>,
    pub conv_gap: ConvBnRelu,
    pub conv_last: ConvBnRelu,
}

impl ContextEmbedding {
    fn new(channels: usize, device: &Device) -> Self {
        Self {
            bn: Some(batch_norm(channels, device)),
            conv_gap: ConvBnRelu::new(channels, channels, 1, 1, device),
            conv_last: ConvBnRelu::new(channels, channels, 3, 1, device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut gap = x.clone().mean_dim(2).mean_dim(3); // [N, C, 1, 1]
        if let Some(bn) = &self.bn {
            gap = batch_norm_forward(bn, gap);
        }
        self.conv_last.forward(self.conv_gap.forward(gap) + x)
    }
}

/// The Semantic Branch's features: `feat2` (1/4, 16 ch), `feat3` (1/8, 32), `feat4` (1/16,
/// 64), `feat5_4` (1/32, 128) feed the booster heads; `context` (1/32, 128) the aggregation.
pub struct SemanticFeatures {
    pub feat2: Tensor<4>,
    pub feat3: Tensor<4>,
    pub feat4: Tensor<4>,
    pub feat5_4: Tensor<4>,
    pub context: Tensor<4>,
}

/// `S1S2` Stem Block (1/4), `S3` and `S4` (GE s2 + GE), `S5_4` (GE s2 + 3x GE), `S5_5`
/// Context Embedding (1/32).
#[derive(Module, Debug)]
pub struct SemanticBranch {
    pub s1s2: StemBlock,
    pub s3: Vec<GatherExpansion>,
    pub s4: Vec<GatherExpansion>,
    pub s5_4: Vec<GatherExpansion>,
    pub s5_5: ContextEmbedding,
}

/// A GE layer with stride 2 to `output` channels, then `repeats` stride-1 layers.
fn stage(input: usize, output: usize, repeats: usize, device: &Device) -> Vec<GatherExpansion> {
    std::iter::once(GatherExpansion::new(input, output, 2, device))
        .chain((0..repeats).map(|_| GatherExpansion::new(output, output, 1, device)))
        .collect()
}

impl SemanticBranch {
    pub const OUT_CHANNELS: usize = 128;
    /// Channels of `feat2`, `feat3`, `feat4` and `feat5_4` (at full width).
    pub const STAGE_CHANNELS: [usize; 4] = [16, 32, 64, 128];

    pub fn new(width: Width, device: &Device) -> Self {
        let [c16, c32, c64, c128] = Self::STAGE_CHANNELS.map(|c| width.of(c));
        Self {
            s1s2: StemBlock::new(width, device),
            s3: stage(c16, c32, 1, device),
            s4: stage(c32, c64, 1, device),
            s5_4: stage(c64, c128, 3, device),
            s5_5: ContextEmbedding::new(c128, device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> SemanticFeatures {
        let run = |layers: &[GatherExpansion], x| layers.iter().fold(x, |x, l| l.forward(x));
        let feat2 = self.s1s2.forward(x);
        let feat3 = run(&self.s3, feat2.clone());
        let feat4 = run(&self.s4, feat3.clone());
        let feat5_4 = run(&self.s5_4, feat4.clone());
        let context = self.s5_5.forward(feat5_4.clone());
        SemanticFeatures {
            feat2,
            feat3,
            feat4,
            feat5_4,
            context,
        }
    }

    pub fn fold_batch_norms(&mut self) {
        let stem = &mut self.s1s2;
        for layer in [&mut stem.conv, &mut stem.fuse]
            .into_iter()
            .chain(&mut stem.left)
        {
            layer.fold_batch_norm();
        }
        for layer in self.s3.iter_mut().chain(&mut self.s4).chain(&mut self.s5_4) {
            layer.fold_batch_norms();
        }
        // The Context Embedding's own BatchNorm follows a pooling, not a convolution: it stays.
        self.s5_5.conv_gap.fold_batch_norm();
        self.s5_5.conv_last.fold_batch_norm();
    }
}
