use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use bisenet::import::{ImportOptions, import_pytorch};
use bisenet::preprocess::Normalization;
use bisenet::weights::{self, Precision};
use clap::Args;

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// PyTorch checkpoint (.pth / .pt) of a BiSeNet V1 or V2.
    checkpoint: PathBuf,
    /// The classes the checkpoint predicts: camvid, cityscapes, a number, or a classes.json.
    #[arg(long)]
    classes: String,
    /// Output weights file (.safetensors). Not written when anything does not fit.
    #[arg(short, long)]
    output: PathBuf,
    /// Per-channel mean the model was trained with, on RGB in [0, 1] (default: ImageNet's).
    #[arg(long, value_parser = parse_rgb, requires = "std")]
    mean: Option<[f32; 3]>,
    /// Per-channel standard deviation, on RGB in [0, 1] (default: ImageNet's).
    #[arg(long, value_parser = parse_rgb, requires = "mean")]
    std: Option<[f32; 3]>,
    /// Resize inputs up to a multiple of this, as the PyTorch reference does (1: off).
    #[arg(long, default_value_t = 32)]
    size_multiple: usize,
    /// Keep convolution weights in f32 (exact, twice the size) instead of f16.
    #[arg(long)]
    f32: bool,
}

/// Parses `R,G,B` floats.
fn parse_rgb(spec: &str) -> Result<[f32; 3], String> {
    let values: Vec<f32> = spec
        .split(',')
        .map(|v| v.trim().parse::<f32>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("`{spec}`: expected three numbers R,G,B, e.g. 0.485,0.456,0.406"))?;
    <[f32; 3]>::try_from(values)
        .map_err(|_| format!("`{spec}`: expected exactly three numbers R,G,B"))
}

pub fn run(args: ImportArgs) -> Result<()> {
    let classes = super::parse_classes(&args.classes)?;
    let normalization = match (args.mean, args.std) {
        (Some(mean), Some(std)) => {
            if std.iter().any(|s| s.is_nan() || *s <= 0.0) {
                bail!("--std {std:?}: every standard deviation must be positive");
            }
            Normalization { mean, std }
        }
        _ => Normalization::IMAGENET,
    };
    let options = ImportOptions {
        classes,
        normalization,
        size_multiple: (args.size_multiple > 1).then_some(args.size_multiple),
    };
    let loaded = import_pytorch(&args.checkpoint, &options, &super::device())
        .with_context(|| format!("importing {}", args.checkpoint.display()))?;
    let precision = if args.f32 {
        Precision::F32
    } else {
        Precision::F16
    };
    weights::save(&loaded.model, &loaded.info, precision, &args.output)
        .with_context(|| format!("writing {}", args.output.display()))?;
    let info = &loaded.info;
    println!(
        "wrote {}: {} (width {}), {} classes, {} parameters, mean {:?}, std {:?}",
        args.output.display(),
        info.config().describe(),
        info.width,
        info.num_classes,
        loaded.model.num_trainable_params(),
        info.normalization.mean,
        info.normalization.std,
    );
    Ok(())
}
