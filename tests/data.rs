//! Dataset readers on fixtures the tests write themselves, every bad-data case, and an
//! end-to-end CamVid evaluation on the shared data (ignored where `../shared/data` is absent).

mod common;

use bisenet::data::{self, DataError, LabelPolicy, load_sample};
use common::{bisenet_err, bisenet_ok, shared_data, stdout, write_labels, write_rgb};
use std::path::Path;

/// A two-city Cityscapes fixture with label ids covering mapped and unmapped values.
fn cityscapes_fixture(root: &Path) {
    for (city, frame) in [
        ("aachen", "aachen_000000_000019"),
        ("bonn", "bonn_000001_000019"),
    ] {
        let images = root.join("leftImg8bit/val").join(city);
        let labels = root.join("gtFine/val").join(city);
        std::fs::create_dir_all(&images).unwrap();
        std::fs::create_dir_all(&labels).unwrap();
        write_rgb(&images.join(format!("{frame}_leftImg8bit.png")), 16, 8);
        // Columns hold label ids 0..15 then 16..: ids 7 (road), 26 (car), 33 (bicycle), 0, 4.
        write_labels(
            &labels.join(format!("{frame}_gtFine_labelIds.png")),
            16,
            8,
            |x, _| [7, 26, 33, 0, 4, 24, 11, 21, 23, 8, 17, 19, 20, 31, 32, 28][x as usize],
        );
        // Files beside the ones we read must not confuse the reader.
        write_labels(
            &labels.join(format!("{frame}_gtFine_instanceIds.png")),
            16,
            8,
            |_, _| 0,
        );
    }
}

#[test]
fn cityscapes_label_ids_map_to_train_ids() {
    let table = data::train_id_table();
    let expected = [
        (7, 0),
        (8, 1),
        (11, 2),
        (21, 8),
        (23, 10),
        (24, 11),
        (26, 13),
        (33, 18),
        (0, 255),
        (4, 255),
        (6, 255),
        (9, 255),
        (34, 255),
    ];
    for (label_id, train_id) in expected {
        assert_eq!(table[label_id], train_id, "label id {label_id}");
    }
    assert_eq!(table.iter().filter(|&&t| t != 255).count(), 19);
}

#[test]
fn cityscapes_layout_is_read_and_mapped() {
    let dir = tempfile::tempdir().unwrap();
    cityscapes_fixture(dir.path());
    let dataset = data::cityscapes(dir.path(), "val").unwrap();
    assert_eq!(dataset.samples.len(), 2);
    assert_eq!(dataset.classes.len(), 19);
    assert!(
        dataset.samples[0]
            .label
            .ends_with("val/aachen/aachen_000000_000019_gtFine_labelIds.png")
    );
    let sample = load_sample(&dataset.samples[1], &dataset, LabelPolicy::Strict).unwrap();
    let row: Vec<u8> = (0..16).map(|x| sample.label.get_pixel(x, 0)[0]).collect();
    assert_eq!(
        row,
        [0, 13, 18, 255, 255, 11, 2, 8, 10, 1, 5, 6, 7, 16, 17, 15]
    );
    assert!(matches!(
        data::cityscapes(dir.path(), "train"),
        Err(DataError::Missing { .. })
    ));
}

#[test]
fn folder_dataset_reads_classes_json_and_matching_stems() {
    let dir = tempfile::tempdir().unwrap();
    common::folder_dataset(dir.path(), 3, 24, 16);
    let dataset = data::folder(dir.path(), "val").unwrap();
    assert_eq!(dataset.samples.len(), 3);
    assert_eq!(dataset.classes.names, ["warm", "cold"]);
    let sample = load_sample(&dataset.samples[0], &dataset, LabelPolicy::Strict).unwrap();
    assert_eq!(sample.label.get_pixel(20, 5)[0], 1);
    // An image without its label is an error naming the label, not a silent skip.
    write_rgb(&dir.path().join("val/images/lonely.png"), 24, 16);
    let err = data::folder(dir.path(), "val").unwrap_err();
    assert!(err.to_string().contains("lonely.png"), "{err}");
}

