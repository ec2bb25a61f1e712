use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use bisenet::image_io;
use bisenet::render::{colorize, overlay};
use bisenet::segmenter::Segmenter;
use bisenet::tta::TestTimeAugmentation;
use clap::{Args, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputKind {
    /// The image with the colour mask blended over it.
    Overlay,
    /// The colour mask alone.
    Color,
    /// Class ids as 8-bit grayscale (the exchange format).
    Labels,
}

#[derive(Debug, Args)]
pub struct SegmentArgs {
    /// Images, or folders of images.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Folder for the results, one `<stem>.png` per image (created if missing).
    #[arg(short, long, default_value = "segmented")]
    output_dir: PathBuf,
    /// Weights file (default: the shipped model).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// What to write.
    #[arg(long, value_enum, default_value_t = OutputKind::Overlay)]
    output: OutputKind,
    /// Opacity of the mask in overlays, 0 to 1.
    #[arg(long, default_value_t = 0.5)]
    alpha: f32,
    /// Run the network at WIDTHxHEIGHT (labels are still written at the image's size);
    /// default: the image's own size.
    #[arg(long, value_parser = super::parse_size)]
    size: Option<[usize; 2]>,
    #[command(flatten)]
    tta: super::TtaArgs,
}

pub fn run(args: SegmentArgs) -> Result<ExitCode> {
    if !(0.0..=1.0).contains(&args.alpha) {
        bail!("--alpha {} is outside 0..1", args.alpha);
    }
    let tta = args.tta.tta()?;
    let device = super::device();
    let (_, loaded) = super::load_weights(args.weights.as_deref(), &device)?;
    let segmenter = Segmenter::new(loaded, device);
    let files = image_io::expand_inputs(&args.inputs)?;
    if files.is_empty() {
        let inputs: Vec<_> = args
            .inputs
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        bail!(
            "no images found in {}: a folder is searched for files ending in .{}",
            inputs.join(", "),
            image_io::IMAGE_EXTENSIONS.join(", .")
        );
    }
    std::fs::create_dir_all(&args.output_dir)
        .with_context(|| format!("creating {}", args.output_dir.display()))?;

    let bar = super::progress_bar(files.len(), "segmenting");
    let mut failures = 0;
    for file in &files {
        bar.set_message(file.display().to_string());
        if let Err(error) = segment_one(&segmenter, file, &args, &tta) {
            bar.suspend(|| eprintln!("skipped {error:#}"));
            failures += 1;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let written = files.len() - failures;
    println!(
        "wrote {written} of {} to {}",
        files.len(),
        args.output_dir.display()
    );
    if failures > 0 {
        eprintln!("{failures} file(s) could not be segmented (listed above)");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn segment_one(
    segmenter: &Segmenter,
    file: &Path,
    args: &SegmentArgs,
    tta: &TestTimeAugmentation,
) -> Result<()> {
    let image = image_io::read_rgb(file)?;
    let frame = image_io::frame(&image);
    let labels = segmenter.segment_averaged(&frame, args.size, tta);
    let mut name = file.file_stem().unwrap_or(file.as_os_str()).to_os_string();
    name.push(".png");
    let out = args.output_dir.join(name);
    let classes = &segmenter.info.classes;
    match args.output {
        OutputKind::Labels => image_io::write_labels(&labels, &out),
        OutputKind::Color => image_io::write_rgba(
            colorize(&labels, classes),
            labels.width,
            labels.height,
            &out,
        ),
        OutputKind::Overlay => image_io::write_rgba(
            overlay(&frame, &labels, classes, args.alpha),
            labels.width,
            labels.height,
            &out,
        ),
    }?;
    Ok(())
}
