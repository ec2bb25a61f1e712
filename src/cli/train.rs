//! `bisenet train`: its arguments, and the progress display of a run.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use bisenet::eval::Metrics;
use bisenet::model::{Architecture, BackboneKind};
use bisenet::train::{self, ClassWeighting, InitReport, InitWeights, TrainConfig, TrainObserver};
use clap::Args;
use indicatif::{MultiProgress, ProgressBar};

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Dataset format.
    #[arg(long, value_enum, default_value = "camvid")]
    dataset: super::DatasetArg,
    /// Dataset root (for CamVid, the folder holding train.txt and val.txt).
    #[arg(long)]
    root: PathBuf,
    /// Split to train on: a name (CamVid `train` reads `ROOT/train.txt`) or a list file
    /// ending in `.txt`, such as `splits/camvid/cross-drive-train.txt`.
    #[arg(long, default_value = "train")]
    split: String,
    /// Split to validate on, given as --split; choose recipes on one that holds out whole
    /// drives (`splits/camvid/cross-drive-val.txt`), not on images of the training drives.
    #[arg(long, default_value = "val")]
    val_split: String,
    /// BiSeNet V1 or V2 [default: the resumed run's, else the --init-weights file's, else
    /// v1].
    #[arg(long, value_enum)]
    arch: Option<super::ArchArg>,
    /// V1's context-path backbone: resnet18 or xception39 [default: the resumed run's, else
    /// the --init-weights file's, else xception39].
    #[arg(long)]
    backbone: Option<BackboneKind>,
    /// Start from this weights file instead of random weights (fine-tuning): a model written
    /// by `train` or `import`, the shipped one included.
    #[arg(long, value_name = "FILE")]
    init_weights: Option<PathBuf>,
    /// Training iterations (batches).
    #[arg(long, conflicts_with = "epochs")]
    iters: Option<usize>,
    /// Training length in passes over the training split (alternative to --iters).
    #[arg(long)]
    epochs: Option<usize>,
    /// Images per step (at least 2: BatchNorm needs more than one sample).
    #[arg(long, default_value_t = TrainConfig::DEFAULT_BATCH_SIZE)]
    batch: usize,
    /// Crop size, WIDTHxHEIGHT.
    #[arg(long, default_value_t = Crop(TrainConfig::DEFAULT_CROP), value_parser = parse_crop)]
    crop: Crop,
    /// Base learning rate.
    #[arg(long, default_value_t = TrainConfig::DEFAULT_LR)]
    lr: f64,
    /// Warm-up iterations.
    #[arg(long, default_value_t = TrainConfig::DEFAULT_WARMUP)]
    warmup: usize,
    /// Weight decay (an L2 penalty) on the convolution weights; none on BatchNorm's
    /// parameters and biases.
    #[arg(long, default_value_t = TrainConfig::DEFAULT_WEIGHT_DECAY)]
    weight_decay: f32,
    /// Smallest random scale of the training images (below the crop's size, a crop is padded
    /// with the ignore id).
    #[arg(long, default_value_t = TrainConfig::DEFAULT_MIN_SCALE)]
    min_scale: f32,
    /// Largest random scale of the training images.
    #[arg(long, default_value_t = TrainConfig::DEFAULT_MAX_SCALE)]
    max_scale: f32,
    /// Colour jitter: brightness, contrast and saturation each scaled by 1 ± this.
    #[arg(long, default_value_t = TrainConfig::DEFAULT_JITTER)]
    jitter: f32,
    /// ClassMix probability: how often a crop gets a random half of the classes of another
    /// crop of its batch pasted over it, pixels and labels (0: never).
    #[arg(long, default_value_t = TrainConfig::DEFAULT_CLASS_MIX)]
    class_mix: f32,
    /// Class weights of the loss: uniform, or sqrt-median-frequency (from the training
    /// split's label frequencies; lifts thin and rare classes).
    #[arg(long, value_enum, default_value_t = TrainConfig::DEFAULT_CLASS_WEIGHTING)]
    class_weights: ClassWeighting,
    /// Take back this much of the class weights' prior from the validated and written models'
    /// logits (0: keep it, 1: take it all back; no effect with uniform class weights).
    #[arg(long, default_value_t = TrainConfig::DEFAULT_PRIOR_CORRECTION)]
    prior_correction: f32,
    /// OHEM: train on the pixels whose true class has a probability below this (at least the
    /// hardest 1/16); 1 trains on every labelled pixel (plain cross-entropy).
    #[arg(long, default_value_t = TrainConfig::DEFAULT_OHEM_THRESHOLD)]
    ohem_threshold: f32,
    /// Add Lovász-softmax, a loss on each class's IoU, on the main head with this weight (0:
    /// none).
    #[arg(long, default_value_t = TrainConfig::DEFAULT_LOVASZ_WEIGHT)]
    lovasz_weight: f32,
    /// Also keep an exponential moving average of the weights with this decay, scored at each
    /// validation and written as final-ema.safetensors (0: none; 0.999: the last ~1,000 steps).
    #[arg(long, default_value_t = TrainConfig::DEFAULT_EMA_DECAY)]
    ema_decay: f64,
    /// Seeds the initial weights, the data order and the augmentation: the same seed and
    /// command give the same run, interrupted or not.
    #[arg(long, default_value_t = TrainConfig::DEFAULT_SEED)]
    seed: u64,
    /// Checkpoint every N iterations.
    #[arg(long, default_value_t = TrainConfig::DEFAULT_CHECKPOINT_EVERY)]
    checkpoint_every: usize,
    /// Measure validation mIoU every N iterations.
    #[arg(long, default_value_t = TrainConfig::DEFAULT_VALIDATE_EVERY)]
    validate_every: usize,
    /// Run folder: checkpoints, log.jsonl, curves.png, best.safetensors, final.safetensors.
    #[arg(long, default_value = "runs/camvid")]
    out: PathBuf,
    /// Continue the run in --out from its last checkpoint (on any backend).
    #[arg(long)]
    resume: bool,
    /// Where to train: flex (the CPU), wgpu (a GPU through Vulkan, Metal or DX12; needs a
    /// build with `--features wgpu`) or cuda (an NVIDIA GPU; needs `--features cuda`).
    #[arg(long, value_enum, default_value_t)]
    backend: super::Backend,
    /// Stop cleanly after this many minutes of training: checkpoint and exit, to continue
    /// later with --resume (for leased or pre-emptible machines).
    #[arg(long, value_name = "MINUTES")]
    time_limit: Option<f64>,
}

