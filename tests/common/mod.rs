//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod train_run;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `../shared/data`: the project's CamVid copy and sample media. Tests that call it carry
/// `#[cfg_attr(not(shared_data), ignore = "needs ../shared/data (the project's CamVid copy and
/// sample media)")]`: build.rs sets `shared_data` where the folder exists.
pub fn shared_data() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    assert!(
        path.is_dir(),
        "{} was there when the tests were built but is gone: rebuild them (`cargo test` does)",
        path.display()
    );
    path
}

/// Runs the `bisenet` binary with arguments.
pub fn bisenet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bisenet"))
        .args(args)
        .output()
        .expect("the bisenet binary runs")
}

/// Runs `bisenet` and expects it to succeed; its output.
#[track_caller]
pub fn bisenet_ok(args: &[&str]) -> Output {
    let out = bisenet(args);
    assert!(
        out.status.success(),
        "bisenet {} failed:\n{}",
        args.join(" "),
        stderr(&out)
    );
    out
}

/// Runs `bisenet` and expects it to fail with an error (not a panic) that contains `expected`;
/// its stderr.
#[track_caller]
pub fn bisenet_err(args: &[&str], expected: &str) -> String {
    let out = bisenet(args);
    let err = stderr(&out);
    let command = args.join(" ");
    assert!(
        !out.status.success(),
        "bisenet {command} succeeded; expected an error with `{expected}`"
    );
    assert!(
        err.contains(expected),
        "`{expected}` not in the error of bisenet {command}:\n{err}"
    );
    assert!(
        !err.contains("panicked"),
        "bisenet {command} panicked:\n{err}"
    );
    err
}

/// The Python that runs `tools/torch_reference/` in the tests that need PyTorch:
/// `$BISENET_PYTHON` (a virtual environment's, say), else `python3`.
#[allow(dead_code)] // only some test binaries call Python
pub fn python() -> Command {
    Command::new(std::env::var("BISENET_PYTHON").unwrap_or_else(|_| "python3".into()))
}

/// Fails, saying what to install, when `python()` cannot import `modules` (comma-separated):
/// the tests that need PyTorch are `#[ignore]`d and run on purpose, so a missing package is an
/// error there, not a silent pass.
#[allow(dead_code)]
pub fn require_python_modules(modules: &str) {
    let probe = python().args(["-c", &format!("import {modules}")]).output();
    assert!(
        probe.is_ok_and(|out| out.status.success()),
        "this test needs Python with {modules}: pip install them, or point BISENET_PYTHON at \
         a Python that has them"
    );
}

/// The JSON a command wrote to `path` (`--json` reports).
#[allow(dead_code)]
pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{} was not written: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Writes a small synthetic street-like RGB image.
pub fn write_rgb(path: &Path, width: u32, height: u32) {
    image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([
            (x * 7 % 256) as u8,
            (y * 5 % 256) as u8,
            ((x + y) % 256) as u8,
        ])
    })
    .save(path)
    .unwrap();
}

/// Writes an 8-bit label map whose value is `f(x, y)`.
pub fn write_labels(path: &Path, width: u32, height: u32, f: impl Fn(u32, u32) -> u8) {
    image::GrayImage::from_fn(width, height, |x, y| image::Luma([f(x, y)]))
        .save(path)
        .unwrap();
}

/// A small dataset in the custom folder layout: `n` images of `w`x`h` whose labels are a
/// learnable function of the pixels (left half class 0, right half class 1, a void stripe).
pub fn folder_dataset(root: &Path, n: usize, w: u32, h: u32) {
    folder_dataset_split_at(root, n, w, h, w / 2);
}

/// [`folder_dataset`] with class 1 from column `boundary` on, so that the classes can cover
/// unequal shares of the pixels.
pub fn folder_dataset_split_at(root: &Path, n: usize, w: u32, h: u32, boundary: u32) {
    for split in ["train", "val"] {
        let images = root.join(split).join("images");
        let labels = root.join(split).join("labels");
        std::fs::create_dir_all(&images).unwrap();
        std::fs::create_dir_all(&labels).unwrap();
        for i in 0..n {
            let shade = (i * 20) as u8;
            image::RgbImage::from_fn(w, h, |x, _| {
                if x < boundary {
                    image::Rgb([200, shade, 30])
                } else {
                    image::Rgb([20, shade, 220])
                }
            })
            .save(images.join(format!("{i:03}.png")))
            .unwrap();
            write_labels(&labels.join(format!("{i:03}.png")), w, h, |x, y| {
                if y < 2 { 255 } else { u8::from(x >= boundary) }
            });
        }
    }
    std::fs::write(
        root.join("classes.json"),
        r#"{"names": ["warm", "cold"], "palette": [[255, 0, 0], [0, 0, 255]], "ignore_index": 255}"#,
    )
    .unwrap();
}

/// A file of the committed PyTorch reference fixture (`tools/torch_reference/make_fixture*.py`).
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/torch_reference")
        .join(name)
}

/// A `[N, C, H, W]` f32 tensor of a safetensors file, with its shape.
pub fn read_tensor(file: &Path, name: &str) -> (Vec<f32>, [usize; 4]) {
    let bytes = std::fs::read(file).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let view = tensors
        .tensor(name)
        .unwrap_or_else(|_| panic!("{name} in {file:?}"));
    let shape: [usize; 4] = view.shape().try_into().unwrap();
    let values = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    (values, shape)
}
