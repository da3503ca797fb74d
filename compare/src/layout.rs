//! Where a comparison keeps its files inside its report directory.

use std::path::PathBuf;

use primer_objectives::ObjectiveConfig;

use crate::jobs::Job;
use crate::spec::CompareSpec;

/// Paths inside a report directory.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The report directory.
    pub root: PathBuf,
}

impl Layout {
    /// `compare.json`: the spec.
    pub fn spec(&self) -> PathBuf {
        self.root.join("compare.json")
    }

    /// The shared tokenizer.
    pub fn tokenizer(&self) -> PathBuf {
        self.root.join("tokenizer.json")
    }

    /// Run directories.
    pub fn runs(&self) -> PathBuf {
        self.root.join("runs")
    }

    /// Logs of every job.
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }

    /// Pre-training configs, one TOML file per run, as `primer pretrain --config` reads them.
    pub fn configs(&self) -> PathBuf {
        self.root.join("configs")
    }

    /// The pre-training run of an objective and seed.
    pub fn pretrain_run(&self, objective: &ObjectiveConfig, seed: u64) -> PathBuf {
        self.runs().join(format!("pretrain-{}-s{seed}", slug(objective)))
    }

    /// Where a job writes, and the name of its log.
    pub fn output(&self, spec: &CompareSpec, job: &Job) -> PathBuf {
        match *job {
            Job::Pretrain { objective, seed } => self.pretrain_run(&spec.objectives[objective], seed),
            Job::Eval { objective, seed } => self.pretrain_run(&spec.objectives[objective], seed).join("eval.json"),
            Job::MinimalPairs {
                objective,
                seed,
                untrained,
            } => self.runs().join(format!(
                "minimal-pairs-{}{}-s{seed}.json",
                slug(&spec.objectives[objective]),
                if untrained { "-untrained" } else { "" }
            )),
            Job::Finetune {
                task,
                objective,
                seed,
                budget,
                method,
            } => self.runs().join(format!(
                "{}-{}-{}-{}-s{seed}",
                spec.tasks[task].slug(),
                method.name().replace(' ', "-"),
                slug(&spec.objectives[objective]),
                budget
            )),
            Job::ZeroShot { task, objective, seed } => self.runs().join(format!(
                "{}-zero-shot-{}-s{seed}.json",
                spec.tasks[task].slug(),
                slug(&spec.objectives[objective])
            )),
            Job::KShot {
                task,
                objective,
                seed,
                shots,
            } => self.runs().join(format!(
                "{}-{shots}-shot-{}-s{seed}.json",
                spec.tasks[task].slug(),
                slug(&spec.objectives[objective])
            )),
        }
    }
}

/// An objective's label as a file name: `mlm:span` is `mlm-span`.
pub fn slug(objective: &ObjectiveConfig) -> String {
    objective.label().replace([':', '='], "-")
}
