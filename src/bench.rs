//! Speed measurements: the latency of each stage of the inference pipeline, and of a training
//! step. Every iteration gets fresh input data, because a backend may skip work it has already
//! seen (wgpu was seen to), and every stage ends with a device sync so its time is its own.

use std::time::Instant;

use burn::prelude::*;
use image::{GrayImage, RgbImage};
use serde::Serialize;

use crate::data::{LabeledImage, batch_tensors};
use crate::model::NetworkConfig;
use crate::preprocess::{Frame, Normalization, PixelFormat};
use crate::segmenter::Segmenter;
use crate::train::{OhemCrossEntropy, TrainingLoss, optimizer, step};

/// Median, minimum and maximum of a set of timings, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Stats {
    /// Summarises `samples` (at least one).
    pub fn of(samples: &[f64]) -> Self {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = match n % 2 {
            1 => sorted[n / 2],
            _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        };
        Self {
            median,
            min: sorted[0],
            max: sorted[n - 1],
        }
    }
}

/// Median time of each inference stage, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stages {
    /// RGB bytes to a normalised tensor on the device.
    pub preprocess: f64,
    /// The network: its low-resolution logits (`Network::forward_low_res`) when labels are
    /// made on the CPU, else resized to the input size.
    pub network: f64,
    /// Labels from the logits (upsampling and argmax) and read-back of the label map.
    pub argmax: f64,
}

/// One row of `bisenet bench`: a backend, a network, an input size.
#[derive(Debug, Clone, Serialize)]
pub struct InferenceResult {
    pub backend: String,
    /// The V1 backbone (`xception39`, `resnet18`) or `bisenet-v2`.
    pub network: String,
    /// `HxW`.
    pub size: String,
    pub total_ms: Stats,
    pub stages_ms: Stages,
    /// Frames per second at the median total latency.
    pub fps: f64,
}

/// A training-step measurement.
#[derive(Debug, Clone, Serialize)]
pub struct TrainResult {
    pub backend: String,
    pub network: String,
    pub batch: usize,
    /// `HxW` of the crops.
    pub crop: String,
    /// Weight of the Lovász-softmax term (0: OHEM cross-entropy alone).
    pub lovasz_weight: f32,
    pub step_ms: Stats,
}

/// What to run and how often.
#[derive(Debug, Clone, Copy)]
pub struct Repeats {
    /// Untimed runs first (allocators, caches, kernel compilation).
    pub warmup: usize,
    /// Timed runs.
    pub iters: usize,
}

/// `[h, w]` as `HxW`.
pub fn size_name([h, w]: [usize; 2]) -> String {
    format!("{h}x{w}")
}

/// Deterministic noise bytes, different for every `seed`: fresh input for every iteration.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            // xorshift64
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u8
        })
        .collect()
}

fn millis(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

/// Times the inference pipeline of `segmenter` on `size = [h, w]` frames: preprocessing, the
/// network, argmax with read-back. `progress` is called after every run.
pub fn bench_inference(
    segmenter: &Segmenter,
    backend: &str,
    size: [usize; 2],
    repeats: Repeats,
    mut progress: impl FnMut(),
) -> InferenceResult {
    let [h, w] = size;
    let device = &segmenter.device;
    let mut times: [Vec<f64>; 4] = Default::default();
    for run in 0..repeats.warmup + repeats.iters {
        let pixels = noise(h * w * 3, run as u64);
        let frame = Frame::new(&pixels, w, h, PixelFormat::Rgb8).expect("sized buffer");

        let start = Instant::now();
        let input = segmenter.input(&frame, None);
        device.sync().ok();
        let preprocess = millis(start);

        let started = Instant::now();
        let logits = segmenter.logits(input, size);
        device.sync().ok();
        let network = millis(started);

        let started = Instant::now();
        let labels = segmenter.labels(logits, size);
        let argmax = millis(started);
        std::hint::black_box(labels);

        if run >= repeats.warmup {
            let total = millis(start);
            for (series, value) in times.iter_mut().zip([preprocess, network, argmax, total]) {
                series.push(value);
            }
        }
        progress();
    }
    let [preprocess, network, argmax, total] = times.each_ref().map(|t| Stats::of(t));
    InferenceResult {
        backend: backend.to_owned(),
        network: segmenter.model.config().short_name(),
        size: size_name(size),
        total_ms: total,
        stages_ms: Stages {
            preprocess: preprocess.median,
            network: network.median,
            argmax: argmax.median,
        },
        fps: 1e3 / total.median,
    }
}

/// The training step to time.
#[derive(Debug, Clone)]
pub struct TrainStep {
    /// The network, with its training heads.
    pub network: NetworkConfig,
    pub batch: usize,
    /// `[height, width]` of the crops.
    pub crop: [usize; 2],
    /// Weight of the Lovász-softmax term (0: OHEM cross-entropy alone, as the recipe).
    pub lovasz_weight: f32,
}

/// Times a full training step (forward through the main and auxiliary heads, OHEM losses and
/// Lovász-softmax when asked, backward, SGD update) of a fresh network on random images and
/// labels. `device` must be an autodiff device.
pub fn bench_train_step(
    spec: TrainStep,
    device: &Device,
    backend: &str,
    repeats: Repeats,
    mut progress: impl FnMut(),
) -> TrainResult {
    let TrainStep {
        network,
        batch,
        crop,
        lovasz_weight,
    } = spec;
    let num_classes = network.num_classes();
    let [h, w] = crop;
    let mut model = network.clone().with_aux_heads(true).init(device);
    let mut optim = optimizer(0.9, 5e-4);
    let loss_fn = TrainingLoss {
        ohem: OhemCrossEntropy::default(),
        aux_weight: 1.0,
        lovasz_weight,
    };
    let mut times = Vec::with_capacity(repeats.iters);
    for run in 0..repeats.warmup + repeats.iters {
        let items: Vec<LabeledImage> = (0..batch)
            .map(|i| {
                let seed = (run * batch + i) as u64;
                let ids = noise(h * w, !seed)
                    .into_iter()
                    .map(|v| (usize::from(v) % num_classes) as u8)
                    .collect();
                LabeledImage {
                    image: RgbImage::from_raw(w as u32, h as u32, noise(h * w * 3, seed))
                        .expect("sized buffer"),
                    label: GrayImage::from_raw(w as u32, h as u32, ids).expect("sized buffer"),
                }
            })
            .collect();
        let data = batch_tensors(&items, &Normalization::IMAGENET, device);
        device.sync().ok();

        let started = Instant::now();
        let loss;
        // On a worker thread, as `train` runs its steps (beside the next batch's loading).
        (model, loss) =
            crate::kernels::on_cpu_workers(|| step(model, &mut optim, data, &loss_fn, 0.01));
        device.sync().ok();
        if run >= repeats.warmup {
            times.push(millis(started));
        }
        std::hint::black_box(loss);
        progress();
    }
    TrainResult {
        backend: backend.to_owned(),
        network: network.short_name(),
        batch,
        crop: size_name(crop),
        lovasz_weight,
        step_ms: Stats::of(&times),
    }
}
