//! Accuracy: the confusion matrix, the metrics derived from it, and dataset evaluation.

mod confusion;
#[cfg(feature = "native")]
mod evaluate;

pub use confusion::{ConfusionMatrix, Metrics};
#[cfg(feature = "native")]
pub use evaluate::{EvalOptions, evaluate};
