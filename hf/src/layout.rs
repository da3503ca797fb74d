//! Where primer's layout and transformers' differ, and the conversions between them.
//!
//! - Names: primer's module paths (`blocks.0.attn.qkv.weight`) against GPT-NeoX's
//!   (`gpt_neox.layers.0.attention.query_key_value.weight`), GPT-2's
//!   (`transformer.h.0.attn.c_attn.weight`) and those of primer's own masked-LM export
//!   (`primer.blocks.0.attn.qkv.weight`): [`NEOX_KEYS`], [`GPT2_KEYS`], [`PRIMER_KEYS`].
//! - Matrices: Burn's `Linear` stores `[d_input, d_output]`, PyTorch's `nn.Linear`
//!   `[d_output, d_input]` (GPT-NeoX: every projection and the untied head), GPT-2's `Conv1D`
//!   `[d_input, d_output]` like Burn (only its untied head is an `nn.Linear`).
//! - The fused attention projection: primer stores all queries, then all keys, then all values;
//!   GPT-NeoX groups them per head (`q_h, k_h, v_h`). Rotary positions: primer (like Burn)
//!   rotates adjacent feature pairs `(2i, 2i + 1)`, GPT-NeoX the halves `(i, i + head_dim / 2)`
//!   (`rotate_half`), with the same frequencies. [`neox_qkv_columns`] reorders the columns for
//!   both; a permutation shared by a head's queries and keys leaves its attention scores as they
//!   were. GPT-2's `c_attn` is primer's layout, and so is primer's own export (in PyTorch's
//!   `[d_output, d_input]`).

use burn::module::Param;
use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::{BurnToPyTorchAdapter, ModuleAdapter, ModuleContext, PyTorchToBurnAdapter};
use burn::tensor::{Int, Tensor, TensorData};
use primer_model::Transformer;

/// The inverse of [`neox_qkv_columns`]: for each column of primer's `qkv`, the column of
/// GPT-NeoX's `query_key_value` it comes from.
pub fn primer_qkv_columns(d_model: usize, heads: usize, rotary_dims: usize) -> Vec<usize> {
    let mut inverse = vec![0; 3 * d_model];
    for (neox, primer) in neox_qkv_columns(d_model, heads, rotary_dims).into_iter().enumerate() {
        inverse[primer] = neox;
    }
    inverse
}

/// `model` with the columns of each block's fused `qkv` projection (and its bias) taken in
/// `columns`' order ([`neox_qkv_columns`] or [`primer_qkv_columns`]).
pub fn reorder_qkv(mut model: Transformer, columns: &[usize]) -> Transformer {
    let columns: Vec<i64> = columns.iter().map(|&c| c as i64).collect();
    for block in &mut model.blocks {
        let qkv = &mut block.attn.qkv;
        let weight = qkv.weight.val();
        let order = Tensor::<1, Int>::from_data(TensorData::new(columns.clone(), [columns.len()]), &weight.device());
        qkv.weight = Param::from_tensor(weight.select(1, order.clone()));
        qkv.bias = qkv
            .bias
            .take()
            .map(|bias| Param::from_tensor(bias.val().select(0, order)));
    }
    model
}

/// `keys` the other way round: from the target's names back to primer's paths.
pub fn reversed(keys: &[(&str, &str)]) -> Vec<(String, String)> {
    keys.iter()
        .map(|(primer, target)| {
            let pattern = format!("^{}", target.replace('.', r"\.").replace("$1", r"(\d+)"));
            let pattern = if primer.ends_with('$') {
                format!("{pattern}$")
            } else {
                pattern
            };
            let path = primer.trim_start_matches('^').trim_end_matches('$');
            (pattern, path.replace(r"(\d+)", "$1").replace(r"\.", "."))
        })
        .collect()
}

