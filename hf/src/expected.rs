//! The weights a checkpoint's config implies, by name and shape in the checkpoint's own layout,
//! checked against its weights file before the model is built: a config that does not describe
//! its weights (10^6 layers against a file of 2) is refused naming the config field.

use std::collections::BTreeSet;
use std::path::Path;

use primer_model::{Positions, TransformerConfig};

use crate::HfError;
use crate::export::Architecture;
use crate::weights_file::WeightsFile;

/// Buffers some checkpoints save beside the weights, which primer recomputes.
const BUFFERS: &[&str] = &[
    ".attn.bias",
    ".attn.masked_bias",
    ".attention.bias",
    ".attention.masked_bias",
    ".rotary_emb.inv_freq",
];

/// A config size that shapes weights.
#[derive(Debug, Clone, Copy)]
enum Size {
    Vocab,
    Width,
    Layers,
    Inner,
    Positions,
}

impl Size {
    /// The config field that holds this size in `architecture`'s `config.json`.
    fn field(self, architecture: Architecture) -> &'static str {
        match (architecture, self) {
            (_, Self::Vocab) => "vocab_size",
            (Architecture::GptNeoX | Architecture::Primer, Self::Width) => "hidden_size",
            (Architecture::GptNeoX | Architecture::Primer, Self::Layers) => "num_hidden_layers",
            (Architecture::GptNeoX | Architecture::Primer, Self::Inner) => "intermediate_size",
            (Architecture::GptNeoX | Architecture::Primer, Self::Positions) => "max_position_embeddings",
            (Architecture::Gpt2, Self::Width) => "n_embd",
            (Architecture::Gpt2, Self::Layers) => "n_layer",
            (Architecture::Gpt2, Self::Inner) => "n_inner",
            (Architecture::Gpt2, Self::Positions) => "n_positions",
        }
    }
}

/// One dimension of a weight: its length and the size that sets it.
#[derive(Debug, Clone, Copy)]
struct Dim(u64, Size);

/// A weight the config implies.
struct Weight {
    name: String,
    dims: Vec<Dim>,
    /// Whether the checkpoint may leave it out (a tied head).
    optional: bool,
}

/// The weights of a checkpoint of `config`, in `architecture`'s names and layout (PyTorch's
/// `[out, in]` for GPT-NeoX's and primer's own linears, `[in, out]` for GPT-2's `Conv1D`).
fn weights(architecture: Architecture, config: &TransformerConfig) -> Vec<Weight> {
    let vocab = Dim(config.vocab_size as u64, Size::Vocab);
    let width = Dim(config.d_model as u64, Size::Width);
    let width3 = Dim(3 * config.d_model as u64, Size::Width);
    let inner = Dim(config.d_ff as u64, Size::Inner);
    let positions = Dim(config.max_seq_len as u64, Size::Positions);
    let (embedding, layer, final_norm, head) = match architecture {
        Architecture::GptNeoX => (
            "gpt_neox.embed_in",
            "gpt_neox.layers",
            "gpt_neox.final_layer_norm",
            "embed_out",
        ),
        Architecture::Gpt2 => ("transformer.wte", "transformer.h", "transformer.ln_f", "lm_head"),
        Architecture::Primer => ("primer.token_embedding", "primer.blocks", "primer.norm", "lm_head"),
    };
    let block: Vec<(&str, Vec<Dim>)> = match architecture {
        Architecture::GptNeoX => vec![
            ("input_layernorm.weight", vec![width]),
            ("input_layernorm.bias", vec![width]),
            ("post_attention_layernorm.weight", vec![width]),
            ("post_attention_layernorm.bias", vec![width]),
            ("attention.query_key_value.weight", vec![width3, width]),
            ("attention.query_key_value.bias", vec![width3]),
            ("attention.dense.weight", vec![width, width]),
            ("attention.dense.bias", vec![width]),
            ("mlp.dense_h_to_4h.weight", vec![inner, width]),
            ("mlp.dense_h_to_4h.bias", vec![inner]),
            ("mlp.dense_4h_to_h.weight", vec![width, inner]),
            ("mlp.dense_4h_to_h.bias", vec![width]),
        ],
        Architecture::Gpt2 => vec![
            ("ln_1.weight", vec![width]),
            ("ln_1.bias", vec![width]),
            ("ln_2.weight", vec![width]),
            ("ln_2.bias", vec![width]),
            ("attn.c_attn.weight", vec![width, width3]),
            ("attn.c_attn.bias", vec![width3]),
            ("attn.c_proj.weight", vec![width, width]),
            ("attn.c_proj.bias", vec![width]),
            ("mlp.c_fc.weight", vec![width, inner]),
            ("mlp.c_fc.bias", vec![inner]),
            ("mlp.c_proj.weight", vec![inner, width]),
            ("mlp.c_proj.bias", vec![width]),
        ],
        Architecture::Primer => vec![
            ("norm_1.weight", vec![width]),
            ("norm_1.bias", vec![width]),
            ("norm_2.weight", vec![width]),
            ("norm_2.bias", vec![width]),
            ("attn.qkv.weight", vec![width3, width]),
            ("attn.qkv.bias", vec![width3]),
            ("attn.proj.weight", vec![width, width]),
            ("attn.proj.bias", vec![width]),
            ("mlp.fc.weight", vec![inner, width]),
            ("mlp.fc.bias", vec![inner]),
            ("mlp.proj.weight", vec![width, inner]),
            ("mlp.proj.bias", vec![width]),
        ],
    };
    let weight = |name: String, dims: Vec<Dim>| Weight {
        name,
        dims,
        optional: false,
    };
    let mut weights = vec![weight(format!("{embedding}.weight"), vec![vocab, width])];
    match architecture {
        Architecture::Gpt2 => weights.push(weight("transformer.wpe.weight".into(), vec![positions, width])),
        Architecture::Primer if config.positions == Positions::Learned => weights.push(weight(
            "primer.position_embedding.weight".into(),
            vec![positions, width],
        )),
        _ => {}
    }
    for index in 0..config.n_layers {
        weights.extend(
            block
                .iter()
                .map(|(name, dims)| weight(format!("{layer}.{index}.{name}"), dims.clone())),
        );
    }
    weights.push(weight(format!("{final_norm}.weight"), vec![width]));
    weights.push(weight(format!("{final_norm}.bias"), vec![width]));
    weights.push(Weight {
        name: format!("{head}.weight"),
        dims: vec![vocab, width],
        optional: config.tie_embeddings,
    });
    weights
}

