//! The resolved configuration of a pre-training run, saved as `RUN_DIR/config.json`.

use std::collections::BTreeMap;

use primer_model::TransformerConfig;
use primer_model::{FieldError, Precision};
use primer_objectives::ObjectiveConfig;
use serde::{Deserialize, Serialize};

/// Every option of the optimisation; one field per `pretrain` flag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Optimizer steps.
    pub steps: u64,
    /// Sequences per micro-batch.
    pub batch_size: usize,
    /// Micro-batches per optimizer step.
    pub grad_accum: usize,
    /// Tokens per sequence.
    pub seq_len: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Learning rate at the end of the cosine decay.
    pub min_lr: f64,
    /// Steps of linear warm-up.
    pub warmup_steps: u64,
    /// Decoupled weight decay on weight matrices (none on norms and biases).
    pub weight_decay: f64,
    /// AdamW beta 1.
    pub beta1: f64,
    /// AdamW beta 2.
    pub beta2: f64,
    /// Global-norm gradient clipping threshold; 0 disables it.
    pub grad_clip: f64,
    /// Validate every this many steps (and after the last).
    pub eval_every: u64,
    /// Validation batches per evaluation.
    pub eval_batches: usize,
    /// Checkpoint every this many steps (and after the last).
    pub checkpoint_every: u64,
    /// Checkpoints kept.
    pub keep_checkpoints: usize,
    /// Seed of initialisation, data order, masks and dropout.
    pub seed: u64,
    /// The dtype of the model's products and activations; weights and optimizer state stay
    /// `f32`. Runs made before it trained in `f32`.
    #[serde(default)]
    pub precision: Precision,
}

impl TrainConfig {
    /// Tokens of model input per optimizer step (saturating: [`TrainConfig::validate`] refuses
    /// a step past [`MAX_TOKENS_PER_STEP`]).
    pub fn tokens_per_step(&self) -> u64 {
        [self.grad_accum, self.seq_len]
            .into_iter()
            .fold(self.batch_size as u64, |tokens, n| tokens.saturating_mul(n as u64))
    }

    /// Checks every option; the error names the field and the fix.
    pub fn validate(&self) -> Result<(), FieldError> {
        FieldError::at_least_one([
            ("steps", self.steps as usize),
            ("batch_size", self.batch_size),
            ("grad_accum", self.grad_accum),
            ("seq_len", self.seq_len),
            ("eval_every", self.eval_every as usize),
            ("eval_batches", self.eval_batches),
            ("checkpoint_every", self.checkpoint_every as usize),
            ("keep_checkpoints", self.keep_checkpoints),
        ])?;
        self.validate_sizes()?;
        let finite_non_negative = [
            ("lr", self.lr),
            ("min_lr", self.min_lr),
            ("weight_decay", self.weight_decay),
            ("grad_clip", self.grad_clip),
        ];
        for (field, value) in finite_non_negative {
            if !value.is_finite() || value < 0.0 {
                return Err(FieldError::new(
                    field,
                    format!("`{field}` {value} must be a finite number >= 0"),
                ));
            }
        }
        if self.lr == 0.0 {
            return Err(FieldError::new("lr", "`lr` must be above 0".into()));
        }
        if self.min_lr > self.lr {
            return Err(FieldError::new(
                "min_lr",
                format!("`min_lr` {} is above `lr` {}: lower it", self.min_lr, self.lr),
            ));
        }
        for (field, beta) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&beta) {
                return Err(FieldError::new(field, format!("`{field}` {beta} must be in [0, 1)")));
            }
        }
        Ok(())
    }

    /// Checks the sizes that multiply memory: a step's micro-batches are built before its
    /// forward passes, so `batch_size x grad_accum x seq_len` tokens are held at once.
    fn validate_sizes(&self) -> Result<(), FieldError> {
        if self.seq_len > MAX_SEQ_LEN {
            return Err(FieldError::new(
                "seq_len",
                format!(
                    "`seq_len` {} is above primer's limit of {MAX_SEQ_LEN} tokens: lower it",
                    self.seq_len
                ),
            ));
        }
        // One micro-batch is weighed by the memory check; accumulating multiplies it.
        let tokens = self.tokens_per_step();
        if self.grad_accum > 1 && tokens > MAX_TOKENS_PER_STEP {
            return Err(FieldError::new(
                "grad_accum",
                format!(
                    "a step of {} x `grad_accum` {} x {} tokens is {tokens} tokens, above primer's limit of {MAX_TOKENS_PER_STEP}: lower `grad_accum`, `batch_size` or `seq_len`",
                    self.batch_size, self.grad_accum, self.seq_len
                ),
            ));
        }
        Ok(())
    }
}

/// The longest sequence a run trains on, tokens (2^20; the longest public context lengths).
pub const MAX_SEQ_LEN: usize = 1 << 20;

/// The most tokens one optimizer step may read, 2^25 (twice the 16 M tokens of the largest
/// published pre-training batches, Llama 3's): a step's micro-batches are held in memory together.
pub const MAX_TOKENS_PER_STEP: u64 = 1 << 25;

/// What the run was trained on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataInfo {
    /// The corpus as given (paths or names), or the prepared folder.
    pub corpus: String,
    /// Cache key of the prepared data: hash of inputs, tokenizer and split options.
    pub data_hash: String,
    /// sha256 of `tokenizer.json`.
    pub tokenizer_sha256: String,
}

/// `config.json` of a run: everything that decides its numbers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunConfig {
    /// Objective, with its settings.
    pub objective: ObjectiveConfig,
    /// Model.
    pub model: TransformerConfig,
    /// Optimisation.
    pub train: TrainConfig,
    /// Data.
    pub data: DataInfo,
    /// The options the run was started with, as the CLI resolved them; lets `--resume RUN_DIR`
    /// rebuild the run without repeating them. Not compared on resume: the fields above are.
    #[serde(default)]
    pub options: serde_json::Value,
}

impl RunConfig {
    /// Lists the settings that differ from `other`, as `name: ours vs theirs`.
    pub fn differences(&self, other: &RunConfig) -> Vec<String> {
        let compared = |config: &RunConfig| {
            let mut value = serde_json::to_value(config).expect("configs serialize");
            value.as_object_mut().expect("an object").remove("options");
            value
        };
        let (ours, theirs) = (flatten(&compared(self)), flatten(&compared(other)));
        ours.iter()
            .filter_map(|(key, value)| {
                let theirs = theirs.get(key).unwrap_or(&serde_json::Value::Null);
                (value != theirs).then(|| format!("{key}: {value} vs {theirs}"))
            })
            .collect()
    }
}

/// A JSON value as dotted paths to its leaves (`train.lr`), for comparing configs key by key;
/// an empty object has none.
pub fn flatten(value: &serde_json::Value) -> BTreeMap<String, serde_json::Value> {
    fn walk(prefix: &str, value: &serde_json::Value, out: &mut BTreeMap<String, serde_json::Value>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, value) in map {
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    walk(&path, value, out);
                }
            }
            leaf => {
                out.insert(prefix.to_string(), leaf.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", value, &mut out);
    out
}
