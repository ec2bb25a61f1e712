//! The training recipe: every option of a run, saved with each of its checkpoints, and the
//! defaults a new run takes ([`TrainConfig::new`], and the `DEFAULT_*` constants that
//! `bisenet train --help` shows).
//!
//! Old runs: a run saved before an option existed loads with the value that reproduces what it
//! did, not with today's default. Options added later are `#[serde(default)]` where that
//! value is zero or off (V1, uniform class weights, no prior correction, no ClassMix, no
//! Lovász term, no moving average), and the paper's value otherwise (jitter 0.4, OHEM
//! threshold 0.7); resuming such a run with a changed recipe is said
//! ([`TrainConfig::recipe_changes`]).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ClassWeighting, OhemCrossEntropy, PolySchedule};
use crate::data::Augmentation;
use crate::model::{Architecture, BackboneKind, NetworkConfig};

/// Everything that defines a training run; saved with every checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub dataset: String,
    pub root: PathBuf,
    pub train_split: String,
    pub val_split: String,
    /// BiSeNet V1 or V2.
    #[serde(default)]
    pub architecture: Architecture,
    /// V1's context-path backbone (ignored by V2).
    pub backbone: BackboneKind,
    pub iterations: usize,
    pub batch_size: usize,
    /// `[height, width]`.
    pub crop: [usize; 2],
    pub schedule: PolySchedule,
    pub momentum: f64,
    /// L2 penalty on convolution weights (not on BatchNorm parameters or biases).
    pub weight_decay: f32,
    /// Weight of each auxiliary head's loss.
    pub aux_weight: f32,
    /// How the loss weighs classes.
    #[serde(default)]
    pub class_weighting: ClassWeighting,
    /// How much of the class weighting's prior the exported and validated models' logits take
    /// back ([`super::prior_correction_offsets`]).
    #[serde(default)]
    pub prior_correction: f32,
    pub scale_range: (f32, f32),
    /// Colour jitter strength (brightness, contrast, saturation each scaled by `1 ± jitter`).
    #[serde(default = "paper_jitter")]
    pub jitter: f32,
    /// Probability that a crop gets half the classes of another crop of its batch pasted over
    /// it (ClassMix).
    #[serde(default)]
    pub class_mix: f32,
    /// OHEM's hard-pixel threshold: pixels whose true class has a probability below it are
    /// trained on (1: every labelled pixel, plain cross-entropy).
    #[serde(default = "paper_ohem_threshold")]
    pub ohem_threshold: f32,
    /// Weight of the Lovász-softmax term on the main head (0: none).
    #[serde(default)]
    pub lovasz_weight: f32,
    /// Decay of an exponential moving average of the weights, kept besides them and exported
    /// as `final-ema.safetensors` (0: none).
    #[serde(default)]
    pub ema_decay: f64,
    pub seed: u64,
    pub checkpoint_every: usize,
    pub validate_every: usize,
    /// The weights file the network started from (fine-tuning), instead of a random
    /// initialisation; read only when the run starts, not when it resumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_weights: Option<PathBuf>,
}

/// What a run saved before `jitter` existed used.
fn paper_jitter() -> f32 {
    Augmentation::paper([0, 0]).jitter
}

/// What a run saved before `ohem_threshold` existed used.
fn paper_ohem_threshold() -> f32 {
    OhemCrossEntropy::default().probability_threshold
}

/// The recipe's defaults, chosen on CamVid's cross-drive split (the reasons are in
/// `docs/training.md`).
impl TrainConfig {
    pub const DEFAULT_ARCHITECTURE: Architecture = Architecture::V1;
    pub const DEFAULT_BACKBONE: BackboneKind = BackboneKind::Xception39;
    pub const DEFAULT_BATCH_SIZE: usize = 8;
    /// `[height, width]`: 320x240.
    pub const DEFAULT_CROP: [usize; 2] = [240, 320];
    pub const DEFAULT_LR: f64 = 0.02;
    pub const DEFAULT_WARMUP: usize = 500;
    /// The warm-up starts at this share of the base learning rate.
    pub const DEFAULT_WARMUP_RATIO: f64 = 0.1;
    pub const DEFAULT_POLY_POWER: f64 = 0.9;
    pub const DEFAULT_MOMENTUM: f64 = 0.9;
    pub const DEFAULT_WEIGHT_DECAY: f32 = 5e-4;
    pub const DEFAULT_AUX_WEIGHT: f32 = 1.0;
    pub const DEFAULT_CLASS_WEIGHTING: ClassWeighting = ClassWeighting::SqrtMedianFrequency;
    pub const DEFAULT_PRIOR_CORRECTION: f32 = 0.5;
    pub const DEFAULT_MIN_SCALE: f32 = 0.5;
    pub const DEFAULT_MAX_SCALE: f32 = 2.0;
    pub const DEFAULT_JITTER: f32 = 0.5;
    pub const DEFAULT_CLASS_MIX: f32 = 0.0;
    /// The paper's.
    pub const DEFAULT_OHEM_THRESHOLD: f32 = 0.7;
    pub const DEFAULT_LOVASZ_WEIGHT: f32 = 0.0;
    pub const DEFAULT_EMA_DECAY: f64 = 0.0;
    pub const DEFAULT_SEED: u64 = 0;
    pub const DEFAULT_CHECKPOINT_EVERY: usize = 100;
    pub const DEFAULT_VALIDATE_EVERY: usize = 1000;