pub fn run(args: TrainArgs) -> Result<()> {
    let device = args.backend.device()?;
    let train_set = args.dataset.kind().open(&args.root, &args.split)?;
    let val_set = args.dataset.kind().open(&args.root, &args.val_split)?;
    let shared = val_set.images_shared_with(&train_set);
    if shared > 0 {
        eprintln!(
            "note: {shared} of the {} images of --val-split {} are training images too: its mIoU \
             measures memory of them, not accuracy on new scenes (choose recipes on a split that \
             holds out whole scenes, as splits/camvid/cross-drive-{{train,val}}.txt do)",
            val_set.samples.len(),
            args.val_split
        );
    }
    let per_epoch = train_set.samples.len().div_ceil(args.batch.max(1));
    let iterations = match (args.iters, args.epochs) {
        (Some(iters), _) => iters,
        (None, Some(epochs)) => epochs
            .checked_mul(per_epoch)
            .with_context(|| format!("--epochs {epochs} is too many iterations to count"))?,
        (None, None) => bail!("give the training length with --iters N or --epochs N"),
    };
    let (architecture, backbone) = network_choice(&args)?;
    let config = TrainConfig {
        architecture,
        backbone,
        batch_size: args.batch,
        crop: args.crop.0,
        schedule: TrainConfig::schedule(args.lr, args.warmup, iterations),
        weight_decay: args.weight_decay,
        class_weighting: args.class_weights,
        prior_correction: args.prior_correction,
        scale_range: (args.min_scale, args.max_scale),
        jitter: args.jitter,
        class_mix: args.class_mix,
        ohem_threshold: args.ohem_threshold,
        lovasz_weight: args.lovasz_weight,
        ema_decay: args.ema_decay,
        seed: args.seed,
        checkpoint_every: args.checkpoint_every.max(1),
        validate_every: args.validate_every.max(1),
        init_weights: args.init_weights.clone(),
        ..TrainConfig::new(
            args.dataset.name(),
            &args.root,
            &args.split,
            &args.val_split,
            iterations,
        )
    };
    let mut progress = Progress::new(iterations);
    progress.resuming = args.resume.then(|| args.out.clone());
    if let Some(minutes) = args.time_limit {
        if !(minutes > 0.0 && minutes.is_finite()) {
            bail!("--time-limit {minutes} must be a positive number of minutes");
        }
        let deadline = std::time::Duration::try_from_secs_f64(minutes * 60.0)
            .ok()
            .and_then(|limit| Instant::now().checked_add(limit));
        progress.deadline = Some(deadline.with_context(|| {
            format!(
                "--time-limit {minutes}: too far ahead to keep time (leave it out for no limit)"
            )
        })?);
    }
    let state = train::train(
        &config,
        &train_set,
        &val_set,
        &args.out,
        args.resume,
        &device,
        &mut progress,
    )
    .with_context(|| format!("training in {}", args.out.display()))?;
    progress.bar.finish_and_clear();
    if state.iteration < iterations {
        println!(
            "stopped at iteration {} of {iterations} (--time-limit); the checkpoint is in {}: \
             continue with the same command and --resume",
            state.iteration,
            args.out.display()
        );
        return Ok(());
    }
    let files = train::RunFiles { dir: args.out };
    println!(
        "done: {} iterations; the model is {}; best {} mIoU {:.2}{} at iteration {}, in {}",
        state.iteration,
        files.final_model().display(),
        args.val_split,
        state.best_miou.unwrap_or(0.0) * 100.0,
        if shared > 0 {
            " (on training images)"
        } else {
            ""
        },
        state.best_iteration.unwrap_or(0),
        files.best().display()
    );
    if config.ema_decay > 0.0 {
        println!(
            "the weights' moving average is {}",
            files.final_ema().display()
        );
    }
    if config.corrects_prior() {
        println!(
            "every model written takes back {} of the class weights' prior (--prior-correction)",
            config.prior_correction
        );
    }
    Ok(())
}

