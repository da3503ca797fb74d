//! What a fine-tuning run measures: classification metrics, the records of `metrics.jsonl`
//! and `summary.json`.

use std::time::Instant;

use primer_objectives::ObjectiveConfig;
use serde::{Deserialize, Serialize};

use super::Start;
use crate::metrics::Split;
use crate::tui::{DashboardRecord, Plotted};

/// Classification metrics over a set of examples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    /// Mean cross-entropy, nats.
    pub loss: f64,
    /// Share of examples whose most likely label is right.
    pub accuracy: f64,
    /// F1 averaged over labels with equal weight.
    pub macro_f1: f64,
    /// Examples scored.
    pub examples: usize,
}

impl ClassMetrics {
    /// Metrics of predicted label probabilities against the true labels.
    pub fn of(probabilities: &[Vec<f32>], labels: &[usize], n_labels: usize) -> Self {
        let predicted = predicted_labels(probabilities);
        let loss = probabilities
            .iter()
            .zip(labels)
            .map(|(p, &label)| -(p[label].max(1e-12) as f64).ln())
            .sum::<f64>()
            / labels.len().max(1) as f64;
        let correct = predicted.iter().zip(labels).filter(|(p, l)| p == l).count();
        Self {
            loss,
            accuracy: correct as f64 / labels.len().max(1) as f64,
            macro_f1: macro_f1(&predicted, labels, n_labels),
            examples: labels.len(),
        }
    }
}

/// The most likely label of each example.
pub fn predicted_labels(probabilities: &[Vec<f32>]) -> Vec<usize> {
    probabilities
        .iter()
        .map(|p| primer_model::generate::argmax(p) as usize)
        .collect()
}

/// F1 per label (0 where a label is never predicted nor present), averaged.
pub fn macro_f1(predicted: &[usize], labels: &[usize], n_labels: usize) -> f64 {
    let f1 = |label: usize| {
        let tp = predicted
            .iter()
            .zip(labels)
            .filter(|&(&p, &l)| p == label && l == label)
            .count() as f64;
        let predicted_n = predicted.iter().filter(|&&p| p == label).count() as f64;
        let actual_n = labels.iter().filter(|&&l| l == label).count() as f64;
        if predicted_n + actual_n == 0.0 {
            0.0
        } else {
            2.0 * tp / (predicted_n + actual_n)
        }
    };
    (0..n_labels).map(f1).sum::<f64>() / n_labels as f64
}

/// One line of a fine-tuning run's `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinetuneRecord {
    /// Optimizer step (1-based).
    pub step: u64,
    /// Epoch (1-based).
    pub epoch: usize,
    /// Split.
    pub split: Split,
    /// Mean cross-entropy, nats.
    pub loss: f64,
    /// Accuracy.
    pub accuracy: f64,
    /// Macro-F1 (valid only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub macro_f1: Option<f64>,
    /// Learning rate.
    pub lr: f64,
    /// Examples per second of the step (train) or the evaluation (valid).
    pub examples_per_s: f64,
    /// Wall-clock seconds so far.
    pub elapsed_s: f64,
}

impl FinetuneRecord {
    /// A record of `step` in `epoch` at learning rate `lr`, `started` when fine-tuning began,
    /// its values zero until set.
    pub(super) fn at(step: u64, epoch: usize, split: Split, lr: f64, started: &Instant) -> Self {
        Self {
            step,
            epoch,
            split,
            loss: 0.0,
            accuracy: 0.0,
            macro_f1: None,
            lr,
            examples_per_s: 0.0,
            elapsed_s: started.elapsed().as_secs_f64(),
        }
    }

    /// The validation record of `metrics`, measured at `examples_per_s`, in `at`'s step.
    pub(super) fn valid(metrics: &ClassMetrics, examples_per_s: f64, at: Self) -> Self {
        Self {
            loss: metrics.loss,
            accuracy: metrics.accuracy,
            macro_f1: Some(metrics.macro_f1),
            examples_per_s,
            ..at
        }
    }
}

impl DashboardRecord for FinetuneRecord {
    const PLOTTED: &'static [Plotted] = &[
        ("Loss", None, false),
        ("Accuracy", Some("%"), true),
        ("Macro-F1", Some("%"), true),
        ("Learning rate", None, false),
        ("Examples/s", None, true),
    ];

    fn step(&self) -> u64 {
        self.step
    }

    fn plotted_values(&self) -> Vec<f64> {
        vec![
            self.loss,
            self.accuracy * 100.0,
            self.macro_f1.unwrap_or(f64::NAN) * 100.0,
            self.lr,
            self.examples_per_s,
        ]
    }

    fn system(&self) -> (Option<f64>, Option<f64>) {
        (None, None)
    }

    fn progress_line(&self, total_steps: u64) -> String {
        let (split, f1) = match (self.split, self.macro_f1) {
            (Split::Valid, Some(f1)) => ("valid", format!(" macro-F1 {f1:.4}")),
            _ => ("train", String::new()),
        };
        format!(
            "step {:>5}/{total_steps} epoch {} {split} loss {:.4} acc {:.4}{f1} | lr {:.2e} | {:.0} ex/s | {:.0}s",
            self.step, self.epoch, self.loss, self.accuracy, self.lr, self.examples_per_s, self.elapsed_s
        )
    }
}

/// `summary.json` of a fine-tuning run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinetuneSummary {
    /// The task.
    pub task: String,
    /// Pre-trained or from scratch.
    pub start: Start,
    /// Linear probe.
    pub freeze_encoder: bool,
    /// The pre-training objective of the encoder.
    pub objective: ObjectiveConfig,
    /// Training examples.
    pub train_examples: usize,
    /// The epoch whose weights were kept (best validation accuracy).
    pub best_epoch: usize,
    /// Epochs run (fewer than configured when early stopping ended the run).
    pub epochs_run: usize,
    /// Optimizer steps run.
    pub steps: u64,
    /// Validation metrics of the kept weights.
    pub valid: ClassMetrics,
    /// The label index the kept weights predict for each validation example, in order (for
    /// paired comparisons between runs).
    #[serde(default)]
    pub valid_predicted: Vec<usize>,
    /// Parameters trained (the head alone for a probe).
    pub trained_parameters: usize,
    /// Wall-clock seconds.
    pub wall_time_s: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macro_f1_weighs_labels_equally() {
        // Always predicting the majority label: F1 1/1.5 for it, 0 for the other.
        let f1 = macro_f1(&[0, 0, 0, 0], &[0, 0, 0, 1], 2);
        assert!((f1 - (2.0 * 3.0 / 7.0) / 2.0).abs() < 1e-12, "{f1}");
        assert_eq!(macro_f1(&[1, 0], &[1, 0], 2), 1.0);
        let metrics = ClassMetrics::of(&[vec![0.9, 0.1], vec![0.2, 0.8]], &[0, 0], 2);
        assert_eq!(metrics.accuracy, 0.5);
        assert!((metrics.loss - (-(0.9f64.ln()) - (0.2f64.ln())) / 2.0).abs() < 1e-6);
    }
}
