//! Fused kernels for the flex backend: LayerNorm and GELU over contiguous `f32` rows, parallel
//! over rows with rayon (flex's own thread pool) in loops the compiler vectorises; linear
//! layers as single gemm calls; attention one task per head. The arithmetic they share is in
//! [`math`].

mod adamw;
mod attention;
mod gelu;
mod linear;
mod math;
mod norm;

use burn::backend::Flex;
use burn_flex::FlexTensor;
use gemm::Parallelism;

use crate::{AdamWStep, AttentionMode, FusedKernels};

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
        norm::forward(x, gamma, beta, epsilon)
    }

    fn layer_norm_backward(
        grad: FlexTensor,
        x: FlexTensor,
        gamma: FlexTensor,
        saved: [FlexTensor; 2],
    ) -> [FlexTensor; 3] {
        norm::backward(grad, x, gamma, saved)
    }

    fn linear_forward(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
        linear::forward(x, weight, bias)
    }

    fn linear_backward(grad: FlexTensor, x: FlexTensor, weight: FlexTensor) -> [FlexTensor; 3] {
        linear::backward(grad, x, weight)
    }

    fn adamw(
        param: FlexTensor,
        grad: FlexTensor,
        moment_1: FlexTensor,
        moment_2: FlexTensor,
        step: AdamWStep,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        adamw::step(param, grad, moment_1, moment_2, step)
    }

    fn gelu_forward(x: FlexTensor) -> FlexTensor {
        gelu::forward(x)
    }

    fn gelu_grad(grad: FlexTensor, x: FlexTensor) -> FlexTensor {
        gelu::grad(grad, x)
    }

    fn attention_forward(
        qkv: FlexTensor,
        rotary: Option<FlexTensor>,
        heads: usize,
        mode: AttentionMode,
    ) -> (FlexTensor, FlexTensor) {
        attention::forward(qkv, rotary, heads, mode)
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
        attention::backward(grad, qkv, rotary, logsumexp, heads, mode)
    }
}
