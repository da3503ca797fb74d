//! Fused training kernels with hand-written backward passes.
//!
//! Under autodiff, Burn 0.22 composes a Transformer layer from many tensor ops, each a pass
//! over memory (on libtorch, also an OpenMP region): LayerNorm is nine ops and nine
//! derivatives; attention is a head split, a rotation, a mask, a decomposed softmax and a
//! merge, with layout copies between them; a linear layer on `[batch, seq, d]` inputs runs its
//! forward and input gradient as batched products with the weight broadcast over the batch
//! when `seq` is a multiple of the row tile, instead of one product over `batch · seq` rows.
//! These kernels do each layer as one op with its own backward, through Burn's
//! backend-extension mechanism: [`FusedOps`] is dispatched on the backend of its inputs at run
//! time, and its `Autodiff` implementation records one graph node whose backward step calls
//! the backend's [`FusedKernels`].
//!
//! - flex: Rust kernels, parallel over rows or heads, the products on the `gemm` crate that
//!   flex's own matmul uses;
//! - libtorch: libtorch's own kernels (`native_layer_norm`, `gelu`, `addmm`, CPU flash
//!   attention), the ones PyTorch's layers call.
//!
//! Other backends (wgpu, CUDA) and other dtypes keep Burn's composed ops: the entry points
//! below check the device and fall back to them, so callers need not.

// The extension names burn-tch's `LibTorch`, deprecated upstream; primer keeps it for PyTorch
// parity.
#![cfg_attr(feature = "tch", allow(deprecated))]

mod autodiff;
mod flex;
mod flex_attention;
mod flex_math;
#[cfg(feature = "tch")]
mod libtorch;

use burn::backend::{Backend, Dispatch};
use burn::backend::{DispatchDevice, backend_extension, tensor::FloatTensor};
use burn::nn::{LayerNorm, Linear};
use burn::tensor::activation::gelu as composed_gelu;
use burn::tensor::{DType, Device, Tensor};

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

/// Whether tensors of `dtype` on `device` have fused kernels; where not, Burn's composed ops
/// run.
fn fused(device: &Device, dtype: DType) -> bool {
    let backend = device.clone().inner();
    let fused_backend = match backend.as_dispatch() {
        DispatchDevice::Flex(_) => true,
        #[cfg(feature = "tch")]
        DispatchDevice::LibTorch(_) => true,
        _ => false,
    };
    fused_backend && dtype == DType::F32
}

/// `norm(x)`, fused where the backend has a kernel.
///
/// # Shapes
/// - x: `[batch, seq, d_model]`
/// - output: `[batch, seq, d_model]`
pub fn layer_norm(norm: &LayerNorm, epsilon: f64, x: Tensor<3>) -> Tensor<3> {
    let (true, Some(beta)) = (fused(&x.device(), x.dtype()), &norm.beta) else {
        return norm.forward(x);
    };
    let [batch, seq, d_model] = x.dims();
    let rows = x.reshape([batch * seq, d_model]).into_dispatch();
    let out = <Dispatch as FusedOps>::fused_layer_norm(
        rows,
        norm.gamma.val().into_dispatch(),
        beta.val().into_dispatch(),
        epsilon,
    );
    Tensor::<2>::from_dispatch(out).reshape([batch, seq, d_model])
}

/// `linear(x)`, fused where the backend has a kernel and the layer a bias.
///
/// # Shapes
/// - x: `[batch, seq, d_input]`
/// - output: `[batch, seq, d_output]`
pub fn linear(linear: &Linear, x: Tensor<3>) -> Tensor<3> {
    let (true, Some(bias)) = (fused(&x.device(), x.dtype()), &linear.bias) else {
        return linear.forward(x);
    };
    let [batch, seq, d_input] = x.dims();
    let weight = linear.weight.val();
    let d_output = weight.dims()[1];
    let output = <Dispatch as FusedOps>::fused_linear(
        x.reshape([batch * seq, d_input]).into_dispatch(),
        weight.into_dispatch(),
        bias.val().into_dispatch(),
    );
    Tensor::<2>::from_dispatch(output).reshape([batch, seq, d_output])
}

/// One AdamW update (see [`AdamWStep`]) of a parameter and its moments (zero before the first
/// update), or `None` where the backend has no fused kernel (the caller then composes it).
pub fn adamw<const D: usize>(
    param: &Tensor<D>,
    grad: &Tensor<D>,
    moments: Option<&[Tensor<D>; 2]>,
    step: AdamWStep,
) -> Option<(Tensor<D>, [Tensor<D>; 2])> {
    if !fused(&param.device(), param.dtype()) {
        return None;
    }
    let [moment_1, moment_2] = match moments {
        Some(moments) => moments.clone(),
        None => [0, 1].map(|_| param.zeros_like()),
    };
    let [param, grad, moment_1, moment_2] =
        [param.clone(), grad.clone(), moment_1, moment_2].map(Tensor::into_dispatch);
    let (param, moment_1, moment_2) = <Dispatch as FusedOps>::fused_adamw(param, grad, moment_1, moment_2, step);
    let [param, moment_1, moment_2] = [param, moment_1, moment_2].map(Tensor::from_dispatch);
    Some((param, [moment_1, moment_2]))
}

