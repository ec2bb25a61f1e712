//! Command-line front end: argument parsing and file handling over the library.

mod bench;
mod correct_prior;
#[cfg(any(feature = "cuda", test))]
mod cuda_driver;
mod eval;
mod export;
mod import;
mod info;
mod init;
mod segment;
mod train;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use bisenet::classes::ClassSet;
use bisenet::tta::TestTimeAugmentation;
use bisenet::weights::{self, DEFAULT_WEIGHTS, LoadedModel};
use burn::prelude::*;
use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "bisenet",
    version,
    about = "BiSeNet real-time semantic segmentation"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Segment images (files or folders of images) and write one PNG per image.
    Segment(segment::SegmentArgs),
    /// Measure accuracy (mIoU) on a labelled dataset split.
    Eval(eval::EvalArgs),
    /// Measure inference latency per stage (and a training step) on fresh inputs.
    Bench(bench::BenchArgs),
    /// Show a weights file's architecture, parameter count, classes and metadata.
    Info(info::InfoArgs),
    /// Convert a PyTorch BiSeNet V1 or V2 checkpoint (.pth) into a weights file.
    Import(import::ImportArgs),
    /// Write a freshly initialised model.
    Init(init::InitArgs),
    /// Train a model from scratch (or resume a run).
    Train(train::TrainArgs),
    /// Take back part of the class weights' prior from a model trained with them.
    CorrectPrior(correct_prior::CorrectPriorArgs),
    /// Write a model file from a training run's checkpoint (its weights or their average).
    Export(export::ExportArgs),
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Segment(args) => segment::run(args),
        Command::Eval(args) => eval::run(args).map(|()| ExitCode::SUCCESS),
        Command::Info(args) => info::run(args).map(|()| ExitCode::SUCCESS),
        Command::Bench(args) => bench::run(args).map(|()| ExitCode::SUCCESS),
        Command::Import(args) => import::run(args).map(|()| ExitCode::SUCCESS),
        Command::Init(args) => init::run(args).map(|()| ExitCode::SUCCESS),
        Command::Train(args) => train::run(args).map(|()| ExitCode::SUCCESS),
        Command::CorrectPrior(args) => correct_prior::run(args).map(|()| ExitCode::SUCCESS),
        Command::Export(args) => export::run(args).map(|()| ExitCode::SUCCESS),
    }
}

/// Dataset formats on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DatasetArg {
    /// SegNet-layout CamVid: `ROOT/SPLIT.txt` lists `image label` pairs.
    Camvid,
    /// `ROOT/leftImg8bit/SPLIT/...` with `ROOT/gtFine/SPLIT/..._gtFine_labelIds.png`.
    Cityscapes,
    /// `ROOT/images/`, `ROOT/labels/` and `ROOT/classes.json`.
    Folder,
}

impl DatasetArg {
    pub fn kind(self) -> bisenet::data::DatasetKind {
        use bisenet::data::DatasetKind;
        match self {
            DatasetArg::Camvid => DatasetKind::Camvid,
            DatasetArg::Cityscapes => DatasetKind::Cityscapes,
            DatasetArg::Folder => DatasetKind::Folder,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DatasetArg::Camvid => "camvid",
            DatasetArg::Cityscapes => "cityscapes",
            DatasetArg::Folder => "folder",
        }
    }
}

/// Which BiSeNet a fresh network is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ArchArg {
    /// BiSeNet V1: Spatial Path + Context Path on `--backbone`.
    #[default]
    V1,
    /// BiSeNet V2: Detail Branch + Semantic Branch (no backbone), built to train from scratch.
    V2,
}

impl ArchArg {
    pub fn architecture(self) -> bisenet::model::Architecture {
        match self {
            ArchArg::V1 => bisenet::model::Architecture::V1,
            ArchArg::V2 => bisenet::model::Architecture::V2,
        }
    }
}

/// Where the network runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Backend {
    /// burn's pure-Rust CPU backend (multi-threaded, SIMD).
    #[default]
    Flex,
    /// WebGPU's native API (Vulkan, Metal, DX12) through burn's wgpu backend; needs a build
    /// with `--features wgpu`.
    Wgpu,
    /// NVIDIA GPUs through burn's CUDA backend; needs a build with `--features cuda` and the
    /// NVIDIA driver (NVRTC is loaded at run time).
    Cuda,
}

impl Backend {
    pub fn device(self) -> Result<Device> {
        match self {
            Backend::Flex => Ok(Device::flex()),
            // Acquired here rather than lazily at the first tensor operation, where a machine
            // without a usable adapter panics inside burn's device thread.
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => Device::wgpu_options().init().map_err(|err| {
                anyhow::anyhow!(
                    "--backend wgpu found no usable GPU ({err}): install the GPU's Vulkan driver \
                     (on Linux the vendor's, or mesa-vulkan-drivers for a software one; \
                     VK_DRIVER_FILES points the Vulkan loader at a driver it misses), or use \
                     --backend flex"
                )
            }),
            #[cfg(not(feature = "wgpu"))]
            Backend::Wgpu => bail!(
                "this build has no wgpu backend: rebuild with `cargo build --release --features wgpu`"
            ),
            // Checked here: burn initialises CUDA lazily and panics where the driver is missing.
            #[cfg(feature = "cuda")]
            Backend::Cuda => {
                cuda_driver::check(cuda_driver::DRIVER_LIBRARY)?;
                Ok(Device::cuda(0))
            }
            #[cfg(not(feature = "cuda"))]
            Backend::Cuda => bail!(
                "this build has no CUDA backend: rebuild with `cargo build --release --features cuda`"
            ),
        }
    }
}

