//! Multi-head self-attention with a fused QKV projection (GPT-2's layout).

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Initializer, Linear, LinearConfig, RotaryEncoding, RotaryEncodingConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Bool, Device, Tensor};

use crate::config::{AttentionMode, Positions, TransformerConfig};

/// Self-attention over a sequence, bidirectional or causal.
#[derive(Module, Debug)]
pub struct SelfAttention {
    /// Query, key and value projections in one matrix: `[d_model, 3 * d_model]`.
    pub qkv: Linear,
    /// Output projection (a residual projection: scaled init).
    pub proj: Linear,
    attn_dropout: Dropout,
    resid_dropout: Dropout,
    rotary: Option<RotaryEncoding>,
    n_heads: usize,
}

impl SelfAttention {
    /// A new attention layer for `config`; `residual_std` initialises the output projection.
    pub fn new(config: &TransformerConfig, residual_std: f64, device: &Device) -> Self {
        let normal = |std| Initializer::Normal { mean: 0.0, std };
        let d = config.d_model;
        let rotary = (config.positions == Positions::Rotary)
            .then(|| RotaryEncodingConfig::new(config.max_seq_len, config.head_dim()).init(device));
        Self {
            qkv: crate::zero_bias(
                LinearConfig::new(d, 3 * d)
                    .with_initializer(normal(config.init_std))
                    .init(device),
            ),
            proj: crate::zero_bias(
                LinearConfig::new(d, d)
                    .with_initializer(normal(residual_std))
                    .init(device),
            ),
            attn_dropout: DropoutConfig::new(config.dropout).init(),
            resid_dropout: DropoutConfig::new(config.dropout).init(),
            rotary,
            n_heads: config.n_heads,
        }
    }

    /// # Shapes
    /// - x: `[batch, seq, d_model]`
    /// - output: `[batch, seq, d_model]`
    pub fn forward(&self, x: Tensor<3>, mode: AttentionMode) -> Tensor<3> {
        let [batch, seq, d_model] = x.dims();
        let head_dim = d_model / self.n_heads;
        let heads = |t: Tensor<3>| {
            // [batch, seq, d_model] -> [batch, heads, seq, head_dim]
            t.reshape([batch, seq, self.n_heads, head_dim]).swap_dims(1, 2)
        };
        let mut qkv = self.qkv.forward(x).chunk(3, 2).into_iter().map(heads);
        let (mut q, mut k, v) = (qkv.next().unwrap(), qkv.next().unwrap(), qkv.next().unwrap());
        if let Some(rotary) = &self.rotary {
            q = rotary.forward(q);
            k = rotary.forward(k);
        }
        // [batch, heads, seq, seq]
        let mut scores = q.matmul(k.swap_dims(2, 3)).mul_scalar((head_dim as f64).powf(-0.5));
        if mode == AttentionMode::Causal {
            let future = causal_mask(seq, &scores.device()).reshape([1, 1, seq, seq]);
            scores = scores.mask_fill(future.expand([batch, self.n_heads, seq, seq]), f32::NEG_INFINITY);
        }
        let weights = self.attn_dropout.forward(softmax(scores, 3));
        // [batch, heads, seq, head_dim] -> [batch, seq, d_model]
        let context = weights.matmul(v).swap_dims(1, 2).reshape([batch, seq, d_model]);
        self.resid_dropout.forward(self.proj.forward(context))
    }
}

/// `[seq, seq]`, true where a query would see a later key.
pub fn causal_mask(seq: usize, device: &Device) -> Tensor<2, Bool> {
    Tensor::<2, Bool>::tril_mask([seq, seq], 0, device)
}
