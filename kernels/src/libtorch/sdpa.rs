//! libtorch's scaled-dot-product attention kernels, forward and backward, on the device of the
//! queries: on the CPU the flash kernel, on CUDA the memory-efficient one (the kernel PyTorch's
//! `scaled_dot_product_attention` picks for f32 and for masked attention; tch 0.22 binds no
//! forward of CUDA's flash kernel). Neither materialises the `[batch, heads, seq, seq]` scores.

use tch::{Kind, Tensor};

use crate::AttentionMode;

/// The memory-efficient kernel's mask type for causal attention (PyTorch's
/// `sdp::CustomMaskType::CausalFromTopLeft`; 0 is no mask).
const CAUSAL_FROM_TOP_LEFT: i64 = 1;

/// Attention of queries, keys and values `[batch, heads, seq, head_dim]` in `mode`: the output
/// `[batch, heads, seq, head_dim]` and the log-sum-exp of each query's scaled scores (CUDA pads
/// its last dimension to a multiple of 32).
pub(super) fn forward(q: &Tensor, k: &Tensor, v: &Tensor, mode: &AttentionMode) -> (Tensor, Tensor) {
    let causal = *mode == AttentionMode::Causal;
    if q.device().is_cuda() {
        let bias = cuda_bias(mode, q);
        let (output, logsumexp, _seed, _offset) =
            Tensor::internal_scaled_dot_product_efficient_attention(q, k, v, bias.as_ref(), true, 0.0, causal, None);
        return (output, logsumexp);
    }
    Tensor::internal_scaled_dot_product_flash_attention_for_cpu(q, k, v, 0.0, causal, prefix_mask(mode, q), None)
}

/// The gradients of [`forward`] with respect to the queries, keys and values, from the output's
/// gradient `grad`, the output and the log-sum-exp.
pub(super) fn backward(
    grad: &Tensor,
    [q, k, v]: [&Tensor; 3],
    output: &Tensor,
    logsumexp: &Tensor,
    mode: &AttentionMode,
) -> (Tensor, Tensor, Tensor) {
    let causal = *mode == AttentionMode::Causal;
    if !q.device().is_cuda() {
        return Tensor::internal_scaled_dot_product_flash_attention_for_cpu_backward(
            grad,
            q,
            k,
            v,
            output,
            logsumexp,
            0.0,
            causal,
            prefix_mask(mode, q),
            None,
        );
    }
    // As PyTorch's `_scaled_dot_product_efficient_attention_backward_cuda`: the kernel reads
    // `[batch, seq, heads, head_dim]`. Without dropout it reads no random state: the seed and
    // offset are the empty tensors its forward returns.
    let t = |x: &Tensor| x.transpose(1, 2);
    let unused = Tensor::empty([], (Kind::Int64, tch::Device::Cpu));
    let mask_type = if causal { CAUSAL_FROM_TOP_LEFT } else { 0 };
    let (grad_q, grad_k, grad_v, _grad_bias) = Tensor::internal_efficient_attention_backward(
        &t(grad),
        &t(q),
        &t(k),
        &t(v),
        cuda_bias(mode, q).as_ref(),
        &t(output),
        None::<&Tensor>,
        None::<&Tensor>,
        q.size()[2],
        k.size()[2],
        logsumexp,
        0.0,
        &unused,
        &unused,
        mask_type,
        false,
        None,
        None,
        None,
        false,
    );
    (t(&grad_q), t(&grad_k), t(&grad_v))
}

/// [`prefix_mask`] as CUDA's memory-efficient kernel takes a bias: one per head, its rows 16
/// elements apart (PyTorch's `preprocess_mask` pads them so).
fn cuda_bias(mode: &AttentionMode, queries: &Tensor) -> Option<Tensor> {
    let mask = prefix_mask(mode, queries)?;
    let size = queries.size();
    let keys = size[2];
    let padded = (keys + 15) / 16 * 16;
    let aligned = mask.constant_pad_nd([0, padded - keys]).narrow(3, 0, keys);
    Some(aligned.expand([size[0], size[1], size[2], keys], false))
}

/// The additive mask of [`AttentionMode::Prefix`] for queries `[batch, heads, seq, head_dim]`:
/// `[batch, 1, seq, seq]`, 0 where a query sees a key and minus infinity where not; `None` for
/// the other modes, which the kernels mask themselves.
fn prefix_mask(mode: &AttentionMode, queries: &Tensor) -> Option<Tensor> {
    let AttentionMode::Prefix(_) = mode else {
        return None;
    };
    let size = queries.size();
    let (batch, seq) = (size[0] as usize, size[2] as usize);
    let mut mask = vec![f32::NEG_INFINITY; batch * seq * seq];
    for (b, rows) in mask.chunks_mut(seq * seq).enumerate() {
        for (query, row) in rows.chunks_mut(seq).enumerate() {
            row[..mode.visible_keys(b, query, seq)].fill(0.0);
        }
    }
    let mask = Tensor::from_slice(&mask).view([batch as i64, 1, seq as i64, seq as i64]);
    Some(mask.to_device(queries.device()).to_kind(queries.kind()))
}
