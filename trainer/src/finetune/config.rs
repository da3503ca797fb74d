//! `finetune.json`: what a fine-tuning run starts from and how it trains.

use primer_model::{AttentionMode, ClassifierConfig, FieldError, Pooling, TransformerConfig};
use primer_objectives::ObjectiveConfig;
use serde::{Deserialize, Serialize};

/// What a fine-tuning run starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Start {
    /// The weights of a pre-training run.
    Pretrained,
    /// Random weights: the baseline.
    Scratch,
}

/// `finetune.json`: everything that defines a fine-tuning run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FinetuneConfig {
    /// The pre-training run the architecture and tokenizer (and, unless from scratch, the
    /// weights) come from.
    pub from: std::path::PathBuf,
    /// Pre-trained weights or random ones.
    pub start: Start,
    /// Train only the head on frozen encoder features (a linear probe).
    pub freeze_encoder: bool,
    /// The objective the encoder was pre-trained with; it fixes the attention mode and framing.
    pub objective: ObjectiveConfig,
    /// The encoder's architecture.
    pub model: TransformerConfig,
    /// How hidden states are pooled.
    pub pooling: Pooling,
    /// The task's name.
    pub task: String,
    /// Label names, in the head's order.
    pub labels: Vec<String>,
    /// Training examples used (after `--train-limit` or `--shots`).
    pub train_examples: usize,
    /// `--train-limit`, when given.
    pub train_limit: Option<usize>,
    /// `--shots`, when given: trained on the demonstrations k-shot prompting shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shots: Option<usize>,
    /// Tokens per example at most, special tokens included.
    pub max_len: usize,
    /// Passes over the training examples at most.
    pub epochs: usize,
    /// Examples per optimizer step.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// AdamW weight decay of weight matrices.
    pub weight_decay: f64,
    /// Share of the steps spent warming the learning rate up.
    pub warmup_ratio: f64,
    /// Stop after this many epochs without a better validation accuracy.
    pub patience: usize,
    /// Dropout before the head.
    pub head_dropout: f64,
    /// Seeds the head, the example order and dropout.
    pub seed: u64,
    /// sha256 of the tokenizer.
    pub tokenizer_sha256: String,
}

impl FinetuneConfig {
    /// The encoder's attention mode.
    pub fn attention(&self) -> AttentionMode {
        self.objective.info().attention.clone()
    }

    /// The classifier's architecture.
    pub fn classifier(&self) -> ClassifierConfig {
        ClassifierConfig::new(self.labels.len(), self.pooling, self.attention()).with_dropout(self.head_dropout)
    }

    /// Checks option ranges; messages name the flag.
    pub fn validate(&self) -> Result<(), FieldError> {
        FieldError::at_least_one([
            ("epochs", self.epochs),
            ("batch_size", self.batch_size),
            ("patience", self.patience),
        ])?;
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(FieldError::new(
                "lr",
                format!("`lr` {} must be a positive number", self.lr),
            ));
        }
        for (field, value) in [("warmup_ratio", self.warmup_ratio), ("head_dropout", self.head_dropout)] {
            if !(0.0..1.0).contains(&value) {
                return Err(FieldError::new(field, format!("`{field}` {value} must be in [0, 1)")));
            }
        }
        if self.max_len < 3 || self.max_len > self.model.max_seq_len {
            return Err(FieldError::new(
                "max_len",
                format!(
                    "`max_len` {} must be between 3 and the model's context, {}",
                    self.max_len, self.model.max_seq_len
                ),
            ));
        }
        Ok(())
    }
}
