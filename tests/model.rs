//! Architecture tests: parameter counts against the PyTorch reference, output shapes at common
//! and awkward input sizes, and the inference form without auxiliary heads.

use bisenet::model::{BackboneKind, BiSeNet, BiSeNetConfig};
use bisenet::tta::TestTimeAugmentation;
use burn::prelude::*;

fn model(backbone: BackboneKind, classes: usize, aux: bool) -> BiSeNet {
    BiSeNetConfig::new(backbone, classes)
        .with_aux_heads(aux)
        .init(&Device::flex())
}

#[test]
fn resnet18_parameter_count_matches_the_pytorch_reference() {
    let params = |classes, aux| model(BackboneKind::ResNet18, classes, aux).num_trainable_params();
    assert_eq!(params(19, true), 13_425_721);
    assert_eq!(params(19, false), 13_275_539);
    assert_eq!(params(11, true), 13_422_625);
    assert_eq!(params(11, false), 13_273_483);
}

#[test]
fn xception39_parameter_count_matches_its_layer_table() {
    // Backbone 299,448 (TorchSeg's xception39) + the same ARM/FFM/spatial path as ResNet18's
    // model + a 64-channel main head, counted by hand in src/model/v1/xception.rs's table.
    let m = model(BackboneKind::Xception39, 11, false);
    assert_eq!(m.num_trainable_params(), 1_476_419);
    let m = model(BackboneKind::Xception39, 11, true);
    assert_eq!(
        m.num_trainable_params(),
        1_476_419 + 2 * (128 * 64 * 9 + 2 * 64 + 64 * 11 + 11)
    );
}

#[test]
fn running_statistics_are_not_parameters() {
    let m = model(BackboneKind::ResNet18, 19, true);
    // burn's own count includes the 2 x 6,912 BatchNorm running statistics.
    assert_eq!(m.num_params() - m.num_trainable_params(), 2 * 6_912);
}

