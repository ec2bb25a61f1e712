//! Training: the class weights, the schedule, a run killed with SIGKILL that resumes exactly, a
//! resumed run's recipe changes, the GPU budget script and bad inputs (the models a run writes:
//! `train_models.rs`; the loss's unit tests are beside it, in `src/train/loss.rs` and
//! `src/train/lovasz.rs`).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bisenet::train::{PolySchedule, sqrt_median_frequency};
use common::train_run::{
    checkpoint_iteration, losses, safetensors_content, set, train_args, unset,
};
use common::{bisenet_err, bisenet_ok, stderr, stdout};

#[test]
fn sqrt_median_frequency_lifts_rare_classes() {
    // Median count 100: a class 100x rarer gets 10x, one 4x more common gets 1/2.
    let weights = sqrt_median_frequency(&[400, 100, 1, 100, 0]);
    let expected = [0.5, 1.0, 10.0, 1.0, 1.0];
    assert_eq!(weights.len(), expected.len());
    for (w, e) in weights.iter().zip(expected) {
        assert!((w - e).abs() < 1e-6, "{weights:?}");
    }
}

#[test]
fn schedule_warms_up_then_decays_to_zero() {
    let s = PolySchedule {
        base: 0.01,
        total: 1000,
        warmup: 100,
        warmup_ratio: 0.1,
        power: 0.9,
    };
    assert!((s.lr(0) - 0.001).abs() < 1e-12);
    assert!((s.lr(50) - 0.0055).abs() < 1e-12);
    assert!((s.lr(100) - 0.01).abs() < 1e-12);
    assert!(s.lr(500) < s.lr(400));
    assert_eq!(s.lr(1000), 0.0);
}

