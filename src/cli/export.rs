//! `bisenet export`: a model file from a training run's checkpoint, its weights or their
//! moving average, written as `train` writes its own (for a run stopped before its schedule's
//! end, or a reading on the way).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use bisenet::train::{self, checkpoint};
use clap::{Args, ValueEnum};

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A training run's folder (its latest checkpoint), or one of its checkpoints
    /// (`RUN/checkpoints/iter-NNNNNNN`).
    checkpoint: PathBuf,
    /// The weights' moving average (runs trained with `--ema-decay`) instead of the weights.
    #[arg(long)]
    average: bool,
    /// The dataset root, if it is no longer where the run read it (the run's own by default):
    /// the training split gives the class weights of the prior correction.
    #[arg(long)]
    root: Option<PathBuf>,
    /// Output weights file (convolutions in f16, as `train` writes them).
    #[arg(short, long)]
    output: PathBuf,
}

pub fn run(args: ExportArgs) -> Result<()> {
    let checkpoint = if checkpoint::is_checkpoint(&args.checkpoint) {
        args.checkpoint.clone()
    } else {
        checkpoint::latest(&args.checkpoint)
            .with_context(|| format!("reading {}", args.checkpoint.display()))?
            .with_context(|| {
                format!(
                    "{} is neither a training run with a checkpoint nor a checkpoint folder",
                    args.checkpoint.display()
                )
            })?
    };
    let state = checkpoint::load_state(&checkpoint)
        .with_context(|| format!("reading the checkpoint {}", checkpoint.display()))?;
    let config = &state.config;
    let Ok(dataset) = super::DatasetArg::from_str(&config.dataset, true) else {
        bail!(
            "{} trained on a `{}` dataset, which this build does not read",
            checkpoint.display(),
            config.dataset
        );
    };
    let root = args.root.unwrap_or_else(|| config.root.clone());
    let train_set = dataset
        .kind()
        .open(&root, &config.train_split)
        .with_context(|| {
            format!(
                "the run's training split `{}` (the class weights of its prior correction); \
                 pass --root if the dataset has moved",
                config.train_split
            )
        })?;
    let offsets = train::export_checkpoint(
        &checkpoint,
        &state,
        args.average,
        &train_set,
        &root,
        &args.output,
    )
    .with_context(|| format!("exporting {}", checkpoint.display()))?;
    let what = match args.average {
        true => "the weights' moving average",
        false => "the weights",
    };
    let correction = match offsets.is_some() {
        true => format!(", with the prior correction {}", config.prior_correction),
        false => String::new(),
    };
    println!(
        "wrote {}: {what} at iteration {} of {}{correction}",
        args.output.display(),
        state.iteration,
        config.iterations
    );
    Ok(())
}
