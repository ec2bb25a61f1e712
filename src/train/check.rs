//! The checks a recipe passes before any work starts, and the memory it needs.

use super::{TrainConfig, TrainError};
use crate::data::{Dataset, LabelPolicy, load_sample};
use crate::model::BackboneKind;

impl TrainConfig {
    /// Checks the options before any work starts. The memory estimate is checked against the
    /// host's free memory only `on_cpu`: on a GPU the activations live in the device's memory.
    pub fn check(&self, train: &Dataset, on_cpu: bool) -> Result<(), TrainError> {
        let [crop_h, crop_w] = self.crop;
        if crop_h < 32 || crop_w < 32 {
            return Err(TrainError::Config(format!(
                "crop {crop_w}x{crop_h} is too small: BiSeNet downsamples 32x, use at least 32x32"
            )));
        }
        if self.batch_size < 2 {
            return Err(TrainError::Config(
                "--batch must be at least 2: BatchNorm needs more than one sample".into(),
            ));
        }
        if self.iterations == 0 {
            return Err(TrainError::Config("--iters must be at least 1".into()));
        }
        let lr = self.schedule.base;
        if !(lr > 0.0 && lr.is_finite()) {
            return Err(TrainError::Config(format!(
                "--lr {lr} must be a positive number (leave it out for the recipe's)"
            )));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return Err(TrainError::Config(format!(
                "--weight-decay {} must be zero or a positive number (leave it out for the recipe's)",
                self.weight_decay
            )));
        }
        if !(self.prior_correction >= 0.0 && self.prior_correction.is_finite()) {
            return Err(TrainError::Config(format!(
                "--prior-correction {} must be zero (keep the class weights' prior) or a \
                 positive number (1 takes it all back)",
                self.prior_correction
            )));
        }
        if !(0.0..1.0).contains(&self.jitter) {
            return Err(TrainError::Config(format!(
                "--jitter {} must be at least 0 and below 1",
                self.jitter
            )));
        }
        if !(self.ohem_threshold > 0.0 && self.ohem_threshold <= 1.0) {
            return Err(TrainError::Config(format!(
                "--ohem-threshold {} is a probability above 0 and at most 1 (1 trains on every pixel)",
                self.ohem_threshold
            )));
        }
        if !(self.lovasz_weight >= 0.0 && self.lovasz_weight.is_finite()) {
            return Err(TrainError::Config(format!(
                "--lovasz-weight {} must be zero (no Lovász term) or a positive number",
                self.lovasz_weight
            )));
        }
        if !(0.0..1.0).contains(&self.ema_decay) {
            return Err(TrainError::Config(format!(
                "--ema-decay {} must be at least 0 (no average) and below 1 (0.999 averages \
                 about the last 1,000 iterations)",
                self.ema_decay
            )));
        }
        if !(0.0..=1.0).contains(&self.class_mix) {
            return Err(TrainError::Config(format!(
                "--class-mix {} is a probability: give a value from 0 to 1",
                self.class_mix
            )));
        }
        let (min_scale, max_scale) = self.scale_range;
        if !(min_scale > 0.0 && min_scale <= max_scale && max_scale.is_finite()) {
            return Err(TrainError::Config(format!(
                "--min-scale {min_scale} and --max-scale {max_scale} must be positive numbers, \
                 the first no larger than the second"
            )));
        }
        let needed = self.estimated_peak_memory();
        if on_cpu
            && let Some(available) = available_memory()
            && needed > available
        {
            return Err(TrainError::Config(format!(
                "a batch of {} {}x{} crops needs about {:.1} GB for the {} network's activations, \
                 but only {:.1} GB of memory is available: lower --batch or --crop",
                self.batch_size,
                crop_w,
                crop_h,
                needed as f64 / 1e9,
                self.network().describe(),
                available as f64 / 1e9
            )));
        }
        // A crop far beyond the largest scaled image would be mostly padding: refuse it.
        let first = load_sample(&train.samples[0], train, LabelPolicy::Strict)?;
        let (w, h) = first.image.dimensions();
        let max = |side: u32| (side as f32 * max_scale).round() as usize;
        if crop_h > max(h) || crop_w > max(w) {
            return Err(TrainError::Config(format!(
                "crop {crop_w}x{crop_h} is larger than the biggest scaled image ({}x{} = {w}x{h} x {}); \
                 most of every crop would be padding. Use a smaller --crop",
                max(w),
                max(h),
                max_scale
            )));
        }
        Ok(())
    }

    /// Peak memory of a training step, as measured on the flex backend: bytes per input pixel
    /// of the batch, which depend on the network, plus a fixed 0.3 GB.
    fn estimated_peak_memory(&self) -> u64 {
        let per_pixel: u64 = match self.network().backbone() {
            Some(BackboneKind::Xception39) => 1_000,
            Some(BackboneKind::ResNet18) => 1_500,
            None => 2_400,
        };
        let pixels = (self.batch_size * self.crop[0] * self.crop[1]) as u64;
        300_000_000 + pixels * per_pixel
    }
}

/// Memory available to a new allocation (Linux `MemAvailable`), when the system says.
fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
