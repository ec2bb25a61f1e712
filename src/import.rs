//! Importing PyTorch BiSeNet V1 and V2 checkpoints (`.pth`, `.pt`) into this crate's weights
//! file.
//!
//! The widely used PyTorch BiSeNet V1 and V2 name their tensors as our modules do, up to the
//! renames of [`crate::weights::pytorch_names`], so importing is a load with burn's own PyTorch
//! reader; what this module adds is finding the state dict inside the usual wrappers (a
//! `state_dict` or `model` key, DataParallel's `module.` prefix), reading the architecture off
//! the tensor names and shapes, and refusing a checkpoint that does not fit with every
//! mismatch named.

use std::collections::HashSet;
use std::path::Path;

use burn::prelude::*;
use burn::store::pytorch::PytorchReader;
use burn::store::{ModuleSnapshot, PytorchStore};
use thiserror::Error;

use crate::classes::ClassSet;
use crate::model::v2::BiSeNetV2Config;
use crate::model::{BackboneKind, BiSeNetConfig, NetworkConfig};
use crate::preprocess::Normalization;
use crate::weights::pytorch_names::{backbone_key, checkpoint_renames, escape_regex};
use crate::weights::{LoadedModel, ModelInfo, WeightsError, refuse_mismatches};

/// The main classifier: every BiSeNetV1 state dict has it, so where it sits reveals wrapper
/// prefixes (`state_dict.`, `model.`, DataParallel's `module.`), and its shape the class count.
const HEAD_KEY: &str = "conv_out.conv_out.weight";
/// BiSeNetV2's main classifier (`head.conv_out` is `Sequential(Identity, Conv2d)`).
const V2_HEAD_KEY: &str = "head.conv_out.1.weight";
/// The same in the current, pixel-shuffle head layout (`Sequential(Conv2d, PixelShuffle(8))`).
const V2_SHUFFLE_HEAD_KEY: &str = "head.conv_out.0.weight";

/// Why a checkpoint could not be imported.
#[derive(Debug, Error)]
pub enum ImportError {
    #[error(
        "cannot read {path} as a PyTorch checkpoint: {reason}. Expected a file written by `torch.save(model.state_dict(), ...)`"
    )]
    Read { path: String, reason: String },
    #[error(
        "{path} holds no BiSeNet state dict: none of its {count} tensors is `{HEAD_KEY}` (V1) or `{V2_HEAD_KEY}` / `{V2_SHUFFLE_HEAD_KEY}` (V2) (it starts with {first})"
    )]
    NotBiSeNet {
        path: String,
        count: usize,
        first: String,
    },
    #[error(
        "cannot tell the backbone of {path}: expected `{prefix}cp.resnet.*` (ResNet18) or `{prefix}cp.xception.*` (Xception39) tensors"
    )]
    UnknownBackbone { path: String, prefix: String },
    #[error(transparent)]
    Weights(#[from] WeightsError),
}

/// What the user states about a checkpoint that its tensors cannot say.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub classes: ClassSet,
    pub normalization: Normalization,
    /// Run at sizes rounded up to this multiple (32 for the PyTorch reference's models).
    pub size_multiple: Option<usize>,
}

/// The architecture a state dict describes, read off its names and shapes.
#[derive(Debug, Clone)]
struct Layout {
    /// Wrapper prefix in front of every BiSeNet tensor name (`""`, `"module."`, ...).
    prefix: String,
    config: NetworkConfig,
}

