//! Why a weights file could not be used: each error says what to do about it.

use thiserror::Error;

use super::{FORMAT_VERSION, METADATA_KEY};

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
