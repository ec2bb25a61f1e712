//! PyTorch import: our network must compute what the PyTorch reference computes.
//!
//! The fixture (`tests/fixtures/torch_reference/`, made by
//! `tools/torch_reference/make_fixture.py`) holds narrow (width 1/16) random BiSeNets with
//! random BatchNorm statistics, fixed inputs and PyTorch's logits for them, at a size that is a
//! multiple of 32 and at one that is not.

mod common;

use std::path::Path;

use bisenet::classes::ClassSet;
use bisenet::import::{ImportError, ImportOptions, import_pytorch};
use bisenet::model::Network;
use bisenet::preprocess::Normalization;
use bisenet::weights::{self, WeightsError};
use burn::prelude::*;
use common::{bisenet_err, bisenet_ok, fixture, read_tensor, stderr, stdout};

fn camvid_options() -> ImportOptions {
    ImportOptions {
        classes: ClassSet::camvid(),
        normalization: Normalization::IMAGENET,
        size_multiple: None,
    }
}

/// Runs `model` on the reference input `{backbone}.input.{size}` of `parity` and checks its
/// logits against PyTorch's: max |difference| <= 1e-3 and the same argmax on >= 99.9 % of the
/// pixels. Returns the max difference.
fn check_parity(model: &Network, parity: &Path, backbone: &str, size: &str) -> f32 {
    let device = Device::flex();
    let (input, input_shape) = read_tensor(parity, &format!("{backbone}.input.{size}"));
    let (expected, shape) = read_tensor(parity, &format!("{backbone}.logits.{size}"));
    let x = Tensor::<4>::from_data(TensorData::new(input, input_shape), &device);
    let logits = model.forward(x).logits;
    assert_eq!(logits.dims(), shape, "logits shape at {size}");
    let ours: Vec<f32> = logits.into_data().try_to_vec().unwrap();

    let max_diff = ours
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    let [_, classes, h, w] = shape;
    let argmax = |values: &[f32], pixel: usize| {
        (0..classes)
            .max_by(|&a, &b| values[a * h * w + pixel].total_cmp(&values[b * h * w + pixel]))
            .unwrap()
    };
    let same = (0..h * w)
        .filter(|&p| argmax(&ours, p) == argmax(&expected, p))
        .count();
    let agreement = same as f64 / (h * w) as f64;
    eprintln!(
        "{backbone} {size}: max |ours - pytorch| = {max_diff:.2e}, argmax agreement {:.3} %",
        agreement * 100.0
    );
    assert!(max_diff <= 1e-3, "{backbone} {size}: max diff {max_diff}");
    assert!(
        agreement >= 0.999,
        "{backbone} {size}: argmax agreement {agreement}"
    );
    max_diff
}

#[test]
fn resnet18_matches_pytorch_at_multiple_and_odd_sizes() {
    let loaded =
        import_pytorch(&fixture("resnet18.pth"), &camvid_options(), &Device::flex()).unwrap();
    assert_eq!(loaded.info.width, 0.0625);
    assert!(!loaded.model.has_aux_heads(), "imports drop the aux heads");
    let parity = fixture("parity.safetensors");
    let folded = loaded.model.clone().fold_batch_norms();
    for size in ["64x64", "70x90"] {
        check_parity(&loaded.model, &parity, "resnet18", size);
        // Folding BatchNorm into the convolutions (what inference runs) keeps parity.
        check_parity(&folded, &parity, "resnet18", size);
    }
}

#[test]
fn xception39_matches_pytorch() {
    let loaded = import_pytorch(
        &fixture("xception39.pth"),
        &camvid_options(),
        &Device::flex(),
    )
    .unwrap();
    let parity = fixture("parity.safetensors");
    check_parity(&loaded.model, &parity, "xception39", "70x90");
    check_parity(
        &loaded.model.fold_batch_norms(),
        &parity,
        "xception39",
        "70x90",
    );
}

