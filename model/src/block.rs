//! One pre-LayerNorm Transformer block and its MLP.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::gelu_approximate;
use burn::tensor::{Bool, Device, Tensor};

use crate::attention::{LayerKv, SelfAttention};
use crate::config::{Activation, TransformerConfig};
use primer_kernels::{self as fused, AttentionMode};

/// The position-wise MLP: `d_model -> d_ff -> GELU -> d_model`.
#[derive(Module, Debug)]
pub struct Mlp {
    /// Expansion.
    pub fc: Linear,
    /// Projection back to the residual stream (scaled init).
    pub proj: Linear,
    dropout: Dropout,
    #[module(skip)]
    activation: Activation,
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
            activation: config.activation,
        }
    }

    /// # Shapes
    /// - x: `[batch, seq, d_model]`
    /// - output: `[batch, seq, d_model]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let hidden = fused::linear(&self.fc, x);
        let hidden = match self.activation {
            Activation::Gelu => fused::gelu(hidden),
            Activation::GeluTanh => gelu_approximate(hidden),
        };
        self.dropout.forward(fused::linear(&self.proj, hidden))
    }
}

/// `x + attn(norm_1(x))`, then `x + mlp(norm_2(x))`; with a parallel residual,
/// `x + attn(norm_1(x)) + mlp(norm_2(x))`.
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
    parallel_residual: bool,
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
            parallel_residual: config.parallel_residual,
        }
    }

    /// # Shapes
    /// - x: `[batch, seq, d_model]`
    /// - output: `[batch, seq, d_model]`
    pub fn forward(&self, x: Tensor<3>, mode: AttentionMode) -> Tensor<3> {
        self.residuals(x, |normed| self.attn.forward(normed, mode))
    }

    /// [`forward`](Self::forward) with padding keys ignored.
    ///
    /// # Shapes
    /// - x: `[batch, seq, d_model]`
    /// - padding: `[batch, seq]`, true at padding positions
    /// - output: `[batch, seq, d_model]`
    pub fn forward_padded(&self, x: Tensor<3>, mode: AttentionMode, padding: Tensor<2, Bool>) -> Tensor<3> {
        self.residuals(x, |normed| self.attn.forward_padded(normed, mode, padding))
    }

    /// Forward of new positions after the cached ones (see
    /// [`SelfAttention::forward_cached`]).
    ///
    /// # Shapes
    /// - x: `[batch, new, d_model]`
    /// - output: `[batch, new, d_model]`
    pub fn forward_cached(&self, x: Tensor<3>, mode: AttentionMode, cache: &mut LayerKv) -> Tensor<3> {
        self.residuals(x, |normed| self.attn.forward_cached(normed, mode, cache))
    }

    /// The block's two residual branches around `attend`, in sequence or in parallel.
    ///
    /// # Shapes
    /// - x: `[batch, seq, d_model]`
    /// - output: `[batch, seq, d_model]`
    fn residuals(&self, x: Tensor<3>, attend: impl FnOnce(Tensor<3>) -> Tensor<3>) -> Tensor<3> {
        let attended = attend(self.norm(&self.norm_1, x.clone()));
        if self.parallel_residual {
            return x.clone() + attended + self.mlp.forward(self.norm(&self.norm_2, x));
        }
        let x = x + attended;
        x.clone() + self.mlp.forward(self.norm(&self.norm_2, x))
    }

    /// `norm(x)` with the block's epsilon (Burn's `LayerNorm` keeps its own private).
    fn norm(&self, norm: &LayerNorm, x: Tensor<3>) -> Tensor<3> {
        fused::layer_norm(norm, self.norm_eps, x)
    }
}
