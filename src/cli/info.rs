use std::path::PathBuf;

use anyhow::Result;
use bisenet::weights::TRAINING_IMAGES_NOTE;
use clap::Args;

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Weights file (default: the shipped model).
    #[arg(long)]
    weights: Option<PathBuf>,
}

pub fn run(args: InfoArgs) -> Result<()> {
    let device = super::device();
    let (path, loaded) = super::load_weights(args.weights.as_deref(), &device)?;
    let info = &loaded.info;
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "file:           {} ({:.1} MB)",
        path.display(),
        bytes as f64 / 1e6
    );
    println!(
        "architecture:   {} (format v{})",
        info.architecture, info.format_version
    );
    if let Some(backbone) = info.backbone {
        println!("backbone:       {backbone}");
    }
    if info.width != 1.0 {
        println!("width:          {}x", info.width);
    }
    if let Some(multiple) = info.size_multiple {
        println!("input sizes:    rounded up to multiples of {multiple}");
    }
    println!(
        "parameters:     {} ({} training heads)",
        loaded.model.num_trainable_params(),
        if info.aux_heads { "with" } else { "without" }
    );
    println!(
        "normalisation:  mean {:?}, std {:?}",
        info.normalization.mean, info.normalization.std
    );
    match info.train_size {
        Some([h, w]) => println!("trained at:     {w}x{h}"),
        None => println!("trained at:     (untrained)"),
    }
    println!("ignore id:      {}", info.classes.ignore_index);
    println!("classes:        {}", info.num_classes);
    for (id, (name, [r, g, b])) in info
        .classes
        .names
        .iter()
        .zip(&info.classes.palette)
        .enumerate()
    {
        println!("  {id:>3} {name:<16} #{r:02x}{g:02x}{b:02x}");
    }
    for (key, value) in &info.notes {
        match (key.as_str(), value.as_array()) {
            (TRAINING_IMAGES_NOTE, Some(images)) => println!("{key}: {} images", images.len()),
            _ => println!("{key}: {value}"),
        }
    }
    Ok(())
}
