//! The two networks, each in its own folder, on shared layers:
//!
//! - [`v1`]: BiSeNet V1 (Yu et al., ECCV 2018), Spatial Path + Context Path on a backbone;
//! - [`v2`]: BiSeNet V2 (Yu et al., IJCV 2021), Detail Branch + Semantic Branch, built to train
//!   from scratch;
//! - shared: `conv_bn_relu` (convolution, BatchNorm, folding), `upsample` (explicit-size
//!   resizes), `pooling`, `width`, `trainable` (parameter counts);
//! - [`Network`]: either one, the type the segmenter, the trainer, the CLI and the page hold.

mod conv_bn_relu;
mod network;
mod pooling;
mod trainable;
pub(crate) mod upsample;
pub mod v1;
pub mod v2;
mod width;

pub use conv_bn_relu::ConvBnRelu;
pub use network::{Architecture, Network, NetworkConfig, NetworkOutput};
pub use v1::{
    AttentionRefinementModule, Backbone, BackboneKind, BasicBlock, BiSeNet, BiSeNetConfig,
    BiSeNetOutput, ContextPath, FeatureFusionModule, ResNet18, SegmentationHead, SeparableConvBn,
    SpatialPath, Xception39, XceptionBlock,
};
pub use width::Width;
