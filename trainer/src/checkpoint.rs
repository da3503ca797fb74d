//! Step checkpoints: model, optimizer and training state, complete or absent, last K kept.
//!
//! Layout: `RUN_DIR/checkpoints/step-00001000/{model.bpk, optim.bpk, state.json, SHA256SUMS}`,
//! and `companion.bpk` for objectives that train one (see [`crate::networks`]).
//! A checkpoint is written into a hidden `.tmp-step-*` folder, its checksums last, and renamed
//! into place; an old one is renamed to a hidden `.prune-*` name before it is deleted. So a
//! folder named `step-*` is always complete, and a killed writer leaves only hidden folders,
//! which [`Checkpointer::remove_leftovers`] deletes. Loading checks every file against its
//! sha256 and the weights for non-finite values.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use primer_files::checksums::{verify_sums, write_sums, write_sums_of};
use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::loss_scale::LossScale;
use crate::networks::Networks;

const MODEL: &str = "model.bpk";
const OPTIM: &str = "optim.bpk";
const STATE: &str = "state.json";
/// The companion's weights, for objectives that train one.
pub const COMPANION: &str = "companion.bpk";
const FILES: [&str; 3] = [MODEL, OPTIM, STATE];

/// The files of a checkpoint of `networks`.
fn files(networks: &Networks) -> Vec<&'static str> {
    let companion = networks.companion.as_ref().map(|_| COMPANION);
    FILES.into_iter().chain(companion).collect()
}
/// Prefixes of the hidden folders a writer makes: being written, being pruned.
const LEFTOVER_PREFIXES: [&str; 2] = [".tmp-step-", ".prune-"];

/// Everything besides weights and optimizer moments that a resumed run needs.
///
/// The learning-rate schedule is a function of `step`; masks and dropout are seeded from the
/// run seed and the step; the data order from the seed and `cursor`. So these numbers (and a
/// float16 run's loss scale) and the config restore the run exactly.
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
    /// The dynamic loss scale of a float16 run; `None` in other precisions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_scale: Option<LossScale>,
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
        networks: &Networks,
        optim: &ModuleOptimizer,
        state: &TrainState,
    ) -> Result<PathBuf, TrainError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| TrainError::io(&self.dir, e))?;
        let tmp = tempfile::Builder::new()
            .prefix(LEFTOVER_PREFIXES[0])
            .tempdir_in(&self.dir)
            .map_err(|e| TrainError::io(&self.dir, e))?;
        let record_error = |what: &str, e| TrainError::Invalid(format!("cannot write {what} checkpoint: {e:?}"));
        networks
            .model
            .clone()
            .save_file(tmp.path().join(MODEL))
            .map_err(|e| record_error("model", e))?;
        if let Some(companion) = &networks.companion {
            companion
                .clone()
                .save_file(tmp.path().join(COMPANION))
                .map_err(|e| record_error("companion", e))?;
        }
        optim
            .save(tmp.path().join(OPTIM))
            .map_err(|e| record_error("optimizer", e))?;
        let state_json = serde_json::to_vec_pretty(state).expect("state serializes");
        primer_files::atomic_write(&tmp.path().join(STATE), &state_json)?;
        write_sums(tmp.path(), &files(networks))?;
        let target = self.dir.join(format!("step-{:08}", state.step));
        if target.exists() {
            self.prune(&target)?;
        }
        std::fs::rename(tmp.keep(), &target).map_err(|e| TrainError::io(&target, e))?;
        let all = self.list()?;
        for old in &all[..all.len().saturating_sub(self.keep)] {
            self.prune(old)?;
        }
        Ok(target)
    }

    /// Deletes a checkpoint: renamed out of the `step-*` names first, so a kill midway leaves
    /// a hidden leftover instead of a partial checkpoint.
    fn prune(&self, checkpoint: &Path) -> Result<(), TrainError> {
        let name = checkpoint
            .file_name()
            .expect("checkpoints have names")
            .to_string_lossy();
        let doomed = self.dir.join(format!("{}{name}", LEFTOVER_PREFIXES[1]));
        std::fs::rename(checkpoint, &doomed).map_err(|e| TrainError::io(checkpoint, e))?;
        std::fs::remove_dir_all(&doomed).map_err(|e| TrainError::io(&doomed, e))
    }

    /// Deletes what killed writers left: hidden temporary and pruned folders, and `step-*`
    /// folders without their state (left by primer versions before checksums). Call it only
    /// while holding the run's lock. Returns how many were removed.
    pub fn remove_leftovers(&self) -> Result<usize, TrainError> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Ok(0);
        };
        let mut removed = 0;
        for path in entries.filter_map(|e| e.ok()).map(|e| e.path()) {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let hidden = LEFTOVER_PREFIXES.iter().any(|p| name.starts_with(p));
            let incomplete = name.starts_with("step-") && !path.join(STATE).exists();
            if (hidden || incomplete) && path.is_dir() {
                std::fs::remove_dir_all(&path).map_err(|e| TrainError::io(&path, e))?;
                removed += 1;
            }
        }
        Ok(removed)
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
                    && p.join(STATE).exists()
            })
            .collect();
        found.sort();
        Ok(found)
    }

    /// Loads the newest checkpoint into freshly built networks and optimizer; with none, gives
    /// them back as they are, without a state.
    pub fn load_latest(
        &self,
        networks: Networks,
        optim: ModuleOptimizer,
    ) -> Result<(Networks, ModuleOptimizer, Option<TrainState>), TrainError> {
        let all = self.list()?;
        let Some(latest) = all.last() else {
            return Ok((networks, optim, None));
        };
        let fallback = match all.len() {
            1 => "start over with --overwrite".to_string(),
            n => format!(
                "delete that folder to resume from {}, or start over with --overwrite",
                all[n - 2].display()
            ),
        };
        load(latest, networks, optim)
            .map(|(networks, optim, state)| (networks, optim, Some(state)))
            .map_err(|detail| {
                TrainError::Invalid(format!(
                    "checkpoint {} is corrupt: {detail}: {fallback}",
                    latest.display()
                ))
            })
    }
}

