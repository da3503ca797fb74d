//! One pre-LayerNorm Transformer block and its MLP.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::{Bool, Device, Tensor};

use crate::attention::{LayerKv, SelfAttention};
use crate::config::TransformerConfig;
use primer_kernels::{self as fused, AttentionMode};

/// The position-wise MLP: `d_model -> d_ff -> GELU -> d_model`.
#[derive(Module, Debug)]
pub struct Mlp {
    /// Expansion.
    pub fc: Linear,
    /// Projection back to the residual stream (scaled init).
    pub proj: Linear,
    dropout: Dropout,
}

impl Mlp {
    fn new(config: &TransformerConfig, residual_std: f64, device: &Device) -> Self {
        let normal = |std| Initializer::Normal { mean: 0.0, std };
        Self {
            fc: crate::zero_bias(
                LinearConfig::new(config.d_model, config.d_ff)
                    .with_initializer(normal(config.init_std))
                    .init(device),
            ),
            proj: crate::zero_bias(
                LinearConfig::new(config.d_ff, config.d_model)
                    .with_initializer(normal(residual_std))
                    .init(device),
            ),
            dropout: DropoutConfig::new(config.dropout).init(),
        }
    }

    /// # Shapes
    /// - x: `[batch, seq, d_model]`
    /// - output: `[batch, seq, d_model]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.dropout
            .forward(fused::linear(&self.proj, fused::gelu(fused::linear(&self.fc, x))))
    }
}

/// `x + attn(norm_1(x))`, then `x + mlp(norm_2(x))`.
#[derive(Module, Debug)]
pub struct Block {
    /// Norm before attention.
    pub norm_1: LayerNorm,
    /// Self-attention.
    pub attn: SelfAttention,
    /// Norm before the MLP.
    pub norm_2: LayerNorm,
    /// MLP.
    pub mlp: Mlp,
    norm_eps: f64,
}

impl Block {
    /// A block with GPT-2 initialisation: residual projections get `init_std / sqrt(2 * layers)`.
    pub fn new(config: &TransformerConfig, device: &Device) -> Self {
        let residual_std = config.init_std / (2.0 * config.n_layers as f64).sqrt();
        let norm = || {
            LayerNormConfig::new(config.d_model)
                .with_epsilon(config.norm_eps)
                .init(device)
        };
        Self {
            norm_1: norm(),
            attn: SelfAttention::new(config, residual_std, device),
            norm_2: norm(),
            mlp: Mlp::new(config, residual_std, device),
            norm_eps: config.norm_eps,
        }
    }

    /// # Shapes
    /// - x: `[batch, seq, d_model]`
    /// - output: `[batch, seq, d_model]`
    pub fn forward(&self, x: Tensor<3>, mode: AttentionMode) -> Tensor<3> {
        let x = x.clone() + self.attn.forward(self.norm(&self.norm_1, x), mode);
        x.clone() + self.mlp.forward(self.norm(&self.norm_2, x))
    }

    /// [`forward`](Self::forward) with padding keys ignored.
    ///
    /// # Shapes
    /// - x: `[batch, seq, d_model]`
    /// - padding: `[batch, seq]`, true at padding positions
    /// - output: `[batch, seq, d_model]`
    pub fn forward_padded(&self, x: Tensor<3>, mode: AttentionMode, padding: Tensor<2, Bool>) -> Tensor<3> {
        let x = x.clone() + self.attn.forward_padded(self.norm(&self.norm_1, x), mode, padding);
        x.clone() + self.mlp.forward(self.norm(&self.norm_2, x))
    }

    /// Forward of new positions after the cached ones (see
    /// [`SelfAttention::forward_cached`]).
    ///
    /// # Shapes
    /// - x: `[batch, new, d_model]`
    /// - output: `[batch, new, d_model]`
    pub fn forward_cached(&self, x: Tensor<3>, mode: AttentionMode, cache: &mut LayerKv) -> Tensor<3> {
        let x = x.clone() + self.attn.forward_cached(self.norm(&self.norm_1, x), mode, cache);
        x.clone() + self.mlp.forward(self.norm(&self.norm_2, x))
    }

    /// `norm(x)` with the block's epsilon (Burn's `LayerNorm` keeps its own private).
    fn norm(&self, norm: &LayerNorm, x: Tensor<3>) -> Tensor<3> {
        fused::layer_norm(norm, self.norm_eps, x)
    }
}