#[test]
fn a_run_killed_with_sigkill_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    common::folder_dataset(dir.path(), 4, 64, 48);
    let root = dir.path().to_str().unwrap();
    let reference = dir.path().join("reference");
    let out = bisenet_ok(&train_args(root, reference.to_str().unwrap(), "12"));
    assert!(
        !stderr(&out).contains("training images too"),
        "{}",
        stderr(&out)
    );
    assert!(reference.join("best.safetensors").is_file());
    assert!(reference.join("curves.png").is_file());

    let killed = dir.path().join("killed");
    let killed_str = killed.to_str().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_bisenet"))
        .args(train_args(root, killed_str, "12"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once it has written its second checkpoint, mid-interval.
    let started = Instant::now();
    while checkpoint_iteration(&killed).is_none_or(|i| i < 4) {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let at_kill = checkpoint_iteration(&killed).unwrap();
    assert!(at_kill < 12, "the run finished before it could be killed");

    // Resuming without --resume is refused: nothing is overwritten.
    bisenet_err(&train_args(root, killed_str, "12"), "--resume");

    let mut args = train_args(root, killed_str, "12");
    args.push("--resume");
    bisenet_ok(&args);
    assert_eq!(checkpoint_iteration(&killed), Some(12));
    assert_eq!(
        losses(&killed),
        losses(&reference),
        "the resumed run must replay the same steps"
    );
    // The schedule's end is exported as final.safetensors, the same model however the run got
    // there; a finished run that lacks it (finished by an older build) gets it when resumed.
    let final_model = safetensors_content(&reference.join("final.safetensors"));
    let killed_final = killed.join("final.safetensors");
    assert!(safetensors_content(&killed_final) == final_model);
    // Keeping the weights' moving average does not change the training: without it the run
    // takes the same steps.
    let plain = dir.path().join("plain");
    bisenet_ok(&unset(
        train_args(root, plain.to_str().unwrap(), "12"),
        "--ema-decay",
    ));
    assert_eq!(losses(&plain), losses(&reference));
    assert!(!plain.join("final-ema.safetensors").exists());
    // The average resumes exactly too, and it is not the last weights.
    let final_ema = safetensors_content(&reference.join("final-ema.safetensors"));
    assert!(safetensors_content(&killed.join("final-ema.safetensors")) == final_ema);
    assert!(final_ema.1 != final_model.1);
    let ema_decay = |(header, _): &(serde_json::Value, Vec<u8>)| {
        let info = header["__metadata__"]["bisenet"].as_str().unwrap();
        serde_json::from_str::<serde_json::Value>(info).unwrap()["notes"]["ema_decay"].clone()
    };
    assert_eq!(ema_decay(&final_ema), 0.9);
    assert!(ema_decay(&final_model).is_null());
    std::fs::remove_file(&killed_final).unwrap();
    let out = bisenet_ok(&args);
    assert!(
        stdout(&out).contains("final.safetensors"),
        "{}",
        stdout(&out)
    );
    assert!(safetensors_content(&killed_final) == final_model);

    // A run stopped by --time-limit checkpoints where it stopped, between the regular
    // checkpoints, and resumes exactly too.
    let limited = dir.path().join("limited");
    let limited_str = limited.to_str().unwrap();
    let said = stdout(&bisenet_ok(&set(
        train_args(root, limited_str, "12"),
        "--time-limit",
        "0.00001",
    )));
    assert!(said.contains("stopped at iteration 1 of 12"), "{said}");
    assert!(said.contains("--resume"), "{said}");
    assert_eq!(checkpoint_iteration(&limited), Some(1));
    let mut args = train_args(root, limited_str, "12");
    args.push("--resume");
    bisenet_ok(&args);
    assert_eq!(
        losses(&limited),
        losses(&reference),
        "the run stopped by --time-limit must replay the same steps"
    );
}

/// Resuming with options that change the recipe (here: new defaults against a run started
/// with the old ones) goes on, but names each change; resuming with the run's own options
/// says only where it resumed. Both lines reach a log file (no terminal, as under `nohup`).
#[test]
fn a_resumed_run_names_the_recipe_options_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    common::folder_dataset(dir.path(), 4, 64, 48);
    let root = dir.path().to_str().unwrap();
    let run = dir.path().join("run");
    let run_str = run.to_str().unwrap();
    let old_recipe = |iters| {
        let args = set(train_args(root, run_str, iters), "--lr", "0.01");
        let args = set(args, "--class-mix", "0");
        let args = set(args, "--min-scale", "0.75");
        let args = set(args, "--lovasz-weight", "0.5");
        let args = set(args, "--prior-correction", "0");
        set(args, "--class-weights", "uniform")
    };
    // Resumes the run with `args`, and returns what it said on stderr.
    let resume = |mut args: Vec<&str>| {
        args.push("--resume");
        stderr(&bisenet_ok(&args))
    };

    // Scripts pass --resume on every start: an empty folder starts a new run and says so.
    let said = resume(old_recipe("2"));
    assert!(said.contains("nothing to resume in"), "{said}");
    // Without a terminal the bar is hidden; status lines take its place.
    assert!(said.contains("iteration 1 of 2: loss "), "{said}");
    assert!(said.contains("s per iteration, about "), "{said}");

    let said = resume(old_recipe("4"));
    assert!(said.contains("resumed at iteration 2"), "{said}");
    assert!(
        said.contains("--iters 4 (the run started with 2)"),
        "{said}"
    );
    assert!(!said.contains("--lr"), "{said}");

    let said = resume(train_args(root, run_str, "6"));
    assert!(said.contains("resumed at iteration 4"), "{said}");
    assert!(
        said.contains("--lr 0.02 (the run started with 0.01)"),
        "{said}"
    );
    assert!(
        said.contains("--class-weights sqrt-median-frequency (the run started with uniform)"),
        "{said}"
    );
    assert!(
        said.contains("--class-mix 0.5 (the run started with 0)"),
        "{said}"
    );
    assert!(
        said.contains("--min-scale 0.5 (the run started with 0.75)"),
        "{said}"
    );
    assert!(
        said.contains("--lovasz-weight 0 (the run started with 0.5)"),
        "{said}"
    );
    assert!(
        said.contains("--prior-correction 0.5 (the run started with 0)"),
        "{said}"
    );
}

/// `scripts/gpu-train.sh` sizes a new run to its budget: a calibration inside the warm-up,
/// then the run resumed with the `--iters` the measured speed allows, finished in time.
#[test]
fn gpu_train_script_fits_a_run_to_its_budget() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("skipped: the script needs python3");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    common::folder_dataset(dir.path(), 4, 64, 48);
    let root = dir.path().to_str().unwrap();
    let run = dir.path().join("run");
    let mut args = train_args(root, "unused", "1");
    // The script sets --out and --iters itself; a long warm-up keeps the calibration in it.
    args.drain(args.len() - 2..);
    let position = args.iter().position(|a| *a == "--iters").unwrap();
    args.drain(position..position + 2);
    let args = set(args, "--warmup", "100000");
    let started = Instant::now();
    let out = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/gpu-train.sh"))
        .arg("0.4")
        .arg(&run)
        .args(&args[1..])
        .env("BISENET", env!("CARGO_BIN_EXE_bisenet"))
        .env("BACKEND", "flex")
        .env("CALIBRATE_MINUTES", "0.08")
        // The other tests of this file share the cores: the speed can halve between the
        // calibration and the run, where a GPU machine's holds. A wide reserve absorbs that.
        .env("RESERVE", "0.6")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stdout(&out);
    assert!(said.contains("stopped at iteration"), "{said}");
    assert!(said.contains("done: "), "{said}");
    let calibrated = said
        .split("stopped at iteration ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap();
    let finished = checkpoint_iteration(&run).unwrap();
    assert!(finished > calibrated, "{calibrated} then {finished}");
    assert_eq!(
        losses(&run).len() as u64,
        finished,
        "every step logged once"
    );
    assert!(run.join("best.safetensors").is_file());
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn bad_training_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    common::folder_dataset(dir.path(), 2, 64, 48);
    let root = dir.path().to_str().unwrap();
    let out_dir = dir.path().join("run");
    let out_str = out_dir.to_str().unwrap();

    let cases = [
        (
            "--crop",
            "1000x1000",
            "larger than the biggest scaled image",
        ),
        ("--crop", "16x16", "too small"),
        ("--batch", "1", "at least 2"),
        ("--class-mix", "1.5", "is a probability"),
        ("--min-scale", "3", "the first no larger than the second"),
        ("--lr", "0", "must be a positive number"),
        ("--ohem-threshold", "0", "is a probability above 0"),
        (
            "--lovasz-weight",
            "inf",
            "zero (no Lovász term) or a positive number",
        ),
        ("--weight-decay", "NaN", "zero or a positive number"),
        ("--batch", "1000000", "lower --batch or --crop"),
        ("--time-limit", "1e300", "too far ahead"),
    ];
    for (key, value, expected) in cases {
        bisenet_err(&set(train_args(root, out_str, "2"), key, value), expected);
    }
    let empty = tempfile::tempdir().unwrap();
    bisenet_err(
        &train_args(empty.path().to_str().unwrap(), out_str, "2"),
        "classes.json",
    );

    // A finished run resumed with another backbone is refused, naming the difference.
    bisenet_ok(&train_args(root, out_str, "2"));
    let mut args = set(train_args(root, out_str, "4"), "--backbone", "resnet18");
    args.push("--resume");
    bisenet_err(&args, "backbone");
    // A schedule cannot be shortened to before where the run stands.
    let mut args = train_args(root, out_str, "1");
    args.push("--resume");
    bisenet_err(&args, "at iteration 2 already");

    // Without --backbone, a resumed run keeps its own network.
    let other = dir.path().join("resnet18");
    let other = other.to_str().unwrap();
    bisenet_ok(&set(train_args(root, other, "2"), "--backbone", "resnet18"));
    let mut args = unset(train_args(root, other, "4"), "--backbone");
    args.push("--resume");
    let out = bisenet_ok(&args);
    assert!(
        stderr(&out).contains("resumed at iteration 2"),
        "{}",
        stderr(&out)
    );
}
