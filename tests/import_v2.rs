//! BiSeNet V2 computes what the PyTorch reference computes: a random network of the widely used
//! implementation's layout (`tools/torch_reference/make_fixture_v2.py`: wrapped state dict,
//! booster heads, random BatchNorm statistics) imports with `bisenet::import` (burn's PyTorch
//! reader and the renames of `V2_RENAMES` in `src/weights/pytorch_names.rs`) and gives the same logits, at a multiple of 32
//! and at 90x120.

mod common;

use common::{fixture, read_tensor};

use bisenet::classes::ClassSet;
use bisenet::import::{ImportOptions, import_pytorch};
use bisenet::model::Network;
use bisenet::preprocess::Normalization;
use burn::prelude::*;

/// A fixture network (width 1/16, 11 classes) as imported: booster heads dropped.
fn import_reference(checkpoint: &str, device: &Device) -> Network {
    let options = ImportOptions {
        classes: ClassSet::camvid(),
        normalization: Normalization::IMAGENET,
        size_multiple: None,
    };
    let loaded = import_pytorch(&fixture(checkpoint), &options, device).expect("imports");
    assert_eq!(loaded.info.architecture, "bisenet-v2");
    assert!(
        !loaded.model.has_aux_heads(),
        "imports drop the booster heads"
    );
    loaded.model
}

/// Runs `model` on the parity inputs `{name}.input.{size}` and checks PyTorch's logits.
fn check_parity(model: &Network, name: &str) {
    let device = Device::flex();
    let parity = fixture("parity_v2.safetensors");
    for size in ["64x96", "90x120"] {
        let (input, input_shape) = read_tensor(&parity, &format!("{name}.input.{size}"));
        let (expected, shape) = read_tensor(&parity, &format!("{name}.logits.{size}"));
        let x = Tensor::<4>::from_data(TensorData::new(input, input_shape), &device);
        let logits = model.forward(x).logits;
        assert_eq!(logits.dims(), shape);
        let ours: Vec<f32> = logits.into_data().try_to_vec().unwrap();
        let max_diff = ours
            .iter()
            .zip(&expected)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        let scale = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        println!("{name} {size}: max |ours - PyTorch| {max_diff:.2e} (largest logit {scale:.2})");
        assert!(
            max_diff <= 1e-3 * scale.max(1.0),
            "{name} {size}: {max_diff}"
        );
    }
}

#[test]
fn logits_match_pytorch_with_and_without_folded_batch_norms() {
    let device = Device::flex();
    let model = import_reference("bisenetv2.pth", &device);
    assert!(!model.config().pixel_shuffle_heads());
    check_parity(&model, "v2");
    check_parity(&model.fold_batch_norms(), "v2");
}

/// The implementation's current head layout (1x1 to `classes x 64` channels, `PixelShuffle(8)`)
/// imports from a bare state dict and computes the same logits.
#[test]
fn pixel_shuffle_heads_match_pytorch() {
    let device = Device::flex();
    let model = import_reference("bisenetv2_shuffle.pth", &device);
    assert!(model.config().pixel_shuffle_heads());
    assert_eq!(model.num_classes(), 11);
    check_parity(&model, "v2s");
    check_parity(&model.fold_batch_norms(), "v2s");
}
