//! What a weights file says about its model, as JSON in the safetensors metadata.

use serde::{Deserialize, Serialize};

use super::FORMAT_VERSION;
use crate::classes::ClassSet;
use crate::model::{Architecture, BackboneKind, NetworkConfig};
use crate::preprocess::{Normalization, round_up_to_multiple};

/// The [`ModelInfo::notes`] key of the list of images a model trained on: `eval` then says
/// when it is scored on them.
pub const TRAINING_IMAGES_NOTE: &str = "training_images";
/// The [`ModelInfo::notes`] key of the prior correction folded into the classifier's bias
/// (its strength and each class's logit offset), so that it is not applied twice.
pub const PRIOR_CORRECTION_NOTE: &str = "prior_correction";

/// What a weights file says about its model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// `bisenet-v1` or `bisenet-v2`.
    pub architecture: String,
    pub format_version: u32,
    /// V1's context-path backbone; V2 files have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backbone: Option<BackboneKind>,
    pub num_classes: usize,
    /// Whether the auxiliary (training-only) heads are in the file.
    pub aux_heads: bool,
    /// Channel width multiplier (1.0 is the paper's network; narrow ones serve as fixtures).
    #[serde(default = "full_width")]
    pub width: f64,
    /// V2 only: heads that end in a pixel shuffle (the PyTorch implementation's current
    /// layout) rather than a bilinear upsampling.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pixel_shuffle_heads: bool,
    pub classes: ClassSet,
    pub normalization: Normalization,
    /// `[height, width]` of the training crops, when the model was trained.
    pub train_size: Option<[usize; 2]>,
    /// When set, inputs are resized (bilinear) up to the next multiple of this before the
    /// network runs and the logits back, as the PyTorch reference does with 32 for the models
    /// it trained; our network itself takes any size.
    #[serde(default)]
    pub size_multiple: Option<usize>,
    /// Free-form provenance: dataset, iterations, batch size, training images, validation
    /// mIoU, the prior correction, the file a model was imported or fine-tuned from.
    #[serde(default)]
    pub notes: serde_json::Map<String, serde_json::Value>,
}

impl ModelInfo {
    /// Metadata for a model of `config` predicting `classes`.
    pub fn new(config: &NetworkConfig, classes: ClassSet) -> Self {
        Self {
            architecture: config.architecture().name().to_owned(),
            format_version: FORMAT_VERSION,
            backbone: config.backbone(),
            num_classes: config.num_classes(),
            aux_heads: config.aux_heads(),
            width: config.width(),
            pixel_shuffle_heads: config.pixel_shuffle_heads(),
            classes,
            normalization: Normalization::IMAGENET,
            train_size: None,
            size_multiple: None,
            notes: Default::default(),
        }
    }

    /// The network the file describes (its metadata checked by [`read_info`](super::read_info)).
    pub fn config(&self) -> NetworkConfig {
        let architecture = Architecture::from_name(&self.architecture).unwrap_or_default();
        let backbone = self.backbone.unwrap_or(BackboneKind::Xception39);
        NetworkConfig::new(architecture, backbone, self.num_classes)
            .with_aux_heads(self.aux_heads)
            .with_width(self.width)
            .with_pixel_shuffle_heads(self.pixel_shuffle_heads)
    }

    /// The size `[h, w]` the network runs at when asked for `requested`: rounded up to
    /// [`Self::size_multiple`] when the model wants that.
    pub fn inference_size(&self, requested: [usize; 2]) -> [usize; 2] {
        round_up_to_multiple(requested, self.size_multiple)
    }

    /// Records that `offsets` (one per class) were added to the classifier's logits to take
    /// back `strength` of the class weights' prior.
    pub fn record_prior_correction(&mut self, strength: f32, offsets: &[f32]) {
        self.notes.insert(
            PRIOR_CORRECTION_NOTE.into(),
            serde_json::json!({ "strength": strength, "logit_offsets": offsets }),
        );
    }

    /// The logit offsets of the prior correction the file records, one per class; `None` when
    /// it records none, `Some(Err(..))` when its note is malformed.
    pub fn prior_correction_offsets(&self) -> Option<Result<Vec<f32>, String>> {
        let note = self.notes.get(PRIOR_CORRECTION_NOTE)?;
        let offsets = note
            .get("logit_offsets")
            .and_then(|offsets| offsets.as_array())
            .and_then(|offsets| {
                offsets
                    .iter()
                    .map(|offset| offset.as_f64().map(|offset| offset as f32))
                    .collect::<Option<Vec<f32>>>()
            })
            .filter(|offsets| offsets.len() == self.num_classes);
        Some(offsets.ok_or_else(|| {
            format!("its prior correction note ({note}) does not give one logit offset per class")
        }))
    }

    /// The images the model trained on, as paths under their dataset's root, when its file
    /// lists them (`train` writes the list; files from elsewhere have none).
    pub fn training_images(&self) -> Option<std::collections::HashSet<String>> {
        let list = self.notes.get(TRAINING_IMAGES_NOTE)?.as_array()?;
        Some(
            list.iter()
                .filter_map(|key| key.as_str().map(str::to_owned))
                .collect(),
        )
    }
}

fn full_width() -> f64 {
    1.0
}
