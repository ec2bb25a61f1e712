//! The training loop: start or resume a run, step through its schedule, validate, export
//! and checkpoint.

use std::path::Path;

use burn::optim::ModuleOptimizer;
use burn::prelude::*;

use super::batches::prepare_batch;
use super::ema::WeightEma;
use super::run_files::{LogWriter, io_error, unix_seconds};
use super::{
    InitWeights, OhemCrossEntropy, RunFiles, TrainConfig, TrainError, TrainObserver, TrainState,
    TrainingLoss, checkpoint, export, optimizer, step,
};
use crate::data::{Augmentation, Dataset, batch_tensors};
use crate::eval::{EvalOptions, Metrics, evaluate};
use crate::model::{Network, NetworkConfig};
use crate::preprocess::Normalization;

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
