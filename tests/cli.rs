//! The `bisenet` command line end to end: init, info, segment, and every bad input.

mod common;

use common::{bisenet, bisenet_err, bisenet_ok, shared_data, stderr, stdout, write_rgb};
use std::path::Path;
use std::process::Command;

fn init_model(dir: &Path) -> String {
    let weights = dir.join("model.safetensors");
    bisenet_ok(&[
        "init",
        "--backbone",
        "xception39",
        "--classes",
        "camvid",
        "-o",
        weights.to_str().unwrap(),
    ]);
    weights.to_str().unwrap().to_owned()
}

#[test]
fn segment_writes_labels_color_and_overlay_for_every_image_format() {
    let dir = tempfile::tempdir().unwrap();
    let weights = init_model(dir.path());
    let inputs = dir.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    write_rgb(&inputs.join("rgb.png"), 67, 45);
    let rgb = image::open(inputs.join("rgb.png")).unwrap();
    rgb.to_rgba8().save(inputs.join("rgba.png")).unwrap();
    rgb.to_luma8().save(inputs.join("gray.png")).unwrap();
    rgb.to_rgb16().save(inputs.join("deep.png")).unwrap();
    rgb.to_rgb8().save(inputs.join("photo.jpg")).unwrap();

    for kind in ["labels", "color", "overlay"] {
        let out_dir = dir.path().join(kind);
        let out = bisenet_ok(&[
            "segment",
            inputs.to_str().unwrap(),
            "--weights",
            &weights,
            "--output",
            kind,
            "-o",
            out_dir.to_str().unwrap(),
        ]);
        assert!(stdout(&out).contains("wrote 5 of 5"), "{}", stdout(&out));
        for stem in ["rgb", "rgba", "gray", "deep", "photo"] {
            let written = image::open(out_dir.join(format!("{stem}.png"))).unwrap();
            assert_eq!(
                (written.width(), written.height()),
                (67, 45),
                "{kind}/{stem}"
            );
            if kind == "labels" {
                let labels = written.as_luma8().expect("labels are 8-bit gray");
                assert!(labels.iter().all(|&id| id < 11));
            }
        }
    }
}

#[test]
fn segment_at_a_smaller_size_still_writes_labels_at_image_size() {
    let dir = tempfile::tempdir().unwrap();
    let weights = init_model(dir.path());
    let input = dir.path().join("a.png");
    write_rgb(&input, 120, 80);
    bisenet_ok(&[
        "segment",
        input.to_str().unwrap(),
        "--weights",
        &weights,
        "--size",
        "60x40",
        "--output",
        "labels",
        "-o",
        dir.path().join("out").to_str().unwrap(),
    ]);
    let labels = image::open(dir.path().join("out/a.png")).unwrap();
    assert_eq!((labels.width(), labels.height()), (120, 80));
}

#[test]
fn segment_with_flip_and_scales_writes_labels_at_image_size_and_refuses_bad_scales() {
    let dir = tempfile::tempdir().unwrap();
    let weights = init_model(dir.path());
    let input = dir.path().join("a.png");
    write_rgb(&input, 120, 80);
    let out_dir = dir.path().join("out");
    let args = |scales: &'static str| {
        [
            "segment",
            input.to_str().unwrap(),
            "--weights",
            weights.as_str(),
            "--flip",
            "--scales",
            scales,
            "--size",
            "60x40",
            "--output",
            "labels",
            "-o",
            out_dir.to_str().unwrap(),
        ]
    };
    bisenet_ok(&args("0.5,1.0,1.5"));
    let labels = image::open(out_dir.join("a.png")).unwrap();
    assert_eq!((labels.width(), labels.height()), (120, 80));

    let err = bisenet_err(&args("1.0,9"), "--scales");
    assert!(err.contains("between 0.1 and 4"), "{err}");
}

#[test]
fn bad_images_are_reported_by_name_skipped_and_fail_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let weights = init_model(dir.path());
    let good = dir.path().join("good.png");
    write_rgb(&good, 40, 30);
    let empty = dir.path().join("empty.png");
    std::fs::write(&empty, b"").unwrap();
    let text = dir.path().join("notes.png");
    std::fs::write(&text, b"this is not an image").unwrap();
    let truncated = dir.path().join("truncated.png");
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let missing = dir.path().join("missing.png");

    let out_dir = dir.path().join("out");
    let paths =
        [&good, &empty, &text, &truncated, &missing].map(|p| p.to_str().unwrap().to_owned());
    let mut args = vec![
        "segment",
        "--weights",
        &weights,
        "-o",
        out_dir.to_str().unwrap(),
    ];
    args.extend(paths.iter().map(String::as_str));
    let out = bisenet(&args);
    assert!(!out.status.success(), "a failed file must fail the run");
    let err = stderr(&out);
    for name in ["empty.png", "notes.png", "truncated.png", "missing.png"] {
        assert!(err.contains(name), "{name} not reported in: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        out_dir.join("good.png").is_file(),
        "the good file is still processed"
    );
    assert!(stdout(&out).contains("wrote 1 of 5"));

    // A folder without images names itself and what is searched for.
    let no_images = dir.path().join("no-images");
    std::fs::create_dir(&no_images).unwrap();
    let err = bisenet_err(
        &[
            "segment",
            "--weights",
            &weights,
            no_images.to_str().unwrap(),
        ],
        "no images found in",
    );
    assert!(err.contains("no-images") && err.contains(".png"), "{err}");
}

