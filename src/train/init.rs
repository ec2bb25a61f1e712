//! Starting a run from a weights file (fine-tuning): the network's tensors come from the file,
//! while the optimizer, the schedule and what the file cannot give start fresh: the
//! training-only heads, which inference files leave out, and the classifier layers, when the
//! file predicts other classes than the dataset has.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use burn::store::{ApplyError, ApplyResult, ModuleSnapshot};

use super::TrainError;
use crate::model::Network;
use crate::preprocess::Normalization;
use crate::weights::{self, ModelInfo, WeightsError};

/// A weights file to start from, read once.
pub struct InitWeights {
    path: PathBuf,
    bytes: Vec<u8>,
    pub info: ModelInfo,
}

/// What starting from a file loaded and what it left freshly initialised.
#[derive(Debug, Clone, PartialEq)]
pub struct InitReport {
    /// Tensors taken from the file, of `total` in the network.
    pub loaded: usize,
    pub total: usize,
    /// The training-only heads start fresh (the file has none).
    pub fresh_aux_heads: bool,
    /// Classifier tensors that start fresh because the file predicts `file_classes` classes and
    /// the dataset has `classes`.
    pub fresh_classifiers: Vec<String>,
    pub file_classes: usize,
    pub classes: usize,
    /// The file's prior correction was taken back out of its classifier, so that training
    /// goes on from the network as it was trained (the run's exports add their own).
    pub prior_correction_removed: bool,
}

impl fmt::Display for InitReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of {} tensors loaded", self.loaded, self.total)?;
        let mut fresh = Vec::new();
        if self.fresh_aux_heads {
            fresh.push("the auxiliary heads (the file has none: it is an inference file)".into());
        }
        if !self.fresh_classifiers.is_empty() {
            fresh.push(format!(
                "the {} classifier tensors (the file predicts {} classes, this dataset has {})",
                self.fresh_classifiers.len(),
                self.file_classes,
                self.classes
            ));
        }
        if !fresh.is_empty() {
            write!(f, "; starting fresh: {}", fresh.join(", "))?;
        }
        if self.prior_correction_removed {
            write!(
                f,
                "; the file's prior correction taken back out of its classifier"
            )?;
        }
        Ok(())
    }
}

impl InitWeights {
    /// Reads `path` and checks its metadata.
    pub fn read(path: &Path) -> Result<Self, TrainError> {
        let refuse = |source| TrainError::InitWeights {
            path: path.to_owned(),
            source,
        };
        let bytes = std::fs::read(path).map_err(|source| {
            refuse(WeightsError::Io {
                path: path.display().to_string(),
                source,
            })
        })?;
        let info = weights::read_info(&bytes).map_err(refuse)?;
        Ok(Self {
            path: path.to_owned(),
            bytes,
            info,
        })
    }

    /// Loads the file into `model`, a freshly initialised network of the same architecture.
    pub fn load_into(self, model: &mut Network) -> Result<InitReport, TrainError> {
        let file = self.info.config();
        let ours = model.config();
        if file.architecture() != ours.architecture() || file.backbone() != ours.backbone() {
            return Err(TrainError::Config(format!(
                "{} holds a {}, but this run trains a {}: leave --arch and --backbone out to \
                 take the file's network",
                self.path.display(),
                file.describe(),
                ours.describe()
            )));
        }
        // Training builds the paper's networks only.
        if file.width() != ours.width() || file.pixel_shuffle_heads() != ours.pixel_shuffle_heads()
        {
            return Err(TrainError::Config(format!(
                "{} holds a {} at width {}, but train builds the paper's networks only (width \
                 {}, bilinear heads): it cannot start from this file",
                self.path.display(),
                file.describe(),
                file.width(),
                ours.width()
            )));
        }
        // Training normalises its inputs with ImageNet's statistics, as its exported models say.
        if self.info.normalization != Normalization::IMAGENET {
            return Err(TrainError::Config(format!(
                "{} expects inputs normalised with mean {:?} and std {:?}, but training uses \
                 ImageNet's ({:?}, {:?}): fine-tuning it would feed it inputs it was not \
                 made for",
                self.path.display(),
                self.info.normalization.mean,
                self.info.normalization.std,
                Normalization::IMAGENET.mean,
                Normalization::IMAGENET.std
            )));
        }
        let paths = |network: &Network| -> HashSet<String> {
            network
                .collect(None, None, true)
                .into_iter()
                .map(|tensor| tensor.name)
                .collect()
        };
        let all = paths(model);
        let training_only: HashSet<String> = all
            .difference(&paths(&model.clone().without_aux_heads()))
            .cloned()
            .collect();
        let (path, info) = (self.path, self.info);
        let refuse = |source| TrainError::InitWeights {
            path: path.clone(),
            source,
        };
        let result = weights::apply(model, self.bytes, &info).map_err(refuse)?;

        // Only what the file cannot give may start fresh; anything else refuses it.
        let classes = model.num_classes();
        let other_classes = info.num_classes != classes;
        let mut fresh_classifiers = Vec::new();
        let errors = result
            .errors
            .into_iter()
            .filter_map(|error| match error {
                ApplyError::ShapeMismatch { path, .. } if other_classes => {
                    fresh_classifiers.push(path);
                    None
                }
                other => Some(other),
            })
            .collect();
        let (fresh_heads, missing): (Vec<_>, Vec<_>) = result
            .missing
            .into_iter()
            .partition(|(path, _)| !info.aux_heads && training_only.contains(path));
        let unexpected = ApplyResult {
            applied: Vec::new(),
            skipped: Vec::new(),
            missing,
            unused: result.unused,
            errors,
        };
        weights::refuse_mismatches(&unexpected, &ours, |_| false).map_err(refuse)?;
        // A fresh classifier has no correction to take back.
        let correction = info.prior_correction_offsets().filter(|_| !other_classes);
        if let Some(offsets) = &correction {
            let undo: Vec<f32> = offsets
                .as_ref()
                .map_err(|e| TrainError::Config(format!("{}: {e}", path.display())))?
                .iter()
                .map(|offset| -offset)
                .collect();
            *model = model.clone().shift_class_logits(&undo);
        }
        Ok(InitReport {
            loaded: result.applied.len(),
            total: all.len(),
            fresh_aux_heads: !fresh_heads.is_empty(),
            fresh_classifiers,
            file_classes: info.num_classes,
            classes,
            prior_correction_removed: correction.is_some(),
        })
    }
}
