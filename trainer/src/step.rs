//! One optimisation step: its micro-batches, and their gradients accumulated, summed over the
//! group and clipped.

use std::time::Instant;

use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::Device;
use primer_datasets::blocks::{BlockStream, read_blocks};
use primer_objectives::{LmBatch, Objective, batch_seed};

use crate::checkpoint::TrainState;
use crate::collective::{Collective, sum_gradients};
use crate::networks::Networks;
use crate::optim::{clip_global_norm, scale_grads};
use crate::run::PretrainJob;

/// What one optimizer step measured.
pub(crate) struct StepResult {
    /// Summed negative log-likelihood of the step's targets, in nats, over every rank.
    pub nll: f64,
    /// Targets that were the model's top prediction.
    pub correct: i64,
    /// Targets of the step.
    pub targets: usize,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
    /// Seconds spent in the sums over ranks.
    pub sync_s: f64,
}

/// The micro-batches numbered `micros` of the step after `state`, on `device`.
pub(crate) fn step_batches(
    job: &PretrainJob,
    objective: &dyn Objective,
    stream: &mut BlockStream,
    state: &TrainState,
    device: &Device,
    micros: &[usize],
) -> Vec<LmBatch> {
    let train = &job.config.train;
    let block_len = objective.info().block_len(train.seq_len);
    let step = state.step + 1;
    micros
        .iter()
        .map(|&micro| {
            let cursor = state.cursor + (micro * train.batch_size) as u64;
            let blocks = read_blocks(&job.data.train, &stream.starts(cursor, train.batch_size), block_len);
            objective.batch(&blocks, batch_seed(train.seed, step, micro as u64), device)
        })
        .collect()
}

/// Forward and backward passes over this process's micro-batches of a step, the gradients
/// accumulated, summed over the group and clipped.
///
/// With a `loss_scale` (float16), the loss is multiplied by it before each backward pass and
/// the summed gradients divided by it before they are measured and clipped.
pub(crate) fn gradient_step(
    networks: &Networks,
    batches: Vec<LmBatch>,
    objective: &dyn Objective,
    grad_clip: f64,
    loss_scale: Option<f64>,
    collective: &dyn Collective,
) -> (StepResult, GradientsParams) {
    // Normalise by the targets of the whole accumulated batch (of every rank), not per
    // micro-batch, so accumulation, and its sum over ranks, equal one large batch even when MLM
    // draws uneven mask counts.
    let mut targets = [batches.iter().map(|b| objective.n_targets(b)).sum::<usize>() as f64];
    let synced = Instant::now();
    collective.sum_f64(&mut targets);
    let mut sync_s = synced.elapsed().as_secs_f64();
    let targets = targets[0] as usize;
    let mut accumulator = GradientsAccumulator::new();
    let (mut nll, mut correct) = (0.0, 0i64);
    for batch in batches {
        let (model, companion) = networks.model_and_companion();
        let sums = objective.loss(model, companion, batch);
        let mut loss = sums.nll.clone().div_scalar(targets as f64);
        if let Some(scale) = loss_scale {
            loss = loss.mul_scalar(scale);
        }
        accumulator.accumulate(networks, GradientsParams::from_grads(loss.backward(), networks));
        nll += sums.nll.into_scalar::<f64>();
        correct += sums.correct.into_scalar::<i64>();
    }
    let mut grads = accumulator.grads();
    let synced = Instant::now();
    sum_gradients(networks, &mut grads, collective);
    let mut sums = [nll, correct as f64];
    collective.sum_f64(&mut sums);
    sync_s += synced.elapsed().as_secs_f64();
    let (nll, correct) = (sums[0], sums[1] as i64);
    if let Some(scale) = loss_scale {
        scale_grads(networks, &mut grads, 1.0 / scale);
    }
    let grad_norm = clip_global_norm(networks, &mut grads, grad_clip);
    let result = StepResult {
        nll,
        correct,
        targets,
        grad_norm,
        sync_s,
    };
    (result, grads)
}
