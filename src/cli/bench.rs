use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use bisenet::bench::{
    InferenceResult, Repeats, TrainResult, TrainStep, bench_inference, bench_train_step,
};
use bisenet::classes::ClassSet;
use bisenet::model::{BackboneKind, NetworkConfig};
use bisenet::segmenter::Segmenter;
use bisenet::weights::{LoadedModel, ModelInfo};
use clap::Args;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Where the network runs.
    #[arg(long, value_enum, default_value_t = super::Backend::Flex)]
    backend: super::Backend,
    /// BiSeNet V1 or V2, freshly initialised (speed does not depend on the weights).
    #[arg(long, value_enum, default_value_t, conflicts_with = "weights")]
    arch: super::ArchArg,
    /// V1's backbone of a freshly initialised network.
    #[arg(long, default_value = "resnet18", conflicts_with = "weights")]
    backbone: BackboneKind,
    /// Time this weights file's network instead.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Classes of the fresh network (19, as the Cityscapes models of the PyTorch reference).
    #[arg(long, default_value_t = 19)]
    classes: usize,
    /// Input sizes, HEIGHTxWIDTH (note: height first, as in 1024x2048 for Cityscapes).
    #[arg(long, value_delimiter = ',', value_parser = parse_hw, default_value = "360x480,720x960,1024x2048")]
    sizes: Vec<[usize; 2]>,
    /// Timed runs per size.
    #[arg(long, default_value_t = 20)]
    iters: usize,
    /// Untimed runs first.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Also time a training step with this batch size (0: skip).
    #[arg(long, default_value_t = 0)]
    train_batch: usize,
    /// Crop size of the training step, HEIGHTxWIDTH.
    #[arg(long, value_parser = parse_hw, default_value = "384x480")]
    train_crop: [usize; 2],
    /// Add Lovász-softmax with this weight to the training step's loss (as `train
    /// --lovasz-weight`).
    #[arg(long, default_value_t = 0.0)]
    train_lovasz_weight: f32,
    /// Keep BatchNorms separate from the convolutions and make labels with tensor ops on the
    /// device (to measure what the two inference optimisations save).
    #[arg(long)]
    no_fold: bool,
    /// Write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Parses `HxW` (height first) into `[h, w]`.
fn parse_hw(spec: &str) -> Result<[usize; 2], String> {
    super::parse_dimensions(spec, "HEIGHTxWIDTH, e.g. 360x480").map(|(h, w)| [h, w])
}

pub fn run(args: BenchArgs) -> Result<()> {
    if args.iters == 0 {
        bail!("--iters must be at least 1");
    }
    super::check_class_count(args.classes)?;
    let device = args.backend.device()?;
    let backend = format!("{:?}", args.backend).to_lowercase();
    let loaded = match &args.weights {
        Some(path) => super::load_weights(Some(path), &device)?.1,
        None => {
            let config = NetworkConfig::new(args.arch.architecture(), args.backbone, args.classes)
                .with_aux_heads(false);
            LoadedModel {
                model: config.init(&device),
                info: ModelInfo::new(&config, ClassSet::generic(args.classes)),
            }
        }
    };
    let segmenter = match args.no_fold {
        false => Segmenter::new(loaded, device.clone()),
        true => Segmenter {
            model: loaded.model.without_aux_heads(),
            info: loaded.info,
            labels_on_cpu: false,
            device: device.clone(),
        },
    };
    let repeats = Repeats {
        warmup: args.warmup,
        iters: args.iters,
    };
    let runs = args.sizes.len() + usize::from(args.train_batch > 0);
    let bar = super::progress_bar(runs * (repeats.warmup + repeats.iters), "benchmarking");

    let mut results: Vec<InferenceResult> = Vec::new();
    for &size in &args.sizes {
        bar.set_message(format!(
            "{} {}x{}",
            segmenter.model.config().short_name(),
            size[0],
            size[1]
        ));
        results.push(bench_inference(&segmenter, &backend, size, repeats, || {
            bar.inc(1)
        }));
    }
    let mut train: Vec<TrainResult> = Vec::new();
    if args.train_batch > 0 {
        bar.set_message("training step");
        let spec = TrainStep {
            network: segmenter.model.config(),
            batch: args.train_batch,
            crop: args.train_crop,
            lovasz_weight: args.train_lovasz_weight,
        };
        train.push(bench_train_step(
            spec,
            &device.autodiff(),
            &backend,
            repeats,
            || bar.inc(1),
        ));
    }
    bar.finish_and_clear();

    println!(
        "{:<8} {:<10} {:>10} {:>9} {:>9} {:>9} {:>11} {:>9} {:>9} {:>7}",
        "backend",
        "network",
        "HxW",
        "total ms",
        "min",
        "max",
        "preprocess",
        "network",
        "argmax",
        "fps"
    );
    for r in &results {
        println!(
            "{:<8} {:<10} {:>10} {:>9.1} {:>9.1} {:>9.1} {:>11.1} {:>9.1} {:>9.1} {:>7.2}",
            r.backend,
            r.network,
            r.size,
            r.total_ms.median,
            r.total_ms.min,
            r.total_ms.max,
            r.stages_ms.preprocess,
            r.stages_ms.network,
            r.stages_ms.argmax,
            r.fps
        );
    }
    for t in &train {
        println!(
            "training step: {} {} batch {} at {}{}: median {:.0} ms (min {:.0}, max {:.0})",
            t.backend,
            t.network,
            t.batch,
            t.crop,
            if t.lovasz_weight > 0.0 {
                format!(", Lovász weight {}", t.lovasz_weight)
            } else {
                String::new()
            },
            t.step_ms.median,
            t.step_ms.min,
            t.step_ms.max
        );
    }
    if let Some(path) = &args.json {
        let json = serde_json::json!({ "results": results, "train": train });
        std::fs::write(path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
