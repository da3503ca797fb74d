//! Fused kernels for the flex backend: LayerNorm and GELU over contiguous `f32` rows, parallel
//! over rows with rayon (flex's own thread pool) in loops the compiler vectorises; linear
//! layers as single gemm calls. Attention is in [`flex_attention`].

use burn::backend::Flex;
use burn_flex::FlexTensor;
use gemm::Parallelism;
use rayon::prelude::*;

use super::flex_math::{
    add_into, contiguous, dims, dot, erf, exp, floats, matmul, row_major, row_major_mut, sum, sum_of_squares, tensor,
};
use super::{AdamWStep, FusedKernels, flex_attention};
use crate::AttentionMode;

/// Rows per parallel task: enough work to amortise a task at `d_model` 64 and up.
const ROWS_PER_TASK: usize = 16;
/// Elements per parallel task of an element-wise kernel.
const ELEMENTS_PER_TASK: usize = 8192;
/// gemm on all of rayon's threads.
const ALL_THREADS: Parallelism = Parallelism::Rayon(0);

impl FusedKernels for Flex {
    /// Saves the per-row mean and reciprocal standard deviation, `[rows]` each.
    fn layer_norm_forward(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
    ) -> (FlexTensor, [FlexTensor; 2]) {
        let [rows, d] = dims(&x);
        let (x, gamma, beta) = (contiguous(x), contiguous(gamma), contiguous(beta));
        let (x, gamma, beta) = (floats(&x), floats(&gamma), floats(&beta));
        let mut output = vec![0.0; rows * d];
        let mut mean = vec![0.0; rows];
        let mut rstd = vec![0.0; rows];
        output
            .par_chunks_mut(d)
            .zip(x.par_chunks(d))
            .zip(mean.par_iter_mut().zip(rstd.par_iter_mut()))
            .with_min_len(ROWS_PER_TASK)
            .for_each(|((out, x), (mean, rstd))| {
                let mu = sum(x) / d as f32;
                let var = sum_of_squares(x, mu) / d as f32;
                let r = 1.0 / (var + epsilon as f32).sqrt();
                for (((out, x), gamma), beta) in out.iter_mut().zip(x).zip(gamma).zip(beta) {
                    *out = (x - mu) * r * gamma + beta;
                }
                (*mean, *rstd) = (mu, r);
            });
        (
            tensor(output, vec![rows, d]),
            [tensor(mean, vec![rows]), tensor(rstd, vec![rows])],
        )
    }

    fn layer_norm_backward(
        grad: FlexTensor,
        x: FlexTensor,
        gamma: FlexTensor,
        [mean, rstd]: [FlexTensor; 2],
    ) -> [FlexTensor; 3] {
        let [rows, d] = dims(&x);
        let (grad, x, gamma) = (contiguous(grad), contiguous(x), contiguous(gamma));
        let (grad, x, gamma, mean, rstd) = (floats(&grad), floats(&x), floats(&gamma), floats(&mean), floats(&rstd));
        let mut grad_x = vec![0.0; rows * d];
        let rows_per_block = ROWS_PER_TASK * 4;
        // Each block of rows adds its rows' gamma and beta gradients into its own partial sums.
        let partials: Vec<(Vec<f32>, Vec<f32>)> = grad_x
            .par_chunks_mut(rows_per_block * d)
            .zip(grad.par_chunks(rows_per_block * d))
            .zip(x.par_chunks(rows_per_block * d))
            .zip(mean.par_chunks(rows_per_block).zip(rstd.par_chunks(rows_per_block)))
            .map(|(((grad_x, grad), x), (mean, rstd))| {
                let mut grad_gamma = vec![0.0; d];
                let mut grad_beta = vec![0.0; d];
                let mut xhat = vec![0.0; d];
                let mut grad_xhat = vec![0.0; d];
                for row in 0..mean.len() {
                    let span = row * d..(row + 1) * d;
                    let (grad, x, grad_x) = (&grad[span.clone()], &x[span.clone()], &mut grad_x[span]);
                    let (mu, r) = (mean[row], rstd[row]);
                    for i in 0..d {
                        xhat[i] = (x[i] - mu) * r;
                        grad_xhat[i] = grad[i] * gamma[i];
                        grad_gamma[i] += grad[i] * xhat[i];
                        grad_beta[i] += grad[i];
                    }
                    let mean_grad = sum(&grad_xhat) / d as f32;
                    let mean_grad_xhat = dot(&grad_xhat, &xhat) / d as f32;
                    for i in 0..d {
                        grad_x[i] = r * (grad_xhat[i] - mean_grad - xhat[i] * mean_grad_xhat);
                    }
                }
                (grad_gamma, grad_beta)
            })
            .collect();
        let mut grad_gamma = vec![0.0; d];
        let mut grad_beta = vec![0.0; d];
        for (gamma_part, beta_part) in partials {
            add_into(&mut grad_gamma, &gamma_part);
            add_into(&mut grad_beta, &beta_part);
        }
        [
            tensor(grad_x, vec![rows, d]),
            tensor(grad_gamma, vec![d]),
            tensor(grad_beta, vec![d]),
        ]
    }

