//! BiSeNet V1 (Yu et al., ECCV 2018), one file per block of the paper.
//!
//! ```text
//!            ┌── SpatialPath (3 stride-2 convs) ─────────────── 1/8, 128 ch ──┐
//!  image ────┤                                                                ├─ FFM ─ head ─ x8 ─ logits
//!            └── ContextPath: backbone ─ ARM(1/32) + global avg ─ ARM(1/16) ─ 1/8, 128 ch ─┘
//! ```
//!
//! Parameter names follow the widely used PyTorch BiSeNetV1 (`cp.resnet.layer1.0.conv1`,
//! `ffm.convblk`, `conv_out16`, ...) so its checkpoints map onto this network one to one.

mod arm;
mod backbone;
mod bisenet;
mod config;
mod context_path;
mod ffm;
mod head;
mod resnet;
mod spatial_path;
mod xception;

pub use arm::AttentionRefinementModule;
pub use backbone::Backbone;
pub use bisenet::{BiSeNet, BiSeNetOutput};
pub use config::{BackboneKind, BiSeNetConfig};
pub use context_path::ContextPath;
pub use ffm::FeatureFusionModule;
pub use head::SegmentationHead;
pub use resnet::{BasicBlock, ResNet18};
pub use spatial_path::SpatialPath;
pub use xception::{SeparableConvBn, Xception39, XceptionBlock};