/// Primer's parameter paths and GPT-NeoX's, as regular-expression replacements.
pub const NEOX_KEYS: &[(&str, &str)] = &[
    (r"^token_embedding\.weight$", "gpt_neox.embed_in.weight"),
    (r"^blocks\.(\d+)\.norm_1\.", "gpt_neox.layers.$1.input_layernorm."),
    (
        r"^blocks\.(\d+)\.norm_2\.",
        "gpt_neox.layers.$1.post_attention_layernorm.",
    ),
    (
        r"^blocks\.(\d+)\.attn\.qkv\.",
        "gpt_neox.layers.$1.attention.query_key_value.",
    ),
    (r"^blocks\.(\d+)\.attn\.proj\.", "gpt_neox.layers.$1.attention.dense."),
    (r"^blocks\.(\d+)\.mlp\.fc\.", "gpt_neox.layers.$1.mlp.dense_h_to_4h."),
    (r"^blocks\.(\d+)\.mlp\.proj\.", "gpt_neox.layers.$1.mlp.dense_4h_to_h."),
    (r"^norm\.", "gpt_neox.final_layer_norm."),
    (r"^lm_head\.weight$", "embed_out.weight"),
];

/// Primer's parameter paths and GPT-2's, as regular-expression replacements.
pub const GPT2_KEYS: &[(&str, &str)] = &[
    (r"^token_embedding\.weight$", "transformer.wte.weight"),
    (r"^position_embedding\.weight$", "transformer.wpe.weight"),
    (r"^blocks\.(\d+)\.norm_1\.", "transformer.h.$1.ln_1."),
    (r"^blocks\.(\d+)\.norm_2\.", "transformer.h.$1.ln_2."),
    (r"^blocks\.(\d+)\.attn\.qkv\.", "transformer.h.$1.attn.c_attn."),
    (r"^blocks\.(\d+)\.attn\.proj\.", "transformer.h.$1.attn.c_proj."),
    (r"^blocks\.(\d+)\.mlp\.fc\.", "transformer.h.$1.mlp.c_fc."),
    (r"^blocks\.(\d+)\.mlp\.proj\.", "transformer.h.$1.mlp.c_proj."),
    (r"^norm\.", "transformer.ln_f."),
    (r"^lm_head\.weight$", "lm_head.weight"),
];

/// Primer's parameter paths and those of its own export (`PrimerForMaskedLM`): the same
/// paths under `primer.`, transformers' base-model prefix; the untied head beside it.
pub const PRIMER_KEYS: &[(&str, &str)] = &[(r"^(token_embedding|position_embedding|blocks|norm)\.", "primer.$1.")];

/// [`PRIMER_KEYS`] the other way round.
pub const PRIMER_KEYS_BACK: &[(&str, &str)] = &[(r"^primer\.", "")];

/// The position, within one head, of GPT-NeoX's feature `j` among primer's: the first half
/// holds the first element of each rotary pair, the second half the second.
fn pair_feature(j: usize, head_dim: usize) -> usize {
    let half = head_dim / 2;
    if j < half { 2 * j } else { 2 * (j - half) + 1 }
}

/// For each column of GPT-NeoX's `query_key_value` (in Burn's `[d_input, d_output]` layout),
/// the column of primer's `qkv` it takes: head by head, its queries, keys and values, the
/// first `rotary_dims` features of the queries and keys reordered from rotary pairs to halves.
pub fn neox_qkv_columns(d_model: usize, heads: usize, rotary_dims: usize) -> Vec<usize> {
    let head_dim = d_model / heads;
    let mut columns = Vec::with_capacity(3 * d_model);
    for head in 0..heads {
        for part in 0..3 {
            for j in 0..head_dim {
                let rotated = part < 2 && j < rotary_dims;
                let feature = if rotated { pair_feature(j, rotary_dims) } else { j };
                columns.push(part * d_model + head * head_dim + feature);
            }
        }
    }
    columns
}

/// Between Burn and PyTorch for GPT-2, either way: LayerNorm's `gamma`/`beta` are `weight`/`bias`,
/// and only the untied head (an `nn.Linear`) is transposed; GPT-2's `Conv1D` layers keep
/// Burn's layout.
#[derive(Debug, Clone, Copy)]
pub struct Gpt2Adapter {
    to_burn: bool,
}

impl Gpt2Adapter {
    /// For writing a GPT-2 checkpoint.
    pub const TO_PYTORCH: Self = Self { to_burn: false };
    /// For reading one.
    pub const TO_BURN: Self = Self { to_burn: true };

    /// Burn's own adapter in this direction.
    fn pytorch(&self) -> Box<dyn ModuleAdapter> {
        match self.to_burn {
            true => Box::new(PyTorchToBurnAdapter),
            false => Box::new(BurnToPyTorchAdapter),
        }
    }
}

