//! The one network type the segmenter, the trainer, the command line and the page hold:
//! BiSeNet V1 or V2, as the weights file says.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::upsample::resize_bilinear;
use super::v1::{BackboneKind, BiSeNet, BiSeNetConfig};
use super::v2::{BiSeNetV2, BiSeNetV2Config};

/// Which BiSeNet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Architecture {
    /// BiSeNet V1 (ECCV 2018): Spatial Path + Context Path on a backbone.
    #[default]
    #[serde(rename = "bisenet-v1")]
    V1,
    /// BiSeNet V2 (IJCV 2021): Detail Branch + Semantic Branch, built to train from scratch.
    #[serde(rename = "bisenet-v2")]
    V2,
}

impl Architecture {
    /// The name weights files use (`"bisenet-v1"`, `"bisenet-v2"`).
    pub fn name(self) -> &'static str {
        match self {
            Architecture::V1 => "bisenet-v1",
            Architecture::V2 => "bisenet-v2",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [Architecture::V1, Architecture::V2]
            .into_iter()
            .find(|a| a.name() == name)
    }
}

/// The configuration of either network.
#[derive(Debug, Clone)]
pub enum NetworkConfig {
    V1(BiSeNetConfig),
    V2(BiSeNetV2Config),
}

impl NetworkConfig {
    /// A network of `architecture` (V1 on `backbone`) for `num_classes`, with its training heads.
    pub fn new(architecture: Architecture, backbone: BackboneKind, num_classes: usize) -> Self {
        match architecture {
            Architecture::V1 => Self::V1(BiSeNetConfig::new(backbone, num_classes)),
            Architecture::V2 => Self::V2(BiSeNetV2Config::new(num_classes)),
        }
    }

    pub fn architecture(&self) -> Architecture {
        match self {
            Self::V1(_) => Architecture::V1,
            Self::V2(_) => Architecture::V2,
        }
    }

    /// V1's backbone; `None` for V2, which has none.
    pub fn backbone(&self) -> Option<BackboneKind> {
        match self {
            Self::V1(config) => Some(config.backbone),
            Self::V2(_) => None,
        }
    }

    pub fn num_classes(&self) -> usize {
        match self {
            Self::V1(config) => config.num_classes,
            Self::V2(config) => config.num_classes,
        }
    }

    pub fn aux_heads(&self) -> bool {
        match self {
            Self::V1(config) => config.aux_heads,
            Self::V2(config) => config.aux_heads,
        }
    }

    pub fn width(&self) -> f64 {
        match self {
            Self::V1(config) => config.width,
            Self::V2(config) => config.width,
        }
    }

    /// V2's pixel-shuffle head layout; always `false` for V1.
    pub fn pixel_shuffle_heads(&self) -> bool {
        matches!(self, Self::V2(config) if config.pixel_shuffle_heads)
    }

    /// Sets V2's head layout (V1 has one layout and is returned unchanged).
    pub fn with_pixel_shuffle_heads(self, pixel_shuffle: bool) -> Self {
        match self {
            Self::V1(config) => Self::V1(config),
            Self::V2(config) => Self::V2(config.with_pixel_shuffle_heads(pixel_shuffle)),
        }
    }

    pub fn with_aux_heads(self, aux_heads: bool) -> Self {
        match self {
            Self::V1(config) => Self::V1(config.with_aux_heads(aux_heads)),
            Self::V2(config) => Self::V2(config.with_aux_heads(aux_heads)),
        }
    }

    pub fn with_width(self, width: f64) -> Self {
        match self {
            Self::V1(config) => Self::V1(config.with_width(width)),
            Self::V2(config) => Self::V2(config.with_width(width)),
        }
    }

    /// A short name for tables: the backbone for V1 (`xception39`), `bisenet-v2` for V2.
    pub fn short_name(&self) -> String {
        match self {
            Self::V1(config) => config.backbone.to_string(),
            Self::V2(_) => Architecture::V2.name().to_owned(),
        }
    }

    /// A short description for messages: `BiSeNet V1 (xception39)`, `BiSeNet V2`.
    pub fn describe(&self) -> String {
        match self {
            Self::V1(config) => format!("BiSeNet V1 ({})", config.backbone),
            Self::V2(config) if config.pixel_shuffle_heads => {
                "BiSeNet V2 (pixel-shuffle heads)".to_owned()
            }
            Self::V2(_) => "BiSeNet V2".to_owned(),
        }
    }

    pub fn init(&self, device: &Device) -> Network {
        match self {
            Self::V1(config) => Network::V1(config.init(device)),
            Self::V2(config) => Network::V2(config.init(device)),
        }
    }
}

impl From<BiSeNetConfig> for NetworkConfig {
    fn from(config: BiSeNetConfig) -> Self {
        Self::V1(config)
    }
}

impl From<BiSeNetV2Config> for NetworkConfig {
    fn from(config: BiSeNetV2Config) -> Self {
        Self::V2(config)
    }
}

