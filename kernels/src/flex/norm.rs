//! LayerNorm over contiguous `f32` rows, parallel over rows.

use burn_flex::FlexTensor;
use rayon::prelude::*;

use super::ROWS_PER_TASK;
use super::math::{add_into, contiguous, dims, dot, floats, sum, sum_of_squares, tensor};

/// Saves the per-row mean and reciprocal standard deviation, `[rows]` each.
pub(super) fn forward(
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

pub(super) fn backward(
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
