use burn::prelude::*;

use super::config::{BackboneKind, Width};
use super::resnet::ResNet18;
use super::xception::Xception39;

/// The context path's feature extractor: a fast-downsampling network giving a large receptive
/// field. Either backbone returns features at 1/8, 1/16 and 1/32 of the input.
#[derive(Module, Debug)]
pub enum Backbone {
    ResNet18(ResNet18),
    Xception39(Xception39),
}

impl Backbone {
    pub fn new(kind: BackboneKind, width: Width, device: &Device) -> Self {
        match kind {
            BackboneKind::ResNet18 => Backbone::ResNet18(ResNet18::new(width, device)),
            BackboneKind::Xception39 => Backbone::Xception39(Xception39::new(width, device)),
        }
    }

    pub fn kind(&self) -> BackboneKind {
        match self {
            Backbone::ResNet18(_) => BackboneKind::ResNet18,
            Backbone::Xception39(_) => BackboneKind::Xception39,
        }
    }

    /// Channels of the 1/8, 1/16 and 1/32 features.
    pub fn channels(kind: BackboneKind, width: Width) -> [usize; 3] {
        match kind {
            BackboneKind::ResNet18 => ResNet18::channels(width),
            BackboneKind::Xception39 => Xception39::channels(width),
        }
    }

    /// Folds every BatchNorm into its convolution (inference only).
    pub fn fold_batch_norms(&mut self) {
        match self {
            Backbone::ResNet18(net) => net.fold_batch_norms(),
            Backbone::Xception39(net) => net.fold_batch_norms(),
        }
    }

    /// `[N, 3, H, W]` -> features at 1/8, 1/16 and 1/32 (sizes rounded up).
    pub fn forward(&self, x: Tensor<4>) -> [Tensor<4>; 3] {
        match self {
            Backbone::ResNet18(net) => net.forward(x),
            Backbone::Xception39(net) => net.forward(x),
        }
    }
}