/// The default compute device: burn's pure-Rust `flex` CPU backend.
pub fn device() -> Device {
    Device::flex()
}

/// The weights file to use: `--weights`, else `$BISENET_WEIGHTS`, else the shipped model
/// (looked up in the working directory, then in the source tree this binary was built from).
pub fn weights_path(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_owned());
    }
    if let Some(path) = std::env::var_os("BISENET_WEIGHTS") {
        return Ok(PathBuf::from(path));
    }
    let candidates = [
        PathBuf::from(DEFAULT_WEIGHTS),
        Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_WEIGHTS),
    ];
    match candidates.iter().find(|path| path.is_file()) {
        Some(path) => Ok(path.clone()),
        None => bail!(
            "no weights file: the shipped model {DEFAULT_WEIGHTS} is not here. Pass --weights FILE, \
             set BISENET_WEIGHTS, or create one with `bisenet init` or `bisenet train`"
        ),
    }
}

/// Loads the weights file `--weights` (or the default) names.
pub fn load_weights(explicit: Option<&Path>, device: &Device) -> Result<(PathBuf, LoadedModel)> {
    let path = weights_path(explicit)?;
    let loaded =
        weights::load(&path, device).with_context(|| format!("loading {}", path.display()))?;
    Ok((path, loaded))
}

/// Refuses a `--classes N` that 8-bit label maps cannot hold.
pub fn check_class_count(n: usize) -> Result<()> {
    if !(1..=255).contains(&n) {
        bail!("--classes {n}: a model needs between 1 and 255 classes");
    }
    Ok(())
}

/// Parses a class-set argument: `camvid`, `cityscapes`, a class count, or a `classes.json`.
pub fn parse_classes(spec: &str) -> Result<ClassSet> {
    match spec.to_ascii_lowercase().as_str() {
        "camvid" => return Ok(ClassSet::camvid()),
        "cityscapes" => return Ok(ClassSet::cityscapes()),
        _ => {}
    }
    if let Ok(n) = spec.parse::<usize>() {
        check_class_count(n)?;
        return Ok(ClassSet::generic(n));
    }
    let json = std::fs::read_to_string(spec).with_context(|| {
        format!(
            "--classes {spec}: not camvid, cityscapes or a number, and not a readable classes.json"
        )
    })?;
    ClassSet::from_json(&json).map_err(|e| anyhow::anyhow!("{spec}: {e}"))
}

/// Parses `WxH` (e.g. `480x360`) into `[height, width]`.
pub fn parse_size(spec: &str) -> Result<[usize; 2], String> {
    parse_dimensions(spec, "WIDTHxHEIGHT, e.g. 480x360").map(|(w, h)| [h, w])
}

/// Parses `AxB` into `(A, B)`, each a whole number of at least 8; `form` says in errors which
/// comes first (`WIDTHxHEIGHT` for images, `HEIGHTxWIDTH` for `bench`'s tensor shapes).
pub fn parse_dimensions(spec: &str, form: &str) -> Result<(usize, usize), String> {
    let parse = |s: &str| s.trim().parse::<usize>().ok().filter(|&n| n >= 8);
    match spec.split_once(['x', 'X']) {
        Some((a, b)) => match (parse(a), parse(b)) {
            (Some(a), Some(b)) => Ok((a, b)),
            _ => Err(format!(
                "`{spec}`: width and height must be whole numbers of at least 8"
            )),
        },
        None => Err(format!("`{spec}`: expected {form}")),
    }
}

/// Multi-scale + flip inference, shared by `segment` and `eval`.
#[derive(Debug, Args)]
pub struct TtaArgs {
    /// Also average the prediction of the mirrored image (twice the passes).
    #[arg(long)]
    flip: bool,
    /// Input scales whose predictions are averaged, e.g. 0.75,1.0,1.25,1.5,1.75,2.0 (one pass
    /// each; larger scales resolve thin and small objects better).
    #[arg(long, value_delimiter = ',', default_value = "1.0")]
    scales: Vec<f32>,
}

impl TtaArgs {
    pub fn tta(&self) -> Result<TestTimeAugmentation> {
        TestTimeAugmentation::new(self.scales.clone(), self.flip)
            .map_err(|e| anyhow::anyhow!("--scales: {e}"))
    }
}

/// A progress bar for `len` steps, hidden when there is only one.
pub fn progress_bar(len: usize, what: &str) -> indicatif::ProgressBar {
    if len <= 1 {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    let template = format!(
        "{what} {{bar:40}} {{pos}}/{{len}} [{{elapsed_precise}} < {{eta_precise}}] {{msg}}"
    );
    bar.set_style(indicatif::ProgressStyle::with_template(&template).expect("valid template"));
    bar
}
