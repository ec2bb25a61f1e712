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
//!
//! - `metadata`: [`ModelInfo`] and its notes;
//! - `codec`: bytes to model and back ([`to_bytes`], [`from_bytes`], [`read_info`]);
//! - `files`: [`load`] and [`save`] on disk, written atomically (native only);
//! - [`pytorch_names`]: how both versions' parameter paths map to PyTorch state-dict names;
//! - [`WeightsError`]: why a file could not be used.

mod codec;
mod error;
#[cfg(not(target_arch = "wasm32"))]
mod files;
mod metadata;
pub mod pytorch_names;

pub use codec::{LoadedModel, Precision, from_bytes, read_info, to_bytes};
// For `train` (native) and `import` (not on wasm32).
#[cfg(any(feature = "native", not(target_arch = "wasm32")))]
pub(crate) use codec::{apply, refuse_mismatches};
pub use error::WeightsError;
#[cfg(not(target_arch = "wasm32"))]
pub use files::{load, save, write_atomically};
pub use metadata::{ModelInfo, PRIOR_CORRECTION_NOTE, TRAINING_IMAGES_NOTE};

/// The metadata key holding [`ModelInfo`] as JSON.
pub const METADATA_KEY: &str = "bisenet";
/// Where the shipped model lives, relative to the repository root.
pub const DEFAULT_WEIGHTS: &str = "models/bisenet-camvid.safetensors";
/// Version of the file layout; bumped on incompatible changes.
pub const FORMAT_VERSION: u32 = 1;
