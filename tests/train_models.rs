//! The models a training run writes: validation on training images flagged, a start from a
//! weights file, a checkpoint exported as the run exports its models, and the prior correction
//! folded into them.

mod common;

use std::path::Path;

use burn::prelude::*;
use common::train_run::{safetensors_content, set, train_args, unset};
use common::{bisenet_err, bisenet_ok, stderr, stdout};

/// Validating on the training images is allowed (the final model trains on every labelled
/// image), but the run says so, and so does the model file's provenance.
#[test]
fn a_validation_split_of_training_images_is_flagged() {
    let dir = tempfile::tempdir().unwrap();
    common::folder_dataset(dir.path(), 4, 64, 48);
    let root = dir.path().to_str().unwrap();
    let run = dir.path().join("run");
    let out = bisenet_ok(&set(
        train_args(root, run.to_str().unwrap(), "2"),
        "--val-split",
        "train",
    ));
    assert!(
        stderr(&out).contains("4 of the 4 images of --val-split train are training images too"),
        "{}",
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("(on training images)"),
        "{}",
        stdout(&out)
    );
    let weights = run.join("best.safetensors");
    let out = bisenet_ok(&["info", "--weights", weights.to_str().unwrap()]);
    assert!(
        stdout(&out).contains("train_images_also_in_training")
            && stdout(&out).contains("training_images: 4 images"),
        "{}",
        stdout(&out)
    );

    // The file lists the images it trained on: `eval` on them says its figure is memory,
    // on the other split (same file names, other folder) it does not.
    let eval = |split: &str| {
        let json = dir.path().join(format!("{split}.json"));
        let out = bisenet_ok(&[
            "eval",
            "--dataset",
            "folder",
            "--root",
            root,
            "--split",
            split,
            "--weights",
            weights.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ]);
        let report = common::read_json(&json);
        (stdout(&out), report["images_in_training"].clone())
    };
    let (text, shared) = eval("train");
    assert!(
        text.contains("4 of these 4 images are in the model's training data"),
        "{text}"
    );
    assert_eq!(shared, 4);
    let (text, shared) = eval("val");
    assert!(!text.contains("training data"), "{text}");
    assert_eq!(shared, 0);
}

