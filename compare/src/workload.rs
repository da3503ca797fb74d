//! What each job of a comparison processes, for the time estimates of its progress view.

use super::jobs::{Job, Method};
use super::spec::{CompareSpec, LabelBudget, PairsSpec};

/// Tokens in a minimal pair's sentence, about.
const SENTENCE_TOKENS: usize = 12;

/// Size of a task, for time estimates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskSize {
    /// Labelled training examples.
    pub train: usize,
    /// Dev examples, scored after every fine-tuning epoch.
    pub dev: usize,
    /// Labels, each scored per dev example by zero-shot prompting.
    pub labels: usize,
}

/// What each job processes, for time estimates: a job's work is the token positions of its
/// passes, a training pass (forward and backward) counting three.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// Tokens one pre-training run trains on.
    pub pretrain_tokens: f64,
    /// Tokens one evaluation of a pre-trained run reads.
    pub eval_tokens: f64,
    /// Tokens of a fine-tuning example at most (the fine-tuning context).
    pub example_tokens: f64,
    /// Each task's size, in `CompareSpec::tasks` order.
    pub tasks: Vec<TaskSize>,
}

impl Workload {
    /// The work of `job`; fine-tunes count every epoch, though early stopping may end them sooner.
    pub fn of(&self, spec: &CompareSpec, job: &Job) -> f64 {
        match *job {
            Job::Pretrain { .. } => 3.0 * self.pretrain_tokens,
            Job::Eval { .. } => self.eval_tokens,
            // Two sentences of about a dozen tokens per pair.
            Job::MinimalPairs { objective, .. } => {
                let pairs = spec.minimal_pairs.as_ref().map_or(0, PairsSpec::approximate_pairs) as f64;
                let rows = 2 * spec.objectives[objective].info().scoring.rows(SENTENCE_TOKENS);
                pairs * rows as f64 * SENTENCE_TOKENS as f64
            }
            Job::ZeroShot { task, .. } => {
                let size = self.tasks[task];
                (size.dev * size.labels) as f64 * self.example_tokens
            }
            // Each prompt holds the demonstrations and the text, once per label.
            Job::KShot { task, shots, .. } => {
                let size = self.tasks[task];
                (size.dev * size.labels * (shots + 1)) as f64 * self.example_tokens
            }
            Job::Finetune {
                task, budget, method, ..
            } => {
                let size = self.tasks[task];
                let examples = match budget {
                    LabelBudget::Count(n) => n,
                    LabelBudget::All => size.train,
                } as f64;
                let passes = if method == Method::Probe { 1.0 } else { 3.0 };
                spec.finetune.epochs as f64 * (passes * examples + size.dev as f64) * self.example_tokens
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::tests::spec;

    #[test]
    fn work_grows_with_tokens_examples_and_passes() {
        let spec = spec();
        let workload = Workload {
            pretrain_tokens: 1000.0,
            eval_tokens: 50.0,
            example_tokens: 10.0,
            tasks: vec![TaskSize {
                train: 500,
                dev: 20,
                labels: 2,
            }],
        };
        let objective = 0;
        let finetune = |budget, method| Job::Finetune {
            task: 0,
            objective,
            seed: 0,
            budget,
            method,
        };
        let work = |job: &Job| workload.of(&spec, job);
        assert_eq!(work(&Job::Pretrain { objective, seed: 0 }), 3000.0);
        assert_eq!(work(&Job::Eval { objective, seed: 0 }), 50.0);
        assert_eq!(
            work(&Job::ZeroShot {
                task: 0,
                objective,
                seed: 0
            }),
            400.0
        );
        // 10 epochs of (3 passes over 100 examples + the 20 dev examples) of 10 tokens.
        assert_eq!(work(&finetune(LabelBudget::Count(100), Method::Finetune)), 32_000.0);
        assert_eq!(work(&finetune(LabelBudget::Count(100), Method::Scratch)), 32_000.0);
        assert_eq!(work(&finetune(LabelBudget::Count(100), Method::Probe)), 12_000.0);
        assert_eq!(work(&finetune(LabelBudget::All, Method::Finetune)), 152_000.0);
    }
}
