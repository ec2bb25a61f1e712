//! The self-describing weights file.
//!
//! A model is one [safetensors](https://huggingface.co/docs/safetensors) file: a format every
//! ecosystem reads (PyTorch, NumPy, JAX, burn's `burn-store`), safe to parse (no pickle), and
//! cheap to load from bytes in the browser. V1 tensors use the PyTorch reference's state-dict
//! names (`cp.resnet.layer1.0.conv1.weight`, `ffm.bn.running_var`, ...) so a V1 file also loads
//! into the PyTorch BiSeNetV1 as is; V2 tensors keep this crate's parameter paths. Convolution
//! weights are stored as f16 (half the download); BatchNorm parameters and statistics stay
//! f32, because `running_var` underflows in f16.
//!
//! Everything needed to use the model travels in the safetensors metadata under the key
//! `bisenet`, as JSON ([`ModelInfo`]): architecture, V1's backbone, V2's head layout, classes,
//! palette, ignore id, normalisation, training size, format version.

use burn::prelude::*;
use burn::store::{
    ApplyError, ApplyResult, BurnToPyTorchAdapter, FloatCastAdapter, HalfPrecisionAdapter,
    ModuleAdapter, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore,
};
use burn::tensor::DType;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::classes::ClassSet;
use crate::model::{Architecture, BackboneKind, Network, NetworkConfig};
use crate::preprocess::{Normalization, round_up_to_multiple};

/// The metadata key holding [`ModelInfo`] as JSON.
pub const METADATA_KEY: &str = "bisenet";
/// Where the shipped model lives, relative to the repository root.
pub const DEFAULT_WEIGHTS: &str = "models/bisenet-camvid.safetensors";
/// Version of the file layout; bumped on incompatible changes.
pub const FORMAT_VERSION: u32 = 1;

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

    /// The network the file describes (its metadata checked by [`read_info`]).
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

/// Storage precision of the convolution weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// Half the size; what shipped models use.
    #[default]
    F16,
    /// Bit-exact (`import --f32`), for comparing with the PyTorch original.
    F32,
}

/// Why a weights file could not be used.
#[derive(Debug, Error)]
pub enum WeightsError {
    #[error("cannot read weights file {path}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "not a weights file: {0}. Expected a BiSeNet .safetensors file written by `bisenet init`, `train` or `import`"
    )]
    NotSafetensors(String),
    #[error(
        "the weights file is truncated: its header announces {expected} bytes but only {found} are there. Download or copy it again"
    )]
    Truncated { expected: usize, found: usize },
    #[error(
        "the safetensors file has no `{METADATA_KEY}` metadata, so it is not a BiSeNet weights file of this tool (convert PyTorch checkpoints with `bisenet import`)"
    )]
    MissingMetadata,
    #[error("the `{METADATA_KEY}` metadata is malformed: {0}")]
    BadMetadata(String),
    #[error("the file holds a `{found}` model, but this tool runs `bisenet-v1` and `bisenet-v2`")]
    WrongArchitecture { found: String },
    #[error(
        "the file uses format version {found}, this build reads version {FORMAT_VERSION}: update bisenet"
    )]
    UnsupportedVersion { found: u32 },
    #[error("the weights do not fit the {network} they describe: {details}")]
    Mismatch { network: String, details: String },
    #[error("the model predicts {found} classes, but {expected} are needed here ({context})")]
    WrongClassCount {
        expected: usize,
        found: usize,
        context: String,
    },
    #[error("cannot write weights: {0}")]
    Write(String),
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

/// State-dict name of the backbone inside the context path.
pub(crate) fn backbone_key(backbone: BackboneKind) -> &'static str {
    match backbone {
        BackboneKind::ResNet18 => "resnet",
        BackboneKind::Xception39 => "xception",
    }
}

/// The names that differ between burn's module paths and the PyTorch state dict, as plain
/// `(burn, pytorch)` segments: for V1, the backbone field (`backbone` vs `resnet`/`xception`)
/// and the residual projection (`downsample.conv/bn` vs the `nn.Sequential` indices
/// `downsample.0/1`). V2 files keep this crate's parameter paths (`bisenet import` maps the
/// PyTorch implementation's names onto them).
fn name_pairs(backbone: Option<BackboneKind>) -> Vec<(String, String)> {
    let Some(backbone) = backbone else {
        return Vec::new();
    };
    vec![
        (
            "cp.backbone.".to_owned(),
            format!("cp.{}.", backbone_key(backbone)),
        ),
        (".downsample.conv.".to_owned(), ".downsample.0.".to_owned()),
        (".downsample.bn.".to_owned(), ".downsample.1.".to_owned()),
    ]
}

/// The renames of [`name_pairs`] as `(pattern, replacement)` regex pairs for burn-store, in
/// the given direction.
pub(crate) fn renames(backbone: Option<BackboneKind>, to_pytorch: bool) -> Vec<(String, String)> {
    name_pairs(backbone)
        .into_iter()
        .map(|(burn, torch)| {
            let (from, to) = if to_pytorch {
                (burn, torch)
            } else {
                (torch, burn)
            };
            let anchor = if from.starts_with("cp.") { "^" } else { "" };
            (format!("{anchor}{}", escape_regex(&from)), to)
        })
        .collect()
}

/// Escapes `text` for use as a literal inside a regex.
pub(crate) fn escape_regex(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if r"\.+*?()|[]{}^$#&-~".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// A burn module path as the PyTorch state dict names it, for messages users can match
/// against their checkpoint.
fn pytorch_name(path: &str, backbone: Option<BackboneKind>) -> String {
    name_pairs(backbone)
        .iter()
        .fold(path.to_owned(), |name, (burn, torch)| {
            name.replace(burn, torch)
        })
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
    for (from, to) in renames(info.backbone, true) {
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
    for (from, to) in renames(info.backbone, false) {
        store = store.with_key_remapping(from, to);
    }
    model
        .load_from(&mut store)
        .map_err(|e| WeightsError::Mismatch {
            network: model.config().describe(),
            details: e.to_string(),
        })
}

#[cfg(not(target_arch = "wasm32"))]
mod files {
    use std::io::Write;
    use std::path::Path;

    use super::*;

    /// Reads a weights file from disk.
    pub fn load(path: &Path, device: &Device) -> Result<LoadedModel, WeightsError> {
        let bytes = std::fs::read(path).map_err(|source| WeightsError::Io {
            path: path.display().to_string(),
            source,
        })?;
        from_bytes(bytes, device)
    }

    /// Writes a weights file atomically: a temporary sibling, fsync, then rename, so an
    /// interrupted write never leaves a half-written model at `path`.
    pub fn save(
        model: &Network,
        info: &ModelInfo,
        precision: Precision,
        path: &Path,
    ) -> Result<(), WeightsError> {
        let bytes = to_bytes(model, info, precision)?;
        write_atomically(path, &bytes)
            .map_err(|e| WeightsError::Write(format!("{}: {e}", path.display())))
    }

    /// Writes `bytes` to `path` through a temporary file in the same folder.
    pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
        tmp_name.push(format!(".{}.tmp", std::process::id()));
        let tmp = path.with_file_name(tmp_name);
        let result = (|| {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub use files::{load, save, write_atomically};