/// Loads one checkpoint, checking its checksums, its folder's step and its weights; `Err`
/// says what is wrong.
fn load(
    path: &Path,
    networks: Networks,
    optim: ModuleOptimizer,
) -> Result<(Networks, ModuleOptimizer, TrainState), String> {
    verify_sums(path, &files(&networks))?;
    let state_text = std::fs::read_to_string(path.join(STATE)).map_err(|e| format!("{STATE}: {e}"))?;
    let state: TrainState = serde_json::from_str(&state_text).map_err(|e| format!("{STATE} ({e})"))?;
    let named_step = path
        .file_name()
        .and_then(|n| n.to_str()?.strip_prefix("step-")?.parse().ok());
    if named_step != Some(state.step) {
        return Err(format!("{STATE} says step {}, its folder another", state.step));
    }
    let networks = Networks {
        model: load_finite(networks.model, &path.join(MODEL))?,
        companion: match networks.companion {
            Some(companion) => Some(load_finite(companion, &path.join(COMPANION))?),
            None => None,
        },
    };
    let optim = optim.load(path.join(OPTIM)).map_err(|e| format!("{OPTIM} ({e:?})"))?;
    Ok((networks, optim, state))
}

/// Writes a module's weights atomically (a temporary file in the same folder, renamed), their
/// sha256 recorded in the folder's `SHA256SUMS` before the rename.
pub fn save_weights<M: Module>(module: &M, path: &Path) -> Result<(), TrainError> {
    let tmp = write_temporary(module, path)?;
    commit(&[(path, tmp)])
}

