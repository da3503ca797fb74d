//! A primer model as a `transformers` checkpoint directory.

use std::path::{Path, PathBuf};

use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot, SafetensorsStore};
use primer_datasets::tokenizer::{PrimerTokenizer, SpecialTokens};
use primer_model::{Activation, LmHead, Positions, Transformer, TransformerConfig};
use serde_json::{Value, json};

use crate::HfError;
use crate::layout::{GPT2_KEYS, Gpt2Adapter, NEOX_KEYS, PRIMER_KEYS, neox_qkv_columns, reorder_qkv};
use crate::tokenizer_files::{self, write_json};

/// The transformers architecture a model is exported as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// `GPTNeoXForCausalLM`: rotary positions, next-token head.
    GptNeoX,
    /// `GPT2LMHeadModel`: learned positions, next-token head.
    Gpt2,
    /// `PrimerForMaskedLM`: primer's own layers, shipped as code in the export
    /// ([`MODELING_FILE`]), reading both ways; any positions.
    Primer,
}

impl Architecture {
    /// The architecture of a primer model with `positions` whose head predicts `head`. No
    /// transformers masked-LM class has primer's layers (BERT and RoBERTa put the LayerNorm
    /// after each residual, ModernBERT gates its MLP), so masked models take primer's own.
    pub fn of(positions: Positions, head: LmHead) -> Self {
        match (head, positions) {
            (LmHead::MaskedToken, _) => Self::Primer,
            (LmHead::NextToken, Positions::Rotary) => Self::GptNeoX,
            (LmHead::NextToken, Positions::Learned) => Self::Gpt2,
        }
    }

    /// The transformers class name.
    pub fn class(self) -> &'static str {
        match self {
            Self::GptNeoX => "GPTNeoXForCausalLM",
            Self::Gpt2 => "GPT2LMHeadModel",
            Self::Primer => "PrimerForMaskedLM",
        }
    }

    /// How transformers loads it: the auto class, and whether it runs the export's own code.
    pub fn loader(self) -> &'static str {
        match self {
            Self::GptNeoX | Self::Gpt2 => "AutoModelForCausalLM.from_pretrained(DIR)",
            Self::Primer => "AutoModelForMaskedLM.from_pretrained(DIR, trust_remote_code=True)",
        }
    }
}

/// The Python file a [`Architecture::Primer`] export carries: primer's layers for
/// transformers, which `config.json`'s `auto_map` names.
pub const MODELING_FILE: &str = "modeling_primer.py";

/// What [`export`] wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The directory.
    pub dir: PathBuf,
    /// Its architecture.
    pub architecture: Architecture,
}

/// Writes `model` (configured by `config`, its LM head trained to predict `head`) with the
/// tokenizer at `tokenizer` into a new directory `out`: `config.json`, `model.safetensors`,
/// the tokenizer files, and for a masked model [`MODELING_FILE`]. The directory appears whole
/// or not at all.
pub fn export(
    model: &Transformer,
    config: &TransformerConfig,
    head: LmHead,
    tokenizer: (&Path, &PrimerTokenizer),
    out: &Path,
) -> Result<Exported, HfError> {
    if out.exists() {
        return Err(HfError::write(out, "already exists: choose a new --out"));
    }
    let architecture = Architecture::of(config.positions, head);
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
    let hf_config = hf_config(config, architecture, tokenizer.1.specials());
    write_json(&staging.path().join("config.json"), &hf_config)?;
    if architecture == Architecture::Primer {
        let path = staging.path().join(MODELING_FILE);
        std::fs::write(&path, MODELING_CODE).map_err(|e| HfError::write(&path, e))?;
    }
    tokenizer_files::write(tokenizer.0, tokenizer.1, staging.path(), config.max_seq_len)?;
    let staged = staging.keep();
    std::fs::rename(&staged, out).map_err(|e| {
        let _ = std::fs::remove_dir_all(&staged);
        HfError::write(out, e)
    })?;
    Ok(Exported {
        dir: out.to_path_buf(),
        architecture,
    })
}

/// The text of [`MODELING_FILE`].
const MODELING_CODE: &str = include_str!("../modeling_primer.py");

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
        Architecture::Primer => (PRIMER_KEYS, store.with_to_adapter(BurnToPyTorchAdapter), model),
    };
    for &(from, to) in keys {
        store = store.with_key_remapping(from, to);
    }
    model
        .save_into(&mut store)
        .map_err(|e| HfError::write(path, format!("{e:?}")))
}

/// transformers' `config.json` for `config` as `architecture`. `bos_token_id` is the token
/// that opens every document in training (`[EOS]`), which evaluators put before a text.
fn hf_config(config: &TransformerConfig, architecture: Architecture, specials: &SpecialTokens) -> Value {
    let mut value = architecture_fields(config, architecture);
    let common = json!({
        "architectures": [architecture.class()],
        "vocab_size": config.vocab_size,
        "tie_word_embeddings": config.tie_embeddings,
        "bos_token_id": specials.eos,
        "eos_token_id": specials.eos,
        "pad_token_id": specials.pad,
        "torch_dtype": "float32",
    });
    let object = value.as_object_mut().expect("an object");
    object.extend(common.as_object().expect("an object").clone());
    value
}

/// The fields of `config.json` that `architecture` names its own way.
fn architecture_fields(config: &TransformerConfig, architecture: Architecture) -> Value {
    let activation = match config.activation {
        Activation::Gelu => "gelu",
        Activation::GeluTanh => "gelu_new",
    };
    match architecture {
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
            "primer_attention": "causal",
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
            "primer_attention": "causal",
        }),
        Architecture::Primer => json!({
            "model_type": "primer",
            "auto_map": primer_auto_map(),
            "hidden_size": config.d_model,
            "num_hidden_layers": config.n_layers,
            "num_attention_heads": config.n_heads,
            "intermediate_size": config.d_ff,
            "max_position_embeddings": config.max_seq_len,
            "positions": match config.positions {
                Positions::Rotary => "rotary",
                Positions::Learned => "learned",
            },
            "rotary_fraction": config.rotary_fraction,
            "rotary_base": 10000,
            "parallel_residual": config.parallel_residual,
            "hidden_act": activation,
            "layer_norm_eps": config.norm_eps,
            "attention_mode": "bidirectional",
        }),
    }
}

/// `auto_map`: the auto classes a [`Architecture::Primer`] export serves, each with the class
/// of [`MODELING_FILE`] that does.
fn primer_auto_map() -> Value {
    let module = MODELING_FILE.trim_end_matches(".py");
    let classes = [
        ("AutoConfig", "PrimerConfig"),
        ("AutoModel", "PrimerModel"),
        ("AutoModelForMaskedLM", "PrimerForMaskedLM"),
    ];
    classes
        .into_iter()
        .map(|(auto, class)| (auto.to_string(), json!(format!("{module}.{class}"))))
        .collect::<serde_json::Map<_, _>>()
        .into()
}
