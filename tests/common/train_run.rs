//! A tiny training run of `bisenet train` and what it leaves: its arguments, its log, its
//! checkpoints and model files.

use std::path::Path;

pub fn train_args<'a>(root: &'a str, out: &'a str, iters: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "--dataset",
        "folder",
        "--root",
        root,
        "--split",
        "train",
        "--val-split",
        "val",
        "--backbone",
        "xception39",
        "--batch",
        "2",
        "--crop",
        "48x32",
        "--iters",
        iters,
        "--warmup",
        "2",
        "--checkpoint-every",
        "2",
        "--validate-every",
        "10",
        // ClassMix on, so that the resume tests cover the replay of its random choices too, and
        // the weights' moving average, so that they cover its checkpoints.
        "--class-mix",
        "0.5",
        "--ema-decay",
        "0.9",
        "--out",
        out,
    ]
}

/// Replaces the value of an option in an argument list.
pub fn set<'a>(mut args: Vec<&'a str>, key: &'a str, value: &'a str) -> Vec<&'a str> {
    match args.iter().position(|a| *a == key) {
        Some(i) => args[i + 1] = value,
        None => args.extend([key, value]),
    }
    args
}

/// Removes an option and its value from an argument list.
pub fn unset<'a>(mut args: Vec<&'a str>, key: &str) -> Vec<&'a str> {
    if let Some(i) = args.iter().position(|a| *a == key) {
        args.drain(i..i + 2);
    }
    args
}

/// `(iteration, loss)` of every step logged, keeping the last entry of an iteration that a
/// resumed run repeated.
pub fn losses(run: &Path) -> Vec<(u64, String)> {
    let text = std::fs::read_to_string(run.join("log.jsonl")).unwrap();
    let mut by_iteration = std::collections::BTreeMap::new();
    for line in text.lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        if let Some(loss) = value.get("loss") {
            by_iteration.insert(value["iteration"].as_u64().unwrap(), loss.to_string());
        }
    }
    by_iteration.into_iter().collect()
}

/// A safetensors file's header (tensor table and metadata) and data: equal for equal models,
/// whatever order the writer gave the header's keys.
pub fn safetensors_content(path: &Path) -> (serde_json::Value, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let (header, data) = bytes[8..].split_at(header_len);
    (serde_json::from_slice(header).unwrap(), data.to_vec())
}

pub fn checkpoint_iteration(run: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(run.join("last.json")).ok()?;
    serde_json::from_str::<serde_json::Value>(&text).ok()?["iteration"].as_u64()
}