/// The network to train: --arch and --backbone where given, else those of the run being
/// resumed, else those of the --init-weights file, else the recipe's.
fn network_choice(args: &TrainArgs) -> Result<(Architecture, BackboneKind)> {
    let checkpoint = match args.resume {
        true => train::checkpoint::latest(&args.out)
            .with_context(|| format!("reading the run in {}", args.out.display()))?,
        false => None,
    };
    let fallback = match (checkpoint, &args.init_weights) {
        (Some(checkpoint), _) => {
            let saved = train::checkpoint::load_state(&checkpoint)
                .with_context(|| format!("reading checkpoint {}", checkpoint.display()))?;
            Some((saved.config.architecture, saved.config.backbone))
        }
        (None, Some(path)) => {
            let network = InitWeights::read(path)?.info.config();
            Some((
                network.architecture(),
                network.backbone().unwrap_or(TrainConfig::DEFAULT_BACKBONE),
            ))
        }
        (None, None) => None,
    };
    let architecture = args
        .arch
        .map(super::ArchArg::architecture)
        .or(fallback.map(|(architecture, _)| architecture))
        .unwrap_or(TrainConfig::DEFAULT_ARCHITECTURE);
    let backbone = args
        .backbone
        .or(fallback.map(|(_, backbone)| backbone))
        .unwrap_or(TrainConfig::DEFAULT_BACKBONE);
    Ok((architecture, backbone))
}

/// A crop size as the command line writes it, WIDTHxHEIGHT; holds `[height, width]`.
#[derive(Debug, Clone, Copy)]
struct Crop([usize; 2]);

impl std::fmt::Display for Crop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [height, width] = self.0;
        write!(f, "{width}x{height}")
    }
}

fn parse_crop(spec: &str) -> Result<Crop, String> {
    super::parse_size(spec).map(Crop)
}

struct Progress {
    bars: MultiProgress,
    bar: ProgressBar,
    val_bar: Option<ProgressBar>,
    loss: Option<f32>,
    started: Instant,
    /// When, and at which iteration, a status line was last written where the bars are hidden
    /// (see `report`); at first, the run's start.
    reported: (Instant, usize),
    first: usize,
    deadline: Option<Instant>,
    /// The run folder, where --resume was given: said when it holds nothing to resume.
    resuming: Option<PathBuf>,
}

impl Progress {
    fn new(iterations: usize) -> Self {
        let bar = ProgressBar::new(iterations as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "train {bar:30} {pos}/{len} [{elapsed_precise} < {eta_precise}] {msg}",
            )
            .expect("valid template"),
        );
        let bars = MultiProgress::new();
        let bar = bars.add(bar);
        Self {
            bars,
            bar,
            val_bar: None,
            loss: None,
            started: Instant::now(),
            reported: (Instant::now(), 0),
            first: 0,
            deadline: None,
            resuming: None,
        }
    }

    /// A line above the bars, or on its own where they are hidden (output not a terminal, as
    /// under `nohup`), where indicatif's `println` would drop it.
    fn say(&self, line: &str) {
        self.bars.suspend(|| eprintln!("{line}"));
    }

    /// Where the bars are hidden (a run under `nohup`, its output in a log), a status line every
    /// tenth of the schedule or ten minutes, whichever comes first, in place of the bar. Its
    /// speed is that since the last line, validation included: a long run's pace follows the
    /// machine's load, and the time to go should too.
    fn report(&mut self, iteration: usize, smoothed_loss: f32) {
        let total = self.bar.length().unwrap_or(0) as usize;
        let tenth = (total / 10).max(1);
        let (since, from) = self.reported;
        if !self.bar.is_hidden()
            || !(iteration.is_multiple_of(tenth) || since.elapsed() >= REPORT_EVERY)
            || iteration == total
        {
            return;
        }
        let seconds_per_iteration = since.elapsed().as_secs_f64() / (iteration - from) as f64;
        self.reported = (Instant::now(), iteration);
        self.say(&status_line(
            iteration,
            total,
            smoothed_loss,
            seconds_per_iteration,
        ));
    }
}

