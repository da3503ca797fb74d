//! Fused kernels for the libtorch backend, on libtorch's own native ops: the ones PyTorch's
//! `nn.LayerNorm`, `nn.GELU`, `nn.Linear` and `scaled_dot_product_attention` call, on the CPU
//! or CUDA (whichever device the tensors are on); on CUDA, AdamW is libtorch's fused kernel,
//! through a C++ shim (tch 0.22 generates no bindings for tensor-list ops).

// burn-tch is deprecated upstream; primer keeps it for PyTorch parity.
#![allow(deprecated)]

use burn::backend::LibTorch;
use burn_tch::TchTensor;
use tch::Kind;

use super::{AdamWStep, FusedKernels};
use crate::AttentionMode;

mod fused_adamw;
mod sdpa;

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

    /// In ten libtorch ops: tch 0.22 does not expose `native_layer_norm_backward`.
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

    /// One `addmm`, as PyTorch's `nn.Linear`.
    fn linear_forward(x: TchTensor, weight: TchTensor, bias: TchTensor) -> TchTensor {
        TchTensor::new(bias.tensor.addmm(&x.tensor, &weight.tensor))
    }

    fn linear_backward(grad: TchTensor, x: TchTensor, weight: TchTensor) -> [TchTensor; 3] {
        let grad_x = grad.tensor.mm(&weight.tensor.tr());
        let grad_weight = x.tensor.tr().mm(&grad.tensor);
        let grad_bias = grad
            .tensor
            .sum_dim_intlist([0_i64].as_slice(), false, grad.tensor.kind());
        [grad_x, grad_weight, grad_bias].map(TchTensor::new)
    }

    /// On CUDA, libtorch's fused AdamW: one kernel, in place (on copies of tensors whose memory
    /// others share). On the CPU, libtorch ops on the new moments as PyTorch's single-tensor
    /// AdamW, whose rounding CPU runs have always had.
    fn adamw(
        param: TchTensor,
        grad: TchTensor,
        moment_1: TchTensor,
        moment_2: TchTensor,
        step: AdamWStep,
    ) -> (TchTensor, TchTensor, TchTensor) {
        if param.tensor.device().is_cuda() {
            let [mut param, mut moment_1, mut moment_2] = [param, moment_1, moment_2].map(writable);
            fused_adamw::step(
                &mut param.tensor,
                &grad.tensor,
                &mut moment_1.tensor,
                &mut moment_2.tensor,
                step,
            );
            return (param, moment_1, moment_2);
        }
        let (correction_1, correction_2) = step.bias_corrections();
        let (beta_1, beta_2) = (step.beta_1 as f64, step.beta_2 as f64);
        let grad = &grad.tensor;
        let moment_1 = moment_1.tensor.lerp(grad, 1.0 - beta_1);
        let mut moment_2 = &moment_2.tensor * beta_2;
        let _ = moment_2.addcmul_(&(grad * (1.0 - beta_2)), grad);
        let mut denominator = moment_2.sqrt();
        let _ = denominator
            .g_div_scalar_(correction_2.sqrt() as f64)
            .g_add_scalar_(step.epsilon as f64);
        let mut param = &param.tensor * (1.0 - step.lr * step.weight_decay as f64);
        let _ = param.addcdiv_(&(&moment_1 * (-step.lr / correction_1 as f64)), &denominator);
        (
            TchTensor::new(param),
            TchTensor::new(moment_1),
            TchTensor::new(moment_2),
        )
    }

    fn gelu_forward(x: TchTensor) -> TchTensor {
        TchTensor::new(x.tensor.gelu("none"))
    }

    fn gelu_grad(grad: TchTensor, x: TchTensor) -> TchTensor {
        TchTensor::new(x.tensor.gelu_backward(&grad.tensor, "none"))
    }

    /// libtorch's own attention kernels (see [`sdpa`]), which never materialise the
    /// `[batch, heads, seq, seq]` scores.
    fn attention_forward(
        qkv: TchTensor,
        rotary: Option<TchTensor>,
        heads: usize,
        mode: AttentionMode,
    ) -> (TchTensor, TchTensor) {
        let [q, k, v] = split_heads(&qkv.tensor, rotary.as_ref(), heads);
        let (output, logsumexp) = sdpa::forward(&q, &k, &v, &mode);
        (TchTensor::new(merge_heads(&output)), TchTensor::new(logsumexp))
    }

    fn attention_backward(
        grad: TchTensor,
        qkv: TchTensor,
        rotary: Option<TchTensor>,
        output: TchTensor,
        logsumexp: TchTensor,
        heads: usize,
        mode: AttentionMode,
    ) -> TchTensor {
        let [q, k, v] = split_heads(&qkv.tensor, rotary.as_ref(), heads);
        let [grad, output] = [grad, output].map(|t| split_merged(&t.tensor, heads));
        let (grad_q, grad_k, grad_v) = sdpa::backward(&grad, [&q, &k, &v], &output, &logsumexp.tensor, &mode);
        let [grad_q, grad_k] = [grad_q, grad_k].map(|grad| match &rotary {
            Some(angles) => unrotate(&grad, &angles.tensor),
            None => grad,
        });
        // [3, batch, heads, seq, head_dim] -> [batch, seq, 3, heads, head_dim]
        let parts = tch::Tensor::stack(&[grad_q, grad_k, grad_v], 0).permute([1, 3, 0, 2, 4]);
        let size = qkv.tensor.size();
        TchTensor::new(parts.reshape(size))
    }
}

