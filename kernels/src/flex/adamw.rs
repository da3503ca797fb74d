//! One AdamW update of a parameter and its moments, element-wise in parallel chunks.

use burn_flex::FlexTensor;
use rayon::prelude::*;

use super::ELEMENTS_PER_TASK;
use super::math::{contiguous, floats, tensor};
use crate::AdamWStep;

pub(super) fn step(
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