/// Where a run stands, and the time its remaining iterations take at the given pace.
fn status_line(iteration: usize, total: usize, loss: f32, seconds_per_iteration: f64) -> String {
    let left = total.saturating_sub(iteration) as f64 * seconds_per_iteration;
    format!(
        "iteration {iteration} of {total}: loss {loss:.3}, {seconds_per_iteration:.2} s per iteration, about {} to go",
        duration_words(left)
    )
}

/// How often a run whose bars are hidden says where it is, at the least.
const REPORT_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// A duration for a person: "3 h 05 min", "12 min", "40 s".
fn duration_words(seconds: f64) -> String {
    let seconds = seconds.max(0.0).round() as u64;
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min", seconds / 60),
        _ => format!("{} h {:02} min", seconds / 3600, seconds / 60 % 60),
    }
}

impl TrainObserver for Progress {
    fn started(&mut self, first_iteration: usize, _config: &TrainConfig) {
        self.first = first_iteration;
        self.reported = (Instant::now(), first_iteration);
        self.bar.set_position(first_iteration as u64);
        self.bar.reset_eta();
        if first_iteration > 0 {
            self.say(&format!("resumed at iteration {first_iteration}"));
        } else if let Some(out) = &self.resuming {
            // Scripts pass --resume on every start; a person who mistyped --out learns it here.
            self.say(&format!(
                "nothing to resume in {} (no checkpoint there): starting a new run",
                out.display()
            ));
        }
    }

    fn resumed_with_changes(&mut self, changes: &[String]) {
        self.say(&format!(
            "note: resuming with a changed recipe: {}; pass the run's own values to keep it",
            changes.join(", ")
        ));
    }

    fn initialized(&mut self, path: &std::path::Path, report: &InitReport) {
        self.say(&format!("started from {}: {report}", path.display()));
    }

    fn step(&mut self, iteration: usize, loss: f32, lr: f64) {
        let smoothed = self.loss.map_or(loss, |l| 0.95 * l + 0.05 * loss);
        self.loss = Some(smoothed);
        let rate = (iteration - self.first) as f64 / self.started.elapsed().as_secs_f64();
        self.bar.set_position(iteration as u64);
        self.bar
            .set_message(format!("loss {smoothed:.3} lr {lr:.2e} {rate:.2} it/s"));
        self.report(iteration, smoothed);
    }

    fn should_stop(&mut self) -> bool {
        self.deadline
            .is_some_and(|deadline| Instant::now() >= deadline)
    }

    fn validating(&mut self, images: usize) {
        let bar = super::progress_bar(images, "  validating");
        self.val_bar = Some(self.bars.add(bar));
    }

    fn validated_image(&mut self) {
        if let Some(bar) = &self.val_bar {
            bar.inc(1);
        }
    }

    fn validated(&mut self, iteration: usize, metrics: &Metrics, is_best: bool) {
        if let Some(bar) = self.val_bar.take() {
            bar.finish_and_clear();
        }
        self.say(&format!(
            "iteration {iteration}: val mIoU {:.2}, pixel accuracy {:.2}{}",
            metrics.miou * 100.0,
            metrics.pixel_accuracy * 100.0,
            if is_best { " (best so far)" } else { "" }
        ));
    }

    fn validated_ema(&mut self, iteration: usize, metrics: &Metrics) {
        if let Some(bar) = self.val_bar.take() {
            bar.finish_and_clear();
        }
        self.say(&format!(
            "iteration {iteration}: val mIoU {:.2} of the weights' moving average",
            metrics.miou * 100.0
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::{duration_words, status_line};

    #[test]
    fn durations_read_in_the_largest_units() {
        assert_eq!(duration_words(40.2), "40 s");
        assert_eq!(duration_words(12.0 * 60.0 + 59.0), "12 min");
        assert_eq!(
            duration_words(3.0 * 3600.0 + 5.0 * 60.0 + 20.0),
            "3 h 05 min"
        );
        assert_eq!(duration_words(-1.0), "0 s");
    }

    #[test]
    fn the_time_to_go_is_the_iterations_left_at_the_pace_given() {
        assert_eq!(
            status_line(12_000, 48_000, 0.61234, 0.55),
            "iteration 12000 of 48000: loss 0.612, 0.55 s per iteration, about 5 h 30 min to go"
        );
    }
}