/// `tensor`, or a copy where another tensor shares its memory: what an in-place update may
/// write.
fn writable(tensor: TchTensor) -> TchTensor {
    match tensor.can_mut() {
        true => tensor,
        false => TchTensor::new(tensor.tensor.copy()),
    }
}

/// `qkv` `[batch, seq, 3 * d_model]` as queries, keys and values `[batch, heads, seq,
/// head_dim]`, the queries and keys rotated by `rotary` if given.
fn split_heads(qkv: &tch::Tensor, rotary: Option<&TchTensor>, heads: usize) -> [tch::Tensor; 3] {
    let size = qkv.size();
    let (batch, seq, heads) = (size[0], size[1], heads as i64);
    let head_dim = size[2] / 3 / heads;
    // [3, batch, heads, seq, head_dim]
    let parts = qkv.view([batch, seq, 3, heads, head_dim]).permute([2, 0, 3, 1, 4]);
    let [q, k, v] = [0, 1, 2].map(|part| parts.select(0, part));
    match rotary {
        Some(angles) => [rotate(&q, &angles.tensor), rotate(&k, &angles.tensor), v],
        None => [q, k, v],
    }
}

/// `[batch, heads, seq, head_dim]` -> `[batch, seq, heads * head_dim]`.
fn merge_heads(x: &tch::Tensor) -> tch::Tensor {
    let size = x.size();
    x.transpose(1, 2).reshape([size[0], size[2], size[1] * size[3]])
}

/// The inverse of [`merge_heads`].
fn split_merged(x: &tch::Tensor, heads: usize) -> tch::Tensor {
    let size = x.size();
    let heads = heads as i64;
    x.view([size[0], size[1], heads, size[2] / heads]).transpose(1, 2)
}

/// Each pair `(a, b)` of the head width as `(-b, a)`.
fn swap_pairs(x: &tch::Tensor) -> tch::Tensor {
    let size = x.size();
    let mut pairs = size.clone();
    let last = pairs.pop().unwrap_or_default();
    pairs.extend([last / 2, 2]);
    let pairs = x.reshape(pairs);
    tch::Tensor::stack(&[pairs.select(-1, 1).neg(), pairs.select(-1, 0)], -1).reshape(size)
}

/// Rotary positions: `x cos + swap_pairs(x) sin`, with `angles` `[seq, head_dim, (cos, sin)]`.
fn rotate(x: &tch::Tensor, angles: &tch::Tensor) -> tch::Tensor {
    x * angles.select(2, 0) + swap_pairs(x) * angles.select(2, 1)
}

/// The transpose of [`rotate`], which carries a gradient back through it:
/// `g cos - swap_pairs(g sin)`.
fn unrotate(grad: &tch::Tensor, angles: &tch::Tensor) -> tch::Tensor {
    grad * angles.select(2, 0) - swap_pairs(&(grad * angles.select(2, 1)))
}
