//! Attention for the flex backend, straight from the fused `qkv` projection: one task per
//! (batch, head) gathers its queries and keys (rotated, with rotary positions), keeps the
//! scores in one `[seq, seq]` buffer, multiplies on the `gemm` crate that flex's own matmul
//! uses, and writes its columns of the merged output. The backward recomputes the
//! probabilities from the saved log-sum-exp, as flash attention does, and writes the
//! gradient of `qkv` directly: no head split, merge, rotation or mask is ever a tensor op.

use burn::tensor::TensorData;
use burn_flex::FlexTensor;
use gemm::Parallelism;
use rayon::prelude::*;

use super::math::{Matrix, contiguous, dot, exp, floats, matmul, row_major_mut, sum};
use crate::AttentionMode;

/// `dst = scale · lhs · rhs` for `[m, k] · [k, n]`, on the calling thread: attention runs
/// one task per head already.
///
/// # Safety
/// As [`matmul`]'s.
unsafe fn product(m: usize, n: usize, k: usize, dst: Matrix, lhs: Matrix, rhs: Matrix, scale: f32) {
    // SAFETY: forwarded from the caller.
    unsafe { matmul([m, n, k], dst, lhs, rhs, scale, false, Parallelism::None) }
}

/// The sizes of one call: `qkv` is `[batch, seq, 3 · heads · head_dim]`.
#[derive(Clone, Copy)]
struct Sizes {
    batch: usize,
    seq: usize,
    heads: usize,
    head_dim: usize,
}

impl Sizes {
    fn of(qkv: &FlexTensor, heads: usize) -> Self {
        let shape = qkv.layout().shape();
        Self {
            batch: shape[0],
            seq: shape[1],
            heads,
            head_dim: shape[2] / 3 / heads,
        }
    }

    fn d_model(self) -> usize {
        self.heads * self.head_dim
    }

    /// Offset of head `h`'s `part` (0 queries, 1 keys, 2 values) at position 0 of batch row
    /// `b`, in a `[batch, seq, parts · d_model]` buffer.
    fn offset(self, parts: usize, b: usize, part: usize, h: usize) -> usize {
        b * self.seq * parts * self.d_model() + part * self.d_model() + h * self.head_dim
    }

    /// Head `h`'s `part` of batch row `b` in a `[batch, seq, parts · d_model]` buffer, as a
    /// `[seq, head_dim]` matrix.
    fn matrix(self, ptr: *mut f32, parts: usize, b: usize, part: usize, h: usize) -> Matrix {
        Matrix {
            ptr: ptr.wrapping_add(self.offset(parts, b, part, h)),
            row_stride: (parts * self.d_model()) as isize,
            col_stride: 1,
        }
    }
}

/// A pointer into a buffer that parallel tasks write, each task only the heads it owns.
#[derive(Clone, Copy)]
struct Shared(*mut f32);
// SAFETY: shared by tasks that each write only their own heads' columns; see the users.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    /// The pointer (a method, so that closures capture the whole `Shared`, not its field).
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// Copies head `h`'s queries (`part` 0) or keys (1) of batch row `b` into `dst`
/// (`[seq, head_dim]`), rotated by `angles` if given.
fn gather(qkv: &[f32], sizes: Sizes, b: usize, part: usize, h: usize, angles: Option<&[f32]>, dst: &mut [f32]) {
    let start = sizes.offset(3, b, part, h);
    let row_stride = 3 * sizes.d_model();
    for (t, dst) in dst.chunks_mut(sizes.head_dim).enumerate() {
        let src = &qkv[start + t * row_stride..][..sizes.head_dim];
        match angles {
            Some(angles) => rotate(src, &angles[t * 2 * sizes.head_dim..][..2 * sizes.head_dim], dst),
            None => dst.copy_from_slice(src),
        }
    }
}

/// Rotary positions of one row: each pair `(a, b)` becomes
/// `(a cos - b sin, b cos + a sin)`, with `angles` the row's `[head_dim, (cos, sin)]`.
fn rotate(x: &[f32], angles: &[f32], dst: &mut [f32]) {
    for ((dst, x), angles) in dst
        .chunks_exact_mut(2)
        .zip(x.chunks_exact(2))
        .zip(angles.chunks_exact(4))
    {
        let [cos_a, sin_a, cos_b, sin_b] = [angles[0], angles[1], angles[2], angles[3]];
        dst[0] = x[0] * cos_a - x[1] * sin_a;
        dst[1] = x[1] * cos_b + x[0] * sin_b;
    }
}

