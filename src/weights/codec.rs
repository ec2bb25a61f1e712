//! Bytes to model and back: the safetensors encoding, its metadata checks, and the errors that
//! name every tensor that does not fit.

use burn::prelude::*;
use burn::store::{
    ApplyError, ApplyResult, BurnToPyTorchAdapter, FloatCastAdapter, HalfPrecisionAdapter,
    ModuleAdapter, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore,
};
use burn::tensor::DType;

use super::pytorch_names::{file_renames, pytorch_name};
use super::{FORMAT_VERSION, METADATA_KEY, ModelInfo, WeightsError};
use crate::model::{Architecture, Network, NetworkConfig};

/// Storage precision of the convolution weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// Half the size; what shipped models use.
    #[default]
    F16,
    /// Bit-exact (`import --f32`), for comparing with the PyTorch original.
    F32,
}

/// A model with its metadata, as read from a weights file.
#[derive(Debug)]
pub struct LoadedModel {
    pub model: Network,
    pub info: ModelInfo,
}

impl LoadedModel {
    /// Checks that the model predicts `expected` classes.
    pub fn expect_classes(&self, expected: usize, context: &str) -> Result<(), WeightsError> {
        if self.info.num_classes == expected {
            Ok(())
        } else {
            Err(WeightsError::WrongClassCount {
                expected,
                found: self.info.num_classes,
                context: context.to_owned(),
            })
        }
    }
}

/// Serialises a model and its metadata to safetensors bytes.
pub fn to_bytes(
    model: &Network,
    info: &ModelInfo,
    precision: Precision,
) -> Result<Vec<u8>, WeightsError> {
    if model.is_folded() {
        return Err(WeightsError::Write(
            "this model has its BatchNorms folded into the convolutions for inference; save the \
             model as loaded or trained instead"
                .to_owned(),
        ));
    }
    let config = model.config();
    let mut info = info.clone();
    info.architecture = config.architecture().name().to_owned();
    info.aux_heads = model.has_aux_heads();
    info.backbone = config.backbone();
    info.num_classes = model.num_classes();
    info.width = config.width();
    info.pixel_shuffle_heads = config.pixel_shuffle_heads();
    let json = serde_json::to_string(&info).map_err(|e| WeightsError::Write(e.to_string()))?;
    let store = SafetensorsStore::from_bytes(None)
        .skip_enum_variants(true)
        .metadata(METADATA_KEY, json);
    let mut store = match precision {
        Precision::F16 => {
            store.with_to_adapter(BurnToPyTorchAdapter.chain(HalfPrecisionAdapter::new()))
        }
        Precision::F32 => store.with_to_adapter(BurnToPyTorchAdapter),
    };
    for (from, to) in file_renames(info.backbone, true) {
        store = store.with_key_remapping(from, to);
    }
    model
        .save_into(&mut store)
        .map_err(|e| WeightsError::Write(e.to_string()))?;
    store
        .get_bytes()
        .map_err(|e| WeightsError::Write(e.to_string()))
}

/// Reads the metadata of a weights file without building the model, checking that the bytes
/// are a complete safetensors file.
pub fn read_info(bytes: &[u8]) -> Result<ModelInfo, WeightsError> {
    let (_, metadata) =
        safetensors::SafeTensors::read_metadata(bytes).map_err(|e| match declared_len(bytes) {
            Some(expected) if expected > bytes.len() => WeightsError::Truncated {
                expected,
                found: bytes.len(),
            },
            _ => WeightsError::NotSafetensors(e.to_string()),
        })?;
    let json = metadata
        .metadata()
        .as_ref()
        .and_then(|m| m.get(METADATA_KEY))
        .ok_or(WeightsError::MissingMetadata)?;
    let info: ModelInfo =
        serde_json::from_str(json).map_err(|e| WeightsError::BadMetadata(e.to_string()))?;
    match Architecture::from_name(&info.architecture) {
        None => {
            return Err(WeightsError::WrongArchitecture {
                found: info.architecture,
            });
        }
        Some(Architecture::V1) if info.backbone.is_none() => {
            return Err(WeightsError::BadMetadata(
                "a bisenet-v1 model without a backbone".to_owned(),
            ));
        }
        Some(_) => {}
    }
    if info.format_version != FORMAT_VERSION {
        return Err(WeightsError::UnsupportedVersion {
            found: info.format_version,
        });
    }
    if !(info.width > 0.0 && info.width <= 4.0) {
        return Err(WeightsError::BadMetadata(format!(
            "width multiplier {} is outside (0, 4]",
            info.width
        )));
    }
    if info.classes.len() != info.num_classes {
        return Err(WeightsError::BadMetadata(format!(
            "{} class names for a {}-class model",
            info.classes.len(),
            info.num_classes
        )));
    }
    Ok(info)
}

