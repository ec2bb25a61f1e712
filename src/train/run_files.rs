//! The files of a run folder, and the log the loop appends to.

use std::path::{Path, PathBuf};

use super::TrainError;

/// Files of a run folder.
pub struct RunFiles {
    pub dir: PathBuf,
}

impl RunFiles {
    /// Inference weights (f16, no aux heads) of the best validation mIoU so far.
    pub fn best(&self) -> PathBuf {
        self.dir.join("best.safetensors")
    }
    /// Inference weights at the schedule's end: the recipe's own model. `best.safetensors` is
    /// picked on the validation split, so its figure there flatters it; this one is picked by
    /// nothing, and its validation figure is a fair measure of the recipe.
    pub fn final_model(&self) -> PathBuf {
        self.dir.join("final.safetensors")
    }
    /// The weights' moving average ([`TrainConfig::ema_decay`](super::TrainConfig::ema_decay)) at the schedule's end.
    pub fn final_ema(&self) -> PathBuf {
        self.dir.join("final-ema.safetensors")
    }
    /// One JSON object per logged iteration and per validation.
    pub fn log(&self) -> PathBuf {
        self.dir.join("log.jsonl")
    }
    pub fn plot(&self) -> PathBuf {
        self.dir.join("curves.png")
    }
}

/// Maps an I/O error on `path` to [`TrainError::Io`], naming the path.
pub(super) fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError {
    let path = path.to_owned();
    move |source| TrainError::Io { path, source }
}

/// Wall-clock time of a log line, in seconds since the Unix epoch: the log then gives the
/// speed of every stretch of a run, on whichever machine it ran.
pub(super) fn unix_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |elapsed| elapsed.as_secs_f64())
}

/// Appends JSON lines, flushed each time so a killed run keeps its curve.
pub(super) struct LogWriter(std::fs::File);

impl LogWriter {
    pub(super) fn open(path: &Path) -> std::io::Result<Self> {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map(Self)
    }

    pub(super) fn write(&mut self, value: serde_json::Value) {
        use std::io::Write;
        let _ = writeln!(self.0, "{value}");
    }
}