/// Writes a run's final networks as [`save_weights`] does, `model.bpk` and, where there is a
/// companion, `companion.bpk` beside it, both in one `SHA256SUMS`.
pub fn save_networks(networks: &Networks, model: &Path) -> Result<(), TrainError> {
    let mut files = vec![(model, write_temporary(&networks.model, model)?)];
    let companion = model.with_file_name(COMPANION);
    if let Some(weights) = &networks.companion {
        files.push((&companion, write_temporary(weights, &companion)?));
    }
    commit(&files)
}

/// Writes `module` to a temporary file beside `path` and returns it.
fn write_temporary<M: Module>(module: &M, path: &Path) -> Result<PathBuf, TrainError> {
    let tmp = path.with_extension("tmp.bpk");
    module
        .clone()
        .save_file(&tmp)
        .map_err(|e| TrainError::Invalid(format!("cannot write {}: {e:?}", tmp.display())))?;
    Ok(tmp)
}

/// Records the temporary files' sums under their final names in their folder's `SHA256SUMS`,
/// then renames them into place.
fn commit(files: &[(&Path, PathBuf)]) -> Result<(), TrainError> {
    let dir = files[0].0.parent().expect("weights live in a folder");
    let named: Vec<(String, PathBuf)> = files
        .iter()
        .map(|(path, tmp)| {
            let name = path.file_name().expect("weights have a file name").to_string_lossy();
            (name.into_owned(), tmp.clone())
        })
        .collect();
    let named: Vec<(&str, PathBuf)> = named.iter().map(|(name, tmp)| (name.as_str(), tmp.clone())).collect();
    write_sums_of(dir, &named)?;
    for (path, tmp) in files {
        std::fs::rename(tmp, path).map_err(|e| TrainError::io(path, e))?;
    }
    Ok(())
}

/// Loads weights written by [`save_weights`] into `module`: checked against the folder's
/// `SHA256SUMS` (when it has one) and for non-finite values. `Err` says what is wrong.
pub fn load_weights<M: Module>(module: M, path: &Path) -> Result<M, String> {
    let dir = path.parent().expect("weights live in a folder");
    let name = path.file_name().expect("weights have a file name").to_string_lossy();
    verify_sums(dir, &[&name])?;
    load_finite(module, path)
}

/// Loads weights into `module`, refusing non-finite values (the file's sum already checked).
fn load_finite<M: Module>(module: M, path: &Path) -> Result<M, String> {
    let name = path.file_name().expect("weights have a file name").to_string_lossy();
    let module = module.try_load_file(path).map_err(|e| format!("{name} ({e:?})"))?;
    match crate::finite::first_non_finite(&module) {
        Some(param) => Err(format!("{name} holds non-finite values in {param}")),
        None => Ok(module),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;
    use primer_model::TransformerConfig;

    /// A float16 run's loss scale comes back from its checkpoint: without it a resumed run
    /// would restart from the initial scale and skip again the steps the first run had learnt
    /// to avoid.
    #[test]
    fn the_loss_scale_is_checkpointed() {
        let dir = tempfile::tempdir().unwrap();
        let config = TransformerConfig::new(10)
            .with_d_model(8)
            .with_n_heads(2)
            .with_d_ff(16)
            .with_n_layers(1)
            .with_max_seq_len(4);
        let networks = || Networks::init_on_host(&config, None, 1, &Device::flex(), &Device::flex().autodiff());
        let optim = || crate::optim::optimizer(&crate::tests::train_config());
        let state = TrainState {
            step: 3,
            cursor: 6,
            tokens_seen: 24,
            elapsed_s: 1.5,
            loss_scale: Some(LossScale {
                scale: 8192.0,
                good_steps: 1,
                skipped_steps: 3,
            }),
        };
        let checkpointer = Checkpointer::new(dir.path().to_path_buf(), 2);
        checkpointer.save(&networks(), &optim(), &state).unwrap();
        let (_, _, loaded) = checkpointer.load_latest(networks(), optim()).unwrap();
        assert_eq!(loaded, Some(state));
    }
}
