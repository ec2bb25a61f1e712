use std::path::PathBuf;

use anyhow::{Context, Result};
use bisenet::model::{BackboneKind, NetworkConfig};
use bisenet::weights::{self, ModelInfo, Precision};
use clap::Args;

#[derive(Debug, Args)]
pub struct InitArgs {
    /// BiSeNet V1 or V2.
    #[arg(long, value_enum, default_value_t)]
    arch: super::ArchArg,
    /// V1's context-path backbone: resnet18 or xception39.
    #[arg(long, default_value = "xception39")]
    backbone: BackboneKind,
    /// Classes: camvid, cityscapes, a number, or a classes.json file.
    #[arg(long, default_value = "camvid")]
    classes: String,
    /// Keep the auxiliary (V1) or booster (V2) heads (to continue training from this file).
    #[arg(long)]
    aux_heads: bool,
    /// Output weights file.
    #[arg(short, long)]
    output: PathBuf,
}

pub fn run(args: InitArgs) -> Result<()> {
    let classes = super::parse_classes(&args.classes)?;
    let config = NetworkConfig::new(args.arch.architecture(), args.backbone, classes.len())
        .with_aux_heads(args.aux_heads);
    let model = config.init(&super::device());
    let info = ModelInfo::new(&config, classes);
    weights::save(&model, &info, Precision::F16, &args.output)
        .with_context(|| format!("writing {}", args.output.display()))?;
    println!(
        "wrote {} ({}, {} classes, {} parameters, untrained)",
        args.output.display(),
        config.describe(),
        config.num_classes(),
        model.num_trainable_params()
    );
    Ok(())
}
