//! BiSeNet V2: the paper's network as the PyTorch reference builds it, at any input size.

use bisenet::model::v2::{BiSeNetV2, BiSeNetV2Config};
use bisenet::train::{OhemCrossEntropy, optimizer};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::Distribution;

fn model(classes: usize, boosters: bool, device: &Device) -> BiSeNetV2 {
    BiSeNetV2Config::new(classes)
        .with_aux_heads(boosters)
        .init(device)
}

/// The figures `python3 tools/torch_reference/bisenetv2.py` prints for the reference.
#[test]
fn parameter_count_matches_the_pytorch_reference() {
    let device = Device::flex();
    assert_eq!(model(19, false, &device).num_trainable_params(), 3_358_627);
    assert_eq!(model(19, true, &device).num_trainable_params(), 5_231_487);
    // The implementation's current, pixel-shuffle head layout.
    let shuffle = |boosters| {
        BiSeNetV2Config::new(19)
            .with_aux_heads(boosters)
            .with_pixel_shuffle_heads(true)
            .init(&device)
            .num_trainable_params()
    };
    assert_eq!(shuffle(false), 4_585_552);
    assert_eq!(shuffle(true), 27_709_152);
}

#[test]
fn outputs_are_at_input_size_for_any_size() {
    let device = Device::flex();
    let net = model(11, true, &device);
    // 360 and 90 are not multiples of 32: the reference's x4 upsamplings fail there.
    for [h, w] in [[64, 96], [360, 480], [90, 70]] {
        let x = Tensor::<4>::random([1, 3, h, w], Distribution::Default, &device);
        let (logits, boosters) = net.forward(x.clone());
        assert_eq!(logits.dims(), [1, 11, h, w]);
        for booster in boosters.expect("a training network has its booster heads") {
            assert_eq!(booster.dims(), [1, 11, h, w]);
        }
        assert_eq!(
            net.forward_low_res(x).dims(),
            [1, 11, h.div_ceil(8), w.div_ceil(8)]
        );
    }
}

#[test]
fn inference_form_drops_the_boosters_and_keeps_the_main_output() {
    let device = Device::flex();
    let net = model(11, true, &device);
    let x = Tensor::<4>::random([1, 3, 64, 96], Distribution::Default, &device);
    let (with, _) = net.forward(x.clone());
    let inference = net.without_aux_heads();
    assert!(!inference.has_aux_heads());
    assert_eq!(
        inference.num_trainable_params(),
        model(11, false, &device).num_trainable_params()
    );
    let (without, boosters) = inference.forward(x);
    assert!(boosters.is_none());
    with.into_data()
        .assert_approx_eq::<f32>(&without.into_data(), Default::default());
}

#[test]
fn folding_batch_norms_keeps_the_function() {
    let device = Device::flex();
    let net = model(11, false, &device);
    let x = Tensor::<4>::random([1, 3, 70, 90], Distribution::Default, &device);
    let (expected, _) = net.forward(x.clone());
    let (folded, _) = net.fold_batch_norms().forward(x);
    let diff: f32 = (folded - expected.clone()).abs().max().into_scalar();
    let scale: f32 = expected.abs().max().into_scalar();
    assert!(
        diff <= 1e-4 * scale.max(1.0),
        "max difference {diff} (scale {scale})"
    );
}

/// A prior correction moves each class's logit by its offset at every pixel in both head
/// layouts: in the pixel-shuffle one, a class is a block of `8 x 8` classifier channels.
#[test]
fn shifting_class_logits_moves_each_class_by_its_offset() {
    let device = Device::flex();
    let x = Tensor::<4>::random([1, 3, 64, 96], Distribution::Default, &device);
    let offsets = [0.75, -0.5, 0.0, 2.0];
    for pixel_shuffle in [false, true] {
        let net = bisenet::model::Network::from(
            BiSeNetV2Config::new(4)
                .with_pixel_shuffle_heads(pixel_shuffle)
                .with_width(0.25)
                .init(&device),
        );
        let before = net.forward_low_res(x.clone());
        let after = net.shift_class_logits(&offsets).forward_low_res(x.clone());
        let expected = before + Tensor::<1>::from_floats(offsets, &device).reshape([1, 4, 1, 1]);
        expected
            .into_data()
            .assert_approx_eq::<f32>(&after.into_data(), Default::default());
    }
}

/// One SGD step with OHEM on the main and booster heads lowers the loss on its own batch.
#[test]
fn a_training_step_lowers_the_loss() {
    let device = Device::flex().autodiff();
    device.seed(3);
    let mut net = model(4, true, &device);
    let x = Tensor::<4>::random([2, 3, 64, 64], Distribution::Default, &device);
    let labels = Tensor::<3, Int>::from_data(
        TensorData::new(
            (0..2 * 64 * 64)
                .map(|i| (i % 64 / 16) as i64)
                .collect::<Vec<_>>(),
            [2, 64, 64],
        ),
        &device,
    );
    let loss_fn = OhemCrossEntropy::default();
    let mut optim = optimizer(0.9, 5e-4);
    let mut losses: Vec<f32> = Vec::new();
    for _ in 0..3 {
        let (logits, boosters) = net.forward(x.clone());
        let mut loss = loss_fn.forward(logits, labels.clone());
        for booster in boosters.expect("boosters") {
            loss = loss + loss_fn.forward(booster, labels.clone());
        }
        losses.push(loss.clone().into_scalar());
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optim.step(0.01, net, grads);
    }
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
    assert!(losses[2] < losses[0], "the loss falls: {losses:?}");
}
