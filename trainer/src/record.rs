//! What a run trained on, written for an independent implementation to train on the same:
//! `pretrain --record-batches DIR` (hidden; `scripts/parity` uses it).
//!
//! `DIR/init.safetensors` holds the networks before the first step and `DIR/final.safetensors`
//! after the last (Burn's store; keys are module paths such as `model.blocks.0.attn.qkv.weight`,
//! linear weights `[in, out]`). `DIR/steps.jsonl` holds one line per optimizer step: its
//! learning rate, loss and gradient norm before clipping, and every micro-batch as the
//! objective built it (input ids, predicted positions, targets, attention, sampling draws).
//! Reading the batches back to the host is the only cost, and a run without the option pays
//! nothing.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::{Int, Tensor};
use primer_model::AttentionMode;
use primer_model::tensors::host_floats;
use primer_objectives::LmBatch;
use serde::Serialize;

use crate::error::TrainError;
use crate::networks::Networks;

/// The weights before the first step.
pub const INIT: &str = "init.safetensors";
/// The weights after the last step.
pub const FINAL: &str = "final.safetensors";
/// One line per step.
pub const STEPS: &str = "steps.jsonl";

/// One micro-batch as its objective built it, on the host.
#[derive(Debug, Clone, Serialize)]
pub struct RecordedBatch {
    /// `[rows, seq]` of `inputs`.
    pub shape: [usize; 2],
    /// Input ids, row-major.
    pub inputs: Vec<i64>,
    /// Flat positions predicted (`row * seq + col`); `None` predicts every position.
    pub predict_at: Option<Vec<i64>>,
    /// Target ids, one per predicted position.
    pub targets: Vec<i64>,
    /// `causal`, `bidirectional` or `prefix`.
    pub attention: &'static str,
    /// Per row, the prefix read both ways (prefix attention only).
    pub prefix: Option<Vec<usize>>,
    /// The uniform draws the loss samples with (ELECTRA: one per masked position).
    pub noise: Option<Vec<f32>>,
}

impl RecordedBatch {
    /// Reads `batch` back to the host.
    pub fn of(batch: &LmBatch) -> Self {
        let ints = |tensor: Tensor<1, Int>| {
            tensor
                .into_data()
                .convert::<i64>()
                .try_into_vec::<i64>()
                .expect("ids convert to i64")
        };
        let (attention, prefix) = match &batch.attention {
            AttentionMode::Causal => ("causal", None),
            AttentionMode::Bidirectional => ("bidirectional", None),
            AttentionMode::Prefix(lengths) => ("prefix", Some(lengths.clone())),
        };
        let [rows, seq] = batch.inputs.dims();
        Self {
            shape: [rows, seq],
            inputs: ints(batch.inputs.clone().reshape([rows * seq])),
            predict_at: batch.predict_at.clone().map(ints),
            targets: ints(batch.targets.clone()),
            attention,
            prefix,
            noise: batch.noise.clone().map(host_floats),
        }
    }
}

/// One line of `steps.jsonl`.
#[derive(Debug, Clone, Serialize)]
struct StepRecord<'a> {
    step: u64,
    lr: f64,
    loss: f64,
    grad_norm: f64,
    batches: &'a [RecordedBatch],
}

/// Writes a run's record into its folder.
pub struct BatchRecorder {
    dir: PathBuf,
    steps: File,
}

impl BatchRecorder {
    /// Creates `dir` (which must be new or empty) with the networks' initial weights.
    pub fn create(dir: &Path, networks: &Networks) -> Result<Self, TrainError> {
        let not_empty = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
        if not_empty {
            return Err(TrainError::Invalid(format!(
                "--record-batches {} is not empty: give a new folder",
                dir.display()
            )));
        }
        std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
        save(networks, &dir.join(INIT))?;
        let path = dir.join(STEPS);
        let steps = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(|e| TrainError::io(&path, e))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            steps,
        })
    }

    /// Appends step `step`'s line.
    pub fn step(
        &self,
        step: u64,
        lr: f64,
        loss: f64,
        grad_norm: f64,
        batches: &[RecordedBatch],
    ) -> Result<(), TrainError> {
        let record = StepRecord {
            step,
            lr,
            loss,
            grad_norm,
            batches,
        };
        let mut line = serde_json::to_vec(&record).expect("records serialize");
        line.push(b'\n');
        let path = self.dir.join(STEPS);
        (&self.steps).write_all(&line).map_err(|e| TrainError::io(&path, e))
    }

    /// Writes the weights after the last step.
    pub fn finish(&self, networks: &Networks) -> Result<(), TrainError> {
        save(networks, &self.dir.join(FINAL))
    }
}

/// `networks`' parameters as safetensors at `path`.
fn save(networks: &Networks, path: &Path) -> Result<(), TrainError> {
    let mut store = SafetensorsStore::from_file(path).overwrite(true);
    networks
        .valid()
        .save_into(&mut store)
        .map_err(|e| TrainError::Invalid(format!("cannot write {}: {e:?}", path.display())))
}
