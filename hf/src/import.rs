//! A transformers checkpoint (GPT-NeoX, GPT-2, or primer's own masked-LM export) as a primer
//! model.
//!
//! Everything is checked before the model is built: the files are regular and bounded
//! ([`files`](crate::files)), every config size is bounded ([`fields`](crate::fields)), the
//! weights file's header agrees with its size and its tensors with the config
//! ([`expected`](crate::expected)), the model fits in the machine's memory, and every weight is
//! finite.

use std::path::Path;

use burn::store::{ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};
use burn::tensor::Device;
use primer_datasets::tokenizer::PrimerTokenizer;
use primer_model::memory::machine_bytes;
use primer_model::{Activation, Positions, Transformer, TransformerConfig};
use serde_json::{Map, Value};

use crate::HfError;
use crate::expected::check_weights;
use crate::export::Architecture;
use crate::fields::{Fields, limits};
use crate::files::{MAX_CONFIG_BYTES, MAX_TOKENIZER_BYTES, check_regular_path, read_text};
use crate::layout::{GPT2_KEYS, Gpt2Adapter, NEOX_KEYS, PRIMER_KEYS_BACK, primer_qkv_columns, reorder_qkv, reversed};
use crate::weights_file::WeightsFile;

/// Bytes per imported parameter: the `f32` weights the model is built with, the `f32` copy each
/// loaded tensor is converted through, and the record the run is saved from.
const BYTES_PER_PARAM: f64 = 12.0;

/// What [`import`] read.
pub struct Imported {
    /// The checkpoint's architecture.
    pub architecture: Architecture,
    /// The model's configuration in primer's terms.
    pub config: TransformerConfig,
    /// The weights.
    pub model: Transformer,
    /// The tokenizer (`tokenizer.json`, with `special_tokens_map.json` as its role map).
    pub tokenizer: PrimerTokenizer,
    /// Whether the model reads text both ways: a masked model exported by primer (its own
    /// `PrimerForMaskedLM`, or earlier a GPT-NeoX or GPT-2 marked
    /// `"primer_attention": "bidirectional"`).
    pub bidirectional: bool,
}

/// Reads `dir` (`config.json`, `model.safetensors`, `tokenizer.json`) as a primer model on
/// `device`. A file that is not a regular file of bounded size, a config field or weight
/// primer's model cannot hold, a config that does not describe its weights, a model larger than
/// the machine's memory, or a weight that is not finite stops the import with its name, before
/// the model is built.
pub fn import(dir: &Path, device: &Device) -> Result<Imported, HfError> {
    let config_path = dir.join("config.json");
    let (architecture, config, bidirectional) = read_config(&config_path)?;
    let tokenizer = read_tokenizer(dir, &config)?;
    let weights = WeightsFile::open(&dir.join("model.safetensors"))?;
    let (names, values) = check_weights(&weights, architecture, &config, &config_path)?;
    check_fits(&config, values, &config_path)?;
    weights.check_finite(names.iter().map(String::as_str))?;
    let model = load_weights(&weights.path, architecture, &config, device)?;
    Ok(Imported {
        architecture,
        config,
        model,
        tokenizer,
        bidirectional,
    })
}