/// Checks that `file` holds the weights `config` implies, each a float tensor of its shape,
/// and nothing else but recomputed buffers; returns their names and their number of values.
/// `config_path` names the config in errors.
pub fn check_weights(
    file: &WeightsFile,
    architecture: Architecture,
    config: &TransformerConfig,
    config_path: &Path,
) -> Result<(Vec<String>, u64), HfError> {
    check_layers(file, architecture, config, config_path)?;
    let expected = weights(architecture, config);
    let mut present = Vec::new();
    let mut values = 0u64;
    for weight in &expected {
        let Some(entry) = file.tensors.get(&weight.name) else {
            if weight.optional {
                continue;
            }
            return Err(HfError::read(
                &file.path,
                format!(
                    "no weight `{}`, which {} implies: the checkpoint is incomplete or of another layout",
                    weight.name,
                    config_path.display()
                ),
            ));
        };
        if !entry.is_float() {
            return Err(HfError::read(
                &file.path,
                format!(
                    "weight `{}` is {}: primer reads weights of F32, F16, BF16 or F64",
                    weight.name, entry.dtype
                ),
            ));
        }
        let lengths: Vec<u64> = weight.dims.iter().map(|dim| dim.0).collect();
        if entry.shape != lengths {
            return Err(wrong_shape(file, weight, &entry.shape, architecture, config_path));
        }
        values += entry.elements();
        present.push(weight.name.clone());
    }
    let known: BTreeSet<&str> = expected.iter().map(|weight| weight.name.as_str()).collect();
    let unknown: Vec<&String> = file
        .tensors
        .keys()
        .filter(|name| !known.contains(name.as_str()) && !BUFFERS.iter().any(|buffer| name.ends_with(buffer)))
        .collect();
    if let Some(name) = unknown.first() {
        return Err(HfError::read(
            &file.path,
            format!(
                "weight `{name}` has no place in primer's model ({} such): the checkpoint has a layer primer lacks",
                unknown.len()
            ),
        ));
    }
    Ok((present, values))
}

/// Checks that the file's blocks are the config's number of layers, before the weights of
/// each are listed.
fn check_layers(
    file: &WeightsFile,
    architecture: Architecture,
    config: &TransformerConfig,
    config_path: &Path,
) -> Result<(), HfError> {
    let prefix = match architecture {
        Architecture::GptNeoX => "gpt_neox.layers.",
        Architecture::Gpt2 => "transformer.h.",
        Architecture::Primer => "primer.blocks.",
    };
    let layers: BTreeSet<u64> = file
        .tensors
        .keys()
        .filter_map(|name| name.strip_prefix(prefix)?.split('.').next()?.parse().ok())
        .collect();
    let held = layers.last().map_or(0, |last| last + 1);
    if held == config.n_layers as u64 {
        return Ok(());
    }
    let field = Size::Layers.field(architecture);
    Err(HfError::read(
        config_path,
        format!(
            "`{field}` = {} but {} holds {held} layers: the config is not this checkpoint's; set `{field}` to {held} or give the checkpoint's own weights",
            config.n_layers,
            file.path.display()
        ),
    ))
}

/// A weight whose shape is not the config's, naming the first size that differs.
fn wrong_shape(
    file: &WeightsFile,
    weight: &Weight,
    shape: &[u64],
    architecture: Architecture,
    config_path: &Path,
) -> HfError {
    let lengths: Vec<u64> = weight.dims.iter().map(|dim| dim.0).collect();
    let differing = weight
        .dims
        .iter()
        .zip(shape)
        .find(|(dim, length)| dim.0 != **length)
        .map_or(weight.dims[0].1, |(dim, _)| dim.1);
    HfError::read(
        config_path,
        format!(
            "`{}` does not match the weights: {} holds `{}` of shape {shape:?}, where this config makes it {lengths:?}; the config is not this checkpoint's",
            differing.field(architecture),
            file.path.display(),
            weight.name
        ),
    )
}
