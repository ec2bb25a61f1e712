use burn::prelude::*;

use super::bisenet_v2::BiSeNetV2;
use crate::model::Width;

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

    /// The channel width multiplier, to scale layer sizes with.
    pub fn width(&self) -> Width {
        Width(self.width)
    }

    /// Builds a freshly initialised network on `device`.
    pub fn init(&self, device: &Device) -> BiSeNetV2 {
        BiSeNetV2::new(self, device)
    }
}
