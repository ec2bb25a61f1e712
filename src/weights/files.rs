//! Weights files on disk (native only: the page loads from bytes).

use std::io::Write;
use std::path::Path;

use burn::prelude::*;

use super::{LoadedModel, ModelInfo, Precision, WeightsError, from_bytes, to_bytes};
use crate::model::Network;

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
