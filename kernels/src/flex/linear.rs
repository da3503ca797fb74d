//! Linear layers as single gemm calls over all rows.

use burn_flex::FlexTensor;
use rayon::prelude::*;

use super::math::{add_into, contiguous, dims, floats, matmul, row_major, row_major_mut, tensor};
use super::{ALL_THREADS, ROWS_PER_TASK};

/// The bias written into the output rows, then the product added onto it by gemm: no
/// zero-fill and no separate pass for the bias.
pub(super) fn forward(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
    let ([rows, d_input], [_, d_output]) = (dims(&x), dims(&weight));
    let (x, weight, bias) = (contiguous(x), contiguous(weight), contiguous(bias));
    let mut output = Vec::with_capacity(rows * d_output);
    for _ in 0..rows {
        output.extend_from_slice(floats(&bias));
    }
    let (x, weight) = (row_major(&x, d_input), row_major(&weight, d_output));
    // SAFETY: `output` holds `rows × d_output` floats, apart from the read-only inputs.
    let output_rows = row_major_mut(&mut output, d_output);
    unsafe {
        matmul(
            [rows, d_output, d_input],
            output_rows,
            x,
            weight,
            1.0,
            true,
            ALL_THREADS,
        )
    };
    tensor(output, vec![rows, d_output])
}

/// `grad weightᵀ`, `xᵀ grad` and the column sums of `grad`, the transposes read through
/// strides rather than copied.
pub(super) fn backward(grad: FlexTensor, x: FlexTensor, weight: FlexTensor) -> [FlexTensor; 3] {
    let ([rows, d_input], [_, d_output]) = (dims(&x), dims(&weight));
    let (grad, x, weight) = (contiguous(grad), contiguous(x), contiguous(weight));
    let mut grad_x = vec![0.0; rows * d_input];
    let mut grad_weight = vec![0.0; d_input * d_output];
    let (grad_rows, x_rows) = (row_major(&grad, d_output), row_major(&x, d_input));
    // SAFETY: each output buffer holds the floats its product writes, apart from the
    // read-only inputs.
    unsafe {
        let grad_x_rows = row_major_mut(&mut grad_x, d_input);
        let weight_t = row_major(&weight, d_output).t();
        matmul(
            [rows, d_input, d_output],
            grad_x_rows,
            grad_rows,
            weight_t,
            1.0,
            false,
            ALL_THREADS,
        );
        let grad_weight_rows = row_major_mut(&mut grad_weight, d_output);
        matmul(
            [d_input, d_output, rows],
            grad_weight_rows,
            x_rows.t(),
            grad_rows,
            1.0,
            false,
            ALL_THREADS,
        );
    }
    let grad_bias = floats(&grad)
        .par_chunks(ROWS_PER_TASK * 4 * d_output)
        .map(|block| {
            let mut sums = vec![0.0; d_output];
            for row in block.chunks(d_output) {
                add_into(&mut sums, row);
            }
            sums
        })
        .reduce(
            || vec![0.0; d_output],
            |mut total, part| {
                add_into(&mut total, &part);
                total
            },
        );
    [
        tensor(grad_x, vec![rows, d_input]),
        tensor(grad_weight, vec![d_input, d_output]),
        tensor(grad_bias, vec![d_output]),
    ]
}
