//! primer's Transformer: one model family for masked and causal language modelling.
//!
//! [`TransformerConfig`] + `init(&Device)` builds a [`Transformer`]: token embedding, learned or
//! rotary positions, pre-LayerNorm blocks (multi-head self-attention, GELU MLP), a final
//! LayerNorm and an LM head tied to the embedding, with GPT-2 initialisation. The caller chooses
//! bidirectional or causal attention per call, and [`generate`] continues a prompt from it.

mod attention;
mod block;
mod classifier;
mod config;
pub mod generate;
pub mod memory;
pub mod precision;
pub mod tensors;
mod transformer;

pub use attention::{LayerKv, SelfAttention, causal_mask};
pub use block::{Block, Mlp};
pub use classifier::{Classifier, ClassifierConfig, Pooling, padding_mask};
pub use config::{Activation, FieldError, Positions, TransformerConfig};
pub use precision::Precision;
pub use primer_kernels::AttentionMode;
pub use transformer::{KvCache, LmHead, Transformer};

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::Tensor;

/// GPT-2 starts biases at zero; burn's initialiser would draw them from the weight's normal.
fn zero_bias(mut linear: Linear) -> Linear {
    linear.bias = linear.bias.map(|bias| {
        let bias = bias.val();
        Param::from_tensor(Tensor::zeros(bias.shape(), &bias.device()))
    });
    linear
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Module;
    use burn::tensor::{Device, Int, Tensor, TensorData, Tolerance};

    fn config() -> TransformerConfig {
        TransformerConfig::new(50)
            .with_d_model(32)
            .with_n_layers(2)
            .with_n_heads(4)
            .with_d_ff(64)
            .with_max_seq_len(16)
            .with_positions(Positions::Learned)
    }

    #[test]
    fn shapes_and_parameter_count() {
        let device = Device::flex();
        let model = config().init(&device);
        let tokens = Tensor::<2, Int>::from_data(TensorData::new((0..24i64).collect::<Vec<_>>(), [2, 12]), &device);
        assert_eq!(model.forward(tokens, AttentionMode::Causal).dims(), [2, 12, 50]);
        // embeddings 50*32 + 16*32; per block: 2 norms 4*32, qkv 32*96+96, proj 32*32+32,
        // fc 32*64+64, proj 64*32+32; final norm 64; tied head adds nothing.
        let block = 4 * 32 + (32 * 96 + 96) + (32 * 32 + 32) + (32 * 64 + 64) + (64 * 32 + 32);
        assert_eq!(model.num_params(), 50 * 32 + 16 * 32 + 2 * block + 64);
        let untied = config().with_tie_embeddings(false).init(&device);
        assert_eq!(untied.num_params(), model.num_params() + 32 * 50);
        assert_eq!(config().num_params(), model.num_params());
        let rotary = config().with_positions(Positions::Rotary).with_tie_embeddings(false);
        assert_eq!(rotary.num_params(), rotary.init(&device).num_params());
    }

    #[test]
    fn training_flops_per_token_count_as_nanogpt_does() {
        // The standard config (docs/benchmarks.md) with a byte vocabulary (256 + 7 specials): N without the
        // learned positions is 263*256 + 4 blocks of 789,760 + the final norm's 512 = 3,226,880;
        // 6 N = 19,361,280, and attention adds 12 * 4 layers * 256 * 128 = 1,572,864.
        let standard = TransformerConfig::new(263)
            .with_d_model(256)
            .with_n_layers(4)
            .with_n_heads(4)
            .with_d_ff(1024)
            .with_max_seq_len(128)
            .with_positions(Positions::Learned);
        assert_eq!(standard.train_flops_per_token(128), 20_934_144.0);
        let rotary = standard.with_positions(Positions::Rotary);
        assert_eq!(rotary.train_flops_per_token(128), 20_934_144.0);
    }

    #[test]
    fn causal_attention_ignores_the_future_and_bidirectional_does_not() {
        let device = Device::flex();
        for positions in [Positions::Learned, Positions::Rotary] {
            let model = config().with_positions(positions).init(&device);
            let a = Tensor::<2, Int>::from_data(TensorData::new(vec![1i64, 2, 3, 4, 5, 6], [1, 6]), &device);
            let b = Tensor::<2, Int>::from_data(TensorData::new(vec![1i64, 2, 3, 9, 9, 9], [1, 6]), &device);
            let prefix = |t: Tensor<3>| t.slice([0..1, 0..3]).into_data();
            let causal_a = model.forward(a.clone(), AttentionMode::Causal);
            let causal_b = model.forward(b.clone(), AttentionMode::Causal);
            prefix(causal_a).assert_approx_eq::<f32>(&prefix(causal_b), Tolerance::default());
            let bi_a = prefix(model.forward(a, AttentionMode::Bidirectional))
                .try_into_vec::<f32>()
                .unwrap();
            let bi_b = prefix(model.forward(b, AttentionMode::Bidirectional))
                .try_into_vec::<f32>()
                .unwrap();
            assert!(bi_a.iter().zip(&bi_b).any(|(x, y)| (x - y).abs() > 1e-4));
        }
    }

    #[test]
    fn a_prefix_position_sees_later_prefix_positions_and_no_later_target() {
        let device = Device::flex();
        for positions in [Positions::Learned, Positions::Rotary] {
            let model = config().with_positions(positions).init(&device);
            let row = |ids: [i64; 6]| Tensor::<2, Int>::from_data(TensorData::new(ids.to_vec(), [1, 6]), &device);
            let logits = |ids: [i64; 6]| {
                model
                    .forward(row(ids), AttentionMode::Prefix(vec![3]))
                    .into_data()
                    .try_into_vec::<f32>()
                    .unwrap()
            };
            let base = logits([1, 2, 3, 4, 5, 6]);
            let position = |values: &[f32], at: usize| values[at * 50..(at + 1) * 50].to_vec();
            let moved = |a: &[f32], b: &[f32], at: usize| {
                position(a, at)
                    .iter()
                    .zip(position(b, at))
                    .any(|(x, y)| (x - y).abs() > 1e-4)
            };
            // Position 0 reads position 2, inside the prefix.
            let changed_prefix = logits([1, 2, 9, 4, 5, 6]);
            assert!(moved(&base, &changed_prefix, 0));
            // No position sees a later position outside the prefix.
            let changed_target = logits([1, 2, 3, 4, 9, 6]);
            for at in 0..4 {
                assert!(!moved(&base, &changed_target, at), "position {at} saw position 4");
            }
            assert!(moved(&base, &changed_target, 4));
        }
    }

    #[test]
    fn cached_decoding_gives_the_logits_of_a_full_forward() {
        let device = Device::flex();
        // GPT-NeoX's variants too: a quarter of each head rotated, parallel residual, tanh GELU.
        let neox = config()
            .with_rotary_fraction(0.25)
            .with_parallel_residual(true)
            .with_activation(Activation::GeluTanh);
        for config in [
            config().with_positions(Positions::Learned),
            config().with_positions(Positions::Rotary),
            neox,
        ] {
            let model = config.init(&device);
            let ids = vec![7i64, 3, 12, 9, 41, 5, 22, 8, 30];
            let tokens = Tensor::<2, Int>::from_data(TensorData::new(ids.clone(), [1, ids.len()]), &device);
            // Causal, and a prompt read both ways as a prefix.
            for mode in [AttentionMode::Causal, AttentionMode::Prefix(vec![4])] {
                let full = model.forward(tokens.clone(), mode.clone());
                // A prompt of 4 positions in one call, then one position per call.
                let mut cache = KvCache::default();
                let prompt = tokens.clone().slice([0..1, 0..4]);
                let mut parts = vec![model.forward_cached(prompt, mode.clone(), &mut cache)];
                for i in 4..ids.len() {
                    let next = tokens.clone().slice([0..1, i..i + 1]);
                    parts.push(model.forward_cached(next, mode.clone(), &mut cache));
                }
                assert_eq!(cache.len(), ids.len());
                Tensor::cat(parts, 1)
                    .into_data()
                    .assert_approx_eq::<f32>(&full.into_data(), Tolerance::absolute(1e-5));
            }
        }
    }

    #[test]
    fn classifier_features_ignore_padding_for_every_pooling() {
        let device = Device::flex();
        for (pooling, attention) in [
            (Pooling::First, AttentionMode::Bidirectional),
            (Pooling::Mean, AttentionMode::Bidirectional),
            (Pooling::Last, AttentionMode::Causal),
        ] {
            let classifier = ClassifierConfig::new(3, pooling, attention).init(config().init(&device), &device);
            let alone = Tensor::<2, Int>::from_data(TensorData::new(vec![2i64, 7, 9], [1, 3]), &device);
            let padded =
                Tensor::<2, Int>::from_data(TensorData::new(vec![2i64, 7, 9, 0, 0, 2, 5, 6, 8, 11], [2, 5]), &device);
            let one = classifier.forward(alone, &[3]);
            let batch = classifier.forward(padded, &[3, 5]);
            assert_eq!(batch.dims(), [2, 3]);
            batch
                .slice([0..1, 0..3])
                .into_data()
                .assert_approx_eq::<f32>(&one.into_data(), Tolerance::absolute(1e-5));
        }
    }

    /// In bf16 and f16 the model computes in the low precision (its logits move off f32's by
    /// rounding, not by more), takes and returns f32 tensors, and its parameters get f32
    /// gradients.
    #[test]
    fn low_precision_computes_low_and_keeps_f32_parameters_and_gradients() {
        use burn::tensor::DType;
        let device = Device::flex().autodiff();
        for positions in [Positions::Learned, Positions::Rotary] {
            let model = config().with_positions(positions).init(&device);
            let tokens = Tensor::<2, Int>::from_data(TensorData::new((0..24i64).collect::<Vec<_>>(), [2, 12]), &device);
            let reference = model.forward(tokens.clone(), AttentionMode::Causal).into_data();
            for precision in [Precision::Bf16, Precision::F16] {
                let model = model.clone().with_precision(precision);
                let logits = model.forward(tokens.clone(), AttentionMode::Causal);
                assert_eq!(logits.dtype(), DType::F32, "{precision:?}");
                let data = logits.clone().into_data();
                data.assert_approx_eq::<f32>(&reference, Tolerance::absolute(2e-2));
                assert_ne!(data, reference, "{precision:?} computed in f32");
                let grads = logits.sum().backward();
                let weight = &model.blocks[0].mlp.fc.weight;
                assert_eq!(weight.val().dtype(), DType::F32);
                assert_eq!(weight.val().grad(&grads).unwrap().dtype(), DType::F32);
                let embedding = model.token_embedding.weight.val().grad(&grads).unwrap();
                assert_eq!(embedding.dtype(), DType::F32, "{precision:?} {positions:?}");
            }
        }
    }

    #[test]
    fn invalid_sizes_are_reported_by_field() {
        let err = config().with_n_heads(5).validate().unwrap_err();
        assert_eq!(err.field, "n_heads");
        assert!(
            err.to_string().contains("n_heads 5 does not divide d_model 32"),
            "{err}"
        );
        let flags = err.named(|field| (field == "n_heads").then(|| "--heads".to_string()));
        assert!(flags.starts_with("--heads 5 does not divide d_model 32"), "{flags}");
        assert_eq!(config().with_n_layers(0).validate().unwrap_err().field, "n_layers");
        assert_eq!(config().with_dropout(1.0).validate().unwrap_err().field, "dropout");
    }

    #[test]
    fn gpt2_initialisation() {
        let model = config().init(&Device::flex());
        let std = |t: Tensor<2>| {
            let v = t.into_data().try_into_vec::<f32>().unwrap();
            let mean = v.iter().sum::<f32>() / v.len() as f32;
            (v.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / v.len() as f32).sqrt()
        };
        let embed = std(model.token_embedding.weight.val());
        assert!((embed - 0.02).abs() < 0.002, "{embed}");
        let proj = std(model.blocks[0].mlp.proj.weight.val());
        assert!((proj - 0.02 / 2.0).abs() < 0.002, "{proj}");
        let bias = model.blocks[0]
            .attn
            .qkv
            .bias
            .as_ref()
            .unwrap()
            .val()
            .abs()
            .sum()
            .into_scalar::<f32>();
        assert_eq!(bias, 0.0);
    }
}