impl ModuleAdapter for Gpt2Adapter {
    fn adapt(&self, tensor: PackTensor, ctx: ModuleContext<'_>) -> PackTensor {
        let conv1d = ctx.module_type() == Some("Struct:Linear") && !tensor.name.starts_with("lm_head");
        match conv1d {
            true => tensor,
            false => self.pytorch().adapt(tensor, ctx),
        }
    }

    fn get_alternative_param_name(&self, param_name: &str, container_type: &str) -> Option<String> {
        self.pytorch().get_alternative_param_name(param_name, container_type)
    }

    fn clone_box(&self) -> Box<dyn ModuleAdapter> {
        Box::new(*self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::RotaryEncodingConfig;
    use burn::tensor::{Device, Distribution, Tolerance};

    /// GPT-NeoX's rotation (`q * cos + rotate_half(q) * sin`) of `[1, seq, head_dim]` at
    /// positions from 0, with base 10000.
    fn neox_rotate(x: Tensor<3>) -> Tensor<3> {
        let [_, seq, head_dim] = x.dims();
        let half = head_dim / 2;
        let device = x.device();
        let inv_freq: Vec<f32> = (0..half)
            .map(|i| 1.0 / 10000f32.powf(2.0 * i as f32 / head_dim as f32))
            .collect();
        let angles: Vec<f32> = (0..seq)
            .flat_map(|p| (0..head_dim).map(move |j| (p, j)))
            .map(|(p, j)| p as f32 * inv_freq[j % half])
            .collect();
        let angles = Tensor::<3>::from_data(TensorData::new(angles, [1, seq, head_dim]), &device);
        let first = x.clone().slice([0..1, 0..seq, 0..half]);
        let second = x.clone().slice([0..1, 0..seq, half..head_dim]);
        let rotated_half = Tensor::cat(vec![second.neg(), first], 2);
        x * angles.clone().cos() + rotated_half * angles.sin()
    }

    #[test]
    fn neox_order_turns_burns_pair_rotation_into_neoxs_half_rotation() {
        let device = Device::flex();
        let (seq, head_dim) = (5, 8);
        let x = Tensor::<3>::random([1, seq, head_dim], Distribution::Normal(0.0, 1.0), &device);
        let rotary = RotaryEncodingConfig::new(seq, head_dim).init(&device);
        let order: Vec<i64> = (0..head_dim).map(|j| pair_feature(j, head_dim) as i64).collect();
        let order = Tensor::<1, Int>::from_data(TensorData::new(order, [head_dim]), &device);
        let burn_then_reorder = rotary.apply(x.clone(), 0).select(2, order.clone());
        let reorder_then_neox = neox_rotate(x.select(2, order));
        burn_then_reorder
            .into_data()
            .assert_approx_eq::<f32>(&reorder_then_neox.into_data(), Tolerance::absolute(1e-5));
    }

    #[test]
    fn reversed_keys_lead_back_to_primers_paths() {
        let back = reversed(NEOX_KEYS);
        assert_eq!(
            back[1],
            (
                r"^gpt_neox\.layers\.(\d+)\.input_layernorm\.".into(),
                "blocks.$1.norm_1.".into()
            )
        );
        assert_eq!(
            back[0],
            (r"^gpt_neox\.embed_in\.weight$".into(), "token_embedding.weight".into())
        );
        let columns = neox_qkv_columns(8, 2, 2);
        let inverse = primer_qkv_columns(8, 2, 2);
        assert!((0..24).all(|primer| columns[inverse[primer]] == primer));
    }

    #[test]
    fn neox_columns_group_each_heads_queries_keys_and_values() {
        // d_model 8, 2 heads of 4: head 0 takes q features 0, 2, 1, 3, then k, then v as is.
        let columns = neox_qkv_columns(8, 2, 4);
        assert_eq!(&columns[..12], &[0, 2, 1, 3, 8, 10, 9, 11, 16, 17, 18, 19]);
        assert_eq!(&columns[12..16], &[4, 6, 5, 7]);
        // Half of each head rotated: features 2 and 3 keep their place.
        assert_eq!(&neox_qkv_columns(8, 2, 2)[..4], &[0, 1, 2, 3]);
        let mut sorted = columns.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..24).collect::<Vec<_>>(), "a permutation");
    }
}
