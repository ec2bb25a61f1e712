//! What can stop a run.

use std::path::PathBuf;

use thiserror::Error;

use crate::data::DataError;
use crate::weights;

/// Why a run could not start, go on or write its files.
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
