//! BiSeNet V2, built to train from scratch: a Detail Branch and a Semantic Branch joined by
//! Bilateral Guided Aggregation, one file per block of the paper.
//!
//! - Paper: [BiSeNet V2: Bilateral Network with Guided Aggregation for Real-time Semantic
//!   Segmentation](https://arxiv.org/abs/2004.02147) (Yu et al., IJCV 2021).
//! - Parameter names follow the widely used PyTorch implementation (`detail.S1.0.conv`,
//!   `bga.left1`, `aux5_4`, ...) up to the renames of [`crate::weights::pytorch_names`].
//!
//! ```text
//! bisenet train --root data/camvid --arch v2 --iters 48000 --out runs/v2
//! ```

mod aggregation;
mod bisenet_v2;
mod config;
mod detail;
mod gather_expansion;
mod head;
mod semantic;

pub use aggregation::{BilateralGuidedAggregation, DepthwisePointwise};
pub use bisenet_v2::BiSeNetV2;
pub use config::BiSeNetV2Config;
pub use detail::DetailBranch;
pub use gather_expansion::{ConvBn, EXPANSION, GatherExpansion, Shortcut};
pub use head::SegmentHead;
pub use semantic::{ContextEmbedding, SemanticBranch, SemanticFeatures, StemBlock};
