//! The networks an objective trains beside the Transformer (see
//! [`Objective::companion`](crate::Objective::companion)): a narrower Transformer stack that reads
//! and predicts through the main model's token embeddings (a generator), and a one-logit head on
//! the main model's hidden states (a discriminator's). ELECTRA trains both.
//!
//! A run saves them as `companion.bpk` beside `model.bpk`, in its checkpoints and when it ends;
//! objectives without a companion write neither, so runs made before companions existed load
//! unchanged.

use burn::module::Module;
use burn::nn::{Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor};
use primer_model::{AttentionMode, Block, Transformer, TransformerConfig};

/// The shape of a [`Companion`], from the main model's config.
#[derive(Debug, Clone)]
pub struct CompanionConfig {
    /// The main model's config: its width is the shared embeddings'.
    pub model: TransformerConfig,
    /// The generator's config: width, heads, MLP and layers of its blocks.
    pub generator: TransformerConfig,
}

impl CompanionConfig {
    /// A generator `width_fraction` as wide as `model` (heads and MLP scaled alike, at least one
    /// head), as deep, with the same positions and dropout: ELECTRA's generator sizing.
    pub fn narrower(model: &TransformerConfig, width_fraction: f64) -> Self {
        let n_heads = ((model.n_heads as f64 * width_fraction).round() as usize).max(1);
        let d_model = model.head_dim() * n_heads;
        let generator = model
            .clone()
            .with_d_model(d_model)
            .with_n_heads(n_heads)
            .with_d_ff(model.d_ff * d_model / model.d_model);
        Self {
            model: model.clone(),
            generator,
        }
    }

    /// Builds the companion with the main model's initialisation.
    pub fn init(&self, device: &Device) -> Companion {
        let linear = |from, to| {
            LinearConfig::new(from, to)
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: self.model.init_std,
                })
                .init(device)
        };
        let (embedding, width) = (self.model.d_model, self.generator.d_model);
        Companion {
            project_in: linear(embedding, width),
            blocks: (0..self.generator.n_layers)
                .map(|_| Block::new(&self.generator, device))
                .collect(),
            norm: LayerNormConfig::new(width)
                .with_epsilon(self.generator.norm_eps)
                .init(device),
            project_out: linear(width, embedding),
            head: linear(embedding, 1),
            norm_eps: self.generator.norm_eps,
        }
    }
}

/// A generator and a discriminator head, trained beside a [`Transformer`] whose embeddings they
/// share.
#[derive(Module, Debug)]
pub struct Companion {
    /// Shared embeddings into the generator `[d_model, width]`.
    pub project_in: Linear,
    /// The generator's blocks, read both ways.
    pub blocks: Vec<Block>,
    /// The generator's final LayerNorm.
    pub norm: LayerNorm,
    /// The generator back to the embedding width `[width, d_model]`, where the main model's LM
    /// head reads it.
    pub project_out: Linear,
    /// One logit per position of the main model's hidden states `[d_model, 1]`.
    pub head: Linear,
    norm_eps: f64,
}

impl Companion {
    /// The generator's vocabulary logits at the predicted positions only.
    ///
    /// # Shapes
    /// - tokens: `[batch, seq]`
    /// - predict_at: `[n]` flat positions (`row * seq + col`)
    /// - output: `[n, vocab_size]`
    pub fn generator_logits(
        &self,
        model: &Transformer,
        tokens: Tensor<2, Int>,
        predict_at: Tensor<1, Int>,
    ) -> Tensor<2> {
        let mut x = self.project_in.forward(model.embed(tokens, 0));
        for block in &self.blocks {
            x = block.forward(x, AttentionMode::Bidirectional);
        }
        let x = primer_kernels::layer_norm(&self.norm, self.norm_eps, x);
        let [batch, seq, width] = x.dims();
        let picked = x.reshape([batch * seq, width]).select(0, predict_at);
        let n = picked.dims()[0];
        // [n, width] -> [n, d_model] -> [n, vocab]
        let back = self.project_out.forward(picked);
        let d_model = back.dims()[1];
        model.lm_logits(back.reshape([1, n, d_model])).reshape([n as i64, -1])
    }

    /// The head's logit at every position of the main model's hidden states.
    ///
    /// # Shapes
    /// - hidden: `[batch, seq, d_model]`
    /// - output: `[batch * seq]`
    pub fn head_logits(&self, hidden: Tensor<3>) -> Tensor<1> {
        let [batch, seq, d_model] = hidden.dims();
        self.head
            .forward(hidden.reshape([batch * seq, d_model]))
            .reshape([batch * seq])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quarter_width_generator_keeps_the_head_size_and_predicts_through_the_shared_embeddings() {
        let device = Device::flex();
        let model = TransformerConfig::new(50)
            .with_d_model(32)
            .with_n_heads(4)
            .with_d_ff(128)
            .with_n_layers(2)
            .with_max_seq_len(16);
        let config = CompanionConfig::narrower(&model, 0.25);
        assert_eq!(
            (
                config.generator.d_model,
                config.generator.n_heads,
                config.generator.d_ff
            ),
            (8, 1, 32)
        );
        let companion = config.init(&device);
        let transformer = model.init(&device);
        let tokens = primer_model::tensors::ids(0..24, &device).reshape([2, 12]);
        let logits = companion.generator_logits(
            &transformer,
            tokens.clone(),
            primer_model::tensors::ids([1, 5, 20], &device),
        );
        assert_eq!(logits.dims(), [3, 50]);
        let hidden = transformer.forward_hidden(tokens, AttentionMode::Bidirectional);
        assert_eq!(companion.head_logits(hidden).dims(), [24]);
    }
}
