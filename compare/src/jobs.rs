//! The jobs a comparison runs, in the order they run: pre-training, evaluation, minimal
//! pairs, prompting and fine-tunes, each a child `primer` process.

use serde::{Deserialize, Serialize};

use crate::spec::{CompareSpec, LabelBudget};

/// How a classifier is trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Every weight trained, from the pre-trained encoder.
    Finetune,
    /// The head alone, on the frozen pre-trained encoder.
    Probe,
    /// Every weight trained, from random weights of the same architecture.
    Scratch,
    /// No training: the pre-trained LM is prompted.
    ZeroShot,
    /// No training: the pre-trained LM is prompted after K labelled demonstrations.
    KShot,
    /// K-shot prompting with contextual calibration.
    KShotCalibrated,
    /// Every weight trained, from the pre-trained encoder, on exactly the K demonstrations
    /// k-shot prompting shows.
    ShotFinetune,
}

impl Method {
    /// Name in tables and file names.
    pub fn name(self) -> &'static str {
        match self {
            Self::Finetune => "fine-tune",
            Self::Probe => "probe",
            Self::Scratch => "scratch",
            Self::ZeroShot => "zero-shot",
            Self::KShot => "k-shot",
            Self::KShotCalibrated => "k-shot calibrated",
            Self::ShotFinetune => "shot fine-tune",
        }
    }

    /// The methods that train a classifier, in report order.
    pub const TRAINED: [Method; 3] = [Method::Finetune, Method::Probe, Method::Scratch];
}

/// One unit of work, whose output is an ordinary run directory or a JSON file.
#[derive(Debug, Clone, PartialEq)]
pub enum Job {
    /// A pre-training run.
    Pretrain {
        /// Index into the spec's objectives.
        objective: usize,
        /// Seed.
        seed: u64,
    },
    /// `primer eval --json` of a pre-training run (pseudo-perplexity for MLM).
    Eval {
        /// Index into the spec's objectives.
        objective: usize,
        /// Seed.
        seed: u64,
    },
    /// A fine-tune, probe or from-scratch run.
    Finetune {
        /// Index into the spec's tasks.
        task: usize,
        /// Index into the spec's objectives: the encoder's.
        objective: usize,
        /// Seed.
        seed: u64,
        /// Labels.
        budget: LabelBudget,
        /// How.
        method: Method,
    },
    /// `primer minimal-pairs --json` of a pre-training run, or of its untrained weights.
    MinimalPairs {
        /// Index into the spec's objectives.
        objective: usize,
        /// Seed.
        seed: u64,
        /// The run's initial weights rather than its trained ones.
        untrained: bool,
    },
    /// Zero-shot prompting of a pre-training run.
    ZeroShot {
        /// Index into the spec's tasks.
        task: usize,
        /// Index into the spec's objectives.
        objective: usize,
        /// Seed.
        seed: u64,
    },
    /// K-shot prompting of a pre-training run, calibrated beside uncalibrated, the
    /// demonstrations drawn with the seed.
    KShot {
        /// Index into the spec's tasks.
        task: usize,
        /// Index into the spec's objectives.
        objective: usize,
        /// Seed of the pre-training run and of the demonstrations.
        seed: u64,
        /// Demonstrations per prompt, at least 1.
        shots: usize,
    },
}

impl Job {
    /// Every job of a comparison, in the order they run: pre-training first, since the rest
    /// reads its runs.
    pub fn all(spec: &CompareSpec) -> Vec<Job> {
        let mut jobs = Vec::new();
        for &seed in &spec.seeds {
            for objective in 0..spec.objectives.len() {
                jobs.push(Job::Pretrain { objective, seed });
                jobs.push(Job::Eval { objective, seed });
                if spec.minimal_pairs.is_some() {
                    for untrained in [false, true] {
                        jobs.push(Job::MinimalPairs {
                            objective,
                            seed,
                            untrained,
                        });
                    }
                }
            }
        }
        for task in 0..spec.tasks.len() {
            for &seed in spec.seeds.iter().filter(|_| spec.tasks[task].prompted()) {
                for objective in 0..spec.objectives.len() {
                    jobs.push(Job::ZeroShot { task, objective, seed });
                }
            }
            if spec.tasks[task].prompted() {
                jobs.extend(Self::k_shot(spec, task));
            }
            for &budget in &spec.label_budgets {
                for &seed in &spec.seeds {
                    for objective in 0..spec.objectives.len() {
                        for method in Method::TRAINED {
                            jobs.push(Job::Finetune {
                                task,
                                objective,
                                seed,
                                budget,
                                method,
                            });
                        }
                    }
                }
            }
        }
        jobs
    }

