//! primer's trainer: the pre-training and fine-tuning loops, evaluation, checkpoints, metrics,
//! run directories and the terminal UI. It takes a [`burn::tensor::Device`] and never names a backend.

pub mod checkpoint;
pub mod collective;
pub mod config;
mod divergence;
pub mod error;
pub mod eval;
pub mod finetune;
pub mod finite;
pub mod loss_scale;
pub mod memory;
pub mod metrics;
pub mod mfu;
pub mod networks;
pub mod optim;
pub mod record;
pub mod run;
pub mod run_dir;
pub mod schedule;
pub mod status;
mod step;
pub mod tensorboard;
pub mod tui;

pub use error::TrainError;

#[cfg(test)]
pub(crate) mod tests {
    use crate::config::TrainConfig;

    /// A small valid configuration for unit tests.
    pub fn train_config() -> TrainConfig {
        TrainConfig {
            steps: 10,
            batch_size: 2,
            grad_accum: 1,
            seq_len: 8,
            lr: 1e-3,
            min_lr: 1e-4,
            warmup_steps: 2,
            weight_decay: 0.1,
            beta1: 0.9,
            beta2: 0.95,
            grad_clip: 1.0,
            eval_every: 5,
            eval_batches: 2,
            checkpoint_every: 5,
            keep_checkpoints: 2,
            seed: 1,
            precision: Default::default(),
        }
    }
}
