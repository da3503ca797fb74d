//! `pretrain` options: the same names as flags and as keys of a `--config` TOML file.

use std::path::PathBuf;
use std::str::FromStr;

use burn::tensor::Device;
use clap::Args;
use primer_datasets::corpus::DocSplit;
use primer_datasets::tokenizer::TokenizerKind;
use primer_model::Positions;
use primer_objectives::ObjectiveConfig;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::devices::Backend;

/// Parses a lower-case name into any serde enum (`mlm`, `bpe`, `rotary`, ...); the error lists
/// the accepted names.
pub fn parse_name<T: DeserializeOwned>(name: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).map_err(|e| e.to_string())
}

/// How to read a corpus; shared by every command that takes `--corpus`.
#[derive(Args, Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct CorpusArgs {
    /// Corpus, space- or comma-separated: files, folders (recursive), globs, or named data sets (tinyshakespeare,
    /// wikitext-2, sst2, tinystories, waimai-10k, cmrc2018, ud-chinese-gsdsimp).
    #[arg(long, num_args = 1.., value_delimiter = ',', value_name = "PATH|NAME")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corpus: Option<Vec<String>>,
    /// How .txt files split into documents: paragraph (blank line), line, file.
    #[arg(long, value_parser = parse_name::<DocSplit>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doc_split: Option<DocSplit>,
    /// The field of .jsonl records that holds the text.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text_field: Option<String>,
    /// The column of .tsv/.csv files that holds the text.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// Replace invalid UTF-8 with U+FFFD instead of stopping with an error.
    #[arg(long)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub lossy: bool,
}

impl CorpusArgs {
    /// Fills what `self` leaves unset from `base`.
    pub fn or(self, base: CorpusArgs) -> CorpusArgs {
        CorpusArgs {
            corpus: self.corpus.or(base.corpus),
            doc_split: self.doc_split.or(base.doc_split),
            text_field: self.text_field.or(base.text_field),
            column: self.column.or(base.column),
            lossy: self.lossy || base.lossy,
        }
    }
}

/// Which backend and device run the model; shared by every command that runs one.
#[derive(Args, Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct BackendArgs {
    /// Compute backend: flex (CPU), wgpu, tch or cuda [default: $PRIMER_BACKEND, else flex].
    #[arg(long, value_parser = parse_name::<Backend>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<Backend>,
    /// Device of the backend: wgpu default|cpu|discrete[:N]|integrated[:N]; tch cpu|cuda[:N].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

impl BackendArgs {
    /// Fills what `self` leaves unset from `base`.
    pub fn or(self, base: BackendArgs) -> BackendArgs {
        BackendArgs {
            backend: self.backend.or(base.backend),
            device: self.device.or(base.device),
        }
    }

    /// The backend: the flag or config key, else `$PRIMER_BACKEND`, else flex.
    pub fn backend(&self) -> anyhow::Result<Backend> {
        match (self.backend, std::env::var("PRIMER_BACKEND")) {
            (Some(backend), _) => Ok(backend),
            (None, Ok(name)) if !name.is_empty() => {
                parse_name(&name).map_err(|e| anyhow::anyhow!("PRIMER_BACKEND={name}: {e}"))
            }
            _ => Ok(Backend::Flex),
        }
    }

    /// The chosen backend and its device.
    pub fn resolve(&self) -> anyhow::Result<(Backend, Device)> {
        let backend = self.backend()?;
        Ok((backend, backend.device_at(self.device.as_deref())?))
    }
}