#[test]
fn camvid_list_with_missing_files_and_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("val.txt"), "val/a.png valannot/a.png\n").unwrap();
    let dataset = data::camvid(dir.path(), "val").unwrap();
    let err = load_sample(&dataset.samples[0], &dataset, LabelPolicy::Strict).unwrap_err();
    assert!(matches!(err, DataError::Missing { .. }));
    assert!(err.to_string().contains("a.png"), "{err}");

    std::fs::write(dir.path().join("bad.txt"), "just-one-field\n").unwrap();
    let err = data::camvid(dir.path(), "bad").unwrap_err();
    assert!(err.to_string().contains("line 1"), "{err}");
    std::fs::write(dir.path().join("empty.txt"), "\n").unwrap();
    assert!(matches!(
        data::camvid(dir.path(), "empty"),
        Err(DataError::Empty(_))
    ));
    assert!(matches!(
        data::camvid(dir.path(), "nosuchsplit"),
        Err(DataError::List { .. })
    ));
}

#[test]
fn camvid_split_can_be_a_list_file_outside_the_root() {
    let root = tempfile::tempdir().unwrap();
    let lists = tempfile::tempdir().unwrap();
    let list = lists.path().join("cross-drive-val.txt");
    std::fs::write(&list, "train/0006R0_1.png trainannot/0006R0_1.png\n").unwrap();
    let dataset = data::camvid(root.path(), list.to_str().unwrap()).unwrap();
    assert_eq!(dataset.name, "camvid/cross-drive-val");
    // Entries stay relative to the dataset root, not to the list's folder.
    assert_eq!(
        dataset.samples[0].image,
        root.path().join("train/0006R0_1.png")
    );
    let missing = lists.path().join("nosuch.txt");
    let err = data::camvid(root.path(), missing.to_str().unwrap()).unwrap_err();
    assert!(err.to_string().contains("nosuch.txt"), "{err}");
}

/// The committed cross-drive lists hold out exactly drive 0006R0, and together they are
/// `trainval`, which is the SegNet release's train + val.
#[test]
#[cfg_attr(
    not(shared_data),
    ignore = "needs ../shared/data (the project's CamVid copy and sample media)"
)]
fn committed_cross_drive_splits_hold_out_one_whole_drive() {
    let root = shared_data().join("camvid");
    let open = |split: &str| data::camvid(&root, split).unwrap().samples;
    let drive = |s: &data::Sample| s.image.file_name().unwrap().to_string_lossy()[..6].to_owned();
    let held_out = open("splits/camvid/cross-drive-val.txt");
    let train = open("splits/camvid/cross-drive-train.txt");
    assert_eq!(held_out.len(), 101);
    assert!(held_out.iter().all(|s| drive(s) == "0006R0"));
    assert!(train.iter().all(|s| drive(s) != "0006R0"));
    let mut both: Vec<_> = held_out.into_iter().chain(train).collect();
    let mut trainval = open("splits/camvid/trainval.txt");
    let mut release: Vec<_> = open("train").into_iter().chain(open("val")).collect();
    for list in [&mut both, &mut trainval, &mut release] {
        list.sort_by(|a, b| a.image.cmp(&b.image));
    }
    assert_eq!(both, release);
    assert_eq!(trainval, release);
}

fn camvid_one(
    dir: &Path,
    image: impl FnOnce(&Path),
    label: impl FnOnce(&Path),
) -> Result<(), DataError> {
    std::fs::create_dir_all(dir.join("val")).unwrap();
    std::fs::create_dir_all(dir.join("valannot")).unwrap();
    std::fs::write(dir.join("val.txt"), "val/x.png valannot/x.png\n").unwrap();
    image(&dir.join("val/x.png"));
    label(&dir.join("valannot/x.png"));
    let dataset = data::camvid(dir, "val").unwrap();
    load_sample(&dataset.samples[0], &dataset, LabelPolicy::Strict).map(|_| ())
}

#[test]
fn size_mismatch_is_reported_with_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let err = camvid_one(
        dir.path(),
        |p| write_rgb(p, 20, 10),
        |p| write_labels(p, 10, 10, |_, _| 0),
    )
    .unwrap_err();
    assert!(matches!(err, DataError::SizeMismatch { .. }), "{err}");
    assert!(err.to_string().contains("x.png"));
}