/// A run can start from a weights file instead of random weights (fine-tuning): it starts
/// where the file left off, takes the file's network unless told otherwise, gives fresh
/// classifier layers to a dataset with other classes, and its models list the images the
/// file trained on too, even when it resumes after the file is gone.
#[test]
fn a_run_starts_from_a_weights_file() {
    let dir = tempfile::tempdir().unwrap();
    common::folder_dataset(dir.path(), 4, 64, 48);
    let root = dir.path().to_str().unwrap();
    let run = |args: Vec<&str>| stderr(&bisenet_ok(&args));
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let (pretrained, tuned) = (path("pretrained"), path("tuned"));
    run(train_args(root, &pretrained, "4"));
    let init = path("init.safetensors");
    std::fs::copy(dir.path().join("pretrained/final.safetensors"), &init).unwrap();

    // With a learning rate too small to move a weight, the run's model is the file's: every
    // tensor but BatchNorm's running statistics (which each forward pass updates) is equal.
    // The auxiliary heads start fresh (an inference file has none).
    let tuned_args = |iters| {
        let args = set(train_args(root, &tuned, iters), "--split", "val");
        let args = set(args, "--val-split", "train");
        let args = set(args, "--lr", "1e-12");
        set(args, "--init-weights", &init)
    };
    let said = run(tuned_args("2"));
    assert!(
        said.contains("started from") && said.contains("starting fresh: the auxiliary heads"),
        "{said}"
    );
    let tuned_model = format!("{tuned}/final.safetensors");
    let (same, reshaped) = compare_weights(&init, &tuned_model);
    assert!(same > 100 && reshaped.is_empty(), "{same} {reshaped:?}");

    // Its models list the images of both runs (the file's split and its own).
    let info = |weights: &str| stdout(&bisenet_ok(&["info", "--weights", weights]));
    let said = info(&tuned_model);
    assert!(said.contains("training_images: 8 images"), "{said}");
    assert!(said.contains("init_weights"), "{said}");

    // Resumed after the file is gone, the run goes on and still lists them.
    std::fs::remove_file(&init).unwrap();
    let mut args = tuned_args("4");
    args.push("--resume");
    let said = run(args);
    assert!(said.contains("resumed at iteration 2"), "{said}");
    assert!(info(&tuned_model).contains("training_images: 8 images"));

    // A dataset with three classes: the classifier layers start fresh, the rest loads, and
    // without --backbone the run trains the file's network.
    let pretrained_model = format!("{pretrained}/final.safetensors");
    let three = tempfile::tempdir().unwrap();
    common::folder_dataset(three.path(), 2, 64, 48);
    std::fs::write(
        three.path().join("classes.json"),
        r#"{"names": ["warm", "cold", "grey"], "palette": [[255, 0, 0], [0, 0, 255], [9, 9, 9]], "ignore_index": 255}"#,
    )
    .unwrap();
    let other = path("other-classes");
    let args = unset(
        train_args(three.path().to_str().unwrap(), &other, "2"),
        "--backbone",
    );
    let args = set(args, "--lr", "1e-12");
    let said = run(set(args, "--init-weights", &pretrained_model));
    assert!(
        said.contains("2 classifier tensors (the file predicts 2 classes, this dataset has 3)"),
        "{said}"
    );
    let other_model = format!("{other}/final.safetensors");
    assert!(info(&other_model).contains("grey"));
    let (same, reshaped) = compare_weights(&pretrained_model, &other_model);
    assert!(same > 100, "{same}");
    assert_eq!(
        reshaped,
        ["conv_out.conv_out.bias", "conv_out.conv_out.weight"],
        "only the classifier takes another shape"
    );

    // What cannot start a run is refused, naming the file and the problem.
    let refused = |args: Vec<&str>, expected: &str| {
        bisenet_err(&args, expected);
    };
    let elsewhere = path("refused");
    let with_init = |file| set(train_args(root, &elsewhere, "2"), "--init-weights", file);
    refused(
        set(with_init(&pretrained_model), "--backbone", "resnet18"),
        "leave --arch and --backbone out",
    );
    refused(with_init(&init), "cannot start from");
    // The cause is said once, after the file.
    let missing = path("missing.safetensors");
    let said = bisenet_err(&with_init(&missing), "cannot start from");
    assert_eq!(
        said.matches("cannot read weights file").count(),
        1,
        "{said}"
    );
    let truncated = path("truncated.safetensors");
    let bytes = std::fs::read(&pretrained_model).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    refused(with_init(&truncated), "truncated");
    // A model made for other input statistics (an imported one, say).
    let other_statistics = path("other-statistics.safetensors");
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut metadata = header.metadata().clone().unwrap();
    let info = metadata.get_mut("bisenet").unwrap();
    let mut json: serde_json::Value = serde_json::from_str(info).unwrap();
    json["normalization"]["mean"] = serde_json::json!([0.3257, 0.369, 0.3223]);
    *info = json.to_string();
    let rewritten = safetensors::serialize(tensors.tensors(), Some(metadata)).unwrap();
    std::fs::write(&other_statistics, rewritten).unwrap();
    refused(with_init(&other_statistics), "training uses ImageNet's");
}

/// Compares two weights files tensor by tensor: how many tensors of the first are equal in the
/// second (BatchNorm's running statistics left out), and the names of those whose shape
/// differs. Panics on any other difference.
fn compare_weights(first: &str, second: &str) -> (usize, Vec<String>) {
    let (first, second) = (
        std::fs::read(first).unwrap(),
        std::fs::read(second).unwrap(),
    );
    let first = safetensors::SafeTensors::deserialize(&first).unwrap();
    let second = safetensors::SafeTensors::deserialize(&second).unwrap();
    let (mut same, mut reshaped) = (0, Vec::new());
    for (name, tensor) in first.tensors() {
        let other = second.tensor(&name).unwrap();
        if other.shape() != tensor.shape() {
            reshaped.push(name);
        } else if !name.contains("running_") {
            assert!(
                same_values(other.data(), tensor.data(), tensor.dtype()),
                "{name} differs"
            );
            same += 1;
        }
    }
    reshaped.sort();
    (same, reshaped)
}

