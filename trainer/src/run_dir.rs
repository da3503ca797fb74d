//! The run directory: `config.json`, `tokenizer.json`, `metrics.jsonl`, `checkpoints/`,
//! `model.bpk`, `summary.json` and `status.json`, the `.lock` its writer holds, and the
//! `.primer-run` marker that lets `--overwrite` tell a run from any other folder.

use std::path::{Path, PathBuf};

use primer_datasets::tokenizer::PrimerTokenizer;
use primer_files::lock::{FolderLock, LOCK_FILE};

use crate::config::RunConfig;
use crate::error::TrainError;

/// The file that marks a folder as a primer run (pre-training or fine-tuning): `--overwrite`
/// empties no other folder.
pub const RUN_MARKER: &str = ".primer-run";

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
    /// `companion.bpk`: what the objective trains beside the model, for objectives with one.
    pub fn companion(&self) -> PathBuf {
        self.root.join(crate::checkpoint::COMPANION)
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

    /// Reads `config.json`, once the run's folder and its files are checked to lie where this
    /// process may read (`primer_files::roots::check_input`).
    pub fn read_config(&self) -> Result<RunConfig, TrainError> {
        primer_files::roots::check_input("run", &self.root)?;
        let path = self.config();
        if self.finetune_config().exists() {
            return Err(TrainError::Invalid(format!(
                "{} is a fine-tuned classifier: use it with `primer classify`; give a pre-training run here",
                self.root.display()
            )));
        }
        let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => TrainError::Invalid(format!(
                "{} has no config.json: give the folder of a primer run",
                self.root.display()
            )),
            _ => TrainError::io(&path, e),
        })?;
        let text = String::from_utf8(bytes).map_err(|e| {
            TrainError::Invalid(format!(
                "{}: corrupt run config (invalid UTF-8 at byte {}): restore it, or start a new run",
                path.display(),
                e.utf8_error().valid_up_to()
            ))
        })?;
        let corrupt = |e: serde_json::Error| {
            TrainError::Invalid(format!(
                "{}: corrupt run config ({e}): restore it, or start a new run",
                path.display()
            ))
        };
        let mut config: serde_json::Value = serde_json::from_str(&text).map_err(corrupt)?;
        primer_objectives::registry::upgrade_config(&mut config);
        serde_json::from_value(config).map_err(corrupt)
    }

    /// Takes the run's lock, for a process that will write into it (a resume); fails at once,
    /// naming the holder, when another process holds it.
    pub fn lock(&self) -> Result<FolderLock, TrainError> {
        if !self.root.is_dir() {
            return Err(TrainError::Invalid(format!(
                "{} is not a run directory: give the folder of a primer run",
                self.root.display()
            )));
        }
        Ok(FolderLock::acquire(&self.root, "run")?)
    }

    /// Checks that a resumed run's `config` matches the one stored in the directory.
    pub fn check_resume(&self, config: &RunConfig) -> Result<(), TrainError> {
        let differences = self.read_config()?.differences(config);
        if differences.is_empty() {
            return Ok(());
        }
        Err(TrainError::Invalid(format!(
            "cannot resume {}: its config differs ({}): drop those options, or start a new run with another --out",
            self.root.display(),
            differences.join("; ")
        )))
    }

    /// Creates the directory of a new run of `config` and holds its lock: an existing run is
    /// refused, or with `overwrite` replaced. Call it only once every input is checked; a
    /// refused or failed start leaves no directory (or, in one that existed, none of its files).
    pub fn create(
        &self,
        overwrite: bool,
        config: &RunConfig,
        tokenizer: &PrimerTokenizer,
    ) -> Result<FolderLock, TrainError> {
        self.check_new(overwrite)?;
        let existed = self.root.exists();
        let lock = self.claim(overwrite)?;
        let json = serde_json::to_vec_pretty(config).expect("configs serialize");
        let written = tokenizer
            .save(&self.tokenizer())
            .map_err(TrainError::from)
            .and_then(|()| primer_files::atomic_write(&self.config(), &json).map_err(TrainError::from));
        if let Err(error) = written {
            let _ = if existed {
                self.remove_contents()
            } else {
                std::fs::remove_dir_all(&self.root)
            };
            return Err(error);
        }
        Ok(lock)
    }
}

impl RunDir {
    /// What [`RunDir::create`] refuses before it touches anything: an existing run, and what
    /// [`RunDir::check_claim`] refuses.
    pub fn check_new(&self, overwrite: bool) -> Result<(), TrainError> {
        if !overwrite && self.config().exists() {
            return Err(self.exists_error("pass --resume to continue that run, "));
        }
        self.check_claim(overwrite)
    }

    /// What [`RunDir::claim`] refuses before it touches anything: a non-empty directory, unless
    /// `overwrite`, and with `overwrite` one that is not a run (a folder primer did not make is
    /// never emptied).
    pub fn check_claim(&self, overwrite: bool) -> Result<(), TrainError> {
        if !is_non_empty_dir(&self.root) {
            return Ok(());
        }
        if !overwrite {
            return Err(self.exists_error(""));
        }
        if !self.is_run() {
            return Err(TrainError::Invalid(format!(
                "{} is not a primer run (it has no {RUN_MARKER}): --overwrite replaces only a run, so move its files away or give another --out",
                self.root.display()
            )));
        }
        Ok(())
    }

    /// Creates, marks and locks the directory of a new run: an existing non-empty one is
    /// refused, or with `overwrite` emptied once its lock is held (never under a process writing
    /// it), and only when it is a run.
    pub fn claim(&self, overwrite: bool) -> Result<FolderLock, TrainError> {
        self.check_claim(overwrite)?;
        let lock = FolderLock::acquire(&self.root, "run")?;
        self.remove_contents().map_err(|e| TrainError::io(&self.root, e))?;
        primer_files::atomic_write(&self.root.join(RUN_MARKER), b"primer run\n")?;
        Ok(lock)
    }

    /// Whether the directory is a primer run: it holds the marker, or (made before the marker)
    /// the lock file and the config every run holds.
    fn is_run(&self) -> bool {
        let file = |name: &str| self.root.join(name).is_file();
        file(RUN_MARKER) || (file(LOCK_FILE) && (self.config().is_file() || self.finetune_config().is_file()))
    }

    /// Deletes everything in the directory but its lock file.
    fn remove_contents(&self) -> std::io::Result<()> {
        for entry in std::fs::read_dir(&self.root)? {
            let path = entry?.path();
            if path.file_name() == Some(LOCK_FILE.as_ref()) {
                continue;
            }
            if path.is_dir() && !path.is_symlink() {
                std::fs::remove_dir_all(&path)?;
            } else {
                std::fs::remove_file(&path)?;
            }
        }
        Ok(())
    }

    fn exists_error(&self, resume_hint: &str) -> TrainError {
        TrainError::Invalid(format!(
            "{} already exists: {resume_hint}pass --overwrite to replace it, or give another --out",
            self.root.display()
        ))
    }
}

/// Whether `path` is a directory holding anything besides a lock file, or than what a start
/// killed before its `config.json` leaves (with its lock file: the run marker, `tokenizer.json`
/// and the temporary files of atomic writes). Such a start is no run, and a new one may take its place.
fn is_non_empty_dir(path: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(path) else {
        return false;
    };
    let names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let started_here = names.iter().any(|name| name == LOCK_FILE);
    names.iter().any(|name| {
        let left_by_a_start = name == RUN_MARKER || name == "tokenizer.json" || name.starts_with(".tmp");
        name != LOCK_FILE && !(started_here && left_by_a_start)
    })
}
