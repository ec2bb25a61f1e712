//! The training loop's progress reports.

use std::path::Path;

use super::{InitReport, TrainConfig};
use crate::eval::Metrics;

/// What the training loop reports as it goes.
pub trait TrainObserver {
    fn started(&mut self, _first_iteration: usize, _config: &TrainConfig) {}
    /// A resumed run whose recipe differs from the one it started with (see
    /// [`TrainConfig::recipe_changes`]).
    fn resumed_with_changes(&mut self, _changes: &[String]) {}
    /// A new run whose network started from a weights file rather than at random.
    fn initialized(&mut self, _path: &Path, _report: &InitReport) {}
    fn step(&mut self, _iteration: usize, _loss: f32, _lr: f64) {}
    fn validating(&mut self, _images: usize) {}
    fn validated_image(&mut self) {}
    fn validated(&mut self, _iteration: usize, _metrics: &Metrics, _is_best: bool) {}
    /// The score of the weights' moving average, after the weights' own (runs with
    /// `ema_decay`).
    fn validated_ema(&mut self, _iteration: usize, _metrics: &Metrics) {}
    fn checkpointed(&mut self, _iteration: usize) {}
    /// Asked after every step: `true` checkpoints and returns early (a time limit on a leased
    /// GPU, say); the run continues later with `resume`.
    fn should_stop(&mut self) -> bool {
        false
    }
}
