//! Training BiSeNet from scratch: OHEM cross-entropy on the main and auxiliary heads (V1's
//! two, V2's four boosters), SGD with momentum, warm-up + poly learning rate, the paper's
//! augmentation, periodic validation and crash-safe checkpoints that resume exactly.

pub mod checkpoint;
mod class_weights;
mod ema;
mod export;
mod init;
mod loss;
mod lovasz;
mod schedule;

use std::path::{Path, PathBuf};

use burn::module::ParamGroup;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::prelude::*;
use clap::ValueEnum as _;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use checkpoint::TrainState;
pub use class_weights::{
    ClassWeighting, class_pixel_counts, prior_correction_offsets, sqrt_median_frequency,
};
pub use export::export_checkpoint;
pub use init::{InitReport, InitWeights};
pub use loss::{OhemCrossEntropy, TrainingLoss};
pub use lovasz::lovasz_softmax;
pub use schedule::PolySchedule;

use crate::data::{
    Augmentation, Batch, DataError, Dataset, LabelPolicy, LabeledImage, augment, batch_tensors,
    class_mix, load_parallel,
};
use crate::eval::{EvalOptions, Metrics, evaluate};
use crate::model::{Architecture, BackboneKind, Network, NetworkConfig};
use crate::preprocess::Normalization;
use crate::weights;
use ema::WeightEma;

/// Everything that defines a training run; saved with every checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub dataset: String,
    pub root: PathBuf,
    pub train_split: String,
    pub val_split: String,
    /// BiSeNet V1 or V2 (runs saved before V2 existed are V1).
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
    /// How the loss weighs classes (runs saved before this option are uniform).
    #[serde(default)]
    pub class_weighting: ClassWeighting,
    /// How much of the class weighting's prior the exported and validated models' logits take
    /// back ([`prior_correction_offsets`]; runs saved before this option take back none).
    #[serde(default)]
    pub prior_correction: f32,
    pub scale_range: (f32, f32),
    /// Colour jitter strength (brightness, contrast, saturation each scaled by `1 ± jitter`).
    #[serde(default = "paper_jitter")]
    pub jitter: f32,
    /// Probability that a crop gets half the classes of another crop of its batch pasted over
    /// it (ClassMix; runs saved before this option have none).
    #[serde(default)]
    pub class_mix: f32,
    /// OHEM's hard-pixel threshold: pixels whose true class has a probability below it are
    /// trained on (1: every labelled pixel, plain cross-entropy; runs saved before this option
    /// used the paper's 0.7).
    #[serde(default = "paper_ohem_threshold")]
    pub ohem_threshold: f32,
    /// Weight of the Lovász-softmax term on the main head (0: none; runs saved before this
    /// option have none).
    #[serde(default)]
    pub lovasz_weight: f32,
    /// Decay of an exponential moving average of the weights, kept besides them and exported
    /// as `final-ema.safetensors` (0: none; runs saved before this option keep none).
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

fn paper_jitter() -> f32 {
    Augmentation::paper([0, 0]).jitter
}

fn paper_ohem_threshold() -> f32 {
    OhemCrossEntropy::default().probability_threshold
}

#[derive(Debug, Error)]
pub enum TrainError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("{0}")]
    Config(String),
    /// Reading or writing a file of the run (checkpoint, log, run folder).
    #[error("{path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the loss diverged (is {loss}) at iteration {iteration}: lower --lr and resume from the \
         last checkpoint"
    )]
    Diverged { iteration: usize, loss: f32 },
    #[error(
        "cannot resume {path}: it was started with {field} = {found}, this run asks for {wanted}. \
         Start a new run with a different --out, or drop the differing option"
    )]
    Incompatible {
        path: PathBuf,
        field: &'static str,
        found: String,
        wanted: String,
    },
    #[error(transparent)]
    Weights(#[from] weights::WeightsError),
    #[error("cannot start from {path}")]
    InitWeights {
        path: PathBuf,
        source: weights::WeightsError,
    },
}

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
    /// The weights' moving average ([`TrainConfig::ema_decay`]) at the schedule's end.
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