/// Writes the `[seq, head_dim]` `grads` into their strided place `dst`, through the transpose
/// of [`rotate`] if `angles` are given (which carries a gradient back through the rotation).
///
/// # Safety
/// `dst` must address `seq` rows of `head_dim` contiguous floats that no one else accesses
/// meanwhile.
unsafe fn scatter(grads: &[f32], sizes: Sizes, angles: Option<&[f32]>, dst: Matrix) {
    for (t, grad) in grads.chunks(sizes.head_dim).enumerate() {
        // SAFETY: forwarded from the caller.
        let row = unsafe {
            std::slice::from_raw_parts_mut(dst.ptr.wrapping_offset(t as isize * dst.row_stride), sizes.head_dim)
        };
        match angles {
            Some(angles) => {
                let angles = &angles[t * 2 * sizes.head_dim..][..2 * sizes.head_dim];
                for ((row, grad), angles) in row
                    .chunks_exact_mut(2)
                    .zip(grad.chunks_exact(2))
                    .zip(angles.chunks_exact(4))
                {
                    let [cos_a, sin_a, cos_b, sin_b] = [angles[0], angles[1], angles[2], angles[3]];
                    row[0] = grad[0] * cos_a + grad[1] * sin_b;
                    row[1] = grad[1] * cos_b - grad[0] * sin_a;
                }
            }
            None => row.copy_from_slice(grad),
        }
    }
}

/// Scaled scores `q kᵀ / sqrt(head_dim)` into `scores`, from gathered queries and keys.
fn scores(sizes: Sizes, queries: &mut [f32], keys: &mut [f32], scores: &mut [f32]) {
    let (seq, head_dim) = (sizes.seq, sizes.head_dim);
    let scale = (head_dim as f32).powf(-0.5);
    let (queries, keys) = (row_major_mut(queries, head_dim), row_major_mut(keys, head_dim));
    // SAFETY: three distinct buffers of this task, of the sizes the strides say.
    unsafe { product(seq, seq, head_dim, row_major_mut(scores, seq), queries, keys.t(), scale) };
}

/// The forward kernel: the output `[batch, seq, d_model]` and each query's log-sum-exp
/// `[batch, heads, seq]`.
pub(super) fn forward(
    qkv: FlexTensor,
    rotary: Option<FlexTensor>,
    heads: usize,
    mode: AttentionMode,
) -> (FlexTensor, FlexTensor) {
    let sizes = Sizes::of(&qkv, heads);
    let Sizes {
        batch, seq, head_dim, ..
    } = sizes;
    let (qkv, rotary) = (contiguous(qkv), rotary.map(contiguous));
    let (qkv, angles) = (floats(&qkv), rotary.as_ref().map(floats));
    let mut output = vec![0.0_f32; batch * seq * sizes.d_model()];
    let mut logsumexp = vec![0.0_f32; batch * heads * seq];
    let output_ptr = Shared(output.as_mut_ptr());
    logsumexp.par_chunks_mut(seq).enumerate().for_each_init(
        || [seq * head_dim, seq * head_dim, seq * seq].map(|len| vec![0.0_f32; len]),
        |[queries, keys, probs], (bh, logsumexp)| {
            let (b, h) = (bh / heads, bh % heads);
            gather(qkv, sizes, b, 0, h, angles, queries);
            gather(qkv, sizes, b, 1, h, angles, keys);
            scores(sizes, queries, keys, probs);
            for (row, (probs, logsumexp)) in probs.chunks_mut(seq).zip(logsumexp.iter_mut()).enumerate() {
                let (probs, future) = probs.split_at_mut(mode.visible_keys(b, row, seq));
                let max = probs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                for score in probs.iter_mut() {
                    *score = exp(*score - max);
                }
                let total = sum(probs);
                *logsumexp = max + total.ln();
                for prob in probs.iter_mut() {
                    *prob /= total;
                }
                future.fill(0.0);
            }
            let values = sizes.matrix(qkv.as_ptr().cast_mut(), 3, b, 2, h);
            let output = sizes.matrix(output_ptr.get(), 1, b, 0, h);
            // SAFETY: the values are read only; head (b, h)'s columns of the output are
            // written by this task alone.
            unsafe { product(seq, head_dim, seq, output, row_major_mut(probs, seq), values, 1.0) };
        },
    );
    let output = FlexTensor::from_data(TensorData::new(output, [batch, seq, sizes.d_model()]));
    let logsumexp = FlexTensor::from_data(TensorData::new(logsumexp, [batch, heads, seq]));
    (output, logsumexp)
}

