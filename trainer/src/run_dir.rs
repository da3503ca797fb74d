//! The run directory: `config.json`, `tokenizer.json`, `metrics.jsonl`, `checkpoints/`,
//! `model.bpk`, `summary.json` and `status.json`.

use std::path::{Path, PathBuf};

use primer_datasets::tokenizer::PrimerTokenizer;

use crate::config::RunConfig;
use crate::error::TrainError;

/// How an existing run directory is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunDirMode {
    /// Refuse a directory that already holds a run.
    New,
    /// Delete what is there and start over.
    Overwrite,
    /// Continue the run that is there; its config must match.
    Resume,
}

/// Paths inside a run directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    /// The directory.
    pub root: PathBuf,
}

impl RunDir {
    /// A run directory at `root` (nothing is touched).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `config.json`.
    pub fn config(&self) -> PathBuf {
        self.root.join("config.json")
    }
    /// `tokenizer.json`.
    pub fn tokenizer(&self) -> PathBuf {
        self.root.join("tokenizer.json")
    }
    /// `metrics.jsonl`.
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.jsonl")
    }
    /// `samples.jsonl`, what the model made of a fixed validation excerpt at each evaluation.
    pub fn samples(&self) -> PathBuf {
        self.root.join("samples.jsonl")
    }
    /// `tensorboard/`, the metrics as TensorBoard event files (with `--tensorboard`).
    pub fn tensorboard(&self) -> PathBuf {
        self.root.join("tensorboard")
    }
    /// `checkpoints/`.
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoints")
    }
    /// `model.bpk`, the final weights.
    pub fn model(&self) -> PathBuf {
        self.root.join("model.bpk")
    }
    /// `summary.json`.
    pub fn summary(&self) -> PathBuf {
        self.root.join("summary.json")
    }
    /// `status.json`, the state of the run as its training process last wrote it.
    pub fn status(&self) -> PathBuf {
        self.root.join("status.json")
    }
    /// `finetune.json`, the config of a fine-tuned classifier (in place of `config.json`).
    pub fn finetune_config(&self) -> PathBuf {
        self.root.join("finetune.json")
    }

    /// Reads `config.json`.
    pub fn read_config(&self) -> Result<RunConfig, TrainError> {
        let path = self.config();
        if self.finetune_config().exists() {
            return Err(TrainError::Invalid(format!(
                "{} is a fine-tuned classifier: use it with `primer classify`; give a pre-training run here",
                self.root.display()
            )));
        }
        let text = std::fs::read_to_string(&path).map_err(|_| {
            TrainError::Invalid(format!(
                "{} has no config.json: give the folder of a primer run",
                self.root.display()
            ))
        })?;
        serde_json::from_str(&text)
            .map_err(|e| TrainError::Invalid(format!("{}: corrupt run config ({e}): start a new run", path.display())))
    }

    /// Makes the directory ready for a run of `config`, following `mode`. Call it only once
    /// every input is checked: a refused run leaves no directory behind.
    pub fn prepare(&self, mode: RunDirMode, config: &RunConfig, tokenizer: &PrimerTokenizer) -> Result<(), TrainError> {
        let holds_run = self.config().exists();
        match mode {
            RunDirMode::Resume => {
                let stored = self.read_config()?;
                let differences = stored.differences(config);
                if !differences.is_empty() {
                    return Err(TrainError::Invalid(format!(
                        "cannot resume {}: its config differs ({}): drop those options, or start a new run with another --out",
                        self.root.display(),
                        differences.join("; ")
                    )));
                }
                return Ok(());
            }
            RunDirMode::New if holds_run => return Err(self.exists_error("pass --resume to continue that run, ")),
            mode => self.claim(mode == RunDirMode::Overwrite)?,
        }
        tokenizer.save(&self.tokenizer())?;
        let json = serde_json::to_vec_pretty(config).expect("configs serialize");
        primer_datasets::atomic_write(&self.config(), &json)?;
        Ok(())
    }
}

impl RunDir {
    /// Creates the directory for a new run: an existing non-empty one is refused, or with
    /// `overwrite` deleted first.
    pub fn claim(&self, overwrite: bool) -> Result<(), TrainError> {
        if is_non_empty_dir(&self.root) {
            if !overwrite {
                return Err(self.exists_error(""));
            }
            std::fs::remove_dir_all(&self.root).map_err(|e| TrainError::io(&self.root, e))?;
        }
        std::fs::create_dir_all(&self.root).map_err(|e| TrainError::io(&self.root, e))
    }

    fn exists_error(&self, resume_hint: &str) -> TrainError {
        TrainError::Invalid(format!(
            "{} already exists: {resume_hint}pass --overwrite to replace it, or give another --out",
            self.root.display()
        ))
    }
}

fn is_non_empty_dir(path: &Path) -> bool {
    std::fs::read_dir(path).is_ok_and(|mut entries| entries.next().is_some())
}
