//! Regression test of the shipped model: its mIoU on a fixed subset of CamVid val (the first
//! 10 images of `val.txt`), recomputed from the shipped file, must not drop by more than 0.5
//! points below the figure recorded in the model card.

mod common;

use std::path::Path;

use bisenet::data;
use bisenet::eval::{EvalOptions, evaluate};
use bisenet::weights::{self, DEFAULT_WEIGHTS};
use burn::prelude::*;

const SUBSET: usize = 10;
const MARKER: &str = "<!-- regression-miou-first-10-val:";

/// The mIoU (in %) the model card records for the subset.
fn recorded_miou() -> f64 {
    let card =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("models/README.md"))
            .expect("models/README.md, the model card, exists");
    let start = card
        .find(MARKER)
        .expect("the model card records the regression mIoU")
        + MARKER.len();
    let end = start + card[start..].find("-->").expect("the marker is closed");
    card[start..end]
        .trim()
        .parse()
        .expect("the recorded mIoU is a number")
}

#[test]
fn shipped_model_keeps_its_recorded_accuracy() {
    let Some(shared) = common::shared_data() else {
        return;
    };
    let device = Device::flex();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_WEIGHTS);
    let loaded = weights::load(&path, &device).expect("the shipped model loads");
    let mut dataset = data::camvid(&shared.join("camvid"), "val").unwrap();
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
    println!("first {SUBSET} val images: mIoU {miou:.2} (model card: {recorded:.2})");
    assert!(
        miou >= recorded - 0.5,
        "mIoU {miou:.2} dropped below the recorded {recorded:.2} - 0.5"
    );
}

/// The shipped file lists the images it trained on (CamVid train + val), so `eval` flags a
/// figure measured on them: val and the cross-drive split's held-out drive are among them.
#[test]
fn shipped_model_lists_the_images_it_trained_on() {
    let device = Device::flex();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_WEIGHTS);
    let loaded = weights::load(&path, &device).expect("the shipped model loads");
    let images = loaded
        .info
        .training_images()
        .expect("the shipped model lists its training images");
    assert_eq!(images.len(), 367 + 101, "CamVid train + val");
    let Some(shared) = common::shared_data() else {
        return;
    };
    let root = shared.join("camvid");
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
