use std::path::PathBuf;

use anyhow::{Context, Result};
use bisenet::model::{BackboneKind, BiSeNetConfig};
use bisenet::weights::{self, ModelInfo, Precision};
use clap::Args;

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Context-path backbone: resnet18 or xception39.
    #[arg(long, default_value = "xception39")]
    backbone: BackboneKind,
    /// Classes: camvid, cityscapes, a number, or a classes.json file.
    #[arg(long, default_value = "camvid")]
    classes: String,
    /// Keep the auxiliary heads (to continue training from this file).
    #[arg(long)]
    aux_heads: bool,
    /// Output weights file.
    #[arg(short, long)]
    output: PathBuf,
}

pub fn run(args: InitArgs) -> Result<()> {
    let classes = super::parse_classes(&args.classes)?;
    let config = BiSeNetConfig::new(args.backbone, classes.len()).with_aux_heads(args.aux_heads);
    let model = config.init(&super::device());
    let info = ModelInfo::new(&config, classes);
    weights::save(&model, &info, Precision::F16, &args.output)
        .with_context(|| format!("writing {}", args.output.display()))?;
    println!(
        "wrote {} ({} BiSeNet, {} classes, {} parameters, untrained)",
        args.output.display(),
        args.backbone,
        config.num_classes,
        model.num_trainable_params()
    );
    Ok(())
}
