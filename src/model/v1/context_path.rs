use burn::prelude::*;

use super::arm::{AttentionRefinementModule, global_average};
use super::backbone::Backbone;
use super::config::{BackboneKind, BiSeNetConfig, Width};
use crate::model::conv_bn_relu::ConvBnRelu;
use crate::model::upsample::{resize_nearest, spatial_size};

/// Context Path (paper, Sec. 3.2): a backbone for receptive field, a global-average-pool tail
/// for the whole-image context, and ARMs refining the 1/32 and 1/16 features on the way up.
#[derive(Module, Debug)]
pub struct ContextPath {
    pub backbone: Backbone,
    pub arm16: AttentionRefinementModule,
    pub arm32: AttentionRefinementModule,
    pub conv_head32: ConvBnRelu,
    pub conv_head16: ConvBnRelu,
    pub conv_avg: ConvBnRelu,
}

impl ContextPath {
    pub fn new(kind: BackboneKind, width: Width, device: &Device) -> Self {
        let [_, c16, c32] = Backbone::channels(kind, width);
        let c = width.of(BiSeNetConfig::CONTEXT_CHANNELS);
        Self {
            backbone: Backbone::new(kind, width, device),
            arm16: AttentionRefinementModule::new(c16, c, device),
            arm32: AttentionRefinementModule::new(c32, c, device),
            conv_head32: ConvBnRelu::new(c, c, 3, 1, device),
            conv_head16: ConvBnRelu::new(c, c, 3, 1, device),
            conv_avg: ConvBnRelu::new(c32, c, 1, 1, device),
        }
    }

    /// Folds every BatchNorm that follows a spatial convolution into it (inference only).
    pub fn fold_batch_norms(&mut self) {
        self.backbone.fold_batch_norms();
        for block in [
            &mut self.arm16.conv,
            &mut self.arm32.conv,
            &mut self.conv_head32,
            &mut self.conv_head16,
            &mut self.conv_avg,
        ] {
            block.fold_batch_norm();
        }
    }

    /// `[N, 3, H, W]` -> (`[N, 128, H/8, W/8]`, `[N, 128, H/16, W/16]`): the context feature
    /// fused with the spatial path, and the 1/16 feature an auxiliary head supervises.
    pub fn forward(&self, x: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let [feat8, feat16, feat32] = self.backbone.forward(x);
        let size8 = spatial_size(&feat8);
        let size16 = spatial_size(&feat16);

        let global = self.conv_avg.forward(global_average(feat32.clone())); // [N, 128, 1, 1]
        let feat32 = self.arm32.forward(feat32) + global; // [N, 128, H/32, W/32]
        let up32 = self.conv_head32.forward(resize_nearest(feat32, size16)); // [N, 128, H/16, W/16]

        let feat16 = self.arm16.forward(feat16) + up32.clone(); // [N, 128, H/16, W/16]
        let up16 = self.conv_head16.forward(resize_nearest(feat16, size8)); // [N, 128, H/8, W/8]
        (up16, up32)
    }
}
