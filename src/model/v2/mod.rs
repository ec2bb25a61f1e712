//! BiSeNet V2 (Yu et al., "BiSeNet V2: Bilateral Network with Guided Aggregation for Real-time
//! Semantic Segmentation", IJCV 2021), built to train from scratch.
//!
//! ```text
//!            ┌── DetailBranch (S1-S3) ──────────────────────── 1/8, 128 ch ──┐
//!  image ────┤                                                               ├─ BGA ─ head ─ x8 ─ logits
//!            └── SemanticBranch: Stem ─ GE stages ─ Context Embedding ─ 1/32 ┘
//!                          └ feat2 / feat3 / feat4 / feat5_4 ─ booster heads (training only)
//! ```
//!
//! Parameter names are those of the widely used PyTorch implementation (`detail.S1.0.conv`,
//! `segment.S5_4.0.dwconv1`, `bga.left1`, `head.conv_out`, `aux5_4`), up to the renames in
//! [`PYTORCH_RENAMES`]: Rust field names are snake case, and the reference's `nn.Sequential`
//! indices (`dwconv.0`, `shortcut.2`, ...) become named fields here.

mod aggregation;
mod detail;
mod gather_expansion;
mod head;
mod semantic;

use burn::prelude::*;

pub use aggregation::{BilateralGuidedAggregation, DepthwisePointwise};
pub use detail::DetailBranch;
pub use gather_expansion::{ConvBn, EXPANSION, GatherExpansion, Shortcut};
pub use head::SegmentHead;
pub use semantic::{ContextEmbedding, SemanticBranch, SemanticFeatures, StemBlock};

use crate::model::Width;
use crate::model::upsample::spatial_size;

/// `(pattern, replacement)` regexes that turn the PyTorch implementation's tensor names into
/// this network's parameter paths, applied in order.
pub const PYTORCH_RENAMES: [(&str, &str); 18] = [
    (r"^detail\.S(\d)\.", "detail.s$1."),
    (r"^segment\.S1S2\.", "segment.s1s2."),
    (r"^segment\.S(\d(?:_\d)?)\.", "segment.s$1."),
    // Gather-and-Expansion layers: a (depthwise or 1x1) conv, then its BN.
    (r"\.(dwconv|dwconv1|dwconv2|conv2)\.0\.", ".$1.conv."),
    (r"\.(dwconv|dwconv1|dwconv2|conv2)\.1\.", ".$1.bn."),
    (r"\.shortcut\.0\.", ".shortcut.depthwise.conv."),
    (r"\.shortcut\.1\.", ".shortcut.depthwise.bn."),
    (r"\.shortcut\.2\.", ".shortcut.pointwise.conv."),
    (r"\.shortcut\.3\.", ".shortcut.pointwise.bn."),
    // Bilateral Guided Aggregation.
    (r"^bga\.(left1|right2)\.0\.", "bga.$1.depthwise.conv."),
    (r"^bga\.(left1|right2)\.1\.", "bga.$1.depthwise.bn."),
    (r"^bga\.(left1|right2)\.2\.", "bga.$1.pointwise."),
    (r"^bga\.(left2|right1|conv)\.0\.", "bga.$1.conv."),
    (r"^bga\.(left2|right1|conv)\.1\.", "bga.$1.bn."),
    // Heads, bilinear layout: the booster stage, then the classifier.
    (r"\.conv_out\.0\.1\.", ".booster."),
    (r"\.conv_out\.1\.", ".conv_out."),
    // Heads, pixel-shuffle layout: the booster stage, and the main head's classifier.
    (r"\.conv_out\.0\.(conv|bn)\.", ".booster.$1."),
    (r"^head\.conv_out\.0\.", "head.conv_out."),
];

/// Configuration of a BiSeNet V2 network.
#[derive(Config, Debug)]
pub struct BiSeNetV2Config {
    pub num_classes: usize,
    /// Build the four booster heads (training only).
    #[config(default = true)]
    pub aux_heads: bool,
    /// Channel width multiplier (1.0 is the paper's network; narrow ones serve as fixtures).
    /// The booster heads' expanded widths (`up_factor^2`) do not scale.
    #[config(default = 1.0)]
    pub width: f64,
    /// Heads end in a pixel shuffle (the widely used implementation's current layout) instead
    /// of a 1x1 classifier and a bilinear upsampling (see `head.rs`).
    #[config(default = false)]
    pub pixel_shuffle_heads: bool,
}

impl BiSeNetV2Config {
    /// Middle channels of the main head (at full width).
    pub const HEAD_CHANNELS: usize = 1024;
    /// Middle channels of the booster heads (at full width).
    pub const BOOSTER_CHANNELS: usize = 128;

