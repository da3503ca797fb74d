//! A primer model as a `transformers` checkpoint directory.

use std::path::{Path, PathBuf};

use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot, SafetensorsStore};
use primer_datasets::tokenizer::{PrimerTokenizer, SpecialTokens};
use primer_model::{Activation, AttentionMode, Positions, Transformer, TransformerConfig};
use serde_json::{Value, json};

use crate::HfError;
use crate::layout::{GPT2_KEYS, Gpt2Adapter, NEOX_KEYS, neox_qkv_columns, reorder_qkv};
use crate::tokenizer_files::{self, write_json};

/// The transformers architecture a model is exported as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// `GPTNeoXForCausalLM`: rotary positions.
    GptNeoX,
    /// `GPT2LMHeadModel`: learned positions.
    Gpt2,
}

impl Architecture {
    /// The architecture of a primer model with `positions`.
    pub fn of(positions: Positions) -> Self {
        match positions {
            Positions::Rotary => Self::GptNeoX,
            Positions::Learned => Self::Gpt2,
        }
    }

    /// The transformers class name.
    pub fn class(self) -> &'static str {
        match self {
            Self::GptNeoX => "GPTNeoXForCausalLM",
            Self::Gpt2 => "GPT2LMHeadModel",
        }
    }
}

/// What [`export`] wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The directory.
    pub dir: PathBuf,
    /// Its architecture.
    pub architecture: Architecture,
    /// Whether the model reads text both ways (masked LM): transformers must then be given a
    /// mask that hides nothing (see the README's Hugging Face section).
    pub bidirectional: bool,
}

/// Writes `model` (configured by `config`, trained to read text in `attention`) with the
/// tokenizer at `tokenizer` into a new directory `out`: `config.json`, `model.safetensors` and
/// the tokenizer files. The directory appears whole or not at all.
pub fn export(
    model: &Transformer,
    config: &TransformerConfig,
    attention: &AttentionMode,
    tokenizer: (&Path, &PrimerTokenizer),
    out: &Path,
) -> Result<Exported, HfError> {
    if out.exists() {
        return Err(HfError::write(out, "already exists: choose a new --out"));
    }
    let bidirectional = match attention {
        AttentionMode::Causal => false,
        AttentionMode::Bidirectional => true,
        AttentionMode::Prefix(_) => {
            return Err(HfError::Unsupported(
                "prefix-LM models read a prefix both ways, which no transformers causal-LM class does: export a clm or mlm run".into(),
            ));
        }
    };
    let architecture = Architecture::of(config.positions);
    if architecture == Architecture::Gpt2 && config.parallel_residual {
        return Err(HfError::Unsupported(
            "GPT-2 has no parallel residual: a learned-position model with one cannot be exported".into(),
        ));
    }
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| HfError::write(parent, e))?;
    let staging = tempfile::Builder::new()
        .prefix(".export-")
        .tempdir_in(parent)
        .map_err(|e| HfError::write(parent, e))?;
    write_weights(model, config, architecture, &staging.path().join("model.safetensors"))?;
    let hf_config = hf_config(config, architecture, bidirectional, tokenizer.1.specials());
    write_json(&staging.path().join("config.json"), &hf_config)?;
    tokenizer_files::write(tokenizer.0, tokenizer.1, staging.path(), config.max_seq_len)?;
    let staged = staging.keep();
    std::fs::rename(&staged, out).map_err(|e| {
        let _ = std::fs::remove_dir_all(&staged);
        HfError::write(out, e)
    })?;
    Ok(Exported {
        dir: out.to_path_buf(),
        architecture,
        bidirectional,
    })
}

/// `model.safetensors`: the weights through Burn's store, renamed and laid out as
/// `architecture` reads them, with the `format: pt` metadata transformers expects.
fn write_weights(
    model: &Transformer,
    config: &TransformerConfig,
    architecture: Architecture,
    path: &Path,
) -> Result<(), HfError> {
    let store = SafetensorsStore::from_file(path)
        .clear_metadata()
        .metadata("format", "pt");
    // Only GPT-NeoX needs the weights rearranged, in a copy.
    let reordered;
    let (keys, mut store, model) = match architecture {
        Architecture::GptNeoX => {
            let columns = neox_qkv_columns(config.d_model, config.n_heads, config.rotary_dims());
            reordered = reorder_qkv(model.clone(), &columns);
            (NEOX_KEYS, store.with_to_adapter(BurnToPyTorchAdapter), &reordered)
        }
        Architecture::Gpt2 => (GPT2_KEYS, store.with_to_adapter(Gpt2Adapter::TO_PYTORCH), model),
    };
    for &(from, to) in keys {
        store = store.with_key_remapping(from, to);
    }
    model
        .save_into(&mut store)
        .map_err(|e| HfError::write(path, format!("{e:?}")))
}

/// transformers' `config.json` for `config` as `architecture`.
fn hf_config(
    config: &TransformerConfig,
    architecture: Architecture,
    bidirectional: bool,
    specials: &SpecialTokens,
) -> Value {
    let activation = match config.activation {
        Activation::Gelu => "gelu",
        Activation::GeluTanh => "gelu_new",
    };
    let mut value = match architecture {
        Architecture::GptNeoX => json!({
            "model_type": "gpt_neox",
            "hidden_size": config.d_model,
            "num_hidden_layers": config.n_layers,
            "num_attention_heads": config.n_heads,
            "intermediate_size": config.d_ff,
            "hidden_act": activation,
            "rotary_pct": config.rotary_fraction,
            "rotary_emb_base": 10000,
            "max_position_embeddings": config.max_seq_len,
            "layer_norm_eps": config.norm_eps,
            "use_parallel_residual": config.parallel_residual,
            "attention_bias": true,
            "attention_dropout": 0.0,
            "hidden_dropout": 0.0,
        }),
        Architecture::Gpt2 => json!({
            "model_type": "gpt2",
            "n_embd": config.d_model,
            "n_layer": config.n_layers,
            "n_head": config.n_heads,
            "n_inner": config.d_ff,
            "n_positions": config.max_seq_len,
            "activation_function": activation,
            "layer_norm_epsilon": config.norm_eps,
            "resid_pdrop": 0.0,
            "embd_pdrop": 0.0,
            "attn_pdrop": 0.0,
            "scale_attn_weights": true,
        }),
    };
    let common = json!({
        "architectures": [architecture.class()],
        "vocab_size": config.vocab_size,
        "tie_word_embeddings": config.tie_embeddings,
        "bos_token_id": specials.bos,
        "eos_token_id": specials.eos,
        "pad_token_id": specials.pad,
        "torch_dtype": "float32",
        "primer_attention": if bidirectional { "bidirectional" } else { "causal" },
    });
    let object = value.as_object_mut().expect("an object");
    object.extend(common.as_object().expect("an object").clone());
    value
}