    /// The recipe with its defaults, for `iterations` steps on the `train_split` of the
    /// `dataset` at `root`, validated on its `val_split`.
    pub fn new(
        dataset: impl Into<String>,
        root: impl Into<PathBuf>,
        train_split: impl Into<String>,
        val_split: impl Into<String>,
        iterations: usize,
    ) -> Self {
        Self {
            dataset: dataset.into(),
            root: root.into(),
            train_split: train_split.into(),
            val_split: val_split.into(),
            architecture: Self::DEFAULT_ARCHITECTURE,
            backbone: Self::DEFAULT_BACKBONE,
            iterations,
            batch_size: Self::DEFAULT_BATCH_SIZE,
            crop: Self::DEFAULT_CROP,
            schedule: Self::schedule(Self::DEFAULT_LR, Self::DEFAULT_WARMUP, iterations),
            momentum: Self::DEFAULT_MOMENTUM,
            weight_decay: Self::DEFAULT_WEIGHT_DECAY,
            aux_weight: Self::DEFAULT_AUX_WEIGHT,
            class_weighting: Self::DEFAULT_CLASS_WEIGHTING,
            prior_correction: Self::DEFAULT_PRIOR_CORRECTION,
            scale_range: (Self::DEFAULT_MIN_SCALE, Self::DEFAULT_MAX_SCALE),
            jitter: Self::DEFAULT_JITTER,
            class_mix: Self::DEFAULT_CLASS_MIX,
            ohem_threshold: Self::DEFAULT_OHEM_THRESHOLD,
            lovasz_weight: Self::DEFAULT_LOVASZ_WEIGHT,
            ema_decay: Self::DEFAULT_EMA_DECAY,
            seed: Self::DEFAULT_SEED,
            checkpoint_every: Self::DEFAULT_CHECKPOINT_EVERY,
            validate_every: Self::DEFAULT_VALIDATE_EVERY,
            init_weights: None,
        }
    }

    /// The recipe's learning rate schedule: `warmup` steps (at most half the run) up to `lr`,
    /// then poly decay to zero at `iterations`.
    pub fn schedule(lr: f64, warmup: usize, iterations: usize) -> PolySchedule {
        PolySchedule {
            base: lr,
            total: iterations,
            warmup: warmup.min(iterations / 2),
            warmup_ratio: Self::DEFAULT_WARMUP_RATIO,
            power: Self::DEFAULT_POLY_POWER,
        }
    }

    /// Whether the models this run validates and writes take back part of the class weights'
    /// prior: only a weighted loss has a prior to take back.
    pub fn corrects_prior(&self) -> bool {
        self.prior_correction > 0.0 && self.class_weighting != ClassWeighting::Uniform
    }

    /// The network this run trains (before the class count is known).
    pub(super) fn network(&self) -> NetworkConfig {
        NetworkConfig::new(self.architecture, self.backbone, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_saved_before_the_later_options_loads_with_what_it_did() {
        let mut saved =
            serde_json::to_value(TrainConfig::new("camvid", "data", "train", "val", 10))
                .expect("a config serialises");
        let fields = saved.as_object_mut().expect("an object");
        for later in [
            "architecture",
            "class_weighting",
            "prior_correction",
            "jitter",
            "class_mix",
            "ohem_threshold",
            "lovasz_weight",
            "ema_decay",
            "init_weights",
        ] {
            fields.remove(later);
        }
        let old: TrainConfig = serde_json::from_value(saved).expect("an old run loads");
        assert_eq!(old.architecture, Architecture::V1);
        assert_eq!(old.class_weighting, ClassWeighting::Uniform);
        assert_eq!(old.prior_correction, 0.0);
        assert_eq!(old.jitter, 0.4);
        assert_eq!(old.class_mix, 0.0);
        assert_eq!(old.ohem_threshold, 0.7);
        assert_eq!(old.lovasz_weight, 0.0);
        assert_eq!(old.ema_decay, 0.0);
        assert_eq!(old.init_weights, None);
    }
}