/// The length a safetensors file declares for itself: the 8-byte header size, the JSON header,
/// and (when the header is complete) the end of its last tensor. `None` when the bytes do not
/// even start like a safetensors file.
fn declared_len(bytes: &[u8]) -> Option<usize> {
    let prefix: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    let header_len = usize::try_from(u64::from_le_bytes(prefix)).ok()?;
    let header_end = header_len.checked_add(8)?;
    let Some(header) = bytes.get(8..header_end) else {
        // Only a plausible header size counts as truncation; random bytes announce petabytes.
        return (header_len < 100 << 20).then_some(header_end);
    };
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(header).ok()?;
    let data_end = header
        .values()
        .filter_map(|entry| entry.get("data_offsets")?.get(1)?.as_u64())
        .max()
        .unwrap_or(0);
    header_end.checked_add(usize::try_from(data_end).ok()?)
}

/// Lists the first few names of a long list.
fn first_names<'a>(names: impl ExactSizeIterator<Item = &'a str>) -> String {
    let total = names.len();
    let shown: Vec<_> = names.take(4).collect();
    match total > shown.len() {
        true => format!("{} and {} more", shown.join(", "), total - shown.len()),
        false => shown.join(", "),
    }
}

/// Turns every missing, unexpected (unless `ignore`d) and mis-shaped tensor of a partial load
/// into one error that names them, so a bad file is refused with all its problems at once.
pub(crate) fn refuse_mismatches(
    result: &ApplyResult,
    config: &NetworkConfig,
    ignore: impl Fn(&str) -> bool,
) -> Result<(), WeightsError> {
    let backbone = config.backbone();
    let mut problems = Vec::new();
    if !result.missing.is_empty() {
        let names: Vec<_> = result
            .missing
            .iter()
            .map(|(path, _)| pytorch_name(path, backbone))
            .collect();
        problems.push(format!(
            "missing tensors: {}",
            first_names(names.iter().map(String::as_str))
        ));
    }
    let unexpected: Vec<String> = result
        .unused
        .iter()
        .filter(|name| !ignore(name))
        .map(|name| pytorch_name(name, backbone))
        .collect();
    if !unexpected.is_empty() {
        problems.push(format!(
            "unexpected tensors: {}",
            first_names(unexpected.iter().map(String::as_str))
        ));
    }
    problems.extend(result.errors.iter().take(4).map(|error| match error {
        ApplyError::ShapeMismatch {
            path,
            expected,
            found,
        } => format!(
            "{} has shape {:?} in the file but {:?} in the model",
            pytorch_name(path, backbone),
            found.as_slice(),
            expected.as_slice()
        ),
        other => other.to_string(),
    }));
    if problems.is_empty() {
        Ok(())
    } else {
        Err(WeightsError::Mismatch {
            network: config.describe(),
            details: problems.join("; "),
        })
    }
}

/// Builds the model a weights file describes and loads its tensors, on `device`.
pub fn from_bytes(bytes: Vec<u8>, device: &Device) -> Result<LoadedModel, WeightsError> {
    let info = read_info(&bytes)?;
    let config = info.config();
    let mut model = config.init(device);
    // Any missing, unexpected or mis-shaped tensor refuses the file.
    let result = apply(&mut model, bytes, &info)?;
    refuse_mismatches(&result, &config, |_| false)?;
    Ok(LoadedModel { model, info })
}

/// Loads the tensors of a weights file (`bytes`, whose metadata is `info`) into `model`.
/// Tensors that are missing, unexpected or mis-shaped do not stop the load: they are listed in
/// the result (a mis-shaped one keeps the model's own value), so that the caller reports every
/// problem at once or, when starting a training run from the file, accepts the expected ones.
/// Whatever float type the file stores (f16 for shipped models, f32 for checkpoints), the
/// network computes in f32.
pub(crate) fn apply(
    model: &mut Network,
    bytes: Vec<u8>,
    info: &ModelInfo,
) -> Result<ApplyResult, WeightsError> {
    let adapter = PyTorchToBurnAdapter.chain(FloatCastAdapter::to(DType::F32));
    let mut store = SafetensorsStore::from_bytes(Some(bytes))
        .skip_enum_variants(true)
        .with_from_adapter(adapter)
        .validate(false)
        .allow_partial(true);
    for (from, to) in file_renames(info.backbone, false) {
        store = store.with_key_remapping(from, to);
    }
    model
        .load_from(&mut store)
        .map_err(|e| WeightsError::Mismatch {
            network: model.config().describe(),
            details: e.to_string(),
        })
}
