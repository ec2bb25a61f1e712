//! `bisenet correct-prior`: folds a prior correction into a model trained with class weights,
//! for files written before `train` did it itself (the shipped one included).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use bisenet::train::{class_pixel_counts, prior_correction_offsets, sqrt_median_frequency};
use bisenet::weights::{self, PRIOR_CORRECTION_NOTE, Precision};
use clap::Args;

#[derive(Debug, Args)]
pub struct CorrectPriorArgs {
    /// The model, trained with `--class-weights sqrt-median-frequency` and without
    /// `--prior-correction`.
    #[arg(long)]
    weights: PathBuf,
    /// Dataset format of the split the model trained on.
    #[arg(long, value_enum, default_value = "camvid")]
    dataset: super::DatasetArg,
    /// Dataset root.
    #[arg(long)]
    root: PathBuf,
    /// The split the model trained on (a name or a list file, as `train --split`): its label
    /// frequencies give the class weights the model learned under.
    #[arg(long)]
    split: String,
    /// How much of the weights' prior to take back: each class's logit is lowered by this
    /// times the log of its weight (0.5: `train --prior-correction`'s default).
    #[arg(long, default_value_t = 0.5)]
    strength: f32,
    /// Output weights file (convolutions in f16, as `train` writes them).
    #[arg(short, long)]
    output: PathBuf,
}

pub fn run(args: CorrectPriorArgs) -> Result<()> {
    if !(args.strength > 0.0 && args.strength.is_finite()) {
        bail!(
            "--strength {} must be a positive number (1 takes the class weights' prior back entirely)",
            args.strength
        );
    }
    let device = super::device();
    let (path, loaded) = super::load_weights(Some(&args.weights), &device)?;
    if let Some(done) = loaded.info.notes.get(PRIOR_CORRECTION_NOTE) {
        bail!(
            "{} already has a prior correction (strength {}): a second one would shift its \
             logits again. Correct the file it was made from",
            path.display(),
            done.get("strength").unwrap_or(done)
        );
    }
    let dataset = args.dataset.kind().open(&args.root, &args.split)?;
    loaded.expect_classes(dataset.classes.len(), &dataset.name)?;
    if let Some(trained_on) = loaded.info.training_images() {
        let listed = dataset.images_among(&args.root, &trained_on);
        if listed < dataset.samples.len() || listed < trained_on.len() {
            eprintln!(
                "warning: {} trained on {} images, {listed} of them in --split {} ({} images): \
                 the class weights of another split are not the ones it learned under",
                path.display(),
                trained_on.len(),
                args.split,
                dataset.samples.len()
            );
        }
    }
    let class_weights = sqrt_median_frequency(&class_pixel_counts(&dataset)?);
    let offsets = prior_correction_offsets(&class_weights, args.strength);
    let mut info = loaded.info;
    // A validation figure `train` recorded is the uncorrected model's, no longer this file's.
    let stale: Vec<String> = info
        .notes
        .keys()
        .filter(|key| key.ends_with("_miou"))
        .cloned()
        .collect();
    for key in &stale {
        info.notes.remove(key);
    }
    info.record_prior_correction(args.strength, &offsets);
    let model = loaded.model.shift_class_logits(&offsets);
    weights::save(&model, &info, Precision::F16, &args.output)
        .with_context(|| format!("writing {}", args.output.display()))?;
    println!(
        "wrote {}: {} with {} of its class weights' prior taken back",
        args.output.display(),
        path.display(),
        args.strength
    );
    for (name, offset) in dataset.classes.names.iter().zip(&offsets) {
        println!("  {name:<16} {offset:+.3}");
    }
    if !stale.is_empty() {
        println!(
            "left out the file's recorded validation figures ({}): they are the uncorrected \
             model's; measure this one with `bisenet eval`",
            stale.join(", ")
        );
    }
    Ok(())
}