macro_rules! options {
    ($( $(#[$doc:meta])* $name:ident : $ty:ty $(= parse $parser:expr)? ),* $(,)?) => {
        /// Every option of `pretrain` that decides a run; each is a flag and a config key.
        #[derive(Args, Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
        #[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
        pub struct PretrainOptions {
            /// Corpus and how to read it.
            #[command(flatten)]
            #[serde(flatten)]
            pub corpus: CorpusArgs,
            /// Backend and device.
            #[command(flatten)]
            #[serde(flatten)]
            pub backend: BackendArgs,
            $(
                $(#[$doc])*
                #[arg(long $(, value_parser = $parser)?)]
                #[serde(skip_serializing_if = "Option::is_none")]
                pub $name: Option<$ty>,
            )*
        }

        impl PretrainOptions {
            /// Fills what `self` leaves unset from `base` (flags over a config file).
            pub fn or(self, base: PretrainOptions) -> PretrainOptions {
                PretrainOptions {
                    corpus: self.corpus.or(base.corpus),
                    backend: self.backend.or(base.backend),
                    $( $name: self.$name.or(base.$name), )*
                }
            }
        }
    };
}

options! {
    /// Pre-training objective and its settings, NAME[:SETTING=VALUE...]: mlm (BERT), clm (GPT),
    /// prefix (UniLM, T5) or electra (replaced-token detection); e.g. mlm:span,
    /// mlm:mask_rate=0.2, electra:generator_width=0.5. `primer objectives` lists every objective
    /// and its settings.
    objective: ObjectiveConfig = parse ObjectiveConfig::from_str,
    /// A corpus used as the validation split instead of a share of --corpus.
    valid: String,
    /// Fraction of documents held out for validation [default: 0.05].
    valid_fraction: f64,
    /// A folder made by `primer prepare`, instead of --corpus.
    data: PathBuf,
    /// A tokenizer.json; without it one is trained on the corpus.
    tokenizer: PathBuf,
    /// Kind of tokenizer to train: bpe (byte-level), wordpiece or char [default: bpe].
    tokenizer_kind: TokenizerKind = parse parse_name::<TokenizerKind>,
    /// Vocabulary size of a trained tokenizer [default: 8192].
    vocab_size: usize,
    /// Optimizer steps [default: 2000].
    steps: u64,
    /// Token budget instead of --steps: steps = tokens / (batch-size * grad-accum * seq-len).
    tokens: u64,
    /// Transformer blocks [default: 4].
    layers: usize,
    /// Model width [default: 128].
    d_model: usize,
    /// Attention heads; must divide --d-model [default: 4].
    heads: usize,
    /// MLP width [default: 4 * d-model].
    d_ff: usize,
    /// Tokens per sequence [default: 64].
    seq_len: usize,
    /// Position scheme: rotary or learned [default: rotary].
    positions: Positions = parse parse_name::<Positions>,
    /// Tie the LM head to the token embedding [default: true].
    tie_embeddings: bool,
    /// Sequences per micro-batch [default: 12].
    batch_size: usize,
    /// Peak learning rate [default: 1e-3].
    lr: f64,
    /// Final learning rate of the cosine decay [default: lr / 10].
    min_lr: f64,
    /// Linear warm-up steps [default: 100].
    warmup_steps: u64,
    /// AdamW weight decay on weight matrices [default: 0.1].
    weight_decay: f64,
    /// AdamW beta 1 [default: 0.9].
    beta1: f64,
    /// AdamW beta 2 [default: 0.99].
    beta2: f64,
    /// Global gradient-norm clipping; 0 disables [default: 1.0].
    grad_clip: f64,
    /// Micro-batches per optimizer step [default: 1].
    grad_accum: usize,
    /// Dropout [default: 0.0].
    dropout: f64,
    /// Validate every N steps [default: 250].
    eval_every: u64,
    /// Minimal pairs scored at every validation, as `primer minimal-pairs --pairs` takes them
    /// (blimp, FILE.jsonl or DIR): `minimal_pairs_accuracy` in metrics.jsonl.
    minimal_pairs: String,
    /// How many minimal pairs: a fixed subset drawn with the run's seed [default: 1000].
    minimal_pairs_limit: usize,
    /// Validation batches per evaluation [default: 20].
    eval_batches: usize,
    /// Checkpoint every N steps [default: 500].
    checkpoint_every: u64,
    /// Checkpoints kept [default: 3].
    keep_checkpoints: usize,
    /// Seed of initialisation, data split and order, masks and dropout [default: 1337].
    seed: u64,
}

/// What the keys of a `--config` file are, for its error messages.
pub const CONFIG_KEYS: &str = "keys are the pretrain flag names without `--`";

/// Reads a `--config` TOML file of [`PretrainOptions`].
pub fn read_config(path: &std::path::Path) -> anyhow::Result<PretrainOptions> {
    options_of(path, read_toml(path, CONFIG_KEYS)?, CONFIG_KEYS)
}

/// A TOML file as a table; `hint` says, in a message about a fault in it, what it holds.
pub fn read_toml(path: &std::path::Path, hint: &str) -> anyhow::Result<toml::Table> {
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("config {}: {e}: check the path", path.display()))?;
    toml::from_str(&text).map_err(|e| config_fault(path, e, hint))
}

/// The options a table of `path` gives.
pub fn options_of(path: &std::path::Path, table: toml::Table, hint: &str) -> anyhow::Result<PretrainOptions> {
    toml::Value::Table(table)
        .try_into()
        .map_err(|e| config_fault(path, e, hint))
}

/// A one-line error about the TOML file `path`, ending with `hint`.
pub fn config_fault(path: &std::path::Path, error: toml::de::Error, hint: &str) -> anyhow::Error {
    let message = error.message().replace('\n', " ");
    anyhow::anyhow!("config {}: {message}: {hint}", path.display())
}

/// A config error said with the flags that set its fields (`n_heads` is `--heads`).
pub fn flag_error(error: primer_model::FieldError) -> anyhow::Error {
    anyhow::Error::msg(error.named(|field| Some(flag_of(field))))
}

/// The flag that sets a config field: its name with dashes, except where the model's name
/// differs from the option's.
fn flag_of(field: &str) -> String {
    match field {
        "n_layers" => "--layers".into(),
        "n_heads" => "--heads".into(),
        "max_seq_len" => "--seq-len".into(),
        _ => format!("--{}", field.replace('_', "-")),
    }
}