/// The backward kernel: the gradient of `qkv`, `[batch, seq, 3 · d_model]`.
pub(super) fn backward(
    grad: FlexTensor,
    qkv: FlexTensor,
    rotary: Option<FlexTensor>,
    logsumexp: FlexTensor,
    heads: usize,
    mode: AttentionMode,
) -> FlexTensor {
    let sizes = Sizes::of(&qkv, heads);
    let Sizes {
        batch, seq, head_dim, ..
    } = sizes;
    let scale = (head_dim as f32).powf(-0.5);
    let (grad, qkv, rotary, logsumexp) = (
        contiguous(grad),
        contiguous(qkv),
        rotary.map(contiguous),
        contiguous(logsumexp),
    );
    let (grad, qkv, angles, logsumexp) = (
        floats(&grad),
        floats(&qkv),
        rotary.as_ref().map(floats),
        floats(&logsumexp),
    );
    let mut grad_qkv = vec![0.0_f32; batch * seq * 3 * sizes.d_model()];
    let grad_qkv_ptr = Shared(grad_qkv.as_mut_ptr());
    logsumexp.par_chunks(seq).enumerate().for_each_init(
        || {
            let head = || vec![0.0_f32; seq * head_dim];
            let square = || vec![0.0_f32; seq * seq];
            (head(), head(), head(), head(), square(), square())
        },
        |(queries, keys, grad_queries, grad_keys, probs, grad_scores), (bh, logsumexp)| {
            let (b, h) = (bh / heads, bh % heads);
            gather(qkv, sizes, b, 0, h, angles, queries);
            gather(qkv, sizes, b, 1, h, angles, keys);
            scores(sizes, queries, keys, probs);
            for (row, probs) in probs.chunks_mut(seq).enumerate() {
                let (probs, future) = probs.split_at_mut(mode.visible_keys(b, row, seq));
                for prob in probs.iter_mut() {
                    *prob = exp(*prob - logsumexp[row]);
                }
                future.fill(0.0);
            }
            let grad_output = sizes.matrix(grad.as_ptr().cast_mut(), 1, b, 0, h);
            let values = sizes.matrix(qkv.as_ptr().cast_mut(), 3, b, 2, h);
            let (probs_matrix, grad_scores_matrix) = (row_major_mut(probs, seq), row_major_mut(grad_scores, seq));
            // SAFETY: the inputs are read only; the scratch buffers are this task's; head
            // (b, h)'s columns of the gradient are written by this task alone.
            unsafe {
                // dV = Pᵀ dO; dP = dO Vᵀ
                let grad_values = sizes.matrix(grad_qkv_ptr.get(), 3, b, 2, h);
                product(seq, head_dim, seq, grad_values, probs_matrix.t(), grad_output, 1.0);
                product(seq, seq, head_dim, grad_scores_matrix, grad_output, values.t(), 1.0);
            }
            // dS = P ∘ (dP - rowsum(P ∘ dP))
            for (probs, grad_scores) in probs.chunks(seq).zip(grad_scores.chunks_mut(seq)) {
                let weighted = dot(probs, grad_scores);
                for (grad_score, prob) in grad_scores.iter_mut().zip(probs) {
                    *grad_score = prob * (*grad_score - weighted);
                }
            }
            // dQ = scale dS K; dK = scale dSᵀ Q, then back through the rotation.
            let (queries, keys) = (row_major_mut(queries, head_dim), row_major_mut(keys, head_dim));
            unsafe {
                product(
                    seq,
                    head_dim,
                    seq,
                    row_major_mut(grad_queries, head_dim),
                    grad_scores_matrix,
                    keys,
                    scale,
                );
                product(
                    seq,
                    head_dim,
                    seq,
                    row_major_mut(grad_keys, head_dim),
                    grad_scores_matrix.t(),
                    queries,
                    scale,
                );
            }
            // SAFETY: head (b, h)'s query and key columns are written by this task alone.
            unsafe {
                scatter(
                    grad_queries,
                    sizes,
                    angles,
                    sizes.matrix(grad_qkv_ptr.get(), 3, b, 0, h),
                );
                scatter(grad_keys, sizes, angles, sizes.matrix(grad_qkv_ptr.get(), 3, b, 1, h));
            }
        },
    );
    FlexTensor::from_data(TensorData::new(grad_qkv, [batch, seq, 3 * sizes.d_model()]))
}
