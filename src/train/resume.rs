//! What a resumed run may change: its network, dataset, batch, crop and seed (which fix the
//! weights' shapes and the data order) must be those it started with; the rest of the recipe
//! may move, and is said.

use std::path::{Path, PathBuf};

use clap::ValueEnum as _;

use super::{ClassWeighting, TrainConfig, TrainError};
use crate::model::Architecture;

impl TrainConfig {
    /// Refuses to resume the run saved at `path` (started with `saved`) with another network,
    /// dataset, batch, crop or seed.
    pub(super) fn compatible_with(
        &self,
        saved: &TrainConfig,
        path: &Path,
    ) -> Result<(), TrainError> {
        let check = |field: &'static str, found: String, wanted: String| {
            if found == wanted {
                Ok(())
            } else {
                Err(TrainError::Incompatible {
                    path: path.to_owned(),
                    field,
                    found,
                    wanted,
                })
            }
        };
        check(
            "architecture",
            saved.architecture.name().to_owned(),
            self.architecture.name().to_owned(),
        )?;
        if self.architecture == Architecture::V1 {
            check(
                "backbone",
                saved.backbone.to_string(),
                self.backbone.to_string(),
            )?;
        }
        check("dataset", saved.dataset.clone(), self.dataset.clone())?;
        check(
            "batch",
            saved.batch_size.to_string(),
            self.batch_size.to_string(),
        )?;
        check(
            "crop",
            format!("{:?}", saved.crop),
            format!("{:?}", self.crop),
        )?;
        check("seed", saved.seed.to_string(), self.seed.to_string())?;
        Ok(())
    }

    /// The recipe options this configuration changes against a run's saved one, each as
    /// `--option new (the run started with old)`. Resuming with them is allowed (a schedule
    /// may be shortened on purpose), but is said, so that, say, new defaults cannot change a
    /// run's recipe unnoticed.
    pub fn recipe_changes(&self, saved: &TrainConfig) -> Vec<String> {
        let weighting = |w: ClassWeighting| {
            w.to_possible_value()
                .map_or_else(|| format!("{w:?}"), |v| v.get_name().to_owned())
        };
        [
            (
                "--iters",
                self.iterations.to_string(),
                saved.iterations.to_string(),
            ),
            (
                "--lr",
                self.schedule.base.to_string(),
                saved.schedule.base.to_string(),
            ),
            (
                "--warmup",
                self.schedule.warmup.to_string(),
                saved.schedule.warmup.to_string(),
            ),
            (
                "--class-weights",
                weighting(self.class_weighting),
                weighting(saved.class_weighting),
            ),
            (
                "--prior-correction",
                self.prior_correction.to_string(),
                saved.prior_correction.to_string(),
            ),
            (
                "--jitter",
                self.jitter.to_string(),
                saved.jitter.to_string(),
            ),
            (
                "--class-mix",
                self.class_mix.to_string(),
                saved.class_mix.to_string(),
            ),
            (
                "--ohem-threshold",
                self.ohem_threshold.to_string(),
                saved.ohem_threshold.to_string(),
            ),
            (
                "--lovasz-weight",
                self.lovasz_weight.to_string(),
                saved.lovasz_weight.to_string(),
            ),
            (
                "--ema-decay",
                self.ema_decay.to_string(),
                saved.ema_decay.to_string(),
            ),
            (
                "--min-scale",
                self.scale_range.0.to_string(),
                saved.scale_range.0.to_string(),
            ),
            (
                "--max-scale",
                self.scale_range.1.to_string(),
                saved.scale_range.1.to_string(),
            ),
            (
                "--weight-decay",
                self.weight_decay.to_string(),
                saved.weight_decay.to_string(),
            ),
            (
                "--init-weights",
                init_name(&self.init_weights),
                init_name(&saved.init_weights),
            ),
        ]
        .into_iter()
        .filter(|(_, now, then)| now != then)
        .map(|(option, now, then)| format!("{option} {now} (the run started with {then})"))
        .collect()
    }
}

/// How [`TrainConfig::recipe_changes`] names a run's starting weights.
fn init_name(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map_or_else(|| "none".to_owned(), |path| path.display().to_string())
}
