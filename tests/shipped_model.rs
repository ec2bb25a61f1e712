//! Regression test of the shipped model: its mIoU on a fixed subset of CamVid val (the first
//! 10 images of `val.txt`), recomputed from the shipped file, must not drop by more than 0.5
//! points below the figure recorded in `models/regression.json`.

mod common;

use std::collections::HashSet;
use std::path::Path;

use bisenet::data;
use bisenet::eval::{EvalOptions, evaluate};
use bisenet::weights::{self, DEFAULT_WEIGHTS};
use burn::prelude::*;
use common::shared_data;

const SUBSET: usize = 10;

/// The mIoU (in %) `models/regression.json` records for the shipped model on the subset.
fn recorded_miou() -> f64 {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(manifest.join("models/regression.json"))
        .expect("models/regression.json exists");
    let figures: serde_json::Value =
        serde_json::from_str(&text).expect("models/regression.json is JSON");
    let name = Path::new(DEFAULT_WEIGHTS).file_name().unwrap();
    let entry = &figures[name.to_str().unwrap()];
    assert_eq!(
        entry["subset"], "first 10 images of CamVid val.txt",
        "the figure is of the subset this test evaluates"
    );
    entry["miou"]
        .as_f64()
        .expect("models/regression.json records the shipped model's mIoU")
}

#[test]
#[cfg_attr(
    not(shared_data),
    ignore = "needs ../shared/data (the project's CamVid copy and sample media)"
)]
fn shipped_model_keeps_its_recorded_accuracy() {
    let device = Device::flex();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_WEIGHTS);
    let loaded = weights::load(&path, &device).expect("the shipped model loads");
    let mut dataset = data::camvid(&shared_data().join("camvid"), "val").unwrap();
    dataset.samples.truncate(SUBSET);
    loaded
        .expect_classes(dataset.classes.len(), "CamVid")
        .unwrap();
    let model = loaded.model.without_aux_heads();
    let confusion = evaluate(
        &model,
        &dataset,
        &loaded.info.normalization,
        &EvalOptions::default(),
        &device,
        || {},
    )
    .unwrap();
    let miou = confusion.metrics().miou * 100.0;
    let recorded = recorded_miou();
    println!("first {SUBSET} val images: mIoU {miou:.2} (models/regression.json: {recorded:.2})");
    assert!(
        miou >= recorded - 0.5,
        "mIoU {miou:.2} dropped below the recorded {recorded:.2} - 0.5"
    );
}

/// The training images the shipped file lists (CamVid train + val).
fn shipped_training_images() -> HashSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_WEIGHTS);
    let loaded = weights::load(&path, &Device::flex()).expect("the shipped model loads");
    loaded
        .info
        .training_images()
        .expect("the shipped model lists its training images")
}

/// The shipped file lists the images it trained on (CamVid train + val), so `eval` flags a
/// figure measured on them.
#[test]
fn shipped_model_lists_the_images_it_trained_on() {
    assert_eq!(
        shipped_training_images().len(),
        367 + 101,
        "CamVid train + val"
    );
}

/// Val and the cross-drive split's held-out drive are among the shipped model's training
/// images.
#[test]
#[cfg_attr(
    not(shared_data),
    ignore = "needs ../shared/data (the project's CamVid copy and sample media)"
)]
fn shipped_model_trained_on_val_and_the_held_out_drive() {
    let images = shipped_training_images();
    let root = shared_data().join("camvid");
    for split in ["val", "splits/camvid/cross-drive-val.txt"] {
        let split = if split.ends_with(".txt") {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(split)
                .display()
                .to_string()
        } else {
            split.to_owned()
        };
        let dataset = data::camvid(&root, &split).unwrap();
        assert_eq!(dataset.images_among(&root, &images), 101, "{split}");
    }
}