    /// The k-shot jobs of a prompted task: per K above 0, prompting with K demonstrations and
    /// fine-tuning on them, per seed and objective.
    fn k_shot(spec: &CompareSpec, task: usize) -> Vec<Job> {
        let mut jobs = Vec::new();
        for &shots in spec.shots.iter().filter(|&&k| k > 0) {
            for &seed in &spec.seeds {
                for objective in 0..spec.objectives.len() {
                    jobs.push(Job::KShot {
                        task,
                        objective,
                        seed,
                        shots,
                    });
                    jobs.push(Job::Finetune {
                        task,
                        objective,
                        seed,
                        budget: LabelBudget::Count(shots),
                        method: Method::ShotFinetune,
                    });
                }
            }
        }
        jobs
    }

    /// What it is, in a few words.
    pub fn describe(&self, spec: &CompareSpec) -> String {
        match *self {
            Job::Pretrain { objective, seed } => format!("pre-train {} seed {seed}", spec.objectives[objective]),
            Job::Eval { objective, seed } => format!("evaluate {} seed {seed}", spec.objectives[objective]),
            Job::MinimalPairs {
                objective,
                seed,
                untrained,
            } => format!(
                "minimal pairs {}{} seed {seed}",
                spec.objectives[objective],
                if untrained { " untrained" } else { "" }
            ),
            Job::Finetune {
                task,
                objective,
                seed,
                budget,
                method,
            } => format!(
                "{} {} {} labels {budget} seed {seed}",
                spec.tasks[task].name(),
                method.name(),
                spec.objectives[objective]
            ),
            Job::ZeroShot { task, objective, seed } => {
                format!(
                    "{} zero-shot {} seed {seed}",
                    spec.tasks[task].name(),
                    spec.objectives[objective]
                )
            }
            Job::KShot {
                task,
                objective,
                seed,
                shots,
            } => format!(
                "{} {shots}-shot {} seed {seed}",
                spec.tasks[task].name(),
                spec.objectives[objective]
            ),
        }
    }

    /// The kind of job, for time estimates.
    pub fn kind(&self) -> &'static str {
        match self {
            Job::Pretrain { .. } => "pretrain",
            Job::Eval { .. } => "eval",
            Job::MinimalPairs { .. } => "minimal-pairs",
            Job::Finetune { .. } => "finetune",
            Job::ZeroShot { .. } => "zero-shot",
            Job::KShot { .. } => "k-shot",
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::layout::Layout;
    use crate::spec::tests::spec;

    #[test]
    fn every_combination_is_one_job_with_its_own_output() {
        let spec = spec();
        let jobs = Job::all(&spec);
        // 2 objectives x 2 seeds x (pretrain + eval + minimal pairs trained and untrained +
        // zero-shot + 2 budgets x 3 methods).
        assert_eq!(jobs.len(), 2 * 2 * (5 + 2 * 3));
        let layout = Layout { root: "r".into() };
        let mut outputs: Vec<PathBuf> = jobs.iter().map(|j| layout.output(&spec, j)).collect();
        outputs.sort();
        outputs.dedup();
        assert_eq!(outputs.len(), jobs.len());
        assert!(matches!(jobs[0], Job::Pretrain { .. }));
    }

    #[test]
    fn shots_add_prompting_and_a_fine_tune_on_the_same_examples_per_k_above_zero() {
        let mut spec = spec();
        let without = Job::all(&spec);
        spec.shots = vec![0, 4, 16];
        let jobs = Job::all(&spec);
        // Per K of 4 and 16: 2 objectives x 2 seeds x (prompting + fine-tuning on the shots).
        assert_eq!(jobs.len(), without.len() + 2 * 2 * 2 * 2);
        let k_shot = |job: &&Job| matches!(job, Job::KShot { .. });
        assert_eq!(jobs.iter().filter(k_shot).count(), 8);
        assert!(jobs.contains(&Job::Finetune {
            task: 0,
            objective: 1,
            seed: 1,
            budget: LabelBudget::Count(16),
            method: Method::ShotFinetune,
        }));
        let layout = Layout { root: "r".into() };
        let mut outputs: Vec<PathBuf> = jobs.iter().map(|j| layout.output(&spec, j)).collect();
        assert!(
            outputs.iter().all(|o| !o.to_string_lossy().contains(' ')),
            "{outputs:?}"
        );
        outputs.sort();
        outputs.dedup();
        assert_eq!(outputs.len(), jobs.len());
        // A task without a prompt gets neither.
        spec.tasks[0].template = None;
        assert!(!Job::all(&spec).iter().any(|j| matches!(j, Job::KShot { .. })));
    }
}
