//! Step checkpoints: model, optimizer and training state, written atomically, last K kept.
//!
//! Layout: `RUN_DIR/checkpoints/step-00001000/{model.bpk, optim.bpk, state.json}`. A checkpoint
//! is written into a hidden temporary folder and renamed into place, so a folder named
//! `step-*` is always complete.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use primer_model::Transformer;
use serde::{Deserialize, Serialize};

use crate::error::TrainError;

/// Everything besides weights and optimizer moments that a resumed run needs.
///
/// The learning-rate schedule is a function of `step`; masks and dropout are seeded from the
/// run seed and the step; the data order from the seed and `cursor`. So these four numbers and
/// the config restore the run exactly.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimizer steps done.
    pub step: u64,
    /// Training blocks consumed: the data cursor.
    pub cursor: u64,
    /// Input tokens consumed.
    pub tokens_seen: u64,
    /// Training wall time so far, seconds.
    pub elapsed_s: f64,
}

/// Writes and finds checkpoints in one folder.
pub struct Checkpointer {
    dir: PathBuf,
    keep: usize,
}

impl Checkpointer {
    /// Checkpoints under `dir`, keeping the newest `keep`.
    pub fn new(dir: PathBuf, keep: usize) -> Self {
        Self { dir, keep }
    }

    /// Saves a checkpoint for `state.step` and prunes older ones.
    pub fn save(
        &self,
        model: &Transformer,
        optim: &ModuleOptimizer,
        state: &TrainState,
    ) -> Result<PathBuf, TrainError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| TrainError::io(&self.dir, e))?;
        let tmp = tempfile::Builder::new()
            .prefix(".tmp-step-")
            .tempdir_in(&self.dir)
            .map_err(|e| TrainError::io(&self.dir, e))?;
        let record_error = |what: &str, e| TrainError::Invalid(format!("cannot write {what} checkpoint: {e:?}"));
        model
            .clone()
            .save_file(tmp.path().join("model.bpk"))
            .map_err(|e| record_error("model", e))?;
        optim
            .save(tmp.path().join("optim.bpk"))
            .map_err(|e| record_error("optimizer", e))?;
        let state_json = serde_json::to_vec_pretty(state).expect("state serializes");
        primer_datasets::atomic_write(&tmp.path().join("state.json"), &state_json)?;
        let target = self.dir.join(format!("step-{:08}", state.step));
        if target.exists() {
            std::fs::remove_dir_all(&target).map_err(|e| TrainError::io(&target, e))?;
        }
        std::fs::rename(tmp.keep(), &target).map_err(|e| TrainError::io(&target, e))?;
        let all = self.list()?;
        for old in &all[..all.len().saturating_sub(self.keep)] {
            std::fs::remove_dir_all(old).map_err(|e| TrainError::io(old, e))?;
        }
        Ok(target)
    }

    /// Complete checkpoints, oldest first.
    pub fn list(&self) -> Result<Vec<PathBuf>, TrainError> {
        if !self.dir.exists() {
            return Ok(Vec::new());
        }
        let mut found: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map_err(|e| TrainError::io(&self.dir, e))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("step-"))
                    && p.join("state.json").exists()
            })
            .collect();
        found.sort();
        Ok(found)
    }

    /// Loads a checkpoint into a freshly built model and optimizer.
    pub fn load(
        path: &Path,
        model: Transformer,
        optim: ModuleOptimizer,
    ) -> Result<(Transformer, ModuleOptimizer, TrainState), TrainError> {
        let corrupt = |what: &str, detail: String| {
            TrainError::Invalid(format!(
                "checkpoint {} has a corrupt {what} ({detail}): delete that folder to resume from the one before, or start over with --overwrite",
                path.display()
            ))
        };
        let state_text = std::fs::read_to_string(path.join("state.json")).map_err(|e| TrainError::io(path, e))?;
        let state: TrainState = serde_json::from_str(&state_text).map_err(|e| corrupt("state.json", e.to_string()))?;
        let model = model
            .try_load_file(path.join("model.bpk"))
            .map_err(|e| corrupt("model.bpk", format!("{e:?}")))?;
        let optim = optim
            .load(path.join("optim.bpk"))
            .map_err(|e| corrupt("optim.bpk", format!("{e:?}")))?;
        Ok((model, optim, state))
    }
}
