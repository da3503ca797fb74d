//! A checkpoint's `config.json`, read field by field: each read once, each size bounded before
//! anything is allocated for it, and every field neither read nor known to leave the numbers
//! alone refused by name.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Map, Value};

use crate::HfError;

/// The largest sizes primer imports, beyond those of the largest public checkpoints (Llama 3.1
/// 405B: width 16384, 126 layers, MLP 53248, 131072 positions; vocabularies of 256k) and
/// small enough that any product of them fits in 64 bits.
pub mod limits {
    /// Vocabulary: what a tokenizer is trained to at most.
    pub const VOCAB: u64 = primer_datasets::tokenizer::MAX_VOCAB as u64;
    /// Width of the residual stream (and so attention heads).
    pub const WIDTH: u64 = 1 << 16;
    /// Blocks.
    pub const LAYERS: u64 = 1 << 10;
    /// Width of the MLP.
    pub const INNER: u64 = 1 << 18;
    /// Positions.
    pub const POSITIONS: u64 = 1 << 20;
}

/// Config fields that say nothing about the model's numbers (generation defaults, labels,
/// dropout, bookkeeping).
const IGNORED: &[&str] = &[
    "_name_or_path",
    "architectures",
    "auto_map",
    "model_type",
    "transformers_version",
    "torch_dtype",
    "dtype",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
    "sep_token_id",
    "decoder_start_token_id",
    "use_cache",
    "initializer_range",
    "classifier_dropout",
    "hidden_dropout",
    "attention_dropout",
    "attn_pdrop",
    "embd_pdrop",
    "resid_pdrop",
    "summary_type",
    "summary_use_proj",
    "summary_activation",
    "summary_proj_to_labels",
    "summary_first_dropout",
    "task_specific_params",
    "n_ctx",
    "tokenizer_class",
    "id2label",
    "label2id",
    "return_dict",
    "output_hidden_states",
    "output_attentions",
    "is_decoder",
    "is_encoder_decoder",
    "problem_type",
    "finetuning_task",
    "chunk_size_feed_forward",
    "prefix",
    "bad_words_ids",
    "begin_suppress_tokens",
    "suppress_tokens",
    "diversity_penalty",
    "do_sample",
    "early_stopping",
    "encoder_no_repeat_ngram_size",
    "exponential_decay_length_penalty",
    "forced_bos_token_id",
    "forced_eos_token_id",
    "length_penalty",
    "max_length",
    "min_length",
    "no_repeat_ngram_size",
    "num_beam_groups",
    "num_beams",
    "num_return_sequences",
    "output_scores",
    "remove_invalid_values",
    "repetition_penalty",
    "return_dict_in_generate",
    "temperature",
    "tf_legacy_loss",
    "top_k",
    "top_p",
    "torchscript",
    "typical_p",
    "use_bfloat16",
    "tie_encoder_decoder",
    "pruned_heads",
    "cross_attention_hidden_size",
];

/// A config's fields, read once each; [`finish`](Self::finish) refuses the ones nobody read.
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
    path: &'a Path,
    read: RefCell<BTreeSet<String>>,
}

impl<'a> Fields<'a> {
    pub fn new(map: &'a Map<String, Value>, path: &'a Path) -> Self {
        Self {
            map,
            path,
            read: RefCell::new(BTreeSet::new()),
        }
    }

    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.read.borrow_mut().insert(key.to_string());
        self.map.get(key)
    }

    pub fn unsupported(&self, key: &str, why: &str) -> HfError {
        let value = self.map.get(key).map_or("absent".to_string(), Value::to_string);
        HfError::Unsupported(format!(
            "{}: `{key}` = {value} {why}: primer's model cannot hold this checkpoint",
            self.path.display()
        ))
    }

    /// A positive integer.
    fn count(&self, key: &str) -> Result<usize, HfError> {
        match self.get(key).and_then(Value::as_u64) {
            Some(value) if value > 0 => Ok(value as usize),
            _ => Err(self.unsupported(key, "is not a positive integer")),
        }
    }

    /// A positive integer of at most `limit` (one of [`limits`]).
    pub fn size(&self, key: &str, limit: u64) -> Result<usize, HfError> {
        let value = self.count(key)?;
        if value as u64 <= limit {
            return Ok(value);
        }
        Err(HfError::Unsupported(format!(
            "{}: `{key}` = {value} is more than primer imports ({limit} at most, beyond the largest public checkpoints): correct `{key}` if the config is wrong",
            self.path.display()
        )))
    }

    pub fn text(&self, key: &str) -> Result<String, HfError> {
        self.get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| self.unsupported(key, "is not a string"))
    }

    /// A number, or `default` when absent.
    pub fn number_or(&self, key: &str, default: Option<f64>) -> Result<Option<f64>, HfError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(value) => value
                .as_f64()
                .map(Some)
                .ok_or_else(|| self.unsupported(key, "is not a number")),
        }
    }

    /// A boolean, or `default` when absent.
    pub fn flag_or(&self, key: &str, default: bool) -> Result<bool, HfError> {
        match self.get(key) {
            None => Ok(default),
            Some(value) => value
                .as_bool()
                .ok_or_else(|| self.unsupported(key, "is not true or false")),
        }
    }

    /// Fails unless `key` is absent or `expected`.
    pub fn expect(&self, key: &str, expected: Value) -> Result<(), HfError> {
        match self.get(key) {
            Some(value) if value.as_f64().is_some() && expected.as_f64() == value.as_f64() => Ok(()),
            Some(value) if *value != expected => Err(self.unsupported(key, &format!("is not {expected}"))),
            _ => Ok(()),
        }
    }

    /// Fails on the first field neither read nor known to leave the numbers alone.
    pub fn finish(self) -> Result<(), HfError> {
        let read = self.read.borrow();
        match self
            .map
            .keys()
            .find(|key| !read.contains(*key) && !IGNORED.contains(&key.as_str()))
        {
            Some(key) => Err(self.unsupported(key, "is a setting primer does not know")),
            None => Ok(()),
        }
    }
}
