//! A transformers checkpoint (GPT-NeoX, GPT-2, or primer's own masked-LM export) as a primer
//! model.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::Path;

use burn::store::{ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};
use burn::tensor::Device;
use primer_model::{Activation, Positions, Transformer, TransformerConfig};
use serde_json::{Map, Value};

use crate::HfError;
use crate::export::Architecture;
use crate::layout::{GPT2_KEYS, Gpt2Adapter, NEOX_KEYS, PRIMER_KEYS_BACK, primer_qkv_columns, reorder_qkv, reversed};

/// What [`import`] read.
pub struct Imported {
    /// The checkpoint's architecture.
    pub architecture: Architecture,
    /// The model's configuration in primer's terms.
    pub config: TransformerConfig,
    /// The weights.
    pub model: Transformer,
    /// Whether the model reads text both ways: a masked model exported by primer (its own
    /// `PrimerForMaskedLM`, or earlier a GPT-NeoX or GPT-2 marked
    /// `"primer_attention": "bidirectional"`).
    pub bidirectional: bool,
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

/// Buffers some checkpoints save beside the weights, which primer recomputes.
const BUFFERS: &[&str] = &[
    ".attn.bias",
    ".attn.masked_bias",
    ".attention.bias",
    ".attention.masked_bias",
    ".rotary_emb.inv_freq",
];

/// Reads `dir` (`config.json`, `model.safetensors`) as a primer model on `device`. A config
/// field or weight primer's model cannot hold stops the import with its name.
pub fn import(dir: &Path, device: &Device) -> Result<Imported, HfError> {
    let config_path = dir.join("config.json");
    let text = std::fs::read_to_string(&config_path).map_err(|e| {
        HfError::Unsupported(format!(
            "{}: {e}: give a transformers checkpoint directory",
            config_path.display()
        ))
    })?;
    let map: Map<String, Value> = serde_json::from_str(&text)
        .map_err(|e| HfError::Unsupported(format!("{}: not a JSON object ({e})", config_path.display())))?;
    let fields = Fields::new(&map, &config_path);
    let (architecture, config) = match fields.text("model_type")?.as_str() {
        "gpt_neox" => (Architecture::GptNeoX, neox_config(&fields)?),
        "gpt2" => (Architecture::Gpt2, gpt2_config(&fields)?),
        "primer" => (Architecture::Primer, primer_config(&fields)?),
        other => {
            return Err(HfError::Unsupported(format!(
                "{}: model_type {other:?} is not one primer reads: gpt_neox, gpt2 or primer",
                config_path.display()
            )));
        }
    };
    let attention = match architecture {
        Architecture::Primer => "attention_mode",
        Architecture::GptNeoX | Architecture::Gpt2 => "primer_attention",
    };
    let bidirectional = match fields.get(attention) {
        None => false,
        Some(_) => fields.text(attention)? == "bidirectional",
    };
    fields.finish()?;
    config
        .validate()
        .map_err(|e| HfError::Unsupported(format!("{}: {e}", config_path.display())))?;
    let model = load_weights(&dir.join("model.safetensors"), architecture, &config, device)?;
    Ok(Imported {
        architecture,
        config,
        model,
        bidirectional,
    })
}

/// GPT-NeoX's config in primer's terms.
fn neox_config(fields: &Fields) -> Result<TransformerConfig, HfError> {
    fields.expect("attention_bias", Value::Bool(true))?;
    fields.expect("rope_scaling", Value::Null)?;
    for base in ["rotary_emb_base", "rope_theta"] {
        fields.expect(base, serde_json::json!(10000))?;
    }
    let rotary = match (
        fields.number_or("partial_rotary_factor", None)?,
        fields.number_or("rotary_pct", None)?,
    ) {
        (Some(factor), Some(pct)) if factor != pct => {
            return Err(fields.unsupported("partial_rotary_factor", "differs from `rotary_pct`"));
        }
        (Some(factor), _) | (None, Some(factor)) => factor,
        (None, None) => 0.25,
    };
    Ok(TransformerConfig::new(fields.count("vocab_size")?)
        .with_d_model(fields.count("hidden_size")?)
        .with_n_layers(fields.count("num_hidden_layers")?)
        .with_n_heads(fields.count("num_attention_heads")?)
        .with_d_ff(fields.count("intermediate_size")?)
        .with_max_seq_len(fields.count("max_position_embeddings")?)
        .with_norm_eps(fields.number_or("layer_norm_eps", Some(1e-5))?.unwrap_or(1e-5))
        .with_positions(Positions::Rotary)
        .with_rotary_fraction(rotary)
        .with_parallel_residual(fields.flag_or("use_parallel_residual", true)?)
        .with_activation(activation(fields, "hidden_act", "gelu")?)
        .with_tie_embeddings(fields.flag_or("tie_word_embeddings", false)?)
        .with_dropout(0.0))
}

/// GPT-2's config in primer's terms.
fn gpt2_config(fields: &Fields) -> Result<TransformerConfig, HfError> {
    fields.expect("scale_attn_weights", Value::Bool(true))?;
    for unsupported in [
        "scale_attn_by_inverse_layer_idx",
        "reorder_and_upcast_attn",
        "add_cross_attention",
    ] {
        fields.expect(unsupported, Value::Bool(false))?;
    }
    let d_model = fields.count("n_embd")?;
    let d_ff = match fields.get("n_inner") {
        None | Some(Value::Null) => 4 * d_model,
        Some(_) => fields.count("n_inner")?,
    };
    Ok(TransformerConfig::new(fields.count("vocab_size")?)
        .with_d_model(d_model)
        .with_n_layers(fields.count("n_layer")?)
        .with_n_heads(fields.count("n_head")?)
        .with_d_ff(d_ff)
        .with_max_seq_len(fields.count("n_positions")?)
        .with_norm_eps(fields.number_or("layer_norm_epsilon", Some(1e-5))?.unwrap_or(1e-5))
        .with_positions(Positions::Learned)
        .with_activation(activation(fields, "activation_function", "gelu_new")?)
        .with_tie_embeddings(fields.flag_or("tie_word_embeddings", true)?)
        .with_dropout(0.0))
}

/// primer's own export's config ([`Architecture::Primer`]) in primer's terms.
fn primer_config(fields: &Fields) -> Result<TransformerConfig, HfError> {
    fields.expect("rotary_base", serde_json::json!(10000))?;
    let positions = match fields.text("positions")?.as_str() {
        "rotary" => Positions::Rotary,
        "learned" => Positions::Learned,
        _ => return Err(fields.unsupported("positions", "is not rotary or learned")),
    };
    Ok(TransformerConfig::new(fields.count("vocab_size")?)
        .with_d_model(fields.count("hidden_size")?)
        .with_n_layers(fields.count("num_hidden_layers")?)
        .with_n_heads(fields.count("num_attention_heads")?)
        .with_d_ff(fields.count("intermediate_size")?)
        .with_max_seq_len(fields.count("max_position_embeddings")?)
        .with_norm_eps(fields.number_or("layer_norm_eps", Some(1e-5))?.unwrap_or(1e-5))
        .with_positions(positions)
        .with_rotary_fraction(fields.number_or("rotary_fraction", Some(1.0))?.unwrap_or(1.0))
        .with_parallel_residual(fields.flag_or("parallel_residual", false)?)
        .with_activation(activation(fields, "hidden_act", "gelu")?)
        .with_tie_embeddings(fields.flag_or("tie_word_embeddings", true)?)
        .with_dropout(0.0))
}

/// The activation a config names in `key` (`default` when absent).
fn activation(fields: &Fields, key: &str, default: &str) -> Result<Activation, HfError> {
    let name = match fields.get(key) {
        Some(_) => fields.text(key)?,
        None => default.to_string(),
    };
    match name.as_str() {
        "gelu" => Ok(Activation::Gelu),
        "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Ok(Activation::GeluTanh),
        _ => Err(fields.unsupported(key, "is not gelu or its tanh approximation")),
    }
}

/// Loads the weights of `path` into a model of `config`, through Burn's store with the names
/// and layouts of `architecture` turned back into primer's.
fn load_weights(
    path: &Path,
    architecture: Architecture,
    config: &TransformerConfig,
    device: &Device,
) -> Result<Transformer, HfError> {
    let keys = match architecture {
        Architecture::GptNeoX => reversed(NEOX_KEYS),
        Architecture::Gpt2 => reversed(GPT2_KEYS),
        Architecture::Primer => PRIMER_KEYS_BACK
            .iter()
            .map(|(from, to)| (from.to_string(), to.to_string()))
            .collect(),
    };
    let mut store = SafetensorsStore::from_file(path).allow_partial(true);
    store = match architecture {
        Architecture::GptNeoX | Architecture::Primer => store.with_from_adapter(PyTorchToBurnAdapter),
        Architecture::Gpt2 => store.with_from_adapter(Gpt2Adapter::TO_BURN),
    };
    for (from, to) in &keys {
        store = store.with_key_remapping(from.as_str(), to.as_str());
    }
    let mut model = config.init(device);
    let result = model
        .load_from(&mut store)
        .map_err(|e| HfError::Unsupported(format!("{}: {e:?}", path.display())))?;
    let unused: Vec<&String> = result
        .unused
        .iter()
        .filter(|key| !BUFFERS.iter().any(|buffer| key.ends_with(buffer)))
        .filter(|key| {
            !(config.tie_embeddings && (key.as_str() == "lm_head.weight" || key.as_str() == "embed_out.weight"))
        })
        .collect();
    if let Some(key) = unused.first() {
        return Err(HfError::Unsupported(format!(
            "{}: weight `{key}` has no place in primer's model ({} such): the checkpoint has a layer primer lacks",
            path.display(),
            unused.len()
        )));
    }
    if let Some((key, _)) = result.missing.first() {
        return Err(HfError::Unsupported(format!(
            "{}: no weight for `{key}` ({} missing): the checkpoint is incomplete or of another layout",
            path.display(),
            result.missing.len()
        )));
    }
    if let Some(error) = result.errors.first() {
        return Err(HfError::Unsupported(format!("{}: {error:?}", path.display())));
    }
    if architecture == Architecture::GptNeoX {
        model = reorder_qkv(
            model,
            &primer_qkv_columns(config.d_model, config.n_heads, config.rotary_dims()),
        );
    }
    Ok(model)
}

/// A config's fields, read once each; [`finish`](Self::finish) refuses the ones nobody read.
struct Fields<'a> {
    map: &'a Map<String, Value>,
    path: &'a Path,
    read: RefCell<BTreeSet<String>>,
}