    pub fn init(&self, device: &Device) -> BiSeNetV2 {
        let width = Width(self.width);
        let classes = self.num_classes;
        let channels = width.of(DetailBranch::OUT_CHANNELS);
        let shuffle = self.pixel_shuffle_heads;
        let booster = |stage: usize, up_factor: usize| {
            let input = width.of(SemanticBranch::STAGE_CHANNELS[stage]);
            let mid = width.of(Self::BOOSTER_CHANNELS);
            SegmentHead::booster(input, mid, up_factor, classes, shuffle, device)
        };
        let boosters = self.aux_heads;
        BiSeNetV2 {
            detail: DetailBranch::new(width, device),
            segment: SemanticBranch::new(width, device),
            bga: BilateralGuidedAggregation::new(channels, device),
            head: SegmentHead::main(
                channels,
                width.of(Self::HEAD_CHANNELS),
                classes,
                shuffle,
                device,
            ),
            aux2: boosters.then(|| booster(0, 4)),
            aux3: boosters.then(|| booster(1, 8)),
            aux4: boosters.then(|| booster(2, 16)),
            aux5_4: boosters.then(|| booster(3, 32)),
            width: self.width,
        }
    }
}

/// BiSeNet V2. Field names are the PyTorch reference's state-dict prefixes.
#[derive(Module, Debug)]
pub struct BiSeNetV2 {
    pub detail: DetailBranch,
    pub segment: SemanticBranch,
    pub bga: BilateralGuidedAggregation,
    pub head: SegmentHead,
    /// Booster heads on `feat2`, `feat3`, `feat4` and `feat5_4` (training only).
    pub aux2: Option<SegmentHead>,
    pub aux3: Option<SegmentHead>,
    pub aux4: Option<SegmentHead>,
    pub aux5_4: Option<SegmentHead>,
    #[module(skip)]
    width: f64,
}

impl BiSeNetV2 {
    pub fn num_classes(&self) -> usize {
        self.head.num_classes()
    }

    /// Number of trainable parameters (BatchNorm running statistics excluded).
    pub fn num_trainable_params(&self) -> usize {
        crate::model::trainable::count(self)
    }

    fn boosters(&self) -> [&Option<SegmentHead>; 4] {
        [&self.aux2, &self.aux3, &self.aux4, &self.aux5_4]
    }

    pub fn has_aux_heads(&self) -> bool {
        self.boosters().iter().all(|head| head.is_some())
    }

    /// The configuration that rebuilds this network's architecture.
    pub fn config(&self) -> BiSeNetV2Config {
        BiSeNetV2Config::new(self.num_classes())
            .with_aux_heads(self.has_aux_heads())
            .with_width(self.width)
            .with_pixel_shuffle_heads(self.head.pixel_shuffle.is_some())
    }

    /// The inference form: the same network without the booster heads.
    pub fn without_aux_heads(mut self) -> Self {
        (self.aux2, self.aux3, self.aux4, self.aux5_4) = (None, None, None, None);
        self
    }

    /// Folds every BatchNorm that follows a convolution into it (inference only).
    pub fn fold_batch_norms(mut self) -> Self {
        self.detail.fold_batch_norms();
        self.segment.fold_batch_norms();
        self.bga.fold_batch_norms();
        for head in [
            Some(&mut self.head),
            self.aux2.as_mut(),
            self.aux3.as_mut(),
            self.aux4.as_mut(),
            self.aux5_4.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            head.fold_batch_norms();
        }
        self
    }

    /// Whether [`Self::fold_batch_norms`] turned this network into its inference-only form.
    pub fn is_folded(&self) -> bool {
        self.detail.s1[0].bn.is_none()
    }

    /// The aggregated feature and the semantic stages: `[N, 3, H, W]` -> `[N, 128, H/8, W/8]`.
    fn features(&self, x: Tensor<4>) -> (Tensor<4>, SemanticFeatures) {
        let semantic = self.segment.forward(x.clone());
        let aggregated = self
            .bga
            .forward(self.detail.forward(x), semantic.context.clone());
        (aggregated, semantic)
    }

    /// `[N, 3, H, W]` -> logits `[N, classes, H, W]`, plus the four booster heads' logits
    /// (same shape) when the network has them.
    pub fn forward(&self, x: Tensor<4>) -> (Tensor<4>, Option<[Tensor<4>; 4]>) {
        let size = spatial_size(&x);
        let (aggregated, semantic) = self.features(x);
        let logits = self.head.forward(aggregated, size);
        let boosters = match (&self.aux2, &self.aux3, &self.aux4, &self.aux5_4) {
            (Some(aux2), Some(aux3), Some(aux4), Some(aux5_4)) => Some([
                aux2.forward(semantic.feat2, size),
                aux3.forward(semantic.feat3, size),
                aux4.forward(semantic.feat4, size),
                aux5_4.forward(semantic.feat5_4, size),
            ]),
            _ => None,
        };
        (logits, boosters)
    }

    /// Main-head logits before the final resize: `[N, 3, H, W]` -> `[N, classes, H/8, W/8]`
    /// (`[N, classes, 8 ceil(H/8), 8 ceil(W/8)]` with pixel-shuffle heads).
    pub fn forward_low_res(&self, x: Tensor<4>) -> Tensor<4> {
        let (aggregated, _) = self.features(x);
        self.head.forward_low_res(aggregated)
    }
}