fn check_shapes(backbone: BackboneKind, [h, w]: [usize; 2]) {
    let device = Device::flex();
    let net = model(backbone, 11, true);
    let x = Tensor::<4>::random(
        [1, 3, h, w],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let out = net.forward(x.clone());
    assert_eq!(out.logits.dims(), [1, 11, h, w], "{backbone} at {h}x{w}");
    let [aux16, aux32] = out.aux.expect("aux heads in training form");
    assert_eq!(aux16.dims(), [1, 11, h, w]);
    assert_eq!(aux32.dims(), [1, 11, h, w]);
    let ids = net.predict(x, [h, w]);
    assert_eq!(ids.dims(), [1, h, w]);
    let max = ids.max().into_scalar::<i64>();
    assert!((0..11).contains(&max));
}

#[test]
fn output_is_at_input_size_for_camvid_and_odd_sizes() {
    for backbone in BackboneKind::ALL {
        check_shapes(backbone, [360, 480]);
        check_shapes(backbone, [333, 517]);
        check_shapes(backbone, [33, 47]);
    }
}

#[test]
fn output_is_at_input_size_for_large_frames() {
    check_shapes(BackboneKind::Xception39, [720, 960]);
    check_shapes(BackboneKind::Xception39, [1024, 2048]);
    check_shapes(BackboneKind::ResNet18, [720, 960]);
    check_shapes(BackboneKind::ResNet18, [1024, 2048]);
}

#[test]
fn inference_form_has_no_aux_heads_and_the_same_main_output() {
    let device = Device::flex();
    let net = model(BackboneKind::Xception39, 11, true);
    let x = Tensor::<4>::random(
        [2, 3, 64, 96],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let with_aux = net.forward(x.clone()).logits;
    let inference = net.without_aux_heads();
    assert!(!inference.has_aux_heads());
    assert!(!inference.config().aux_heads);
    let out = inference.forward(x.clone());
    assert!(out.aux.is_none());
    out.logits
        .clone()
        .into_data()
        .assert_approx_eq::<f32>(&with_aux.into_data(), Default::default());
    // The fast path's argmax agrees with the full forward's.
    let fast = inference.predict(x, [64, 96]);
    fast.into_data()
        .assert_eq(&out.logits.argmax(1).squeeze_dim::<3>(1).into_data(), true);
}

#[test]
fn batch_of_two_is_two_independent_images() {
    let device = Device::flex();
    let net = model(BackboneKind::Xception39, 5, false);
    let a = Tensor::<4>::random(
        [1, 3, 40, 56],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let b = Tensor::<4>::random(
        [1, 3, 40, 56],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let both = net.logits(Tensor::cat(vec![a.clone(), b], 0), [40, 56]);
    let alone = net.logits(a, [40, 56]);
    both.narrow(0, 0, 1)
        .into_data()
        .assert_approx_eq::<f32>(&alone.into_data(), Default::default());
}

#[test]
fn width_multiplier_scales_every_layer_and_is_remembered() {
    let device = Device::flex();
    for backbone in BackboneKind::ALL {
        let full = model(backbone, 11, false).num_trainable_params() as f64;
        let half = BiSeNetConfig::new(backbone, 11)
            .with_aux_heads(false)
            .with_width(0.5)
            .init(&device);
        assert_eq!(half.config().width, 0.5);
        // Convolution parameters scale with the square of the width.
        let ratio = half.num_trainable_params() as f64 / full;
        assert!((0.2..0.3).contains(&ratio), "{backbone}: ratio {ratio}");
        let logits = half.forward(Tensor::zeros([1, 3, 45, 67], &device)).logits;
        assert_eq!(logits.dims(), [1, 11, 45, 67]);
    }
}

/// A prior correction moves each class's logit by its offset at every pixel, through the main
/// classifier's bias, and leaves the auxiliary heads alone.
#[test]
fn shifting_class_logits_moves_each_class_by_its_offset() {
    let device = Device::flex();
    let net = bisenet::model::Network::from(
        BiSeNetConfig::new(BackboneKind::Xception39, 3)
            .with_aux_heads(true)
            .with_width(0.25)
            .init(&device),
    );
    let x = Tensor::<4>::random([1, 3, 64, 80], burn::tensor::Distribution::Default, &device);
    let offsets = [0.5, -1.25, 0.0];
    let shifted = net.clone().shift_class_logits(&offsets);
    let (before, after) = (net.forward(x.clone()), shifted.forward(x));
    let expected = before.logits + Tensor::<1>::from_floats(offsets, &device).reshape([1, 3, 1, 1]);
    expected
        .into_data()
        .assert_approx_eq::<f32>(&after.logits.into_data(), Default::default());
    assert_eq!((before.aux.len(), after.aux.len()), (2, 2));
    for (aux_before, aux_after) in before.aux.iter().zip(&after.aux) {
        aux_before
            .clone()
            .into_data()
            .assert_eq(&aux_after.clone().into_data(), true);
    }
}

#[test]
fn folding_batch_norms_keeps_the_function() {
    let device = Device::flex();
    for backbone in BackboneKind::ALL {
        let net = model(backbone, 11, false);
        let x = Tensor::<4>::random([1, 3, 64, 80], burn::tensor::Distribution::Default, &device);
        let plain = net.forward(x.clone()).logits;
        let folded = bisenet::model::Network::from(net.fold_batch_norms());
        assert!(folded.is_folded());
        let info = bisenet::weights::ModelInfo::new(
            &folded.config(),
            bisenet::classes::ClassSet::camvid(),
        );
        let refused = bisenet::weights::to_bytes(&folded, &info, bisenet::weights::Precision::F32);
        assert!(
            refused.is_err(),
            "a folded model cannot be saved: it would not load back"
        );
        // The folded network also fuses bias, shortcut and ReLU into the CPU convolution; the
        // plain one runs BatchNorm, addition and ReLU as separate tensor ops.
        let folded = folded.forward(x).logits;
        // An untrained network's logits are large (no trained BN scales damp them): compare
        // relative to their magnitude. Folding reorders the f32 arithmetic of ~40 layers, so
        // the rounding differences grow with depth, and with random weights a logit can be a
        // near-cancellation of much larger terms: typically 1e-6 to 1e-5 of the magnitude, with
        // a long tail (4e-5 in 40 draws on an AVX-512 machine, 1.35e-4 once). A wrong fold (a
        // missed bias or scale) is off by O(1) of it, far above 1e-3. The PyTorch parity tests
        // check folded models absolutely.
        let scale: f32 = plain.clone().abs().max().into_scalar();
        let diff: f32 = (plain - folded).abs().max().into_scalar();
        assert!(
            diff <= 1e-3 * scale,
            "{backbone}: folded network differs by {diff} (logits up to {scale})"
        );
    }
}

#[test]
fn flip_averaging_makes_predictions_mirror_symmetric() {
    // A network is not mirror-equivariant (its filters are not symmetric), but the average of
    // an image's and its mirror's predictions is, exactly: mirroring the input only swaps the
    // two terms of the sum. This fails if the mirrored prediction is not mirrored back. The
    // shipped model on a fixed, lopsided pattern: an untrained network's labels can come out
    // symmetric by chance, and then the test would show nothing.
    let device = Device::flex();
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(bisenet::weights::DEFAULT_WEIGHTS);
    let net = bisenet::weights::load(&path, &device)
        .expect("the shipped model loads")
        .model
        .without_aux_heads()
        .fold_batch_norms();
    let [h, w] = [48, 64];
    let pattern: Vec<f32> = (0..3 * h * w)
        .map(|i| {
            let (c, y, x) = ((i / (h * w)) as f32, ((i / w) % h) as f32, (i % w) as f32);
            (0.3 * x + 0.11 * y * y / 8.0 + 2.0 * c).sin() + x / w as f32
        })
        .collect();
    let x = Tensor::<4>::from_data(TensorData::new(pattern, [1, 3, h, w]), &device);
    let mirrored = |ids: Tensor<3, Int>| ids.flip([2]).into_data();
    let predict =
        |tta: &TestTimeAugmentation, x: Tensor<4>| tta.predict(&net, x, [h, w], [h, w], None);

    let single = TestTimeAugmentation::default();
    assert_ne!(
        predict(&single, x.clone()).into_data(),
        mirrored(predict(&single, x.clone().flip([3]))),
        "a single pass should not be symmetric, or this test shows nothing"
    );
    let tta = TestTimeAugmentation::new(vec![1.0, 1.5], true).unwrap();
    let ids = predict(&tta, x.clone());
    assert_eq!(ids.dims(), [1, h, w]);
    assert_eq!(ids.into_data(), mirrored(predict(&tta, x.flip([3]))));
}