/// `bisenet export` writes a checkpoint's weights, or their moving average, as `train` writes
/// its own models: at a run's end they are its final files tensor for tensor, with the same
/// prior correction and list of training images, and without a validation figure.
#[test]
fn a_checkpoint_exports_as_the_run_writes_its_models() {
    let dir = tempfile::tempdir().unwrap();
    common::folder_dataset(dir.path(), 4, 64, 48);
    let root = dir.path().to_str().unwrap();
    let run = dir.path().join("run");
    let run_str = run.to_str().unwrap();
    bisenet_ok(&train_args(root, run_str, "2"));
    let notes = |header: &serde_json::Value| -> serde_json::Value {
        let info = header["__metadata__"]["bisenet"].as_str().unwrap();
        serde_json::from_str::<serde_json::Value>(info).unwrap()["notes"].clone()
    };
    let checkpoint = run.join("checkpoints/iter-0000002");
    for (source, average, written) in [
        (&run, false, "final.safetensors"),
        (&checkpoint, true, "final-ema.safetensors"),
    ] {
        let exported = dir.path().join(format!("exported-{written}"));
        let mut args = vec![
            "export",
            source.to_str().unwrap(),
            "-o",
            exported.to_str().unwrap(),
        ];
        if average {
            args.push("--average");
        }
        let out = bisenet_ok(&args);
        assert!(
            stdout(&out).contains("at iteration 2 of 2, with the prior correction 0.5"),
            "{}",
            stdout(&out)
        );
        let (header, tensors) = safetensors_content(&exported);
        let (run_header, run_tensors) = safetensors_content(&run.join(written));
        assert!(tensors == run_tensors, "{written}: other tensors");
        let (exported, written_by_run) = (notes(&header), notes(&run_header));
        for key in [
            "iterations",
            "training_images",
            "prior_correction",
            "ema_decay",
        ] {
            assert_eq!(exported[key], written_by_run[key], "{written}: {key}");
        }
        assert_eq!(exported["ema_decay"].is_null(), !average);
        assert!(written_by_run["val_miou"].is_number());
        assert!(exported["val_miou"].is_null(), "no validation figure");
    }

    // What cannot be exported is refused, naming the problem.
    let plain = dir.path().join("plain");
    let plain_str = plain.to_str().unwrap();
    bisenet_ok(&set(train_args(root, plain_str, "2"), "--ema-decay", "0"));
    let target = dir.path().join("refused.safetensors");
    let target = target.to_str().unwrap();
    bisenet_err(
        &["export", plain_str, "--average", "-o", target],
        "no moving average",
    );
    let empty = tempfile::tempdir().unwrap();
    bisenet_err(
        &["export", empty.path().to_str().unwrap(), "-o", target],
        "neither a training run",
    );
    assert!(!Path::new(target).exists());
}

/// Whether two little-endian f16 or f32 buffers hold the same values, to within what a step
/// of a vanishing learning rate can move: f32 (BatchNorm's scale and shift) notices it, f16
/// (the convolutions) does not.
fn same_values(first: &[u8], second: &[u8], dtype: safetensors::Dtype) -> bool {
    let values = |bytes: &[u8]| -> Vec<f32> {
        match dtype {
            safetensors::Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            safetensors::Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect(),
            other => panic!("unexpected {other:?}"),
        }
    };
    let (first, second) = (values(first), values(second));
    first.len() == second.len()
        && first
            .iter()
            .zip(&second)
            .all(|(a, b)| (a - b).abs() <= 1e-6 * a.abs().max(1.0))
}

/// The main classifier's bias, `[classes]`, of a V1 network.
fn network_bias(network: &bisenet::model::Network) -> Vec<f32> {
    let bisenet::model::Network::V1(model) = network else {
        panic!("a V1 model")
    };
    let bias = model
        .conv_out
        .conv_out
        .bias
        .as_ref()
        .expect("a classifier bias");
    bias.val().into_data().try_to_vec::<f32>().unwrap()
}

