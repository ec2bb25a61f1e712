//! Criterion benchmarks of the library's hot paths: `cargo bench --bench hot_paths`.
//! (`bisenet bench` measures the whole pipeline per input size; this isolates each step.)

use bisenet::classes::ClassSet;
use bisenet::model::{BackboneKind, BiSeNetConfig, ConvBnRelu};
use bisenet::postprocess::upsample_argmax;
use bisenet::preprocess::{Frame, Normalization, PixelFormat, frame_to_tensor, normalize_chw};
use bisenet::render::{LabelMap, colorize};
use burn::prelude::*;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

const H: usize = 360;
const W: usize = 480;

/// A 480x360 RGBA frame (a canvas `ImageData` in the browser) with varied content.
fn frame_pixels() -> Vec<u8> {
    (0..H * W * 4).map(|i| (i * 7 % 251) as u8).collect()
}

fn preprocess(c: &mut Criterion) {
    let pixels = frame_pixels();
    let frame = Frame::new(&pixels, W, H, PixelFormat::Rgba8).unwrap();
    let device = Device::flex();
    c.bench_function("normalize_chw 480x360", |b| {
        b.iter(|| normalize_chw(&frame, &Normalization::IMAGENET))
    });
    c.bench_function("frame_to_tensor 480x360 -> 320x240", |b| {
        b.iter(|| {
            let x = frame_to_tensor(&frame, &Normalization::IMAGENET, Some([240, 320]), &device);
            device.sync().unwrap();
            x
        })
    });
}

fn network(c: &mut Criterion) {
    let device = Device::flex();
    let mut group = c.benchmark_group("network 360x480");
    group.sample_size(10);
    for backbone in BackboneKind::ALL {
        let model = BiSeNetConfig::new(backbone, 11)
            .with_aux_heads(false)
            .init(&device)
            .fold_batch_norms();
        let mut seed = 0.0;
        group.bench_function(backbone.name(), |b| {
            b.iter_batched(
                || {
                    // Fresh input every run.
                    seed += 1.0;
                    Tensor::<4>::ones([1, 3, H, W], &device).mul_scalar(seed)
                },
                |x| {
                    let logits = model.logits(x, [H, W]);
                    device.sync().unwrap();
                    logits
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

/// A single convolution: `channels` in and out, square `kernel`, `stride`, input `[h, w]`.
struct ConvLayer {
    channels: [usize; 2],
    kernel: usize,
    stride: usize,
    input: [usize; 2],
}

impl ConvLayer {
    const fn new(channels: [usize; 2], kernel: usize, stride: usize, input: [usize; 2]) -> Self {
        Self {
            channels,
            kernel,
            stride,
            input,
        }
    }

    /// The name `tools/torch_reference/conv_layers.py` prints too, e.g. "3x3 s2 64->64 at 180x240".
    fn name(&self) -> String {
        let Self {
            channels: [channels_in, channels_out],
            kernel,
            stride,
            input: [h, w],
        } = self;
        let stride = match stride {
            1 => String::new(),
            s => format!(" s{s}"),
        };
        format!("{kernel}x{kernel}{stride} {channels_in}->{channels_out} at {h}x{w}")
    }
}

/// Convolutions of ResNet18 BiSeNet on a 360x480 frame. `tools/torch_reference/conv_layers.py`
/// times the same shapes in PyTorch.
const CONV_LAYERS: [ConvLayer; 4] = [
    ConvLayer::new([3, 64], 7, 2, [360, 480]),
    ConvLayer::new([64, 64], 3, 2, [180, 240]),
    ConvLayer::new([64, 64], 3, 1, [90, 120]),
    ConvLayer::new([512, 512], 3, 1, [12, 15]),
];

/// Each layer twice: burn's `Conv2d::forward`, and the inference convolution the network runs
/// (a folded `ConvBnRelu`: the same convolution with bias and ReLU fused).
fn conv_layers(c: &mut Criterion) {
    let device = Device::flex();
    let mut group = c.benchmark_group("conv2d");
    group.sample_size(10);
    for layer in CONV_LAYERS {
        let [channels_in, channels_out] = layer.channels;
        let mut block = ConvBnRelu::new(
            channels_in,
            channels_out,
            layer.kernel,
            layer.stride,
            &device,
        );
        block.fold_batch_norm();
        let [h, w] = layer.input;
        let mut seed = 0.0;
        let mut fresh_input = || {
            seed += 1.0;
            Tensor::<4>::ones([1, channels_in, h, w], &device).mul_scalar(seed)
        };
        group.bench_function(format!("burn/{}", layer.name()), |b| {
            b.iter_batched(
                &mut fresh_input,
                |x| block.conv.forward(x).into_data(),
                BatchSize::PerIteration,
            )
        });
        group.bench_function(format!("bisenet/{}", layer.name()), |b| {
            b.iter_batched(
                &mut fresh_input,
                |x| block.forward(x).into_data(),
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

fn postprocess(c: &mut Criterion) {
    let device = Device::flex();
    let logits = Tensor::<4>::random([1, 11, H, W], burn::tensor::Distribution::Default, &device);
    c.bench_function("argmax + read-back 11x360x480", |b| {
        b.iter(|| logits.clone().argmax(1).into_data())
    });
    // What the CPU backend runs instead: labels from the 1/8-resolution logits.
    let low_res: Vec<f32> = (0..11 * (H / 8) * (W / 8))
        .map(|i| (i * 37 % 101) as f32 / 10.0)
        .collect();
    c.bench_function("upsample_argmax 11x45x60 -> 360x480", |b| {
        b.iter(|| upsample_argmax(&low_res, 11, [H / 8, W / 8], [H, W]))
    });
    let labels = LabelMap {
        width: W,
        height: H,
        ids: (0..H * W).map(|i| (i % 11) as u8).collect(),
    };
    let classes = ClassSet::camvid();
    c.bench_function("colorize 480x360", |b| {
        b.iter(|| colorize(&labels, &classes))
    });
}

criterion_group!(benches, preprocess, network, conv_layers, postprocess);
criterion_main!(benches);
