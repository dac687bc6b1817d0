//! Checkpoints of a fine-tune, so that a long run survives a stop (Slurm's SIGTERM, Esc, a
//! crash): the model, the optimizer's state, the learning-rate scheduler's state and where the
//! run was, written after every epoch and at a stop, each file atomically, `state.json` last
//! (a checkpoint without it is incomplete and ignored). The data order and augmentation are
//! functions of (seed, epoch, image), so nothing else needs saving.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{EpochStats, Recipe};

pub const STATE: &str = "state.json";
pub const MODEL: &str = "model.bpk";
pub const BEST: &str = "best.bpk";
pub const OPTIM: &str = "optim.bpk";
pub const SCHED: &str = "sched.bpk";

/// Where a run stands.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct State {
    pub recipe: Recipe,
    /// Whole epochs done.
    pub epoch: usize,
    /// Batches of epoch `epoch` (0-based) already done.
    pub batch: usize,
    /// Optimizer steps taken in the backbone phase (the scheduler's position).
    pub backbone_steps: usize,
    pub history: Vec<EpochStats>,
    /// NaN (or -inf before the first epoch) when there is none yet.
    #[serde(deserialize_with = "super::nan_if_null")]
    pub best_auc: f64,
    /// 1-based epoch of the best model (0: none yet).
    pub best_epoch: usize,
    /// Training images this run has seen (running loss of the current epoch).
    #[serde(deserialize_with = "super::nan_if_null")]
    pub epoch_loss_sum: f64,
    pub epoch_images: usize,
    /// Identifies the training data (paths and labels), so a resume on other data is refused.
    pub data_fingerprint: u64,
}

pub fn path(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

/// Moves `tmp` over `name` in `dir`.
pub fn commit(dir: &Path, tmp: &Path, name: &str) -> Result<(), String> {
    std::fs::rename(tmp, dir.join(name))
        .map_err(|e| format!("cannot move {} into place: {e}", tmp.display()))
}

/// A temporary name beside `name`.
pub fn tmp(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.tmp"))
}

pub fn write_state(dir: &Path, state: &State) -> Result<(), String> {
    let text = serde_json::to_string_pretty(state).map_err(|e| e.to_string())?;
    crate::train::atomic_write(&dir.join(STATE), text.as_bytes())
}

/// The checkpoint's state, if `dir` holds a complete one.
pub fn read_state(dir: &Path) -> Result<Option<State>, String> {
    let p = dir.join(STATE);
    if !p.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    let s: State = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a checkpoint: {e}", p.display()))?;
    for f in [MODEL, OPTIM] {
        if !dir.join(f).is_file() {
            return Err(format!("checkpoint {} lacks {f}", dir.display()));
        }
    }
    Ok(Some(s))
}
