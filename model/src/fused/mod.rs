//! Fused training kernels with hand-written backward passes.
//!
//! Burn 0.22's autodiff records LayerNorm as eight tensor ops (mean, subtraction, square,
//! mean, square root, division, scale, shift) and differentiates each one, and it routes
//! attention to a decomposed fallback. Each op is a pass over memory and, on libtorch, an
//! OpenMP region. These kernels replace them with one pass forward and one or two backward,
//! through Burn's backend-extension mechanism: [`FusedOps`] is dispatched on the tensor's
//! backend at run time, and its `Autodiff` implementation registers its own backward step.
//!
//! - flex: Rust kernels, parallel over rows or heads, the attention's products on the `gemm`
//!   crate flex itself uses;
//! - libtorch: libtorch's own kernels (`native_layer_norm`, `gelu`, CPU flash attention).
//!
//! Other backends (wgpu, CUDA) keep Burn's composed ops: the entry points below check the
//! device and fall back to them, so callers need not.

// The extension names burn-tch's `LibTorch`, deprecated upstream; primer keeps it for PyTorch
// parity.
#![cfg_attr(feature = "tch", allow(deprecated))]

mod autodiff;
mod flex;
mod flex_attention;
#[cfg(feature = "tch")]
mod libtorch;

use burn::backend::{Backend, Dispatch};
use burn::backend::{DispatchDevice, backend_extension, tensor::FloatTensor};
use burn::nn::LayerNorm;
use burn::tensor::activation::gelu as composed_gelu;
use burn::tensor::{DType, Device, Tensor};

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

    /// `softmax(q kᵀ / sqrt(head_dim)) v`, causal or bidirectional.
    ///
    /// # Shapes
    /// - q, k, v: `[batch, heads, seq, head_dim]`
    /// - output: `[batch, heads, seq, head_dim]`
    fn fused_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        causal: bool,
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

    /// GELU of `x`.
    fn gelu_forward(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// Gradient of GELU at `x`, times `grad`.
    fn gelu_grad(grad: FloatTensor<Self>, x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// Attention's output and the log-sum-exp of each query's scaled scores, which is all the
    /// backward needs to recompute the probabilities without keeping them.
    ///
    /// # Shapes
    /// - q, k, v: `[batch, heads, seq, head_dim]`
    /// - output: `[batch, heads, seq, head_dim]`, `[batch, heads, seq]`
    fn attention_forward(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        causal: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// Gradients of attention with respect to `q`, `k` and `v`.
    ///
    /// # Shapes
    /// - grad, q, k, v, output: `[batch, heads, seq, head_dim]`; logsumexp: `[batch, heads, seq]`
    /// - output: `[batch, heads, seq, head_dim]` each
    fn attention_backward(
        grad: FloatTensor<Self>,
        inputs: [FloatTensor<Self>; 3],
        output: FloatTensor<Self>,
        logsumexp: FloatTensor<Self>,
        causal: bool,
    ) -> [FloatTensor<Self>; 3];
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

/// GELU (exact), fused where the backend has a kernel.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if !fused(&x.device(), x.dtype()) {
        return composed_gelu(x);
    }
    Tensor::from_dispatch(<Dispatch as FusedOps>::fused_gelu(x.into_dispatch()))
}

/// Scaled dot-product attention without padding, `softmax(q kᵀ / sqrt(head_dim)) v`, or
/// `None` where the backend has no fused kernel (the caller then composes it).
///
/// # Shapes
/// - q, k, v: `[batch, heads, seq, head_dim]`
/// - output: `[batch, heads, seq, head_dim]`
pub fn attention(q: &Tensor<4>, k: &Tensor<4>, v: &Tensor<4>, causal: bool) -> Option<Tensor<4>> {
    if !fused(&q.device(), q.dtype()) {
        return None;
    }
    let [q, k, v] = [q, k, v].map(|t| t.clone().into_dispatch());
    Some(Tensor::from_dispatch(<Dispatch as FusedOps>::fused_attention(
        q, k, v, causal,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::LayerNormConfig;
    use burn::tensor::activation::softmax;
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

    #[test]
    fn layer_norm_matches_burns_values_and_gradients() {
        for device in devices() {
            let mut norm = LayerNormConfig::new(24).with_epsilon(1e-5).init(&device);
            // Non-trivial scale and shift, so their gradients and the input's differ from 1.
            norm.gamma = norm.gamma.map(|_| random([24], &device));
            norm.beta = norm.beta.map(|beta| beta.map(|_| random([24], &device)));
            let x = random([2, 5, 24], &device);
            // A loss that weighs each output differently.
            let weights = Tensor::<3>::random([2, 5, 24], Distribution::Normal(0.0, 1.0), &device);
            let run = |fused: bool| {
                let output = if fused {
                    layer_norm(&norm, 1e-5, x.clone())
                } else {
                    norm.forward(x.clone())
                };
                let grads = (output.clone() * weights.clone()).sum().backward();
                let beta = norm.beta.as_ref().unwrap().val();
                (
                    output,
                    x.grad(&grads).unwrap(),
                    norm.gamma.val().grad(&grads).unwrap(),
                    beta.grad(&grads).unwrap(),
                )
            };
            let (fused, composed) = (run(true), run(false));
            assert_close(fused.0, composed.0, "output");
            assert_close(fused.1, composed.1, "x gradient");
            assert_close(fused.2, composed.2, "gamma gradient");
            assert_close(fused.3, composed.3, "beta gradient");
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
    fn attention_matches_its_composition() {
        for device in devices() {
            let leaves = [0, 1, 2].map(|_| random([2, 6, 3, 8], &device));
            // Heads split from `[batch, seq, heads, head_dim]`, strided as the model's are.
            let heads = || leaves.clone().map(|leaf| leaf.swap_dims(1, 2));
            let weights = Tensor::<4>::random([2, 3, 6, 8], Distribution::Normal(0.0, 1.0), &device);
            for causal in [false, true] {
                let [q, k, v] = heads();
                let fused = attention(&q, &k, &v, causal).unwrap();
                let [q, k, v] = heads();
                let mut scores = q.matmul(k.swap_dims(2, 3)).div_scalar(8f32.sqrt());
                if causal {
                    let future = crate::causal_mask(6, 6, 0, &device)
                        .reshape([1, 1, 6, 6])
                        .expand([2, 3, 6, 6]);
                    scores = scores.mask_fill(future, f32::NEG_INFINITY);
                }
                let composed = softmax(scores, 3).matmul(v);
                assert_close(fused.clone(), composed.clone(), "output");
                let grads = |output: Tensor<4>| {
                    let grads = (output * weights.clone()).sum().backward();
                    leaves.clone().map(|leaf| leaf.grad(&grads).unwrap())
                };
                for (fused, composed) in grads(fused).into_iter().zip(grads(composed)) {
                    assert_close(fused, composed, "gradient");
                }
            }
        }
    }
}