/// Logits of the main head and of the training-only heads (V1's two auxiliary heads, V2's four
/// booster heads; empty in the inference form), all `[N, classes, H, W]` at the input size.
#[derive(Debug, Clone)]
pub struct NetworkOutput {
    pub logits: Tensor<4>,
    pub aux: Vec<Tensor<4>>,
}

/// BiSeNet V1 or V2.
// Both variants are trees of a few kilobytes of tensor handles, one per process: boxing them
// would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Network {
    V1(BiSeNet),
    V2(BiSeNetV2),
}

impl From<BiSeNet> for Network {
    fn from(model: BiSeNet) -> Self {
        Self::V1(model)
    }
}

impl From<BiSeNetV2> for Network {
    fn from(model: BiSeNetV2) -> Self {
        Self::V2(model)
    }
}

impl Network {
    /// The configuration that rebuilds this network's architecture.
    pub fn config(&self) -> NetworkConfig {
        match self {
            Self::V1(model) => NetworkConfig::V1(model.config()),
            Self::V2(model) => NetworkConfig::V2(model.config()),
        }
    }

    pub fn num_classes(&self) -> usize {
        match self {
            Self::V1(model) => model.num_classes(),
            Self::V2(model) => model.num_classes(),
        }
    }

    pub fn has_aux_heads(&self) -> bool {
        match self {
            Self::V1(model) => model.has_aux_heads(),
            Self::V2(model) => model.has_aux_heads(),
        }
    }

    /// Number of trainable parameters (BatchNorm running statistics excluded).
    pub fn num_trainable_params(&self) -> usize {
        match self {
            Self::V1(model) => model.num_trainable_params(),
            Self::V2(model) => model.num_trainable_params(),
        }
    }

    /// The inference/export form: the same network without its training-only heads.
    pub fn without_aux_heads(self) -> Self {
        match self {
            Self::V1(model) => Self::V1(model.without_aux_heads()),
            Self::V2(model) => Self::V2(model.without_aux_heads()),
        }
    }

    /// The inference form with BatchNorms folded into the convolutions before them.
    pub fn fold_batch_norms(self) -> Self {
        match self {
            Self::V1(model) => Self::V1(model.fold_batch_norms()),
            Self::V2(model) => Self::V2(model.fold_batch_norms()),
        }
    }

    /// The same network with the main head's logit of class `c` moved by `offsets[c]`, through
    /// its classifier's bias: a prior correction (`train::prior_correction_offsets`)
    /// that costs nothing at run time and travels in the weights file. The training heads are
    /// left as they are.
    ///
    /// # Panics
    /// If `offsets` does not hold one value per class.
    pub fn shift_class_logits(self, offsets: &[f32]) -> Self {
        assert_eq!(
            offsets.len(),
            self.num_classes(),
            "one logit offset per class"
        );
        let device = self.devices()[0].clone();
        let offsets = Tensor::<1>::from_floats(offsets, &device);
        match self {
            Self::V1(mut model) => {
                model.conv_out.shift_logits(offsets);
                Self::V1(model)
            }
            Self::V2(mut model) => {
                model.head.shift_logits(offsets);
                Self::V2(model)
            }
        }
    }

    /// Whether [`Self::fold_batch_norms`] made this the inference-only form.
    pub fn is_folded(&self) -> bool {
        match self {
            Self::V1(model) => model.is_folded(),
            Self::V2(model) => model.is_folded(),
        }
    }

    /// `[N, 3, H, W]` (normalised) -> logits at the input size, plus the training heads'.
    pub fn forward(&self, x: Tensor<4>) -> NetworkOutput {
        match self {
            Self::V1(model) => {
                let output = model.forward(x);
                NetworkOutput {
                    logits: output.logits,
                    aux: output.aux.map(Vec::from).unwrap_or_default(),
                }
            }
            Self::V2(model) => {
                let (logits, boosters) = model.forward(x);
                NetworkOutput {
                    logits,
                    aux: boosters.map(Vec::from).unwrap_or_default(),
                }
            }
        }
    }

    /// Main-head logits before the final resize: `[N, 3, H, W]` -> `[N, classes, ceil(H/8),
    /// ceil(W/8)]` (`[N, classes, 8 ceil(H/8), 8 ceil(W/8)]` for V2 with pixel-shuffle heads).
    pub fn forward_low_res(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Self::V1(model) => model.forward_low_res(x),
            Self::V2(model) => model.forward_low_res(x),
        }
    }

    /// Main-head logits resized straight to `out_size = [h, w]`: `[N, classes, h, w]`.
    pub fn logits(&self, x: Tensor<4>, out_size: [usize; 2]) -> Tensor<4> {
        resize_bilinear(self.forward_low_res(x), out_size)
    }

    /// Class ids `[N, h, w]` at `out_size`, the argmax over classes.
    pub fn predict(&self, x: Tensor<4>, out_size: [usize; 2]) -> Tensor<3, Int> {
        self.logits(x, out_size).argmax(1).squeeze_dim(1)
    }
}