/// The main classifier's bias of a weights file.
fn classifier_bias(path: &Path) -> Vec<f32> {
    network_bias(&bisenet::weights::load(path, &Device::flex()).unwrap().model)
}

/// With class weights, the exported models take back `--prior-correction` of the weights'
/// prior: the classifier's bias is that of the same run without it, lowered by the strength
/// times each class's log weight, and the file says so. `correct-prior` makes the same model
/// from the uncorrected file, and refuses a file that is already corrected.
#[test]
fn exported_models_take_back_part_of_the_class_weights_prior() {
    let dir = tempfile::tempdir().unwrap();
    // Class 0 covers three quarters of every labelled row: weights 1 and sqrt(3).
    common::folder_dataset_split_at(dir.path(), 4, 64, 48, 48);
    let root = dir.path().to_str().unwrap();
    let run = |name: &str, strength: &str| {
        let out_dir = dir.path().join(name);
        let args = train_args(root, out_dir.to_str().unwrap(), "2");
        let out = bisenet_ok(&set(args, "--prior-correction", strength));
        (out_dir.join("final.safetensors"), stdout(&out))
    };
    let run = |name: &str, strength: &str| {
        let (model, said) = run(name, strength);
        let says_so = said.contains("takes back 0.5 of the class weights' prior");
        assert_eq!(says_so, strength != "0", "{said}");
        model
    };
    let (corrected, plain) = (run("corrected", "0.5"), run("plain", "0"));
    let expected = [0.0, -0.5 * 3f32.sqrt().ln()];
    let (with, without) = (classifier_bias(&corrected), classifier_bias(&plain));
    for class in 0..2 {
        // The file keeps the bias in f16.
        let shift = with[class] - without[class];
        assert!(
            (shift - expected[class]).abs() < 2e-3,
            "class {class}: shifted by {shift}, expected {}",
            expected[class]
        );
    }
    let info = |path: &Path| stdout(&bisenet_ok(&["info", "--weights", path.to_str().unwrap()]));
    assert!(
        info(&corrected).contains("prior_correction"),
        "{}",
        info(&corrected)
    );
    assert!(
        !info(&plain).contains("prior_correction"),
        "{}",
        info(&plain)
    );

    // Runs `correct-prior`, expecting the error `refused` where one is given.
    let correct = |weights: &Path, output: &Path, refused: Option<&str>| {
        let args = [
            "correct-prior",
            "--weights",
            weights.to_str().unwrap(),
            "--dataset",
            "folder",
            "--root",
            root,
            "--split",
            "train",
            "-o",
            output.to_str().unwrap(),
        ];
        match refused {
            None => drop(bisenet_ok(&args)),
            Some(expected) => drop(bisenet_err(&args, expected)),
        }
    };
    let made = dir.path().join("made.safetensors");
    correct(&plain, &made, None);
    // The validation figure the plain run recorded is not the corrected model's.
    assert!(info(&plain).contains("val_miou"), "{}", info(&plain));
    assert!(!info(&made).contains("val_miou"), "{}", info(&made));
    assert!(info(&made).contains("prior_correction"), "{}", info(&made));
    for (made, trained) in classifier_bias(&made).iter().zip(&with) {
        // Rounded to f16 before the shift here, after it there.
        assert!((made - trained).abs() < 2e-3, "{made} against {trained}");
    }
    // Fine-tuning from a corrected file starts from the network as it was trained.
    let mut model = bisenet::model::NetworkConfig::new(
        bisenet::model::Architecture::V1,
        bisenet::model::BackboneKind::Xception39,
        2,
    )
    .init(&Device::flex().autodiff());
    let report = bisenet::train::InitWeights::read(&corrected)
        .unwrap()
        .load_into(&mut model)
        .unwrap();
    assert!(report.prior_correction_removed, "{report}");
    for (started, trained) in network_bias(&model).iter().zip(&without) {
        assert!(
            (started - trained).abs() < 2e-3,
            "{started} against {trained}"
        );
    }

    correct(
        &made,
        &dir.path().join("twice.safetensors"),
        Some("already has a prior correction (strength 0.5)"),
    );
}
