//! GELU with the exact error function, element-wise in parallel chunks.

use burn_flex::FlexTensor;
use rayon::prelude::*;

use super::ELEMENTS_PER_TASK;
use super::math::{contiguous, erf, exp, floats, tensor};

pub(super) fn forward(x: FlexTensor) -> FlexTensor {
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

pub(super) fn grad(grad: FlexTensor, x: FlexTensor) -> FlexTensor {
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
