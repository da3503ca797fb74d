//! `RUN_DIR/metrics.jsonl`: one JSON object per logged value set.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::tensorboard::TensorBoardWriter;

/// Which data a record was measured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// The optimizer step's own batches.
    Train,
    /// The validation blocks.
    Valid,
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsRecord {
    /// Optimizer step (1-based) the values belong to.
    pub step: u64,
    /// Split.
    pub split: Split,
    /// Input tokens consumed by training up to and including this step.
    pub tokens_seen: u64,
    /// Wall-clock seconds of training so far, across resumes.
    pub elapsed_s: f64,
    /// Mean cross-entropy per predicted token, in nats.
    pub loss: f64,
    /// `exp(loss)`.
    pub ppl: f64,
    /// Share of predicted tokens that are the model's top choice (MLM: masked positions only).
    pub accuracy: f64,
    /// Bits per UTF-8 byte of text: `loss / ln 2 * tokens / bytes` of the split.
    pub bpb: f64,
    /// Learning rate of the step.
    pub lr: f64,
    /// Training throughput of the step (train) or of the evaluation (valid), input tokens/s.
    pub tokens_per_s: f64,
    /// Global gradient norm before clipping (train only; absent on a float16 step skipped for
    /// overflowing gradients).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grad_norm: Option<f64>,
    /// The dynamic loss scale after the step (train only, `--precision f16` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_scale: Option<f64>,
    /// Steps skipped so far for overflowing float16 gradients (train only, `--precision f16`
    /// only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped_steps: Option<u64>,
    /// Model FLOPs utilisation of the step: training FLOPs per token × tokens/s ÷ the device's
    /// peak (train only; see [`crate::mfu`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfu: Option<f64>,
    /// Process CPU use, percent of one machine (train only, when measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<f64>,
    /// Memory in use on the machine, GB (train only, when measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_gb: Option<f64>,
    /// Seconds rank 0 spent summing the step's gradients and counts over the ranks, waiting for
    /// the slowest included (train only, data-parallel runs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_s: Option<f64>,
    /// Share of the run's minimal pairs scored right (valid only, with `--minimal-pairs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimal_pairs_accuracy: Option<f64>,
    /// The objective's own validation metrics, by key (valid only; ELECTRA's
    /// `discriminator_auc`, `generator_accuracy`, `replaced_share`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub objective_metrics: std::collections::BTreeMap<String, f64>,
}

/// Appends records to a JSON Lines log (`metrics.jsonl`, `samples.jsonl`), one flushed line
/// each, and mirrors them to TensorBoard when asked.
pub struct MetricsLog {
    file: File,
    path: PathBuf,
    tensorboard: Option<TensorBoardWriter>,
}

/// The step (and split, in `metrics.jsonl`) of a log line, if the line is whole.
#[derive(Deserialize)]
struct StepOf {
    step: u64,
    #[serde(default)]
    split: Option<Split>,
}

impl MetricsLog {
    /// Opens the log for appending; with `keep_up_to`, first drops records after that step
    /// (what a killed run wrote after its last checkpoint) and a truncated last line.
    pub fn open(path: &Path, keep_up_to: Option<u64>) -> Result<Self, TrainError> {
        if let Some(step) = keep_up_to
            && path.exists()
        {
            let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
            keep_records_up_to(path, &text, step)?;
        }
        Self::append_to(path)
    }

    /// Opens the log for appending as it is.
    fn append_to(path: &Path) -> Result<Self, TrainError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| TrainError::io(path, e))?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
            tensorboard: None,
        })
    }

    /// Opens a run's `metrics.jsonl` to go on after `step`: records after it are dropped (see
    /// [`Self::open`]), and the file must hold the training record of every step up to it, so a
    /// truncated or deleted log is refused, untouched, instead of leaving a silent gap.
    pub fn resume(path: &Path, step: u64) -> Result<Self, TrainError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(TrainError::io(path, e)),
        };
        let mut seen = vec![false; step as usize];
        for line in text.lines() {
            if let Ok(StepOf {
                step: logged,
                split: Some(Split::Train),
            }) = serde_json::from_str(line)
                && let Some(slot) = logged.checked_sub(1).and_then(|i| seen.get_mut(i as usize))
            {
                *slot = true;
            }
        }
        if let Some(first) = seen.iter().position(|&present| !present) {
            let last = seen.iter().rposition(|&present| !present).expect("one is missing");
            return Err(TrainError::Invalid(format!(
                "{} lacks the training records of steps {} to {} of the {step} its checkpoint has done (truncated or deleted): restore the file, or start over with --overwrite",
                path.display(),
                first + 1,
                last + 1
            )));
        }
        if !text.is_empty() {
            keep_records_up_to(path, &text, step)?;
        }
        Self::append_to(path)
    }

    /// Also writes every record appended from now on to `writer`.
    pub fn mirror_to(mut self, writer: TensorBoardWriter) -> Self {
        self.tensorboard = Some(writer);
        self
    }

    /// Appends one record.
    pub fn append<R: Serialize>(&mut self, record: &R) -> Result<(), TrainError> {
        let mut line = serde_json::to_string(record).expect("records serialize");
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .map_err(|e| TrainError::io(&self.path, e))?;
        self.file.flush().map_err(|e| TrainError::io(&self.path, e))?;
        match &mut self.tensorboard {
            Some(writer) => writer.append(record),
            None => Ok(()),
        }
    }
}

/// Rewrites a log with the whole records of `text` (its contents) up to `step`: what a killed
/// run wrote after its last checkpoint, and a truncated last line, are dropped.
fn keep_records_up_to(path: &Path, text: &str, step: u64) -> Result<(), TrainError> {
    let kept: String = text
        .lines()
        .filter(|line| serde_json::from_str::<StepOf>(line).is_ok_and(|r| r.step <= step))
        .flat_map(|line| [line, "\n"])
        .collect();
    Ok(primer_files::atomic_write(path, kept.as_bytes())?)
}

/// Reads every record of a `metrics.jsonl`.
pub fn read_metrics(path: &Path) -> Result<Vec<MetricsRecord>, TrainError> {
    let file = File::open(path).map_err(|e| TrainError::io(path, e))?;
    BufReader::new(file)
        .lines()
        .enumerate()
        .filter(|(_, line)| line.as_ref().map_or(true, |l| !l.trim().is_empty()))
        .map(|(i, line)| {
            let line = line.map_err(|e| TrainError::io(path, e))?;
            serde_json::from_str(&line)
                .map_err(|e| TrainError::Invalid(format!("{}:{}: not a metrics record ({e})", path.display(), i + 1)))
        })
        .collect()
}
