//! Divergence caught before its weights are applied or checkpointed.

use primer_objectives::{LmBatch, Objective};

use crate::checkpoint::Checkpointer;
use crate::config::RunConfig;
use crate::error::TrainError;
use crate::loss_scale::LossScale;
use crate::networks::Networks;
use crate::run_dir::RunDir;

/// A training loss above this many times the uniform baseline (the objective's chance loss,
/// `ln V` for a language model) counts as divergence: an untrained model starts near it, and one
/// this far above it assigns the targets less probability than guessing would, so only a
/// blown-up run reaches it.
pub(crate) const DIVERGED_BASELINES: f64 = 2.0;

/// Catches divergence before its weights are applied or checkpointed.
pub(crate) struct DivergenceGuard<'a> {
    /// The run's objective, which scores the probe.
    pub objective: &'a dyn Objective,
    /// The largest training loss that is not divergence.
    pub loss_limit: f64,
    /// The run's config, whose settings the error names.
    pub config: &'a RunConfig,
    /// The run, which the error names.
    pub run_dir: &'a RunDir,
}

impl DivergenceGuard<'_> {
    /// Fails when a step's loss or gradient norm shows divergence. `grad_norm` is `None` for a
    /// float16 step skipped for overflowing gradients, which is no divergence unless
    /// `loss_scale` has collapsed.
    pub fn check(
        &self,
        step: u64,
        loss: f64,
        grad_norm: Option<f64>,
        loss_scale: Option<&LossScale>,
        checkpointer: &Checkpointer,
    ) -> Result<(), TrainError> {
        if let Some(scale) = loss_scale.filter(|scale| scale.collapsed()) {
            return Err(TrainError::Invalid(format!(
                "float16 gradients of {} still overflow at loss scale {} after {} skipped steps (step {step}): train with --precision bf16 or f32",
                self.run_dir.root.display(),
                scale.scale,
                scale.skipped_steps
            )));
        }
        if loss.is_finite() && loss <= self.loss_limit && grad_norm.is_none_or(f64::is_finite) {
            return Ok(());
        }
        let grad_norm = grad_norm.unwrap_or(f64::INFINITY);
        Err(self.diverged(
            &format!("at step {step} (training loss {loss:.4e}, gradient norm {grad_norm:.4e})"),
            checkpointer,
        ))
    }

    /// Fails when the weights about to be checkpointed after `step` diverge on the next
    /// step's first micro-batch: a checkpoint is never of diverged weights.
    pub fn probe(
        &self,
        networks: &Networks,
        next: Vec<LmBatch>,
        step: u64,
        checkpointer: &Checkpointer,
    ) -> Result<(), TrainError> {
        let batch = next.into_iter().next().expect("one micro-batch");
        let (model, companion) = networks.model_and_companion();
        let sums = self.objective.loss(model, companion, batch);
        let loss = sums.nll.into_scalar::<f64>() / sums.n_targets.max(1) as f64;
        if loss.is_finite() && loss <= self.loss_limit {
            return Ok(());
        }
        Err(self.diverged(
            &format!("after step {step} (loss {loss:.4e} on the next batch)"),
            checkpointer,
        ))
    }

    fn diverged(&self, when: &str, checkpointer: &Checkpointer) -> TrainError {
        let last_good = match checkpointer.list().ok().and_then(|all| all.last().cloned()) {
            Some(path) => format!("the last good checkpoint is {}", path.display()),
            None => "no checkpoint was written".to_string(),
        };
        let train = &self.config.train;
        let clip = if train.grad_clip > 0.0 {
            ""
        } else {
            " or set --grad-clip 1"
        };
        TrainError::Invalid(format!(
            "training of {} diverged {when}, above {:.2} = {DIVERGED_BASELINES} x the uniform baseline {:.2} (vocabulary {}); {last_good}: start over with a lower --lr (now {}){clip}",
            self.run_dir.root.display(),
            self.loss_limit,
            self.loss_limit / DIVERGED_BASELINES,
            self.config.model.vocab_size,
            train.lr
        ))
    }
}
