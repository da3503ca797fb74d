//! Fused kernels for the libtorch backend, on libtorch's own native ops: the ones PyTorch's
//! `nn.LayerNorm`, `nn.GELU` and `scaled_dot_product_attention` call.

// burn-tch is deprecated upstream; primer keeps it for PyTorch parity.
#![allow(deprecated)]

use burn::backend::LibTorch;
use burn::backend::tensor::FloatTensor;
use burn_tch::TchTensor;
use tch::Kind;

use super::{FusedKernels, FusedOps};

impl FusedOps for LibTorch {
    fn fused_layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        let d = x.tensor.size()[1];
        let (output, _, _) = x
            .tensor
            .native_layer_norm([d], Some(&gamma.tensor), Some(&beta.tensor), epsilon);
        TchTensor::new(output)
    }

    fn fused_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::gelu_forward(x)
    }

    fn fused_attention(q: TchTensor, k: TchTensor, v: TchTensor, causal: bool) -> TchTensor {
        Self::attention_forward(q, k, v, causal).0
    }
}

impl FusedKernels for LibTorch {
    /// Saves the normalised input `[rows, d]` and the reciprocal standard deviations
    /// `[rows, 1]`.
    fn layer_norm_forward(
        x: TchTensor,
        gamma: TchTensor,
        beta: TchTensor,
        epsilon: f64,
    ) -> (TchTensor, [TchTensor; 2]) {
        let d = x.tensor.size()[1];
        let (xhat, _mean, rstd) = x
            .tensor
            .native_layer_norm([d], None::<tch::Tensor>, None::<tch::Tensor>, epsilon);
        let output = beta.tensor.addcmul(&xhat, &gamma.tensor);
        (TchTensor::new(output), [TchTensor::new(xhat), TchTensor::new(rstd)])
    }

    fn layer_norm_backward(
        grad: TchTensor,
        _x: TchTensor,
        gamma: TchTensor,
        [xhat, rstd]: [TchTensor; 2],
    ) -> [TchTensor; 3] {
        let (grad, xhat, rstd) = (grad.tensor, xhat.tensor, rstd.tensor);
        let grad_beta = grad.sum_dim_intlist([0_i64].as_slice(), false, Kind::Float);
        let grad_gamma = (&grad * &xhat).sum_dim_intlist([0_i64].as_slice(), false, Kind::Float);
        let grad_xhat = grad * &gamma.tensor;
        let mean_grad = grad_xhat.mean_dim([1_i64].as_slice(), true, Kind::Float);
        let mean_grad_xhat = (&grad_xhat * &xhat).mean_dim([1_i64].as_slice(), true, Kind::Float);
        // rstd · (grad_xhat - mean(grad_xhat) - xhat · mean(grad_xhat · xhat))
        let grad_x = (grad_xhat - mean_grad).addcmul(&xhat, &mean_grad_xhat.neg()) * rstd;
        [
            TchTensor::new(grad_x),
            TchTensor::new(grad_gamma),
            TchTensor::new(grad_beta),
        ]
    }

    fn gelu_forward(x: TchTensor) -> TchTensor {
        TchTensor::new(x.tensor.gelu("none"))
    }

    fn gelu_grad(grad: TchTensor, x: TchTensor) -> TchTensor {
        TchTensor::new(x.tensor.gelu_backward(&grad.tensor, "none"))
    }

    /// libtorch's CPU flash attention, which never materialises the `[batch, heads, seq, seq]`
    /// scores.
    fn attention_forward(q: TchTensor, k: TchTensor, v: TchTensor, causal: bool) -> (TchTensor, TchTensor) {
        let (output, logsumexp) = tch::Tensor::internal_scaled_dot_product_flash_attention_for_cpu(
            &q.tensor,
            &k.tensor,
            &v.tensor,
            0.0,
            causal,
            None::<tch::Tensor>,
            None,
        );
        (TchTensor::new(output), TchTensor::new(logsumexp))
    }

    fn attention_backward(
        grad: TchTensor,
        [q, k, v]: [TchTensor; 3],
        output: TchTensor,
        logsumexp: TchTensor,
        causal: bool,
    ) -> [TchTensor; 3] {
        let (grad_q, grad_k, grad_v) = tch::Tensor::internal_scaled_dot_product_flash_attention_for_cpu_backward(
            &grad.tensor,
            &q.tensor,
            &k.tensor,
            &v.tensor,
            &output.tensor,
            &logsumexp.tensor,
            0.0,
            causal,
            None::<tch::Tensor>,
            None,
        );
        [grad_q, grad_k, grad_v].map(TchTensor::new)
    }
}