#[test]
fn bad_weights_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let image_path = dir.path().join("a.png");
    write_rgb(&image_path, 32, 32);
    let not_weights = dir.path().join("weights.safetensors");
    std::fs::write(&not_weights, b"hello").unwrap();
    let weights = init_model(dir.path());
    let bytes = std::fs::read(&weights).unwrap();
    let truncated = dir.path().join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() - 1000]).unwrap();

    for (file, expected) in [
        (not_weights.to_str().unwrap(), "not a weights file"),
        (truncated.to_str().unwrap(), "truncated"),
        ("/nonexistent/model.safetensors", "cannot read"),
    ] {
        for command in [
            vec!["info", "--weights", file],
            vec!["segment", image_path.to_str().unwrap(), "--weights", file],
        ] {
            let err = bisenet_err(&command, expected);
            // The operating system's reason is given once, not repeated by each error layer.
            assert!(err.matches("os error").count() <= 1, "{err}");
        }
    }
}

#[test]
fn info_describes_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let weights = init_model(dir.path());
    let text = stdout(&bisenet_ok(&["info", "--weights", &weights]));
    for expected in [
        "bisenet-v1",
        "xception39",
        "1476419",
        "Bicyclist",
        "ignore id:      11",
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
}

#[test]
fn init_refuses_bad_class_specs() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("m.safetensors");
    for spec in ["0", "300", "nonexistent.json"] {
        bisenet_err(
            &["init", "--classes", spec, "-o", out_path.to_str().unwrap()],
            &format!("--classes {spec}"),
        );
    }
    assert!(!out_path.exists());
}

#[test]
#[cfg_attr(
    not(shared_data),
    ignore = "needs ../shared/data (the project's CamVid copy and sample media)"
)]
fn segment_the_shared_street_photo() {
    let dir = tempfile::tempdir().unwrap();
    let weights = init_model(dir.path());
    let photo = shared_data().join("samples/cityscapes_example.png");
    bisenet_ok(&[
        "segment",
        photo.to_str().unwrap(),
        "--weights",
        &weights,
        "--output",
        "labels",
        "-o",
        dir.path().join("out").to_str().unwrap(),
    ]);
    let labels = image::open(dir.path().join("out/cityscapes_example.png")).unwrap();
    assert_eq!((labels.width(), labels.height()), (2048, 1024));
}

/// A GPU backend that cannot start is an error that says what to do, never a panic: a build
/// without it names the feature to build with; a build with it, on a machine whose Vulkan and
/// EGL loaders find no driver (pointed at nothing here), names the driver to install.
#[test]
fn gpu_backend_without_a_gpu_is_a_clear_error() {
    let nothing = "/nonexistent/driver.json";
    let out = Command::new(env!("CARGO_BIN_EXE_bisenet"))
        .args([
            "bench",
            "--backend",
            "wgpu",
            "--sizes",
            "32x32",
            "--iters",
            "1",
        ])
        .env("VK_DRIVER_FILES", nothing)
        .env("VK_ICD_FILENAMES", nothing)
        .env("__EGL_VENDOR_LIBRARY_FILENAMES", nothing)
        .output()
        .expect("the bisenet binary runs");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let expected = if cfg!(feature = "wgpu") {
        "--backend wgpu found no usable GPU"
    } else {
        "this build has no wgpu backend: rebuild with `cargo build --release --features wgpu`"
    };
    assert!(err.contains(expected), "{err}");
}