#[test]
fn wrapped_checkpoints_import_like_bare_state_dicts() {
    let device = Device::flex();
    let wrapped = import_pytorch(&fixture("resnet18_wrapped.pth"), &camvid_options(), &device)
        .expect("state_dict key, module. prefix and optimizer state are handled");
    check_parity(
        &wrapped.model,
        &fixture("parity.safetensors"),
        "resnet18",
        "70x90",
    );
}

#[test]
fn every_mismatch_is_named_with_both_shapes() {
    let error = import_pytorch(&fixture("broken.pth"), &camvid_options(), &Device::flex())
        .unwrap_err()
        .to_string();
    for expected in [
        "missing tensors: ffm.bn.running_var",
        "unexpected tensors: cp.extra.weight",
        "sp.conv2.conv.weight has shape [5, 4, 3, 3] in the file but [4, 4, 3, 3] in the model",
    ] {
        assert!(error.contains(expected), "`{expected}` not in: {error}");
    }
}

#[test]
fn wrong_class_count_and_non_checkpoints_are_refused() {
    let options = ImportOptions {
        classes: ClassSet::cityscapes(),
        ..camvid_options()
    };
    let error = import_pytorch(&fixture("resnet18.pth"), &options, &Device::flex()).unwrap_err();
    assert!(
        matches!(
            error,
            ImportError::Weights(WeightsError::WrongClassCount {
                expected: 19,
                found: 11,
                ..
            })
        ),
        "{error}"
    );

    let error = import_pytorch(
        &fixture("parity.safetensors"),
        &camvid_options(),
        &Device::flex(),
    )
    .unwrap_err();
    assert!(matches!(error, ImportError::Read { .. }), "{error}");
    assert!(error.to_string().contains("torch.save"), "{error}");
}

#[test]
fn cli_import_writes_a_file_that_runs_like_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("imported.safetensors");
    let out = bisenet_ok(&[
        "import",
        fixture("resnet18_wrapped.pth").to_str().unwrap(),
        "--classes",
        "camvid",
        "--mean",
        "0.3257,0.3690,0.3223",
        "--std",
        "0.2112,0.2148,0.2115",
        "--f32",
        "-o",
        output.to_str().unwrap(),
    ]);
    assert!(stdout(&out).contains("BiSeNet V1 (resnet18) (width 0.0625)"));

    let loaded = weights::load(&output, &Device::flex()).unwrap();
    assert_eq!(loaded.info.normalization.mean, [0.3257, 0.3690, 0.3223]);
    assert_eq!(loaded.info.size_multiple, Some(32));
    check_parity(
        &loaded.model,
        &fixture("parity.safetensors"),
        "resnet18",
        "64x64",
    );

    let info = bisenet_ok(&["info", "--weights", output.to_str().unwrap()]);
    assert!(stdout(&info).contains("rounded up to multiples of 32"));

    // A checkpoint that does not fit leaves nothing behind.
    let refused = dir.path().join("refused.safetensors");
    bisenet_err(
        &[
            "import",
            fixture("broken.pth").to_str().unwrap(),
            "--classes",
            "camvid",
            "-o",
            refused.to_str().unwrap(),
        ],
        "missing tensors",
    );
    assert!(!refused.exists());
}

/// The same parity at full width, made by PyTorch itself (`pip install torch safetensors`).
#[test]
#[ignore = "needs Python with torch and safetensors (scripts/test.sh runs it where they are installed)"]
fn full_width_parity_with_pytorch() {
    common::require_python_modules("torch, safetensors");
    let dir = tempfile::tempdir().unwrap();
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/torch_reference/make_fixture.py");
    let out = common::python()
        .arg(&script)
        .args(["--width", "1.0", "--out", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let parity = dir.path().join("parity.safetensors");
    for (backbone, sizes) in [
        ("resnet18", &["64x64", "70x90"][..]),
        ("xception39", &["70x90"]),
    ] {
        let checkpoint = dir.path().join(format!("{backbone}.pth"));
        let loaded = import_pytorch(&checkpoint, &camvid_options(), &Device::flex()).unwrap();
        assert_eq!(loaded.info.width, 1.0);
        for size in sizes {
            check_parity(&loaded.model, &parity, backbone, size);
        }
    }
}