impl TrainConfig {
    /// Whether the models this run validates and writes take back part of the class weights'
    /// prior: only a weighted loss has a prior to take back.
    pub fn corrects_prior(&self) -> bool {
        self.prior_correction > 0.0 && self.class_weighting != ClassWeighting::Uniform
    }

    /// Checks the options before any work starts. The memory estimate is checked against the
    /// host's free memory only `on_cpu`: on a GPU the activations live in the device's memory.
    pub fn check(&self, train: &Dataset, on_cpu: bool) -> Result<(), TrainError> {
        let [crop_h, crop_w] = self.crop;
        if crop_h < 32 || crop_w < 32 {
            return Err(TrainError::Config(format!(
                "crop {crop_w}x{crop_h} is too small: BiSeNet downsamples 32x, use at least 32x32"
            )));
        }
        if self.batch_size < 2 {
            return Err(TrainError::Config(
                "--batch must be at least 2: BatchNorm needs more than one sample".into(),
            ));
        }
        if self.iterations == 0 {
            return Err(TrainError::Config("--iters must be at least 1".into()));
        }
        let lr = self.schedule.base;
        if !(lr > 0.0 && lr.is_finite()) {
            return Err(TrainError::Config(format!(
                "--lr {lr} must be a positive number (leave it out for the recipe's)"
            )));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return Err(TrainError::Config(format!(
                "--weight-decay {} must be zero or a positive number (leave it out for the recipe's)",
                self.weight_decay
            )));
        }
        if !(self.prior_correction >= 0.0 && self.prior_correction.is_finite()) {
            return Err(TrainError::Config(format!(
                "--prior-correction {} must be zero (keep the class weights' prior) or a \
                 positive number (1 takes it all back)",
                self.prior_correction
            )));
        }
        if !(0.0..1.0).contains(&self.jitter) {
            return Err(TrainError::Config(format!(
                "--jitter {} must be at least 0 and below 1",
                self.jitter
            )));
        }
        if !(self.ohem_threshold > 0.0 && self.ohem_threshold <= 1.0) {
            return Err(TrainError::Config(format!(
                "--ohem-threshold {} is a probability above 0 and at most 1 (1 trains on every pixel)",
                self.ohem_threshold
            )));
        }
        if !(self.lovasz_weight >= 0.0 && self.lovasz_weight.is_finite()) {
            return Err(TrainError::Config(format!(
                "--lovasz-weight {} must be zero (no Lovász term) or a positive number",
                self.lovasz_weight
            )));
        }
        if !(0.0..1.0).contains(&self.ema_decay) {
            return Err(TrainError::Config(format!(
                "--ema-decay {} must be at least 0 (no average) and below 1 (0.999 averages \
                 about the last 1,000 iterations)",
                self.ema_decay
            )));
        }
        if !(0.0..=1.0).contains(&self.class_mix) {
            return Err(TrainError::Config(format!(
                "--class-mix {} is a probability: give a value from 0 to 1",
                self.class_mix
            )));
        }
        let (min_scale, max_scale) = self.scale_range;
        if !(min_scale > 0.0 && min_scale <= max_scale && max_scale.is_finite()) {
            return Err(TrainError::Config(format!(
                "--min-scale {min_scale} and --max-scale {max_scale} must be positive numbers, \
                 the first no larger than the second"
            )));
        }
        let needed = self.estimated_peak_memory();
        if on_cpu
            && let Some(available) = available_memory()
            && needed > available
        {
            return Err(TrainError::Config(format!(
                "a batch of {} {}x{} crops needs about {:.1} GB for the {} network's activations, \
                 but only {:.1} GB of memory is available: lower --batch or --crop",
                self.batch_size,
                crop_w,
                crop_h,
                needed as f64 / 1e9,
                self.network().describe(),
                available as f64 / 1e9
            )));
        }
        // A crop far beyond the largest scaled image would be mostly padding: refuse it.
        let first = crate::data::load_sample(&train.samples[0], train, LabelPolicy::Strict)?;
        let (w, h) = first.image.dimensions();
        let max = |side: u32| (side as f32 * max_scale).round() as usize;
        if crop_h > max(h) || crop_w > max(w) {
            return Err(TrainError::Config(format!(
                "crop {crop_w}x{crop_h} is larger than the biggest scaled image ({}x{} = {w}x{h} x {}); \
                 most of every crop would be padding. Use a smaller --crop",
                max(w),
                max(h),
                max_scale
            )));
        }
        Ok(())
    }

