//! `tools/torch_reference/export_onnx.py` turns a weights file of ours (V1 or V2) into ONNX; ONNX
//! Runtime's labels from it equal `bisenet segment`'s. Needs `python3` with `torch`, `onnx`,
//! `onnxruntime` and `safetensors` (`$BISENET_PYTHON` or `python3`), so it is `#[ignore]`d:
//! `scripts/test.sh` runs it where that Python has them.

mod common;

use std::path::Path;

use common::{bisenet_ok, fixture, stderr, write_rgb};

const EXPORT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tools/torch_reference/export_onnx.py"
);

/// Runs an exported graph (`--argmax`) in ONNX Runtime on an RGB image's raw bytes, normalised
/// with the mean and std the export recorded, and writes the labels as raw bytes.
const RUN_ONNX: &str = r#"
import json, sys
import numpy as np, onnx, onnxruntime as ort
model, image, h, w, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
meta = {p.key: json.loads(p.value) for p in onnx.load(model).metadata_props}
rgb = np.fromfile(image, dtype=np.uint8).reshape(h, w, 3).astype(np.float32) / 255.0
x = ((rgb - np.array(meta["mean"], np.float32)) / np.array(meta["std"], np.float32))
x = x.transpose(2, 0, 1)[None].astype(np.float32)
session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
labels = session.run(None, {"input": x})[0]
labels.astype(np.uint8).tofile(out)
"#;

/// The share of pixels where ONNX Runtime's labels equal `bisenet segment`'s for `weights`.
fn agreement(weights: &Path, dir: &Path) -> f64 {
    let [h, w] = [70, 90];
    let image = dir.join("pattern.png");
    write_rgb(&image, w, h);
    let rgb = image::open(&image).unwrap().to_rgb8();
    let raw = dir.join("pattern.rgb");
    std::fs::write(&raw, rgb.as_raw()).unwrap();

    let onnx = dir.join("model.onnx");
    let out = common::python()
        .args([
            EXPORT,
            weights.to_str().unwrap(),
            "-o",
            onnx.to_str().unwrap(),
        ])
        .args(["--size", &format!("{h}x{w}"), "--argmax"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let labels_raw = dir.join("labels.raw");
    let out = common::python()
        .args([
            "-c",
            RUN_ONNX,
            onnx.to_str().unwrap(),
            raw.to_str().unwrap(),
        ])
        .args([&h.to_string(), &w.to_string(), labels_raw.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let theirs = std::fs::read(&labels_raw).unwrap();

    let labels_dir = dir.join("labels");
    bisenet_ok(&[
        "segment",
        image.to_str().unwrap(),
        "--weights",
        weights.to_str().unwrap(),
        "--output",
        "labels",
        "-o",
        labels_dir.to_str().unwrap(),
    ]);
    let ours = image::open(labels_dir.join("pattern.png"))
        .unwrap()
        .to_luma8()
        .into_raw();
    assert_eq!(ours.len(), theirs.len());
    let same = ours.iter().zip(&theirs).filter(|(a, b)| a == b).count();
    same as f64 / ours.len() as f64
}

#[test]
#[ignore = "needs Python with torch, onnx, onnxruntime and safetensors (scripts/test.sh runs it where they are installed)"]
fn onnx_runtime_labels_match_the_cli_for_v1_and_v2() {
    common::require_python_modules("torch, onnx, onnxruntime, safetensors");
    let dir = tempfile::tempdir().unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/bisenet-camvid.safetensors");
    let v1 = agreement(&shipped, dir.path());
    println!("V1 (shipped model): {:.3} % of pixels agree", v1 * 100.0);
    assert!(v1 >= 0.999, "V1: {v1}");

    // Random V2s of both PyTorch head layouts with random BatchNorm statistics, imported.
    for checkpoint in ["bisenetv2.pth", "bisenetv2_shuffle.pth"] {
        let weights = dir.path().join(checkpoint).with_extension("safetensors");
        let path = fixture(checkpoint);
        bisenet_ok(&[
            "import",
            path.to_str().unwrap(),
            "--classes",
            "camvid",
            "--size-multiple",
            "1",
            "-o",
            weights.to_str().unwrap(),
        ]);
        let v2 = agreement(&weights, dir.path());
        println!(
            "V2 ({checkpoint}, imported): {:.3} % of pixels agree",
            v2 * 100.0
        );
        assert!(v2 >= 0.999, "{checkpoint}: {v2}");
    }
}
