use burn::prelude::*;

use super::config::{BackboneKind, BiSeNetConfig};
use super::context_path::ContextPath;
use super::ffm::FeatureFusionModule;
use super::head::SegmentationHead;
use super::spatial_path::SpatialPath;
use crate::model::upsample::{resize_bilinear, spatial_size};

/// BiSeNet V1. Field names are the PyTorch reference's state-dict prefixes.
#[derive(Module, Debug)]
pub struct BiSeNet {
    pub cp: ContextPath,
    pub sp: SpatialPath,
    pub ffm: FeatureFusionModule,
    pub conv_out: SegmentationHead,
    /// Auxiliary head on the 1/8 context feature (training only).
    pub conv_out16: Option<SegmentationHead>,
    /// Auxiliary head on the 1/16 context feature (training only).
    pub conv_out32: Option<SegmentationHead>,
    /// The channel width multiplier the network was built with.
    #[module(skip)]
    width: f64,
}

/// Logits of the main head and, when the model has them, of the auxiliary heads; all
/// `[N, classes, H, W]` at the input size.
#[derive(Debug, Clone)]
pub struct BiSeNetOutput {
    pub logits: Tensor<4>,
    pub aux: Option<[Tensor<4>; 2]>,
}

impl BiSeNet {
    pub(super) fn new(config: &BiSeNetConfig, device: &Device) -> Self {
        let width = config.width();
        let context = width.of(BiSeNetConfig::CONTEXT_CHANNELS);
        let fused = context + width.of(SpatialPath::OUT_CHANNELS);
        let aux_head = || {
            SegmentationHead::new(
                context,
                width.of(BiSeNetConfig::AUX_HEAD_CHANNELS),
                config.num_classes,
                device,
            )
        };
        Self {
            cp: ContextPath::new(config.backbone, width, device),
            sp: SpatialPath::new(width, device),
            ffm: FeatureFusionModule::new(fused, fused, device),
            conv_out: SegmentationHead::new(
                fused,
                width.of(config.head_channels()),
                config.num_classes,
                device,
            ),
            conv_out16: config.aux_heads.then(aux_head),
            conv_out32: config.aux_heads.then(aux_head),
            width: config.width,
        }
    }

    pub fn backbone(&self) -> BackboneKind {
        self.cp.backbone.kind()
    }

    pub fn num_classes(&self) -> usize {
        let [classes, _, _, _] = self.conv_out.conv_out.weight.dims();
        classes
    }

    pub fn has_aux_heads(&self) -> bool {
        self.conv_out16.is_some() && self.conv_out32.is_some()
    }

    /// The inference/export form: the same network without the auxiliary heads.
    pub fn without_aux_heads(mut self) -> Self {
        self.conv_out16 = None;
        self.conv_out32 = None;
        self
    }

    /// The inference form with every BatchNorm that follows a spatial convolution folded into
    /// it: the same function, fewer passes over the feature maps. Folded models are for
    /// running, not for training or saving (the weights file keeps BatchNorms separate).
    pub fn fold_batch_norms(mut self) -> Self {
        self.cp.fold_batch_norms();
        self.sp.fold_batch_norms();
        self.ffm.convblk.fold_batch_norm();
        for head in [
            Some(&mut self.conv_out),
            self.conv_out16.as_mut(),
            self.conv_out32.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            head.conv.fold_batch_norm();
        }
        self
    }

    /// Whether [`Self::fold_batch_norms`] turned this network into its inference-only form.
    pub fn is_folded(&self) -> bool {
        // Folding removes every such BatchNorm at once; the spatial path's first is one of them.
        self.sp.conv1.bn.is_none()
    }

    /// The configuration that rebuilds this network's architecture.
    pub fn config(&self) -> BiSeNetConfig {
        BiSeNetConfig::new(self.backbone(), self.num_classes())
            .with_aux_heads(self.has_aux_heads())
            .with_width(self.width)
    }

    /// Runs both paths and the FFM: `[N, 3, H, W]` -> (fused `[N, 256, H/8, W/8]`, context
    /// `[N, 128, H/8, W/8]`, context `[N, 128, H/16, W/16]`), channels at full width.
    fn features(&self, x: Tensor<4>) -> (Tensor<4>, Tensor<4>, Tensor<4>) {
        let (context8, context16) = self.cp.forward(x.clone());
        let spatial = self.sp.forward(x);
        let fused = self.ffm.forward(spatial, context8.clone());
        (fused, context8, context16)
    }

    /// `[N, 3, H, W]` (normalised) -> logits `[N, classes, H, W]`, plus the auxiliary logits
    /// when the model has its auxiliary heads.
    pub fn forward(&self, x: Tensor<4>) -> BiSeNetOutput {
        let size = spatial_size(&x);
        let (fused, context8, context16) = self.features(x);
        let logits = self.conv_out.forward(fused, size);
        let aux = match (&self.conv_out16, &self.conv_out32) {
            (Some(head16), Some(head32)) => Some([
                head16.forward(context8, size),
                head32.forward(context16, size),
            ]),
            _ => None,
        };
        BiSeNetOutput { logits, aux }
    }

    /// Main-head logits at 1/8 of the input size, before the final resize:
    /// `[N, 3, H, W]` -> `[N, classes, ceil(H/8), ceil(W/8)]`.
    pub fn forward_low_res(&self, x: Tensor<4>) -> Tensor<4> {
        let (fused, _, _) = self.features(x);
        self.conv_out.forward_low_res(fused)
    }

    /// Main-head logits resized straight to `out_size = [h, w]` (the input size, or the size of
    /// the original image when the network ran on a resized copy): `[N, classes, h, w]`.
    /// Skips the auxiliary heads even when the model has them.
    pub fn logits(&self, x: Tensor<4>, out_size: [usize; 2]) -> Tensor<4> {
        resize_bilinear(self.forward_low_res(x), out_size)
    }

    /// Inference fast path: class ids `[N, h, w]` at `out_size`, the argmax over classes.
    pub fn predict(&self, x: Tensor<4>, out_size: [usize; 2]) -> Tensor<3, Int> {
        self.logits(x, out_size).argmax(1).squeeze_dim(1)
    }
}

impl BiSeNet {
    /// Number of trainable parameters (BatchNorm running statistics excluded).
    pub fn num_trainable_params(&self) -> usize {
        crate::model::trainable::count(self)
    }
}