#[test]
fn bench_times_every_stage_and_writes_comparable_json() {
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("bench.json");
    let out = bisenet_ok(&[
        "bench",
        "--backbone",
        "xception39",
        "--sizes",
        "64x96,45x67",
        "--iters",
        "3",
        "--warmup",
        "1",
        "--train-batch",
        "2",
        "--train-crop",
        "64x64",
        "--train-lovasz-weight",
        "0.5",
        "--json",
        json_path.to_str().unwrap(),
    ]);
    assert!(
        stdout(&out).contains("training step: flex xception39 batch 2 at 64x64, Lovász weight 0.5"),
        "{}",
        stdout(&out)
    );
    let json = common::read_json(&json_path);
    let results = json["results"].as_array().unwrap();
    let sizes: Vec<&str> = results
        .iter()
        .map(|r| r["size"].as_str().unwrap())
        .collect();
    assert_eq!(sizes, ["64x96", "45x67"], "sizes are height x width");
    for r in results {
        assert_eq!(r["backend"], "flex");
        assert_eq!(r["network"], "xception39");
        let total = &r["total_ms"];
        let [min, median, max] = ["min", "median", "max"].map(|k| total[k].as_f64().unwrap());
        assert!(0.0 < min && min <= median && median <= max, "{total}");
        let stages: f64 = ["preprocess", "network", "argmax"]
            .iter()
            .map(|k| r["stages_ms"][k].as_f64().unwrap())
            .sum();
        assert!(
            stages <= max * 1.01,
            "stages {stages} ms exceed the total {max} ms"
        );
        assert!((r["fps"].as_f64().unwrap() - 1e3 / median).abs() < 1e-6);
    }
    let train = &json["train"][0];
    assert_eq!(train["batch"], 2);
    assert_eq!(train["crop"], "64x64");
    assert_eq!(train["lovasz_weight"], 0.5);
    assert!(train["step_ms"]["median"].as_f64().unwrap() > 0.0);

    bisenet_err(&["bench", "--sizes", "360"], "HEIGHTxWIDTH");
    bisenet_err(
        &["bench", "--classes", "0", "--train-batch", "2"],
        "--classes 0",
    );
}

/// A BiSeNet V2 file says what it is, and every command takes it without being told:
/// `init --arch v2`, `info`, `segment`, `bench`, `train --arch v2` (then `eval` of its best
/// model), and `import` of a checkpoint of the widely used PyTorch implementation.
#[test]
fn bisenet_v2_runs_through_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("v2.safetensors");
    let weights = weights.to_str().unwrap();
    let out = bisenet_ok(&["init", "--arch", "v2", "--classes", "camvid", "-o", weights]);
    assert!(stdout(&out).contains("BiSeNet V2"), "{}", stdout(&out));

    let text = stdout(&bisenet_ok(&["info", "--weights", weights]));
    assert!(text.contains("bisenet-v2"), "{text}");
    // 3,358,627 at 19 classes, less 8 classes of the 1024-channel classifier (1024 + 1 each).
    assert!(
        text.contains("3350427"),
        "V2 at 11 classes without boosters: {text}"
    );
    assert!(!text.contains("backbone"), "V2 has no backbone: {text}");

    let image = dir.path().join("street.png");
    write_rgb(&image, 90, 70);
    let labels = dir.path().join("labels");
    bisenet_ok(&[
        "segment",
        image.to_str().unwrap(),
        "--weights",
        weights,
        "--output",
        "labels",
        "-o",
        labels.to_str().unwrap(),
    ]);
    let written = image::open(labels.join("street.png")).unwrap();
    assert_eq!((written.width(), written.height()), (90, 70));

    let out = bisenet_ok(&[
        "bench", "--arch", "v2", "--sizes", "64x96", "--iters", "1", "--warmup", "0",
    ]);
    assert!(stdout(&out).contains("bisenet-v2"), "{}", stdout(&out));

    let data = dir.path().join("data");
    common::folder_dataset(&data, 4, 64, 48);
    let run = dir.path().join("run");
    bisenet_ok(&[
        "train",
        "--arch",
        "v2",
        "--dataset",
        "folder",
        "--root",
        data.to_str().unwrap(),
        "--split",
        "train",
        "--val-split",
        "val",
        "--batch",
        "2",
        "--crop",
        "48x32",
        "--iters",
        "2",
        "--warmup",
        "1",
        "--out",
        run.to_str().unwrap(),
    ]);
    let best = run.join("best.safetensors");
    let out = bisenet_ok(&["info", "--weights", best.to_str().unwrap()]);
    assert!(stdout(&out).contains("bisenet-v2"), "{}", stdout(&out));
    let out = bisenet_ok(&[
        "eval",
        "--dataset",
        "folder",
        "--root",
        data.to_str().unwrap(),
        "--split",
        "val",
        "--weights",
        best.to_str().unwrap(),
    ]);
    assert!(stdout(&out).contains("mIoU"), "{}", stdout(&out));

    let checkpoint = common::fixture("bisenetv2.pth");
    let imported = dir.path().join("imported.safetensors");
    let out = bisenet_ok(&[
        "import",
        checkpoint.to_str().unwrap(),
        "--classes",
        "camvid",
        "-o",
        imported.to_str().unwrap(),
    ]);
    assert!(
        stdout(&out).contains("BiSeNet V2 (width 0.0625)"),
        "{}",
        stdout(&out)
    );
}
