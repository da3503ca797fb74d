//! Attention for the flex backend, one task per (batch, head): the scores in one `[seq, seq]`
//! buffer, the products on the `gemm` crate that flex's own matmul uses, the softmax in place.
//! The backward recomputes the probabilities from the saved log-sum-exp, as flash attention
//! does, so nothing of size `seq²` outlives a call.

use burn::tensor::TensorData;
use burn_flex::FlexTensor;
use gemm::{Parallelism, gemm};
use rayon::prelude::*;

use super::flex::{dot, exp, sum};

/// A strided matrix in an `f32` buffer.
#[derive(Clone, Copy)]
struct Matrix {
    ptr: *mut f32,
    row_stride: isize,
    col_stride: isize,
}

impl Matrix {
    /// The same memory read as the transpose.
    fn t(self) -> Self {
        Self {
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }
}

/// `dst = scale · lhs · rhs` for `[m, k] · [k, n]`, on the calling thread.
///
/// # Safety
/// Each matrix must address `rows × cols` valid `f32`s through its strides, and `dst` must not
/// overlap the others or be written by another thread meanwhile.
unsafe fn product(m: usize, n: usize, k: usize, dst: Matrix, lhs: Matrix, rhs: Matrix, scale: f32) {
    // SAFETY: forwarded from the caller; gemm reads `lhs` and `rhs` and writes `dst` only.
    unsafe {
        gemm(
            m,
            n,
            k,
            dst.ptr,
            dst.col_stride,
            dst.row_stride,
            false,
            lhs.ptr,
            lhs.col_stride,
            lhs.row_stride,
            rhs.ptr,
            rhs.col_stride,
            rhs.row_stride,
            0.0,
            scale,
            false,
            false,
            false,
            Parallelism::None,
        )
    }
}

/// A `[batch, heads, seq, head_dim]` tensor, strided as flex left it.
struct Heads {
    tensor: FlexTensor,
    dims: [usize; 4],
    strides: [isize; 4],
}

impl Heads {
    fn new(tensor: FlexTensor) -> Self {
        let tensor = if tensor.layout().strides().iter().any(|&stride| stride < 0) {
            tensor.to_contiguous()
        } else {
            tensor
        };
        let layout = tensor.layout();
        let shape = layout.shape();
        let dims = [shape[0], shape[1], shape[2], shape[3]];
        let strides = [0, 1, 2, 3].map(|i| layout.strides()[i]);
        Self { tensor, dims, strides }
    }

    /// Head `h` of batch row `b` as a `[seq, head_dim]` matrix (read only).
    fn matrix(&self, b: usize, h: usize) -> Matrix {
        let data = self.tensor.storage::<f32>();
        let start =
            self.tensor.layout().start_offset() as isize + b as isize * self.strides[0] + h as isize * self.strides[1];
        Matrix {
            // gemm takes `*mut` for every operand; this one is only read.
            ptr: data[start as usize..].as_ptr().cast_mut(),
            row_stride: self.strides[2],
            col_stride: self.strides[3],
        }
    }
}

/// An output buffer laid out `[batch, seq, heads, head_dim]`, written per head by parallel
/// tasks and returned as a `[batch, heads, seq, head_dim]` view, which the caller's merge of
/// the heads then reads without a copy.
struct HeadsOut {
    data: Vec<f32>,
    dims: [usize; 4],
}

/// Where parallel tasks write the heads of a [`HeadsOut`], each task its own heads.
#[derive(Clone, Copy)]
struct HeadsWriter {
    ptr: *mut f32,
    dims: [usize; 4],
}
// SAFETY: shared by tasks that each write only the heads they own; see the users.
unsafe impl Send for HeadsWriter {}
unsafe impl Sync for HeadsWriter {}

impl HeadsWriter {
    /// Head `h` of batch row `b` as a `[seq, head_dim]` matrix.
    fn matrix(self, b: usize, h: usize) -> Matrix {
        let [_, heads, seq, head_dim] = self.dims;
        Matrix {
            ptr: self.ptr.wrapping_add(b * seq * heads * head_dim + h * head_dim),
            row_stride: (heads * head_dim) as isize,
            col_stride: 1,
        }
    }
}

impl HeadsOut {
    fn new([batch, heads, seq, head_dim]: [usize; 4]) -> Self {
        Self {
            data: vec![0.0; batch * heads * seq * head_dim],
            dims: [batch, heads, seq, head_dim],
        }
    }

    fn writer(&mut self) -> HeadsWriter {
        HeadsWriter {
            ptr: self.data.as_mut_ptr(),
            dims: self.dims,
        }
    }

