//! BiSeNet V2 computes what the PyTorch reference computes: a random network of the widely used
//! implementation's layout (`tools/torch_reference/make_fixture_v2.py`: wrapped state dict,
//! booster heads, random BatchNorm statistics) loads through burn's PyTorch reader with
//! [`PYTORCH_RENAMES`] and gives the same logits, at a multiple of 32 and at 90x120.

use std::path::{Path, PathBuf};

use bisenet::model::v2::{BiSeNetV2, BiSeNetV2Config, PYTORCH_RENAMES};
use burn::prelude::*;
use burn::store::{ModuleSnapshot, PytorchStore};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/torch_reference")
        .join(name)
}

fn read_tensor(file: &Path, name: &str) -> (Vec<f32>, [usize; 4]) {
    let bytes = std::fs::read(file).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let view = tensors.tensor(name).unwrap_or_else(|_| panic!("{name}"));
    let shape: [usize; 4] = view.shape().try_into().unwrap();
    let values = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    (values, shape)
}

/// The fixture's network (width 1/16, 11 classes, booster heads) with the checkpoint's weights.
fn load_reference(device: &Device) -> BiSeNetV2 {
    let mut store = PytorchStore::from_file(fixture("bisenetv2.pth"))
        .validate(false)
        .allow_partial(true)
        .with_key_remapping(r"^state_dict\.module\.", "");
    for (from, to) in PYTORCH_RENAMES {
        store = store.with_key_remapping(from, to);
    }
    let mut model = BiSeNetV2Config::new(11).with_width(0.0625).init(device);
    let result = model.load_from(&mut store).expect("the checkpoint reads");
    let unexpected: Vec<_> = result
        .unused
        .iter()
        .filter(|name| !name.ends_with("num_batches_tracked") && *name != "epoch")
        .collect();
    assert!(result.missing.is_empty(), "missing: {:?}", result.missing);
    assert!(unexpected.is_empty(), "not used: {unexpected:?}");
    assert!(result.errors.is_empty(), "errors: {:?}", result.errors);
    model
}

#[test]
fn logits_match_pytorch_with_and_without_folded_batch_norms() {
    let device = Device::flex();
    let model = load_reference(&device).without_aux_heads();
    let folded = load_reference(&device)
        .without_aux_heads()
        .fold_batch_norms();
    let parity = fixture("parity_v2.safetensors");
    for size in ["64x96", "90x120"] {
        let (input, input_shape) = read_tensor(&parity, &format!("v2.input.{size}"));
        let (expected, shape) = read_tensor(&parity, &format!("v2.logits.{size}"));
        for (name, net) in [("plain", &model), ("folded", &folded)] {
            let x = Tensor::<4>::from_data(TensorData::new(input.clone(), input_shape), &device);
            let (logits, _) = net.forward(x);
            assert_eq!(logits.dims(), shape);
            let ours: Vec<f32> = logits.into_data().try_to_vec().unwrap();
            let max_diff = ours
                .iter()
                .zip(&expected)
                .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
            let scale = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            println!(
                "{size} {name}: max |ours - PyTorch| {max_diff:.2e} (largest logit {scale:.2})"
            );
            assert!(
                max_diff <= 1e-3 * scale.max(1.0),
                "{size} {name}: {max_diff}"
            );
        }
    }
}
