//! Criterion benchmarks of the library's hot paths: `cargo bench --bench hot_paths`.
//! (`bisenet bench` measures the whole pipeline per input size; this isolates each step.)

use bisenet::classes::ClassSet;
use bisenet::model::{BackboneKind, BiSeNetConfig};
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

fn postprocess(c: &mut Criterion) {
    let device = Device::flex();
    let logits = Tensor::<4>::random([1, 11, H, W], burn::tensor::Distribution::Default, &device);
    c.bench_function("argmax + read-back 11x360x480", |b| {
        b.iter(|| logits.clone().argmax(1).into_data())
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

criterion_group!(benches, preprocess, network, postprocess);
criterion_main!(benches);