/// The architecture, model and attention a `config.json` describes.
fn read_config(path: &Path) -> Result<(Architecture, TransformerConfig, bool), HfError> {
    let text = read_text(path, "config.json", MAX_CONFIG_BYTES)?;
    let map: Map<String, Value> = serde_json::from_str(&text)
        .map_err(|e| HfError::Unsupported(format!("{}: not a JSON object ({e})", path.display())))?;
    let fields = Fields::new(&map, path);
    let (architecture, config) = match fields.text("model_type")?.as_str() {
        "gpt_neox" => (Architecture::GptNeoX, neox_config(&fields)?),
        "gpt2" => (Architecture::Gpt2, gpt2_config(&fields)?),
        "primer" => (Architecture::Primer, primer_config(&fields)?),
        other => {
            return Err(HfError::Unsupported(format!(
                "{}: model_type {other:?} is not one primer reads: gpt_neox, gpt2 or primer",
                path.display()
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
        .map_err(|e| HfError::Unsupported(format!("{}: {e}", path.display())))?;
    Ok((architecture, config, bidirectional))
}

/// The checkpoint's tokenizer, its files checked first; its vocabulary must fit the model's.
fn read_tokenizer(dir: &Path, config: &TransformerConfig) -> Result<PrimerTokenizer, HfError> {
    let path = dir.join("tokenizer.json");
    check_regular_path(&path, "tokenizer.json", MAX_TOKENIZER_BYTES)?;
    let roles = dir.join("special_tokens_map.json");
    if roles.symlink_metadata().is_ok() {
        check_regular_path(&roles, "special_tokens_map.json", MAX_CONFIG_BYTES)?;
    }
    let tokenizer = PrimerTokenizer::from_file(&path).map_err(|e| HfError::Unsupported(e.to_string()))?;
    if tokenizer.vocab_size() > config.vocab_size {
        return Err(HfError::Unsupported(format!(
            "{}: the tokenizer has {} tokens but the model only {}: the tokenizer is not this checkpoint's",
            dir.display(),
            tokenizer.vocab_size(),
            config.vocab_size
        )));
    }
    Ok(tokenizer)
}

/// Fails, naming the sizes, when importing a model of `config` with `values` weights would
/// need more than the machine's memory: the weights, and the rotary tables each layer
/// precomputes for every position (`f32` cosines and sines, and their transients).
fn check_fits(config: &TransformerConfig, values: u64, config_path: &Path) -> Result<(), HfError> {
    let rotary = match config.positions {
        Positions::Rotary => config.n_layers as f64 * config.max_seq_len as f64 * config.rotary_dims() as f64 * 8.0,
        Positions::Learned => 0.0,
    };
    let needed = values as f64 * BYTES_PER_PARAM + rotary;
    let Some(available) = machine_bytes().filter(|&available| needed > available) else {
        return Ok(());
    };
    let (tables, fix) = match config.positions {
        Positions::Rotary => (
            format!(
                " and rotary tables for {} positions in each of {} layers",
                config.max_seq_len, config.n_layers
            ),
            ", or lower `max_position_embeddings` to the longest context it will read",
        ),
        Positions::Learned => (String::new(), ""),
    };
    Err(HfError::Unsupported(format!(
        "{}: importing this checkpoint needs about {:.1} GB ({values} weights{tables}), more than the machine's {:.1} GB: import it on a larger machine{fix}",
        config_path.display(),
        needed / 1e9,
        available / 1e9
    )))
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
    Ok(neox_sizes(fields)?
        .with_positions(Positions::Rotary)
        .with_rotary_fraction(rotary)
        .with_parallel_residual(fields.flag_or("use_parallel_residual", true)?)
        .with_activation(activation(fields, "hidden_act", "gelu")?)
        .with_tie_embeddings(fields.flag_or("tie_word_embeddings", false)?)
        .with_dropout(0.0))
}

/// The sizes and LayerNorm epsilon, in the field names GPT-NeoX's config and primer's own share.
fn neox_sizes(fields: &Fields) -> Result<TransformerConfig, HfError> {
    Ok(TransformerConfig::new(fields.size("vocab_size", limits::VOCAB)?)
        .with_d_model(fields.size("hidden_size", limits::WIDTH)?)
        .with_n_layers(fields.size("num_hidden_layers", limits::LAYERS)?)
        .with_n_heads(fields.size("num_attention_heads", limits::WIDTH)?)
        .with_d_ff(fields.size("intermediate_size", limits::INNER)?)
        .with_max_seq_len(fields.size("max_position_embeddings", limits::POSITIONS)?)
        .with_norm_eps(fields.number_or("layer_norm_eps", Some(1e-5))?.unwrap_or(1e-5)))
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
    let d_model = fields.size("n_embd", limits::WIDTH)?;
    let d_ff = match fields.get("n_inner") {
        None | Some(Value::Null) => 4 * d_model,
        Some(_) => fields.size("n_inner", limits::INNER)?,
    };
    Ok(TransformerConfig::new(fields.size("vocab_size", limits::VOCAB)?)
        .with_d_model(d_model)
        .with_n_layers(fields.size("n_layer", limits::LAYERS)?)
        .with_n_heads(fields.size("n_head", limits::WIDTH)?)
        .with_d_ff(d_ff)
        .with_max_seq_len(fields.size("n_positions", limits::POSITIONS)?)
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
    Ok(neox_sizes(fields)?
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
        .map_err(|e| HfError::read(path, format!("{e}: the weights cannot be loaded")))?;
    // The names and shapes were checked against the config before: what Burn could not apply
    // here is a weight it could not convert.
    if let Some(error) = result.errors.first() {
        return Err(HfError::read(path, format!("{error}: the weights cannot be loaded")));
    }
    if let Some((key, _)) = result.missing.first() {
        return Err(HfError::read(
            path,
            format!(
                "no weight for primer's `{key}` ({} missing): the checkpoint is of another layout",
                result.missing.len()
            ),
        ));
    }
    if architecture == Architecture::GptNeoX {
        model = reorder_qkv(
            model,
            &primer_qkv_columns(config.d_model, config.n_heads, config.rotary_dims()),
        );
    }
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_past_the_machines_memory_are_refused_before_they_are_built() {
        let path = Path::new("config.json");
        let small = TransformerConfig::new(300)
            .with_d_model(32)
            .with_n_heads(2)
            .with_n_layers(2)
            .with_max_seq_len(64);
        check_fits(&small, 30_000, path).unwrap();
        // Weights beyond any machine.
        let err = check_fits(&small, 1 << 50, path).unwrap_err().to_string();
        assert!(
            err.starts_with("config.json: importing this checkpoint needs about"),
            "{err}"
        );
        // Every size within its bound, but rotary tables of 2^20 positions in 1024 layers of
        // one head of 2^16 features: 5.6e17 bytes.
        let long = small
            .with_d_model(limits::WIDTH as usize)
            .with_n_heads(1)
            .with_n_layers(limits::LAYERS as usize)
            .with_max_seq_len(limits::POSITIONS as usize);
        let err = check_fits(&long, 0, path).unwrap_err().to_string();
        assert!(err.contains("lower `max_position_embeddings`"), "{err}");
    }
}
