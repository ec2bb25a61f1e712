//! The network: Detail Branch and Semantic Branch, aggregated by the BGA, then the head.
//!
//! ```text
//!            ┌── DetailBranch (S1-S3) ──────────────────────── 1/8, 128 ch ──┐
//!  image ────┤                                                               ├─ BGA ─ head ─ x8 ─ logits
//!            └── SemanticBranch: Stem ─ GE stages ─ Context Embedding ─ 1/32 ┘
//!                          └ feat2 / feat3 / feat4 / feat5_4 ─ booster heads (training only)
//! ```

use burn::prelude::*;

use super::aggregation::BilateralGuidedAggregation;
use super::config::BiSeNetV2Config;
use super::detail::DetailBranch;
use super::head::SegmentHead;
use super::semantic::{SemanticBranch, SemanticFeatures};
use crate::model::upsample::spatial_size;

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
    pub(super) fn new(config: &BiSeNetV2Config, device: &Device) -> Self {
        let width = config.width();
        let classes = config.num_classes;
        let channels = width.of(DetailBranch::OUT_CHANNELS);
        let shuffle = config.pixel_shuffle_heads;
        let booster = |stage: usize, up_factor: usize| {
            let input = width.of(SemanticBranch::STAGE_CHANNELS[stage]);
            let mid = width.of(BiSeNetV2Config::BOOSTER_CHANNELS);
            SegmentHead::booster(input, mid, up_factor, classes, shuffle, device)
        };
        let boosters = config.aux_heads;
        Self {
            detail: DetailBranch::new(width, device),
            segment: SemanticBranch::new(width, device),
            bga: BilateralGuidedAggregation::new(channels, device),
            head: SegmentHead::main(
                channels,
                width.of(BiSeNetV2Config::HEAD_CHANNELS),
                classes,
                shuffle,
                device,
            ),
            aux2: boosters.then(|| booster(0, 4)),
            aux3: boosters.then(|| booster(1, 8)),
            aux4: boosters.then(|| booster(2, 16)),
            aux5_4: boosters.then(|| booster(3, 32)),
            width: config.width,
        }
    }

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