fn detect_layout(reader: &PytorchReader, path: &Path) -> Result<Layout, ImportError> {
    let mut keys = reader.keys();
    keys.sort();
    let find = |head: &str| {
        keys.iter()
            .find(|key| *key == head || key.ends_with(&format!(".{head}")))
            .map(|key| key[..key.len() - head.len()].to_owned())
    };
    let v2 = find(V2_HEAD_KEY)
        .map(|prefix| (prefix, V2_HEAD_KEY, false))
        .or_else(|| find(V2_SHUFFLE_HEAD_KEY).map(|prefix| (prefix, V2_SHUFFLE_HEAD_KEY, true)));
    if let Some((prefix, head, pixel_shuffle)) = v2 {
        let shape = |name: &str| {
            reader
                .get(&format!("{prefix}{name}"))
                .map(|tensor| tensor.shape().to_vec())
        };
        // A pixel-shuffle head predicts each class at 8 x 8 sub-pixel positions.
        let outputs_per_class = if pixel_shuffle { 64 } else { 1 };
        let num_classes =
            shape(head).and_then(|s| s.first().copied()).unwrap_or(0) / outputs_per_class;
        // The detail branch's first conv has 64 output channels at full width.
        let width = shape("detail.S1.0.conv.weight")
            .and_then(|s| s.first().copied())
            .map_or(1.0, |channels| channels as f64 / 64.0);
        let boosters = ["aux2", "aux3", "aux4", "aux5_4"]
            .iter()
            .all(|head| shape(&format!("{head}.conv_out.1.weight")).is_some());
        let config = BiSeNetV2Config::new(num_classes)
            .with_aux_heads(boosters)
            .with_width(width)
            .with_pixel_shuffle_heads(pixel_shuffle);
        return Ok(Layout {
            prefix,
            config: config.into(),
        });
    }
    let head = keys
        .iter()
        .find(|key| *key == HEAD_KEY || key.ends_with(&format!(".{HEAD_KEY}")))
        .ok_or_else(|| ImportError::NotBiSeNet {
            path: path.display().to_string(),
            count: keys.len(),
            first: keys.iter().take(3).cloned().collect::<Vec<_>>().join(", "),
        })?;
    let prefix = head[..head.len() - HEAD_KEY.len()].to_owned();
    let shape = |name: &str| {
        reader
            .get(&format!("{prefix}{name}"))
            .map(|tensor| tensor.shape().to_vec())
    };
    let backbone = BackboneKind::ALL
        .into_iter()
        .find(|&kind| {
            keys.iter()
                .any(|key| key.starts_with(&format!("{prefix}cp.{}.", backbone_key(kind))))
        })
        .ok_or_else(|| ImportError::UnknownBackbone {
            path: path.display().to_string(),
            prefix: prefix.clone(),
        })?;
    let num_classes = shape(HEAD_KEY)
        .and_then(|s| s.first().copied())
        .unwrap_or(0);
    // The spatial path's first conv has 64 output channels at full width.
    let width = shape("sp.conv1.conv.weight")
        .and_then(|s| s.first().copied())
        .map_or(1.0, |channels| channels as f64 / 64.0);
    let aux_heads = shape("conv_out16.conv_out.weight").is_some()
        && shape("conv_out32.conv_out.weight").is_some();
    let config = BiSeNetConfig::new(backbone, num_classes)
        .with_aux_heads(aux_heads)
        .with_width(width);
    Ok(Layout {
        prefix,
        config: config.into(),
    })
}

/// Reads a PyTorch BiSeNet V1 or V2 checkpoint into a model in inference form (auxiliary heads
/// dropped) with its metadata. Nothing is written; every mismatch is an error.
pub fn import_pytorch(
    path: &Path,
    options: &ImportOptions,
    device: &Device,
) -> Result<LoadedModel, ImportError> {
    let read_error = |reason: String| ImportError::Read {
        path: path.display().to_string(),
        reason,
    };
    let reader = PytorchReader::new(path).map_err(|e| read_error(e.to_string()))?;
    let Layout { prefix, config } = detect_layout(&reader, path)?;
    if config.num_classes() != options.classes.len() {
        return Err(WeightsError::WrongClassCount {
            expected: options.classes.len(),
            found: config.num_classes(),
            context: "the class list given with --classes".to_owned(),
        }
        .into());
    }
    // Tensors beside the state dict (optimizer state, EMA copies) are not the model's.
    let outside: HashSet<String> = reader
        .keys()
        .into_iter()
        .filter(|key| !key.starts_with(&prefix))
        .collect();
    drop(reader);

    let mut store = PytorchStore::from_file(path)
        .skip_enum_variants(true)
        .validate(false)
        .allow_partial(true);
    if !prefix.is_empty() {
        store = store.with_key_remapping(format!("^{}", escape_regex(&prefix)), "");
    }
    for (from, to) in checkpoint_renames(&config) {
        store = store.with_key_remapping(from, to);
    }
    let mut model = config.init(device);
    let result = model
        .load_from(&mut store)
        .map_err(|e| read_error(e.to_string()))?;
    // PyTorch's BatchNorm counts its updates in `num_batches_tracked`; inference never uses it.
    refuse_mismatches(&result, &config, |name| {
        name.ends_with(".num_batches_tracked") || outside.contains(name)
    })?;

    let mut info = ModelInfo::new(
        &config.clone().with_aux_heads(false),
        options.classes.clone(),
    );
    info.normalization = options.normalization;
    info.size_multiple = options.size_multiple;
    let source = path.file_name().unwrap_or_default().to_string_lossy();
    info.notes
        .insert("imported_from".to_owned(), source.into_owned().into());
    Ok(LoadedModel {
        model: model.without_aux_heads(),
        info,
    })
}
