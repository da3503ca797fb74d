//! The fused ops as a Burn backend extension: [`FusedOps`], dispatched on the backend of its
//! inputs, and [`FusedKernels`], each concrete backend's forward and backward kernels.

use burn::backend::{Backend, backend_extension, tensor::FloatTensor};

use crate::AttentionMode;

/// Fused operations, dispatched on the backend of their inputs.
#[cfg_attr(feature = "tch", backend_extension(Flex, LibTorch, Autodiff))]
#[cfg_attr(not(feature = "tch"), backend_extension(Flex, Autodiff))]
pub trait FusedOps: Backend {
    /// LayerNorm over the last dimension.
    ///
    /// # Shapes
    /// - x: `[rows, d]`, gamma and beta: `[d]`
    /// - output: `[rows, d]`
    fn fused_layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self>;

    /// GELU with the exact error function, element-wise.
    fn fused_gelu(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `x weight + bias`.
    ///
    /// # Shapes
    /// - x: `[rows, d_input]`, weight: `[d_input, d_output]`, bias: `[d_output]`
    /// - output: `[rows, d_output]`
    fn fused_linear(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self>;

    /// One AdamW update of a parameter, in one pass: the new parameter and moments.
    ///
    /// # Shapes
    /// - param, grad, moment_1, moment_2, output: the parameter's, each
    fn fused_adamw(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        step: AdamWStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// Multi-head self-attention from the fused projection `qkv`: splits it into heads and
    /// attends (scores scaled by `1 / sqrt(head_dim)`) in `mode`.
    ///
    /// # Shapes
    /// - qkv: `[batch, seq, 3 * d_model]`: the queries, keys and values, each `heads` wide
    /// - output: `[batch, seq, d_model]`: the heads side by side
    fn fused_attention(qkv: FloatTensor<Self>, heads: usize, mode: AttentionMode) -> FloatTensor<Self>;

    /// [`fused_attention`](Self::fused_attention) with the queries and keys rotated by the
    /// `angles` of rotary positions first.
    ///
    /// # Shapes
    /// - qkv: `[batch, seq, 3 * d_model]`
    /// - angles: `[seq, head_dim, 2]`: each position's cosines and sines
    /// - output: `[batch, seq, d_model]`
    fn fused_rotary_attention(
        qkv: FloatTensor<Self>,
        angles: FloatTensor<Self>,
        heads: usize,
        mode: AttentionMode,
    ) -> FloatTensor<Self>;
}

/// The forward and backward kernels of one concrete backend, which the autodiff
/// implementation of [`FusedOps`] composes.
pub trait FusedKernels: Backend {
    /// LayerNorm's output and what its backward needs besides `x` and `gamma` (the backend
    /// chooses: per-row statistics, or the normalised input).
    ///
    /// # Shapes
    /// - x: `[rows, d]`, gamma and beta: `[d]`
    /// - output: `[rows, d]`
    fn layer_norm_forward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, [FloatTensor<Self>; 2]);

    /// Gradients of LayerNorm with respect to `x`, `gamma` and `beta`.
    ///
    /// # Shapes
    /// - grad, x: `[rows, d]`, gamma: `[d]`
    /// - output: `[rows, d]`, `[d]`, `[d]`
    fn layer_norm_backward(
        grad: FloatTensor<Self>,
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        saved: [FloatTensor<Self>; 2],
    ) -> [FloatTensor<Self>; 3];

    /// `x weight + bias`, shaped as [`FusedOps::fused_linear`]'s.
    fn linear_forward(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self>;

    /// Gradients of `x weight + bias` with respect to `x`, `weight` and `bias`.
    ///
    /// # Shapes
    /// - grad: `[rows, d_output]`, x: `[rows, d_input]`, weight: `[d_input, d_output]`
    /// - output: `[rows, d_input]`, `[d_input, d_output]`, `[d_output]`
    fn linear_backward(
        grad: FloatTensor<Self>,
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
    ) -> [FloatTensor<Self>; 3];

    /// [`FusedOps::fused_adamw`] on this backend.
    fn adamw(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        step: AdamWStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// GELU of `x`.
    fn gelu_forward(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// Gradient of GELU at `x`, times `grad`.
    fn gelu_grad(grad: FloatTensor<Self>, x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// Attention's output and the log-sum-exp of each query's scaled scores, which is all the
    /// backward needs to recompute the probabilities without keeping them.
    ///
    /// # Shapes
    /// - qkv, rotary: as [`FusedOps::fused_rotary_attention`]'s `qkv` and `angles`
    /// - output: `[batch, seq, d_model]`, `[batch, heads, seq]`
    fn attention_forward(
        qkv: FloatTensor<Self>,
        rotary: Option<FloatTensor<Self>>,
        heads: usize,
        mode: AttentionMode,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// The gradient of attention with respect to `qkv`.
    ///
    /// # Shapes
    /// - grad, output: `[batch, seq, d_model]`; qkv, rotary: as the forward's; logsumexp:
    ///   `[batch, heads, seq]`
    /// - output: `[batch, seq, 3 * d_model]`
    fn attention_backward(
        grad: FloatTensor<Self>,
        qkv: FloatTensor<Self>,
        rotary: Option<FloatTensor<Self>>,
        output: FloatTensor<Self>,
        logsumexp: FloatTensor<Self>,
        heads: usize,
        mode: AttentionMode,
    ) -> FloatTensor<Self>;
}

/// The hyper-parameters of one AdamW update, as burn's `AdamW` applies them:
/// `m = β1 m + (1 - β1) g`, `v = β2 v + (1 - β2) g²`,
/// `p = p (1 - lr · weight_decay) - lr · m̂ / (sqrt(v̂) + ε)`, with `m̂` and `v̂` the moments
/// divided by `1 - β^time`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWStep {
    /// Learning rate.
    pub lr: f64,
    /// Decay of the first moment.
    pub beta_1: f32,
    /// Decay of the second moment.
    pub beta_2: f32,
    /// Added to the square root of the second moment.
    pub epsilon: f32,
    /// Decoupled weight decay.
    pub weight_decay: f32,
    /// The update's number, from 1.
    pub time: usize,
}

impl AdamWStep {
    /// `1 - β1^time` and `1 - β2^time`, the moments' bias corrections.
    pub fn bias_corrections(&self) -> (f32, f32) {
        let time = self.time as i32;
        (1.0 - self.beta_1.powi(time), 1.0 - self.beta_2.powi(time))
    }
}

/// Without autodiff, each fused op is its backend's forward kernel.
impl<B: FusedKernels> FusedOps for B {
    fn fused_layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        Self::layer_norm_forward(x, gamma, beta, epsilon).0
    }

    fn fused_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::gelu_forward(x)
    }

    fn fused_linear(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::linear_forward(x, weight, bias)
    }

    fn fused_adamw(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        step: AdamWStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        Self::adamw(param, grad, moment_1, moment_2, step)
    }

    fn fused_attention(qkv: FloatTensor<Self>, heads: usize, mode: AttentionMode) -> FloatTensor<Self> {
        Self::attention_forward(qkv, None, heads, mode).0
    }

    fn fused_rotary_attention(
        qkv: FloatTensor<Self>,
        angles: FloatTensor<Self>,
        heads: usize,
        mode: AttentionMode,
    ) -> FloatTensor<Self> {
        Self::attention_forward(qkv, Some(angles), heads, mode).0
    }
}