    fn into_tensor(self) -> FlexTensor {
        let [batch, heads, seq, head_dim] = self.dims;
        FlexTensor::from_data(TensorData::new(self.data, [batch, seq, heads, head_dim])).transpose(1, 2)
    }
}

/// Turns a row of scaled scores back into probabilities in place, given the row's
/// log-sum-exp; the columns from `valid` on (a causal row's future) become 0.
fn probabilities(scores: &mut [f32], logsumexp: f32, valid: usize) {
    for score in &mut scores[..valid] {
        *score = exp(*score - logsumexp);
    }
    scores[valid..].fill(0.0);
}

/// The forward kernel: `(output, logsumexp)`.
pub(super) fn forward(q: FlexTensor, k: FlexTensor, v: FlexTensor, causal: bool) -> (FlexTensor, FlexTensor) {
    let (q, k, v) = (Heads::new(q), Heads::new(k), Heads::new(v));
    let [batch, heads, seq, head_dim] = q.dims;
    let scale = (head_dim as f32).powf(-0.5);
    let mut output = HeadsOut::new(q.dims);
    let mut logsumexp = vec![0.0_f32; batch * heads * seq];
    let writer = output.writer();
    logsumexp.par_chunks_mut(seq).enumerate().for_each_init(
        || vec![0.0_f32; seq * seq],
        |scores, (bh, logsumexp)| {
            let (b, h) = (bh / heads, bh % heads);
            let scores_matrix = Matrix {
                ptr: scores.as_mut_ptr(),
                row_stride: seq as isize,
                col_stride: 1,
            };
            // SAFETY: the scratch is this task's; q, k, v are read only; the output rows
            // of head (b, h) are written by this task alone.
            unsafe {
                product(
                    seq,
                    seq,
                    head_dim,
                    scores_matrix,
                    q.matrix(b, h),
                    k.matrix(b, h).t(),
                    scale,
                )
            };
            for (row, (scores, logsumexp)) in scores.chunks_mut(seq).zip(logsumexp.iter_mut()).enumerate() {
                let valid = if causal { row + 1 } else { seq };
                let (scores, future) = scores.split_at_mut(valid);
                let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                for score in scores.iter_mut() {
                    *score = exp(*score - max);
                }
                let total = sum(scores);
                *logsumexp = max + total.ln();
                for score in scores.iter_mut() {
                    *score /= total;
                }
                future.fill(0.0);
            }
            unsafe {
                product(
                    seq,
                    head_dim,
                    seq,
                    writer.matrix(b, h),
                    scores_matrix,
                    v.matrix(b, h),
                    1.0,
                )
            };
        },
    );
    let logsumexp = FlexTensor::from_data(TensorData::new(logsumexp, [batch, heads, seq]));
    (output.into_tensor(), logsumexp)
}

/// The backward kernel: the gradients of `q`, `k` and `v`.
pub(super) fn backward(
    grad: FlexTensor,
    [q, k, v]: [FlexTensor; 3],
    logsumexp: FlexTensor,
    causal: bool,
) -> [FlexTensor; 3] {
    let (grad, q, k, v) = (Heads::new(grad), Heads::new(q), Heads::new(k), Heads::new(v));
    let [_, heads, seq, head_dim] = q.dims;
    let scale = (head_dim as f32).powf(-0.5);
    let logsumexp = logsumexp.to_contiguous();
    let logsumexp = logsumexp.as_slice::<f32>().expect("contiguous f32 log-sum-exp");
    let (mut grad_q, mut grad_k, mut grad_v) = (HeadsOut::new(q.dims), HeadsOut::new(q.dims), HeadsOut::new(q.dims));
    let (q_writer, k_writer, v_writer) = (grad_q.writer(), grad_k.writer(), grad_v.writer());
    logsumexp.par_chunks(seq).enumerate().for_each_init(
        || (vec![0.0_f32; seq * seq], vec![0.0_f32; seq * seq]),
        |(probs, grad_scores), (bh, logsumexp)| {
            let (b, h) = (bh / heads, bh % heads);
            let square = |buffer: &mut Vec<f32>| Matrix {
                ptr: buffer.as_mut_ptr(),
                row_stride: seq as isize,
                col_stride: 1,
            };
            let (probs_matrix, grad_scores_matrix) = (square(probs), square(grad_scores));
            let (q, k, v, grad) = (q.matrix(b, h), k.matrix(b, h), v.matrix(b, h), grad.matrix(b, h));
            // SAFETY: the scratch buffers are this task's; the inputs are read only; the
            // gradient rows of head (b, h) are written by this task alone.
            unsafe {
                product(seq, seq, head_dim, probs_matrix, q, k.t(), scale);
                for (row, probs) in probs.chunks_mut(seq).enumerate() {
                    probabilities(probs, logsumexp[row], if causal { row + 1 } else { seq });
                }
                // dV = Pᵀ dO; dP = dO Vᵀ
                product(seq, head_dim, seq, v_writer.matrix(b, h), probs_matrix.t(), grad, 1.0);
                product(seq, seq, head_dim, grad_scores_matrix, grad, v.t(), 1.0);
            }
            // dS = P ∘ (dP - rowsum(P ∘ dP))
            for (probs, grad_scores) in probs.chunks(seq).zip(grad_scores.chunks_mut(seq)) {
                let weighted = dot(probs, grad_scores);
                for (grad_score, prob) in grad_scores.iter_mut().zip(probs) {
                    *grad_score = prob * (*grad_score - weighted);
                }
            }
            // dQ = scale dS K; dK = scale dSᵀ Q
            unsafe {
                product(seq, head_dim, seq, q_writer.matrix(b, h), grad_scores_matrix, k, scale);
                product(
                    seq,
                    head_dim,
                    seq,
                    k_writer.matrix(b, h),
                    grad_scores_matrix.t(),
                    q,
                    scale,
                );
            }
        },
    );
    [grad_q, grad_k, grad_v].map(HeadsOut::into_tensor)
}