impl<'a> Fields<'a> {
    fn new(map: &'a Map<String, Value>, path: &'a Path) -> Self {
        Self {
            map,
            path,
            read: RefCell::new(BTreeSet::new()),
        }
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.read.borrow_mut().insert(key.to_string());
        self.map.get(key)
    }

    fn unsupported(&self, key: &str, why: &str) -> HfError {
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

    fn text(&self, key: &str) -> Result<String, HfError> {
        self.get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| self.unsupported(key, "is not a string"))
    }

    /// A number, or `default` when absent.
    fn number_or(&self, key: &str, default: Option<f64>) -> Result<Option<f64>, HfError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(value) => value
                .as_f64()
                .map(Some)
                .ok_or_else(|| self.unsupported(key, "is not a number")),
        }
    }

    /// A boolean, or `default` when absent.
    fn flag_or(&self, key: &str, default: bool) -> Result<bool, HfError> {
        match self.get(key) {
            None => Ok(default),
            Some(value) => value
                .as_bool()
                .ok_or_else(|| self.unsupported(key, "is not true or false")),
        }
    }

    /// Fails unless `key` is absent or `expected`.
    fn expect(&self, key: &str, expected: Value) -> Result<(), HfError> {
        match self.get(key) {
            Some(value) if value.as_f64().is_some() && expected.as_f64() == value.as_f64() => Ok(()),
            Some(value) if *value != expected => Err(self.unsupported(key, &format!("is not {expected}"))),
            _ => Ok(()),
        }
    }

    /// Fails on the first field neither read nor known to leave the numbers alone.
    fn finish(self) -> Result<(), HfError> {
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