    /// The network this run trains (before the class count is known).
    fn network(&self) -> NetworkConfig {
        NetworkConfig::new(self.architecture, self.backbone, 1)
    }

    /// Peak memory of a training step, from measurements on the flex backend: about 1.0 KB per
    /// input pixel of the batch for V1-Xception39, 1.5 KB for V1-ResNet18 and 2.4 KB for V2
    /// (1.73 GB peak at batch 8, 240x320), plus a fixed 0.3 GB.
    fn estimated_peak_memory(&self) -> u64 {
        let per_pixel: u64 = match self.network().backbone() {
            Some(BackboneKind::Xception39) => 1_000,
            Some(BackboneKind::ResNet18) => 1_500,
            None => 2_400,
        };
        let pixels = (self.batch_size * self.crop[0] * self.crop[1]) as u64;
        300_000_000 + pixels * per_pixel
    }

    fn compatible_with(&self, saved: &TrainConfig, path: &Path) -> Result<(), TrainError> {
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

/// Memory available to a new allocation (Linux `MemAvailable`), when the system says.
fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// SGD with momentum; weight decay on every parameter except BatchNorm's and biases.
pub fn optimizer(momentum: f64, weight_decay: f32) -> ModuleOptimizer {
    let momentum = Some(MomentumConfig::new().with_momentum(momentum));
    let decayed = SgdConfig::new()
        .with_momentum(momentum.clone())
        .with_weight_decay(Some(WeightDecayConfig::new(weight_decay)));
    let plain = SgdConfig::new().with_momentum(momentum);
    decayed.init().with_group(
        ParamGroup::from_any_predicates(vec!["gamma", "beta", "bias"]),
        plain.build(),
        None,
    )
}

/// One SGD step on a batch: forward through the main and auxiliary heads, the loss, backward,
/// update. Returns the updated model and the loss.
pub fn step(
    model: Network,
    optim: &mut ModuleOptimizer,
    batch: Batch,
    loss_fn: &TrainingLoss,
    lr: f64,
) -> (Network, f32) {
    let loss = loss_fn.forward(model.forward(batch.images), batch.labels);
    let loss_value: f32 = loss.clone().into_scalar();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    (optim.step(lr, model, grads), loss_value)
}

/// Trains on `device` (its autodiff form; `Device::flex()` for the CPU) or resumes, when
/// `run_dir` holds a checkpoint and `resume` is set, and returns the final state. Checkpoints
/// do not depend on the device, so a run started on one backend resumes on another.
/// Validation mIoU is measured every `validate_every` iterations and at the end; the best
/// model is exported to `best.safetensors`, the last to `final.safetensors`.
pub fn train(
    config: &TrainConfig,
    train_set: &Dataset,
    val_set: &Dataset,
    run_dir: &Path,
    resume: bool,
    device: &Device,
    observer: &mut impl TrainObserver,
) -> Result<TrainState, TrainError> {
    config.check(
        train_set,
        device.clone().without_autodiff() == Device::flex(),
    )?;
    let device = device.clone().autodiff();
    let files = RunFiles {
        dir: run_dir.to_owned(),
    };
    std::fs::create_dir_all(run_dir).map_err(io_error(run_dir))?;

    let model_config = NetworkConfig::new(
        config.architecture,
        config.backbone,
        train_set.classes.len(),
    );
    let Start {
        mut model,
        mut optim,
        mut state,
        mut ema,
    } = start(config, &model_config, run_dir, resume, &device, observer)?;

    let augmentation = Augmentation {
        scale: config.scale_range,
        jitter: config.jitter,
        ..Augmentation::paper(config.crop)
    };
    let class_weights = config.class_weighting.weights(train_set)?;
    let logit_offsets = export::logit_offsets(config, class_weights.as_deref());
    let deployed = |network: &Network| export::deployed(network, logit_offsets.as_deref());
    let loss_fn = TrainingLoss {
        ohem: OhemCrossEntropy {
            probability_threshold: config.ohem_threshold,
            class_weights,
            ..OhemCrossEntropy::default()
        },
        aux_weight: config.aux_weight,
        lovasz_weight: config.lovasz_weight,
    };
    let norm = Normalization::IMAGENET;
    let val_images_in_training = val_set.images_shared_with(train_set);
    let training_images =
        export::training_image_keys(train_set, &config.root, &state.init_training_images);
    let run_export = export::RunExport {
        config,
        network: &model_config,
        train_set,
        training_images: &training_images,
        offsets: logit_offsets.as_deref(),
    };
    // Inference weights with the provenance of the iteration they are from and their
    // validation figure; `average` says they are the weights' moving average.
    let export =
        |inference: &Network, average: bool, iteration: usize, metrics: &Metrics, path: &Path| {
            let validation = export::Validation {
                metrics,
                images_also_in_training: val_images_in_training,
            };
            run_export.write(inference, average, iteration, Some(validation), path)
        };
    let mut log = LogWriter::open(&files.log()).map_err(io_error(&files.log()))?;
    observer.started(state.iteration, config);

    let prepare = |iteration: usize| prepare_batch(train_set, config, &augmentation, iteration);
    let mut next = prepare(state.iteration);
    while state.iteration < config.iterations {
        let iteration = state.iteration;
        let batch = batch_tensors(&next?, &norm, &device);
        let lr = config.schedule.lr(iteration);
        // The next batch is decoded and augmented on another thread while this step runs:
        // on a GPU the step would otherwise wait for the CPU's image work.
        let ((stepped, loss_value), prepared) = rayon::join(
            || step(model, &mut optim, batch, &loss_fn, lr),
            || prepare(iteration + 1),
        );
        (model, next) = (stepped, prepared);
        if !loss_value.is_finite() {
            return Err(TrainError::Diverged {
                iteration,
                loss: loss_value,
            });
        }
        if config.ema_decay > 0.0 {
            let current = model.valid();
            match &mut ema {
                Some(ema) => ema.update(&current, iteration),
                // Not before the first step: reading the weights then would create the lazily
                // initialised parameters in another order than the forward pass does, and so
                // give the run other random initial weights than the same run without it.
                None => ema = Some(WeightEma::new(current, config.ema_decay)),
            }
        }
        state.iteration += 1;
        observer.step(state.iteration, loss_value, lr);
        log.write(serde_json::json!({
            "iteration": state.iteration,
            "loss": loss_value,
            "lr": lr,
            "time": unix_seconds(),
        }));

        let done = state.iteration == config.iterations;
        if state.iteration.is_multiple_of(config.validate_every) || done {
            let inference = deployed(&model.valid());
            let metrics = score(&inference, val_set, &norm, observer)?;
            let is_best = state.best_miou.is_none_or(|best| metrics.miou > best);
            if is_best {
                state.best_miou = Some(metrics.miou);
                state.best_iteration = Some(state.iteration);
                export(&inference, false, state.iteration, &metrics, &files.best())?;
            }
            if done {
                export(
                    &inference,
                    false,
                    state.iteration,
                    &metrics,
                    &files.final_model(),
                )?;
            }
            log.write(serde_json::json!({
                "iteration": state.iteration,
                "val_miou": metrics.miou,
                "val_pixel_accuracy": metrics.pixel_accuracy,
            }));
            observer.validated(state.iteration, &metrics, is_best);
            if let Some(ema) = &ema {
                let averaged = deployed(&ema.network);
                let metrics = score(&averaged, val_set, &norm, observer)?;
                if done {
                    export(
                        &averaged,
                        true,
                        state.iteration,
                        &metrics,
                        &files.final_ema(),
                    )?;
                }
                log.write(serde_json::json!({
                    "iteration": state.iteration,
                    "ema_val_miou": metrics.miou,
                }));
                observer.validated_ema(state.iteration, &metrics);
            }
            if let Err(e) = crate::plot::plot_curves(&files.log(), &files.plot()) {
                eprintln!("warning: could not draw {}: {e}", files.plot().display());
            }
        }
        let stop = !done && observer.should_stop();
        if state.iteration.is_multiple_of(config.checkpoint_every) || done || stop {
            let ema = ema.as_ref().map(|ema| &ema.network);
            checkpoint::save(run_dir, &model, &optim, ema, &state).map_err(io_error(run_dir))?;
            observer.checkpointed(state.iteration);
        }
        if stop {
            break;
        }
    }
    // A run that finished before `final.safetensors` existed gets it when resumed.
    if state.iteration == config.iterations && !files.final_model().is_file() {
        let inference = deployed(&model.valid());
        let metrics = score(&inference, val_set, &norm, observer)?;
        export(
            &inference,
            false,
            state.iteration,
            &metrics,
            &files.final_model(),
        )?;
        observer.validated(state.iteration, &metrics, false);
    }
    Ok(state)
}

/// Where a run begins: fresh weights, or those of `--init-weights`, at iteration 0; or, when
/// resuming, a checkpoint's weights, optimizer state and moving average.
struct Start {
    model: Network,
    optim: ModuleOptimizer,
    state: TrainState,
    /// The weights' moving average; `None` until the first step when the run starts fresh.
    ema: Option<WeightEma>,
}

/// Initialises a run in `run_dir`, or resumes it from its latest checkpoint when `resume` is
/// set; a folder that holds a run without `resume` is refused, so that nothing is overwritten.
fn start(
    config: &TrainConfig,
    model_config: &NetworkConfig,
    run_dir: &Path,
    resume: bool,
    device: &Device,
    observer: &mut impl TrainObserver,
) -> Result<Start, TrainError> {
    // Seeds burn's generator, so initial weights depend only on the seed.
    device.seed(config.seed);
    let mut model = model_config.init(device);
    let mut optim = optimizer(config.momentum, config.weight_decay);
    let mut state = TrainState {
        iteration: 0,
        best_miou: None,
        best_iteration: None,
        init_training_images: Vec::new(),
        config: config.clone(),
    };
    let latest = checkpoint::latest(run_dir).map_err(io_error(run_dir))?;
    let mut ema = None;
    match (latest, resume) {
        (Some(path), true) => {
            let saved = checkpoint::load_state(&path).map_err(io_error(&path))?;
            config.compatible_with(&saved.config, &path)?;
            if config.iterations < saved.iteration {
                return Err(TrainError::Config(format!(
                    "cannot resume {} with --iters {}: the run is at iteration {} already (give \
                     --iters {} or more)",
                    run_dir.display(),
                    config.iterations,
                    saved.iteration,
                    saved.iteration
                )));
            }
            let changes = config.recipe_changes(&saved.config);
            if !changes.is_empty() {
                observer.resumed_with_changes(&changes);
            }
            (model, optim) = checkpoint::load(&path, model, optim).map_err(io_error(&path))?;
            // The run goes on with this invocation's recipe (`changes` above says what moved).
            state = TrainState {
                config: config.clone(),
                ..saved
            };
            if config.ema_decay > 0.0 {
                let inference = model_config.init(&device.clone().without_autodiff());
                ema = checkpoint::load_ema(&path, inference)
                    .map_err(io_error(&path))?
                    .map(|saved| WeightEma::new(saved, config.ema_decay));
            }
        }
        (Some(path), false) => {
            return Err(TrainError::Config(format!(
                "{} already holds a run (checkpoint {}): pass --resume to continue it, or choose another --out",
                run_dir.display(),
                path.display()
            )));
        }
        (None, _) => {
            if let Some(path) = &config.init_weights {
                let file = InitWeights::read(path)?;
                state.init_training_images = file
                    .info
                    .training_images()
                    .map(|images| images.into_iter().collect())
                    .unwrap_or_default();
                let report = file.load_into(&mut model)?;
                observer.initialized(path, &report);
            }
        }
    }
    Ok(Start {
        model,
        optim,
        state,
        ema,
    })
}

/// Maps an I/O error on `path` to [`TrainError::Io`], naming the path.
fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError {
    let path = path.to_owned();
    move |source| TrainError::Io { path, source }
}

/// Scores `inference` on the validation split, reporting each image to `observer`.
fn score(
    inference: &Network,
    val_set: &Dataset,
    norm: &Normalization,
    observer: &mut impl TrainObserver,
) -> Result<Metrics, TrainError> {
    observer.validating(val_set.samples.len());
    let confusion = evaluate(
        inference,
        val_set,
        norm,
        &EvalOptions::default(),
        &inference.devices()[0],
        || observer.validated_image(),
    )?;
    Ok(confusion.metrics())
}

/// Decodes and augments the images of batch `iteration`, in parallel, then applies ClassMix
/// between its crops; every random choice depends only on (seed, iteration, index), so
/// resuming replays it exactly.
fn prepare_batch(
    train_set: &Dataset,
    config: &TrainConfig,
    augmentation: &Augmentation,
    iteration: usize,
) -> Result<Vec<LabeledImage>, TrainError> {
    let samples = batch_samples(train_set, config, iteration);
    let ignore = train_set.classes.ignore_index;
    let crops = load_parallel(&samples, train_set, LabelPolicy::Strict)
        .into_par_iter()
        .enumerate()
        .map(|(index, loaded)| {
            let mut rng = sample_rng(config.seed, iteration, index);
            Ok(augment(&loaded?, augmentation, ignore, &mut rng))
        })
        .collect::<Result<Vec<_>, TrainError>>()?;
    if config.class_mix == 0.0 {
        return Ok(crops);
    }
    Ok((0..crops.len())
        .into_par_iter()
        .map(|index| {
            // A stream of its own, so that the crops above stay those of a run without mixing.
            let mut rng = sample_rng(config.seed ^ CLASS_MIX_STREAM, iteration, index);
            if !rng.random_bool(f64::from(config.class_mix)) {
                return crops[index].clone();
            }
            // Any other crop of the batch, as it was before mixing.
            let other = (index + rng.random_range(1..crops.len())) % crops.len();
            class_mix(&crops[index], &crops[other], ignore, &mut rng)
        })
        .collect())
}

/// Seeds ClassMix's random choices apart from the augmentation's.
const CLASS_MIX_STREAM: u64 = 0xC1A5_5312_0000_0000;

/// The samples of batch `iteration`: epochs walk a per-epoch shuffle seeded by the run seed,
/// so the order depends only on (seed, iteration) and resuming replays it exactly.
fn batch_samples(
    dataset: &Dataset,
    config: &TrainConfig,
    iteration: usize,
) -> Vec<crate::data::Sample> {
    let n = dataset.samples.len();
    (0..config.batch_size)
        .map(|k| {
            let position = iteration * config.batch_size + k;
            let (epoch, index) = (position / n, position % n);
            let mut order: Vec<usize> = (0..n).collect();
            order.shuffle(&mut StdRng::seed_from_u64(
                config.seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            ));
            dataset.samples[order[index]].clone()
        })
        .collect()
}

/// The augmentation RNG of one sample of one iteration.
fn sample_rng(seed: u64, iteration: usize, index: usize) -> StdRng {
    StdRng::seed_from_u64(
        seed.wrapping_add((iteration as u64) << 16)
            .wrapping_add(index as u64)
            .wrapping_mul(0xD134_2543_DE82_EF95),
    )
}

/// Wall-clock time of a log line, in seconds since the Unix epoch: the log then gives the
/// speed of every stretch of a run, on whichever machine it ran.
fn unix_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |elapsed| elapsed.as_secs_f64())
}

/// Appends JSON lines, flushed each time so a killed run keeps its curve.
struct LogWriter(std::fs::File);

impl LogWriter {
    fn open(path: &Path) -> std::io::Result<Self> {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map(Self)
    }

    fn write(&mut self, value: serde_json::Value) {
        use std::io::Write;
        let _ = writeln!(self.0, "{value}");
    }
}