/// GELU (exact), fused where the backend has a kernel.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if !fused(&x.device(), x.dtype()) {
        return composed_gelu(x);
    }
    Tensor::from_dispatch(<Dispatch as FusedOps>::fused_gelu(x.into_dispatch()))
}

/// Multi-head self-attention without padding from the fused projection `qkv`, with rotary
/// positions if `rotary` is given (see [`FusedOps::fused_rotary_attention`]), or `None` where the backend has no fused kernel (the caller
/// then composes it).
///
/// # Shapes
/// - qkv: `[batch, seq, 3 * d_model]`
/// - rotary: `[seq, head_dim, 2]`: each position's cosines and sines
/// - output: `[batch, seq, d_model]`
pub fn attention(qkv: &Tensor<3>, rotary: Option<Tensor<3>>, heads: usize, mode: &AttentionMode) -> Option<Tensor<3>> {
    if !fused(&qkv.device(), qkv.dtype()) {
        return None;
    }
    let qkv = qkv.clone().into_dispatch();
    let output = match rotary {
        Some(angles) => {
            <Dispatch as FusedOps>::fused_rotary_attention(qkv, angles.into_dispatch(), heads, mode.clone())
        }
        None => <Dispatch as FusedOps>::fused_attention(qkv, heads, mode.clone()),
    };
    Some(Tensor::from_dispatch(output))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AttentionMode, Positions, SelfAttention, TransformerConfig};
    use burn::nn::{LayerNormConfig, LinearConfig};
    use burn::tensor::{Distribution, Tolerance};

    /// The devices with fused kernels, under autodiff.
    fn devices() -> Vec<Device> {
        let devices = vec![Device::flex().autodiff()];
        #[cfg(feature = "tch")]
        let devices = [devices, vec![Device::libtorch().autodiff()]].concat();
        devices
    }

    fn random<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), device).require_grad()
    }

    fn assert_close<const D: usize>(fused: Tensor<D>, composed: Tensor<D>, what: &str) {
        assert_eq!(fused.dims(), composed.dims(), "{what}");
        let (fused, composed) = (fused.into_data(), composed.into_data());
        fused.assert_approx_eq::<f32>(&composed, Tolerance::absolute(2e-5).set_relative(1e-4));
    }

    /// Checks a layer's fused forward (`forward(true)`) against its composed one: the output,
    /// and the gradients of the input, the weight (or scale) and the bias (or shift), under a
    /// loss that weighs each output differently.
    fn assert_matches_composed<const P: usize>(
        forward: impl Fn(bool) -> Tensor<3>,
        x: &Tensor<3>,
        weight: &Tensor<P>,
        bias: &Tensor<1>,
    ) {
        let mut loss_weights = None;
        let mut run = |fused: bool| {
            let output = forward(fused);
            let loss_weights = loss_weights
                .get_or_insert_with(|| Tensor::random(output.dims(), Distribution::Normal(0.0, 1.0), &output.device()))
                .clone();
            let grads = (output.clone() * loss_weights).sum().backward();
            let input_grads = (
                x.grad(&grads).unwrap(),
                weight.grad(&grads).unwrap(),
                bias.grad(&grads).unwrap(),
            );
            (output, input_grads)
        };
        let (fused, composed) = (run(true), run(false));
        assert_close(fused.0, composed.0, "output");
        assert_close(fused.1.0, composed.1.0, "input gradient");
        assert_close(fused.1.1, composed.1.1, "weight gradient");
        assert_close(fused.1.2, composed.1.2, "bias gradient");
    }

    #[test]
    fn layer_norm_matches_burns_values_and_gradients() {
        for device in devices() {
            let mut norm = LayerNormConfig::new(24).with_epsilon(1e-5).init(&device);
            // Non-trivial scale and shift, so their gradients and the input's differ from 1.
            norm.gamma = norm.gamma.map(|_| random([24], &device));
            norm.beta = norm.beta.map(|beta| beta.map(|_| random([24], &device)));
            let x = random([2, 5, 24], &device);
            let (gamma, beta) = (norm.gamma.val(), norm.beta.as_ref().unwrap().val());
            let forward = |fused: bool| match fused {
                true => layer_norm(&norm, 1e-5, x.clone()),
                false => norm.forward(x.clone()),
            };
            assert_matches_composed(forward, &x, &gamma, &beta);
        }
    }

    #[test]
    fn linear_matches_burns_values_and_gradients() {
        for device in devices() {
            let mut layer = LinearConfig::new(12, 20).init(&device);
            layer.bias = layer.bias.map(|bias| bias.map(|_| random([20], &device)));
            let x = random([2, 5, 12], &device);
            let (weight, bias) = (layer.weight.val(), layer.bias.as_ref().unwrap().val());
            let forward = |fused: bool| match fused {
                true => linear(&layer, x.clone()),
                false => layer.forward(x.clone()),
            };
            assert_matches_composed(forward, &x, &weight, &bias);
        }
    }

    #[test]
    fn adamw_matches_burns_optimizer_over_several_updates() {
        use burn::optim::{AdamWConfig, Optimizer};
        for device in devices() {
            // Optimizers run on the parameters' inner tensors.
            let device = device.inner();
            let normal = |shape: [usize; 2]| Tensor::<2>::random(shape, Distribution::Normal(0.0, 1.0), &device);
            let burns = AdamWConfig::new()
                .with_beta_1(0.9)
                .with_beta_2(0.95)
                .with_epsilon(1e-8)
                .with_weight_decay(0.1)
                .build();
            let start = normal([7, 33]);
            let (mut expected, mut expected_state) = (start.clone(), None);
            let (mut param, mut moments) = (start, None);
            for time in 1..=3 {
                let grad = normal([7, 33]).mul_scalar(time as f32);
                (expected, expected_state) = burns.step(1e-2, expected, grad.clone(), expected_state);
                let step = AdamWStep {
                    lr: 1e-2,
                    beta_1: 0.9,
                    beta_2: 0.95,
                    epsilon: 1e-8,
                    weight_decay: 0.1,
                    time,
                };
                let (new_param, new_moments) = adamw(&param, &grad, moments.as_ref(), step).unwrap();
                let momentum = &expected_state.as_ref().unwrap().momentum;
                assert_close(new_param.clone(), expected.clone(), "parameter");
                assert_close(new_moments[0].clone(), momentum.moment_1.clone(), "first moment");
                assert_close(new_moments[1].clone(), momentum.moment_2.clone(), "second moment");
                (param, moments) = (new_param, Some(new_moments));
            }
        }
    }

    #[test]
    fn gelu_matches_burns_values_and_gradients() {
        for device in devices() {
            // Wide enough to reach the tails, where erf saturates.
            let x = Tensor::<3>::random([3, 7, 40], Distribution::Normal(0.0, 3.0), &device).require_grad();
            let weights = Tensor::<3>::random([3, 7, 40], Distribution::Normal(0.0, 1.0), &device);
            let run = |fused: bool| {
                let output = if fused {
                    gelu(x.clone())
                } else {
                    composed_gelu(x.clone())
                };
                let grads = (output.clone() * weights.clone()).sum().backward();
                (output, x.grad(&grads).unwrap())
            };
            let (fused, composed) = (run(true), run(false));
            assert_close(fused.0, composed.0, "output");
            assert_close(fused.1, composed.1, "x gradient");
        }
    }

    #[test]
    fn attention_matches_the_composed_path() {
        for device in devices() {
            // Fixed draws: with weights this sharp, some random draws put a float32 rounding
            // difference just past the tolerance.
            device.seed(7);
            for positions in [Positions::Rotary, Positions::Learned] {
                let config = TransformerConfig::new(50)
                    .with_d_model(24)
                    .with_n_heads(3)
                    .with_max_seq_len(8)
                    .with_positions(positions)
                    // Weights large enough for sharp attention, where errors would show.
                    .with_init_std(0.3);
                let attention = SelfAttention::new(&config, 0.3, &device);
                let x = random([2, 6, 24], &device);
                let weights = Tensor::<3>::random([2, 6, 24], Distribution::Normal(0.0, 1.0), &device);
                // A padding mask that hides nothing sends attention down the composed path.
                let no_padding = Tensor::<2>::zeros([2, 6], &device).equal_elem(1.0);
                // The prefix mode: row 0 reads its first 3 positions both ways, row 1 none.
                let prefix = AttentionMode::Prefix(vec![3, 0]);
                for mode in [AttentionMode::Bidirectional, AttentionMode::Causal, prefix] {
                    let run = |fused: bool| {
                        let output = match fused {
                            true => attention.forward(x.clone(), mode.clone()),
                            false => attention.forward_padded(x.clone(), mode.clone(), no_padding.clone()),
                        };
                        let grads = (output.clone() * weights.clone()).sum().backward();
                        let qkv_weight = attention.qkv.weight.val().grad(&grads).unwrap();
                        (output, x.grad(&grads).unwrap(), qkv_weight)
                    };
                    let (fused, composed) = (run(true), run(false));
                    let what = format!("{positions:?} {mode:?} on {device:?}");
                    assert_close(fused.0, composed.0, &format!("output, {what}"));
                    assert_close(fused.1, composed.1, &format!("x gradient, {what}"));
                    assert_close(fused.2, composed.2, &format!("qkv weight gradient, {what}"));
                }
            }
        }
    }
}