    /// The bias written into the output rows, then the product added onto it by gemm: no
    /// zero-fill and no separate pass for the bias.
    fn linear_forward(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
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
    fn linear_backward(grad: FlexTensor, x: FlexTensor, weight: FlexTensor) -> [FlexTensor; 3] {
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

    fn adamw(
        param: FlexTensor,
        grad: FlexTensor,
        moment_1: FlexTensor,
        moment_2: FlexTensor,
        step: AdamWStep,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let shape = param.layout().shape().to_vec();
        let [param, grad, moment_1, moment_2] = [param, grad, moment_1, moment_2].map(contiguous);
        let [param, grad, moment_1, moment_2] = [&param, &grad, &moment_1, &moment_2].map(floats);
        let (correction_1, correction_2) = step.bias_corrections();
        let (beta_1, beta_2, epsilon) = (step.beta_1, step.beta_2, step.epsilon);
        let (lr, decay) = (step.lr as f32, 1.0 - (step.lr * step.weight_decay as f64) as f32);
        let len = param.len();
        let (mut new_param, mut new_moment_1, mut new_moment_2) = (vec![0.0; len], vec![0.0; len], vec![0.0; len]);
        new_param
            .par_chunks_mut(ELEMENTS_PER_TASK)
            .zip(new_moment_1.par_chunks_mut(ELEMENTS_PER_TASK))
            .zip(new_moment_2.par_chunks_mut(ELEMENTS_PER_TASK))
            .enumerate()
            .for_each(|(task, ((new_param, new_moment_1), new_moment_2))| {
                let span = task * ELEMENTS_PER_TASK..(task * ELEMENTS_PER_TASK + new_param.len());
                let (param, grad) = (&param[span.clone()], &grad[span.clone()]);
                let (moment_1, moment_2) = (&moment_1[span.clone()], &moment_2[span]);
                for i in 0..new_param.len() {
                    let m = beta_1 * moment_1[i] + (1.0 - beta_1) * grad[i];
                    let v = beta_2 * moment_2[i] + (1.0 - beta_2) * grad[i] * grad[i];
                    let update = (m / correction_1) / ((v / correction_2).sqrt() + epsilon);
                    new_param[i] = param[i] * decay - lr * update;
                    (new_moment_1[i], new_moment_2[i]) = (m, v);
                }
            });
        (
            tensor(new_param, shape.clone()),
            tensor(new_moment_1, shape.clone()),
            tensor(new_moment_2, shape),
        )
    }

    fn gelu_forward(x: FlexTensor) -> FlexTensor {
        let shape = x.layout().shape().to_vec();
        let x = contiguous(x);
        let mut output = vec![0.0; x.layout().num_elements()];
        output
            .par_chunks_mut(ELEMENTS_PER_TASK)
            .zip(floats(&x).par_chunks(ELEMENTS_PER_TASK))
            .for_each(|(out, x)| {
                for (out, &x) in out.iter_mut().zip(x) {
                    *out = 0.5 * x * (1.0 + erf(x * core::f32::consts::FRAC_1_SQRT_2));
                }
            });
        tensor(output, shape)
    }

    fn gelu_grad(grad: FlexTensor, x: FlexTensor) -> FlexTensor {
        let shape = x.layout().shape().to_vec();
        let (grad, x) = (contiguous(grad), contiguous(x));
        let inv_sqrt_2pi = 0.5 * core::f32::consts::FRAC_2_SQRT_PI * core::f32::consts::FRAC_1_SQRT_2;
        let mut grad_x = vec![0.0; x.layout().num_elements()];
        grad_x
            .par_chunks_mut(ELEMENTS_PER_TASK)
            .zip(floats(&grad).par_chunks(ELEMENTS_PER_TASK))
            .zip(floats(&x).par_chunks(ELEMENTS_PER_TASK))
            .for_each(|((grad_x, grad), x)| {
                for ((grad_x, &grad), &x) in grad_x.iter_mut().zip(grad).zip(x) {
                    let cdf = 0.5 * (1.0 + erf(x * core::f32::consts::FRAC_1_SQRT_2));
                    let pdf = inv_sqrt_2pi * exp(-0.5 * x * x);
                    *grad_x = grad * (cdf + x * pdf);
                }
            });
        tensor(grad_x, shape)
    }

    fn attention_forward(
        qkv: FlexTensor,
        rotary: Option<FlexTensor>,
        heads: usize,
        mode: AttentionMode,
    ) -> (FlexTensor, FlexTensor) {
        flex_attention::forward(qkv, rotary, heads, mode)
    }

    fn attention_backward(
        grad: FlexTensor,
        qkv: FlexTensor,
        rotary: Option<FlexTensor>,
        _output: FlexTensor,
        logsumexp: FlexTensor,
        heads: usize,
        mode: AttentionMode,
    ) -> FlexTensor {
        flex_attention::backward(grad, qkv, rotary, logsumexp, heads, mode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_libm_to_single_precision() {
        let worst = (-6000..=6000)
            .map(|i| i as f32 * 1e-3)
            .map(|x| (erf(x) - libm_erf(x)).abs())
            .fold(0.0_f32, f32::max);
        // A few units in the last place of values near 1 (6e-8 each).
        assert!(worst < 4e-7, "largest error {worst}");
    }

    #[test]
    fn exp_matches_std_in_relative_error() {
        let worst = (0..=87_000)
            .map(|i| -(i as f32) * 1e-3)
            .map(|x| ((exp(x) - x.exp()) / x.exp()).abs())
            .fold(0.0_f32, f32::max);
        assert!(worst < 3e-7, "largest relative error {worst}");
        assert!(exp(-200.0) < 1e-37);
    }

    fn libm_erf(x: f32) -> f32 {
        libm::erf(x as f64) as f32
    }
}
