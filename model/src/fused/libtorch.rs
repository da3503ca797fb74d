//! Fused kernels for the libtorch backend, on libtorch's own native ops: the ones PyTorch's
//! `nn.LayerNorm`, `nn.GELU` and `scaled_dot_product_attention` call.

// burn-tch is deprecated upstream; primer keeps it for PyTorch parity.
#![allow(deprecated)]

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, LibTorch, backend_extension};
use burn::tensor::Tensor;
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
}

/// Attention on libtorch's CPU flash-attention kernels (forward and backward), which never
/// materialise the `[batch, heads, seq, seq]` scores.
#[backend_extension(LibTorch, Autodiff)]
pub trait FusedAttentionOps: Backend {
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

/// The output and per-row log-sum-exp of the scores, which the backward kernel takes.
fn flash_forward(q: &tch::Tensor, k: &tch::Tensor, v: &tch::Tensor, causal: bool) -> (tch::Tensor, tch::Tensor) {
    tch::Tensor::internal_scaled_dot_product_flash_attention_for_cpu(q, k, v, 0.0, causal, None::<tch::Tensor>, None)
}

impl FusedAttentionOps for LibTorch {
    fn fused_attention(q: TchTensor, k: TchTensor, v: TchTensor, causal: bool) -> TchTensor {
        TchTensor::new(flash_forward(&q.tensor, &k.tensor, &v.tensor, causal).0)
    }
}

/// Attention's backward step; its state is the inputs, the output and the log-sum-exp.
#[derive(Debug)]
struct AttentionBackward;

#[derive(Debug, Clone)]
struct AttentionState {
    inputs: [TchTensor; 3],
    output: TchTensor,
    logsumexp: TchTensor,
    causal: bool,
}

impl Backward<LibTorch, 3> for AttentionBackward {
    type State = AttentionState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let grad = grads.consume::<LibTorch>(&ops.node);
        let AttentionState {
            inputs: [q, k, v],
            output,
            logsumexp,
            causal,
        } = ops.state;
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
        for (parent, grad) in ops.parents.into_iter().zip([grad_q, grad_k, grad_v]) {
            if let Some(parent) = parent {
                grads.register::<LibTorch>(parent.id, TchTensor::new(grad));
            }
        }
    }
}

impl<C: CheckpointStrategy> FusedAttentionOps for Autodiff<LibTorch, C> {
    fn fused_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        causal: bool,
    ) -> FloatTensor<Self> {
        let (q, q_node) = q.into_parts();
        let (k, k_node) = k.into_parts();
        let (v, v_node) = v.into_parts();
        let (output, logsumexp) = flash_forward(&q.tensor, &k.tensor, &v.tensor, causal);
        let output = TchTensor::new(output);
        match AttentionBackward
            .prepare::<C>([q_node, k_node, v_node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let state = AttentionState {
                    inputs: [q, k, v],
                    output: output.clone(),
                    logsumexp: TchTensor::new(logsumexp),
                    causal,
                };
                prep.finish(state, output)
            }
            OpsKind::UnTracked(prep) => prep.finish(output),
        }
    }
}

/// [`FusedAttentionOps::fused_attention`] on tensors.
pub(super) fn attention(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, causal: bool) -> Tensor<4> {
    let output = <Dispatch as FusedAttentionOps>::fused_attention(
        q.into_dispatch(),
        k.into_dispatch(),
        v.into_dispatch(),
        causal,
    );
    Tensor::from_dispatch(output)
}
