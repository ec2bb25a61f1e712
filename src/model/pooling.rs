//! Pooling layers both networks use.

use burn::nn::PaddingConfig2d;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};

/// The 3x3 max-pool with stride 2 (padding 1) after V1's backbone stems and in V2's Stem Block.
pub(crate) fn stem_max_pool() -> MaxPool2d {
    MaxPool2dConfig::new([3, 3])
        .with_strides([2, 2])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init()
}