#[test]
fn unknown_label_values_are_errors_unless_asked_to_ignore() {
    let dir = tempfile::tempdir().unwrap();
    let err = camvid_one(
        dir.path(),
        |p| write_rgb(p, 8, 8),
        |p| write_labels(p, 8, 8, |x, _| if x == 3 { 40 } else { 11 }),
    )
    .unwrap_err();
    assert!(
        matches!(err, DataError::BadLabel { value: 40, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("--unknown-labels-as-ignore"));
    let dataset = data::camvid(dir.path(), "val").unwrap();
    let sample = load_sample(&dataset.samples[0], &dataset, LabelPolicy::UnknownAsIgnore).unwrap();
    assert!(sample.label.iter().all(|&v| v == 11));
}

#[test]
fn unreadable_and_colour_labels_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let err = camvid_one(
        dir.path(),
        |p| std::fs::write(p, b"garbage").unwrap(),
        |p| write_labels(p, 8, 8, |_, _| 0),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("x.png") && err.to_string().contains("not a readable image"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let err = camvid_one(dir.path(), |p| write_rgb(p, 8, 8), |p| write_rgb(p, 8, 8)).unwrap_err();
    assert!(err.to_string().contains("single-channel"), "{err}");
}

#[test]
fn eval_cli_on_a_folder_dataset_reports_per_class_iou_and_json() {
    let dir = tempfile::tempdir().unwrap();
    common::folder_dataset(dir.path(), 2, 40, 24);
    let weights = dir.path().join("m.safetensors");
    let classes = dir.path().join("classes.json");
    bisenet_ok(&[
        "init",
        "--classes",
        classes.to_str().unwrap(),
        "-o",
        weights.to_str().unwrap(),
    ]);
    let json = dir.path().join("eval.json");
    let out = bisenet_ok(&[
        "eval",
        "--dataset",
        "folder",
        "--root",
        dir.path().to_str().unwrap(),
        "--split",
        "val",
        "--weights",
        weights.to_str().unwrap(),
        "--flip",
        "--scales",
        "0.75,1.0",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(
        stdout(&out).contains("mIoU") && stdout(&out).contains("warm"),
        "{}",
        stdout(&out)
    );
    let report = common::read_json(&json);
    assert_eq!(report["images"], 2);
    let confusion = report["confusion"].as_array().unwrap();
    let total: u64 = confusion
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(
        total,
        2 * 40 * (24 - 2),
        "every labelled pixel, and only those, is counted"
    );
    assert!(report["per_class"]["cold"].is_number(), "{report}");
    // Pixel counts per class are the ground-truth rows of the confusion matrix.
    for (row, name) in confusion.iter().zip(["warm", "cold"]) {
        let row_sum: u64 = row
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(report["per_class_pixels"][name], row_sum, "{name}");
    }
    assert!(stdout(&out).contains("pixels"), "{}", stdout(&out));

    // A model with another class count is refused with both counts named.
    let camvid = dir.path().join("camvid.safetensors");
    bisenet_ok(&["init", "-o", camvid.to_str().unwrap()]);
    bisenet_err(
        &[
            "eval",
            "--dataset",
            "folder",
            "--root",
            dir.path().to_str().unwrap(),
            "--split",
            "val",
            "--weights",
            camvid.to_str().unwrap(),
        ],
        "predicts 11 classes, but 2 are needed",
    );
}

#[test]
#[cfg_attr(
    not(shared_data),
    ignore = "needs ../shared/data (the project's CamVid copy and sample media)"
)]
fn eval_on_a_few_camvid_val_images() {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("m.safetensors");
    bisenet_ok(&["init", "-o", weights.to_str().unwrap()]);
    let json = dir.path().join("eval.json");
    bisenet_ok(&[
        "eval",
        "--root",
        shared_data().join("camvid").to_str().unwrap(),
        "--split",
        "val",
        "--limit",
        "3",
        "--weights",
        weights.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    let report = common::read_json(&json);
    assert_eq!(report["images"], 3);
    let miou = report["miou"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&miou));
    let total: u64 = report["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert!(
        total > 3 * 360 * 480 / 2 && total <= 3 * 360 * 480,
        "{total}"
    );
}
