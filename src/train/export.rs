//! The model files of a run: what `train` writes (best, final, final-ema) and, afterwards, what
//! a checkpoint of it holds ([`export_checkpoint`]). Each is the inference form (no auxiliary
//! heads, convolutions in f16) with the run's prior correction folded in and the provenance a
//! reader of the file needs: iterations, the images it trained on, its validation figure.

use std::path::Path;

use burn::prelude::*;

use super::checkpoint::{self, TrainState};
use super::run_files::io_error;
use super::{TrainConfig, TrainError, prior_correction_offsets};
use crate::data::Dataset;
use crate::eval::Metrics;
use crate::model::{Network, NetworkConfig};
use crate::weights::{self, ModelInfo, Precision, TRAINING_IMAGES_NOTE, WeightsError};

/// The shift of each class logit that every network a run validates and writes gets: it takes
/// back `config.prior_correction` of the class weights' prior (none without class weights).
pub(super) fn logit_offsets(
    config: &TrainConfig,
    class_weights: Option<&[f32]>,
) -> Option<Vec<f32>> {
    class_weights
        .filter(|_| config.corrects_prior())
        .map(|weights| prior_correction_offsets(weights, config.prior_correction))
}

/// `network` as it is deployed: its class logits shifted by `offsets`.
pub(super) fn deployed(network: &Network, offsets: Option<&[f32]>) -> Network {
    match offsets {
        Some(offsets) => network.clone().shift_class_logits(offsets),
        None => network.clone(),
    }
}

/// The images a run's models have trained on, as keys under `root`: its split's, and those its
/// starting weights had trained on (a fine-tuned model has seen both).
pub(super) fn training_image_keys(
    train_set: &Dataset,
    root: &Path,
    init_images: &[String],
) -> Vec<String> {
    let mut keys = train_set.image_keys(root);
    keys.extend(init_images.iter().cloned());
    keys.sort();
    keys.dedup();
    keys
}

/// A validation figure, recorded in a model's notes.
pub(super) struct Validation<'a> {
    pub metrics: &'a Metrics,
    /// How many of the validation images the model trained on: its figure measures memory of
    /// them, and whoever reads it must know.
    pub images_also_in_training: usize,
}

/// What every model file of one run shares.
pub(super) struct RunExport<'a> {
    pub config: &'a TrainConfig,
    pub network: &'a NetworkConfig,
    pub train_set: &'a Dataset,
    pub training_images: &'a [String],
    pub offsets: Option<&'a [f32]>,
}

impl RunExport<'_> {
    /// Writes `inference` (deployed: the offsets already added) to `path`, as the network after
    /// `iteration` steps; `average` says it is the weights' moving average.
    pub fn write(
        &self,
        inference: &Network,
        average: bool,
        iteration: usize,
        validation: Option<Validation>,
        path: &Path,
    ) -> Result<(), WeightsError> {
        let config = self.config;
        let mut info = ModelInfo::new(self.network, self.train_set.classes.clone());
        info.train_size = Some(config.crop);
        let notes = &mut info.notes;
        notes.insert("dataset".into(), config.dataset.clone().into());
        notes.insert("iterations".into(), iteration.into());
        notes.insert("batch_size".into(), config.batch_size.into());
        if let Some(path) = &config.init_weights {
            notes.insert("init_weights".into(), path.display().to_string().into());
        }
        if average {
            notes.insert("ema_decay".into(), config.ema_decay.into());
        }
        if let Some(validation) = validation {
            notes.insert(
                format!("{}_miou", config.val_split),
                validation.metrics.miou.into(),
            );
            if validation.images_also_in_training > 0 {
                notes.insert(
                    format!("{}_images_also_in_training", config.val_split),
                    validation.images_also_in_training.into(),
                );
            }
        }
        // So that `eval` can say when it is scored on them.
        notes.insert(TRAINING_IMAGES_NOTE.into(), self.training_images.into());
        if let Some(offsets) = self.offsets {
            info.record_prior_correction(config.prior_correction, offsets);
        }
        // A clone shares the tensors: the heads are dropped from a handle, not from the model.
        weights::save(
            &inference.clone().without_aux_heads(),
            &info,
            Precision::F16,
            path,
        )
    }
}

/// Writes the network a run's `checkpoint` (whose state is `state`) holds as a model file, as
/// the run writes its own: its weights, or with `average` their moving average (runs trained
/// with `--ema-decay`). For a run stopped before its schedule's end, or a reading on the way.
/// `train_set` is the run's training split, read from `root`: its class weights give the prior
/// correction, its images the list the file keeps. Returns the logit offsets folded in, if any.
pub fn export_checkpoint(
    checkpoint: &Path,
    state: &TrainState,
    average: bool,
    train_set: &Dataset,
    root: &Path,
    path: &Path,
) -> Result<Option<Vec<f32>>, TrainError> {
    let config = &state.config;
    let network = NetworkConfig::new(
        config.architecture,
        config.backbone,
        train_set.classes.len(),
    );
    let fresh = network.init(&Device::flex());
    let loaded = if average {
        checkpoint::load_ema(checkpoint, fresh)
            .map_err(io_error(checkpoint))?
            .ok_or_else(|| {
                TrainError::Config(format!(
                    "{} keeps no moving average of the weights (the run trained without \
                     --ema-decay): export its weights instead",
                    checkpoint.display()
                ))
            })?
    } else {
        checkpoint::load_weights(checkpoint, fresh).map_err(io_error(checkpoint))?
    };
    let class_weights = config.class_weighting.weights(train_set)?;
    let offsets = logit_offsets(config, class_weights.as_deref());
    let training_images = training_image_keys(train_set, root, &state.init_training_images);
    let export = RunExport {
        config,
        network: &network,
        train_set,
        training_images: &training_images,
        offsets: offsets.as_deref(),
    };
    export.write(
        &deployed(&loaded, offsets.as_deref()),
        average,
        state.iteration,
        None,
        path,
    )?;
    Ok(offsets)
}
