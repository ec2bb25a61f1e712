use std::fmt;
use std::str::FromStr;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::bisenet::BiSeNet;
pub use crate::model::width::Width;

/// Which context-path backbone a BiSeNet uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackboneKind {
    /// ResNet18, laid out like the widely used PyTorch BiSeNetV1 (importable 1:1).
    ResNet18,
    /// The paper's lightweight Xception39 (the authors' TorchSeg layer table).
    Xception39,
}

impl BackboneKind {
    pub const ALL: [BackboneKind; 2] = [BackboneKind::ResNet18, BackboneKind::Xception39];

    /// The name used on the command line, in weights files and in state-dict keys.
    pub fn name(self) -> &'static str {
        match self {
            BackboneKind::ResNet18 => "resnet18",
            BackboneKind::Xception39 => "xception39",
        }
    }
}

impl fmt::Display for BackboneKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BackboneKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown backbone `{s}`: expected resnet18 or xception39"))
    }
}

/// Configuration of a BiSeNet V1 network.
#[derive(Config, Debug)]
pub struct BiSeNetConfig {
    /// Context-path backbone.
    pub backbone: BackboneKind,
    /// Number of output classes.
    pub num_classes: usize,
    /// Build the two auxiliary heads that deep-supervise the context path. They only serve
    /// training; inference and exported models leave them out.
    #[config(default = true)]
    pub aux_heads: bool,
    /// Channel width multiplier applied to every layer (1.0 is the paper's network). Narrow
    /// networks keep test fixtures small; the shipped models use 1.0.
    #[config(default = 1.0)]
    pub width: f64,
}

impl BiSeNetConfig {
    /// Channels of every context-path feature after its ARM, and of the spatial path output
    /// (at full width).
    pub const CONTEXT_CHANNELS: usize = 128;
    /// Middle channels of the auxiliary heads (as in the PyTorch reference).
    pub const AUX_HEAD_CHANNELS: usize = 64;

    /// The channel width multiplier, to scale layer sizes with.
    pub fn width(&self) -> Width {
        Width(self.width)
    }

    /// Middle channels of the main head (at full width): 256 in the PyTorch ResNet18
    /// reference, 64 in the authors' Xception39 model (its main head costs more than the whole
    /// backbone otherwise).
    pub fn head_channels(&self) -> usize {
        match self.backbone {
            BackboneKind::ResNet18 => 256,
            BackboneKind::Xception39 => 64,
        }
    }

    /// Builds a freshly initialised network on `device`.
    pub fn init(&self, device: &Device) -> BiSeNet {
        BiSeNet::new(self, device)
    }
}
