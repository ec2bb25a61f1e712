//! Crash-safe training checkpoints.
//!
//! A checkpoint is a folder `checkpoints/iter-NNNNNNN/` holding the model (burnpack, which keeps
//! the parameter ids the optimizer state refers to) and the optimizer state, plus `state.json`.
//! The folder is written and fsynced first; only then is `last.json`, the pointer to it,
//! replaced by an atomic rename. A process killed at any moment leaves `last.json` naming a
//! complete checkpoint, so at most one interval of work is lost.

use std::path::{Path, PathBuf};

use burn::optim::ModuleOptimizer;
use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::Bytes;
use serde::{Deserialize, Serialize};

use super::TrainConfig;
use crate::model::Network;
use crate::weights::write_atomically;

/// Progress saved with each checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Iterations completed.
    pub iteration: usize,
    pub best_miou: Option<f64>,
    pub best_iteration: Option<usize>,
    /// The images the run's starting weights trained on ([`TrainConfig::init_weights`]),
    /// kept so that its models list them even when the file is gone by the time it resumes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_training_images: Vec<String>,
    pub config: TrainConfig,
}

#[derive(Debug, Serialize, Deserialize)]
struct Pointer {
    checkpoint: String,
    iteration: usize,
}

const MODEL_FILE: &str = "model.bpk";
/// The weights' moving average (`ema::WeightEma`), in runs that keep one.
const EMA_FILE: &str = "ema.bpk";
const OPTIMIZER_FILE: &str = "optimizer.bpk";
const STATE_FILE: &str = "state.json";
const POINTER_FILE: &str = "last.json";
/// Checkpoint folders kept besides the newest (the previous one survives a bad write).
const KEEP: usize = 2;

fn io_error(context: impl std::fmt::Display, error: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("{context}: {error}"))
}

/// Writes a checkpoint of `model`, `optimizer`, the weights' moving average `ema` (if the run
/// keeps one) and `state` under `run_dir`.
pub fn save(
    run_dir: &Path,
    model: &Network,
    optimizer: &ModuleOptimizer,
    ema: Option<&Network>,
    state: &TrainState,
) -> std::io::Result<()> {
    let name = format!("iter-{:07}", state.iteration);
    let dir = run_dir.join("checkpoints").join(&name);
    std::fs::create_dir_all(&dir)?;
    write_atomically(&dir.join(MODEL_FILE), &network_bytes(model)?)?;
    if let Some(ema) = ema {
        write_atomically(&dir.join(EMA_FILE), &network_bytes(ema)?)?;
    }
    let optimizer_bytes = optimizer
        .into_bytes()
        .map_err(|e| io_error("serialising the optimizer", e))?;
    let state_json = serde_json::to_vec_pretty(state).map_err(|e| io_error("state", e))?;
    write_atomically(&dir.join(OPTIMIZER_FILE), &optimizer_bytes)?;
    write_atomically(&dir.join(STATE_FILE), &state_json)?;
    sync_dir(&dir)?;
    let pointer = Pointer {
        checkpoint: name.clone(),
        iteration: state.iteration,
    };
    let pointer_json = serde_json::to_vec_pretty(&pointer).map_err(|e| io_error("pointer", e))?;
    write_atomically(&run_dir.join(POINTER_FILE), &pointer_json)?;
    sync_dir(run_dir)?;
    prune(&run_dir.join("checkpoints"), &name);
    Ok(())
}

/// Removes all checkpoint folders but the newest few (never the one just written).
fn prune(checkpoints: &Path, newest: &str) {
    let Ok(entries) = std::fs::read_dir(checkpoints) else {
        return;
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("iter-") && n.as_str() != newest)
        .collect();
    names.sort();
    let stale = names.len().saturating_sub(KEEP - 1);
    for name in &names[..stale] {
        let _ = std::fs::remove_dir_all(checkpoints.join(name));
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// The newest complete checkpoint of a run, if any.
pub fn latest(run_dir: &Path) -> std::io::Result<Option<PathBuf>> {
    let pointer_path = run_dir.join(POINTER_FILE);
    let text = match std::fs::read_to_string(&pointer_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let pointer: Pointer =
        serde_json::from_str(&text).map_err(|e| io_error(pointer_path.display(), e))?;
    Ok(Some(run_dir.join("checkpoints").join(pointer.checkpoint)))
}

/// Whether `dir` is one checkpoint (rather than a run folder, say).
pub fn is_checkpoint(dir: &Path) -> bool {
    dir.join(STATE_FILE).is_file()
}

/// Reads a checkpoint's state.
pub fn load_state(checkpoint: &Path) -> std::io::Result<TrainState> {
    let path = checkpoint.join(STATE_FILE);
    let text = std::fs::read_to_string(&path)?;
    serde_json::from_str(&text).map_err(|e| io_error(path.display(), e))
}

/// Loads a checkpoint's model (with its parameter ids) and optimizer state into freshly
/// built ones of the same architecture.
pub fn load(
    checkpoint: &Path,
    mut model: Network,
    optimizer: ModuleOptimizer,
) -> std::io::Result<(Network, ModuleOptimizer)> {
    load_network(&checkpoint.join(MODEL_FILE), &mut model)?;
    let optimizer_bytes = std::fs::read(checkpoint.join(OPTIMIZER_FILE))?;
    let optimizer = optimizer
        .from_bytes(Bytes::from_bytes_vec(optimizer_bytes))
        .map_err(|e| io_error(checkpoint.join(OPTIMIZER_FILE).display(), e))?;
    Ok((model, optimizer))
}

/// Loads a checkpoint's weights (without the optimizer) into `network`, a freshly built one of
/// the run's architecture.
pub fn load_weights(checkpoint: &Path, mut network: Network) -> std::io::Result<Network> {
    load_network(&checkpoint.join(MODEL_FILE), &mut network)?;
    Ok(network)
}

/// Loads a checkpoint's moving average of the weights into `network` (a freshly built one of
/// the run's architecture); `None` when the checkpoint has none (the run kept none until now).
pub fn load_ema(checkpoint: &Path, mut network: Network) -> std::io::Result<Option<Network>> {
    let path = checkpoint.join(EMA_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    load_network(&path, &mut network)?;
    Ok(Some(network))
}

fn network_bytes(network: &Network) -> std::io::Result<Bytes> {
    let mut store = BurnpackStore::from_bytes(None);
    // The architecture's own module, so parameter paths carry no enum variant (and V1
    // checkpoints written before V2 existed still load).
    match network {
        Network::V1(network) => network.save_into(&mut store),
        Network::V2(network) => network.save_into(&mut store),
    }
    .map_err(|e| io_error("serialising the model", e))?;
    store
        .get_bytes()
        .map_err(|e| io_error("serialising the model", e))
}

fn load_network(path: &Path, network: &mut Network) -> std::io::Result<()> {
    let bytes = std::fs::read(path)?;
    let mut store = BurnpackStore::from_bytes(Some(Bytes::from_bytes_vec(bytes)));
    match network {
        Network::V1(network) => network.load_from(&mut store),
        Network::V2(network) => network.load_from(&mut store),
    }
    .map(|_| ())
    .map_err(|e| io_error(path.display(), e))
}
