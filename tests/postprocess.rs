//! The fused CPU labelling (bilinear upsampling + argmax) against burn's tensor ops.

use bisenet::classes::ClassSet;
use bisenet::model::{BackboneKind, BiSeNetConfig, NetworkConfig};
use bisenet::postprocess::upsample_argmax;
use bisenet::preprocess::{Frame, PixelFormat};
use bisenet::segmenter::Segmenter;
use bisenet::weights::{LoadedModel, ModelInfo};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};

/// `resize_bilinear(logits)` with burn's ops, `align_corners = false`: `[classes, H * W]`.
fn reference(logits: Tensor<4>, out: [usize; 2]) -> Vec<f32> {
    let options = InterpolateOptions::new(InterpolateMode::Bilinear)
        .with_align_corners(false)
        .with_output_size(out);
    interpolate(logits, options)
        .into_data()
        .try_to_vec()
        .unwrap()
}

fn agreement(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / a.len() as f64
}

#[test]
fn fused_upsample_argmax_matches_resize_then_argmax() {
    let device = Device::flex();
    // Up 8x as the network needs, odd sizes, a non-integer factor, and a downscale.
    for (classes, size, out) in [
        (11, [45, 60], [360, 480]),
        (19, [7, 9], [53, 67]),
        (3, [10, 10], [25, 31]),
        (5, [40, 30], [20, 17]),
    ] {
        let [h, w] = size;
        let logits =
            Tensor::<4>::random([1, classes, h, w], Distribution::Normal(0.0, 3.0), &device);
        let values: Vec<f32> = logits.to_data().try_to_vec().unwrap();
        let fused = upsample_argmax(&values, classes, size, out);
        let upsampled = reference(logits, out);
        let pixels = out[0] * out[1];
        assert_eq!(fused.len(), pixels);
        for (pixel, &label) in fused.iter().enumerate() {
            let score = |class: usize| upsampled[class * pixels + pixel];
            let best = (0..classes).map(score).fold(f32::NEG_INFINITY, f32::max);
            // The chosen class must be the maximum; only a tie under float rounding (both sides
            // interpolate in a different order) may pick another class.
            assert!(
                best - score(label as usize) <= 1e-5 * (1.0 + best.abs()),
                "{size:?} -> {out:?}, pixel {pixel}: class {label} scores {} but the best is {best}",
                score(label as usize)
            );
        }
    }
}

#[test]
fn segmenter_labels_the_same_on_the_cpu_and_with_tensor_ops() {
    let device = Device::flex();
    let config: NetworkConfig = BiSeNetConfig::new(BackboneKind::Xception39, 11)
        .with_aux_heads(false)
        .into();
    let loaded = LoadedModel {
        model: config.init(&device),
        info: ModelInfo::new(&config, ClassSet::camvid()),
    };
    let mut segmenter = Segmenter::new(loaded, device.clone());
    assert!(segmenter.labels_on_cpu, "flex makes labels on the CPU");

    let (w, h) = (83, 61);
    let pixels: Vec<u8> = (0..w * h * 3).map(|i| (i * 37 % 251) as u8).collect();
    let frame = Frame::new(&pixels, w, h, PixelFormat::Rgb8).unwrap();
    let fused = segmenter.segment(&frame, None);
    segmenter.labels_on_cpu = false;
    let tensor_ops = segmenter.segment(&frame, None);
    assert_eq!((fused.width, fused.height), (w, h));
    let share = agreement(&fused.ids, &tensor_ops.ids);
    assert!(share >= 0.999, "only {share} of the labels agree");
}
