//! Training BiSeNet from scratch: OHEM cross-entropy on the main and auxiliary heads (V1's
//! two, V2's four boosters), SGD with momentum, warm-up + poly learning rate, the paper's
//! augmentation, periodic validation and crash-safe checkpoints that resume exactly.
//!
//! The recipe and its defaults are [`TrainConfig`]; [`train`] runs it and reports to a
//! [`TrainObserver`]; a run's folder is [`RunFiles`].

mod batches;
mod check;
pub mod checkpoint;
mod class_weights;
mod config;
mod ema;
mod error;
mod export;
mod init;
mod loss;
mod lovasz;
mod observer;
mod resume;
mod run;
mod run_files;
mod schedule;
mod step;

pub use checkpoint::TrainState;
pub use class_weights::{
    ClassWeighting, class_pixel_counts, prior_correction_offsets, sqrt_median_frequency,
};
pub use config::TrainConfig;
pub use error::TrainError;
pub use export::export_checkpoint;
pub use init::{InitReport, InitWeights};
pub use loss::{OhemCrossEntropy, TrainingLoss};
pub use lovasz::lovasz_softmax;
pub use observer::TrainObserver;
pub use run::train;
pub use run_files::RunFiles;
pub use schedule::PolySchedule;
pub use step::{optimizer, step};
