use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use bisenet::data::LabelPolicy;
use bisenet::eval::{EvalOptions, evaluate};
use clap::Args;
use serde_json::json;

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Dataset format.
    #[arg(long, value_enum, default_value = "camvid")]
    dataset: super::DatasetArg,
    /// Dataset root.
    #[arg(long)]
    root: PathBuf,
    /// Split to score: a name (CamVid `val` reads `ROOT/val.txt`) or a list file ending in
    /// `.txt`, such as `splits/camvid/cross-drive-val.txt`.
    #[arg(long, default_value = "val")]
    split: String,
    /// Weights file (default: the shipped model).
    #[arg(long)]
    weights: Option<PathBuf>,
    #[command(flatten)]
    tta: super::TtaArgs,
    /// Treat label values that are neither a class nor the ignore id as unlabelled
    /// (default: refuse the file).
    #[arg(long)]
    unknown_labels_as_ignore: bool,
    /// Evaluate only the first N images of the split.
    #[arg(long)]
    limit: Option<usize>,
    /// Where the network runs (the confusion matrix is the same on each).
    #[arg(long, value_enum, default_value_t)]
    backend: super::Backend,
    /// Write the results as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

pub fn run(args: EvalArgs) -> Result<()> {
    let tta = args.tta.tta()?;
    let mut dataset = args.dataset.kind().open(&args.root, &args.split)?;
    if let Some(limit) = args.limit {
        dataset.samples.truncate(limit.max(1));
    }
    let device = args.backend.device()?;
    let (weights_path, loaded) = super::load_weights(args.weights.as_deref(), &device)?;
    loaded.expect_classes(dataset.classes.len(), &dataset.name)?;
    let training_images = loaded.info.training_images();
    let in_training = training_images.map(|keys| dataset.images_among(&args.root, &keys));
    let options = EvalOptions {
        tta: tta.clone(),
        label_policy: if args.unknown_labels_as_ignore {
            LabelPolicy::UnknownAsIgnore
        } else {
            LabelPolicy::Strict
        },
        size_multiple: loaded.info.size_multiple,
        ..EvalOptions::default()
    };
    let model = loaded.model.without_aux_heads().fold_batch_norms();
    let bar = super::progress_bar(dataset.samples.len(), "evaluating");
    let started = Instant::now();
    let confusion = evaluate(
        &model,
        &dataset,
        &loaded.info.normalization,
        &options,
        &device,
        || bar.inc(1),
    )?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let images = dataset.samples.len();
    let metrics = confusion.metrics();

    println!(
        "{} ({} images), weights {}",
        dataset.name,
        images,
        weights_path.display()
    );
    if let Some(shared) = in_training.filter(|&n| n > 0) {
        println!(
            "note: {shared} of these {images} images are in the model's training data (its \
             weights file lists them): this mIoU measures memory of them, not accuracy on new footage"
        );
    }
    let total_pixels = metrics.per_class_pixels.iter().sum::<u64>().max(1) as f64;
    println!(
        "{:<16} {:>7} {:>12} {:>7}",
        "class", "IoU", "pixels", "share"
    );
    for ((name, iou), &pixels) in dataset
        .classes
        .names
        .iter()
        .zip(&metrics.per_class_iou)
        .zip(&metrics.per_class_pixels)
    {
        let iou = iou.map_or("n/a".to_owned(), |iou| format!("{:.2}", iou * 100.0));
        let share = pixels as f64 / total_pixels * 100.0;
        println!("{name:<16} {iou:>7} {pixels:>12} {share:>6.2}%");
    }
    let absent = metrics
        .per_class_iou
        .iter()
        .filter(|iou| iou.is_none())
        .count();
    println!("mIoU            {:>7.2}", metrics.miou * 100.0);
    if absent > 0 {
        println!(
            "                (n/a: {absent} class(es) in neither ground truth nor prediction, left out of the mean)"
        );
    }
    println!("pixel accuracy  {:>7.2}", metrics.pixel_accuracy * 100.0);
    println!("speed           {:>7.2} images/s", images as f64 / seconds);

    if let Some(path) = &args.json {
        let by_class = |values: Vec<serde_json::Value>| -> serde_json::Map<_, _> {
            dataset.classes.names.iter().cloned().zip(values).collect()
        };
        let per_class = by_class(metrics.per_class_iou.iter().map(|iou| json!(iou)).collect());
        let pixels = by_class(metrics.per_class_pixels.iter().map(|n| json!(n)).collect());
        let report = json!({
            "dataset": dataset.name,
            "weights": weights_path,
            "images": images,
            "images_in_training": in_training,
            "miou": metrics.miou,
            "pixel_accuracy": metrics.pixel_accuracy,
            "per_class": per_class,
            "per_class_pixels": pixels,
            "confusion": confusion.rows(),
            "scales": tta.scales(),
            "flip": tta.flip(),
            "images_per_second": images as f64 / seconds,
        });
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
