//! Every number of a comparison, read back from its run directories: `results.json`.

use std::path::Path;

use anyhow::Context;
use primer_objectives::ObjectiveConfig;
use primer_trainer::metrics::{Split, read_metrics};
use primer_trainer::run::Summary;
use primer_trainer::run_dir::RunDir;
use serde::{Deserialize, Serialize};

use super::jobs::{Job, Method};
use super::layout::Layout;
use super::spec::{CompareSpec, LabelBudget};
use super::stats::{BOOTSTRAP_ITERATIONS, bootstrap_difference, mean_std};

/// `results.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    /// What was compared.
    pub spec: CompareSpec,
    /// The command that started the comparison.
    pub command: String,
    /// Where it ran.
    pub machine: Machine,
    /// One entry per pre-training run.
    pub pretrain: Vec<PretrainResult>,
    /// The quantities that must match between objectives, and whether they do.
    pub fairness: Vec<FairnessRow>,
    /// Downstream results per task.
    pub tasks: Vec<TaskResult>,
    /// Wall time and size of every fine-tuning run.
    pub finetune_runs: Vec<FinetuneRun>,
    /// Minimal-pair accuracy per objective, when the comparison scores pairs.
    #[serde(default)]
    pub minimal_pairs: Option<super::pairs::PairsResult>,
}

/// The machine and backend.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    /// CPU model.
    pub cpu: String,
    /// Logical CPUs available.
    pub cpus: usize,
    /// Operating system.
    pub os: String,
    /// Backend name.
    pub backend: String,
    /// Device given with `--device`, if any.
    pub device: Option<String>,
    /// primer's version.
    pub primer_version: String,
}

impl Machine {
    /// This machine, running `backend`.
    pub fn this(backend: &str, device: Option<String>) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")
                    .and_then(|r| r.split_once(':'))
                    .map(|(_, v)| v.trim())
            })
            .unwrap_or("unknown")
            .to_string();
        let os = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_string()))
            })
            .unwrap_or_else(|| std::env::consts::OS.to_string());
        Self {
            cpu,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            os,
            backend: backend.to_string(),
            device,
            primer_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

/// One pre-training run's numbers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PretrainResult {
    /// Run directory, relative to the report.
    pub run: String,
    /// Objective.
    pub objective: ObjectiveConfig,
    /// Seed.
    pub seed: u64,
    /// Trainable parameters.
    pub parameters: usize,
    /// Optimizer steps.
    pub steps: u64,
    /// Input tokens seen.
    pub tokens_seen: u64,
    /// Training wall time, seconds.
    pub wall_time_s: f64,
    /// Input tokens per second over the run.
    pub tokens_per_s: f64,
    /// Peak resident memory, GB.
    pub peak_rss_gb: Option<f64>,
    /// Final validation loss (nats per predicted token: next token for clm, masked token for mlm).
    pub valid_loss: f64,
    /// Final validation accuracy (next-token for clm, masked-token for mlm).
    pub valid_accuracy: f64,
    /// Final validation bits per byte (meaningful for clm only).
    pub valid_bpb: f64,
    /// Pseudo-perplexity (mlm only).
    pub pseudo_ppl: Option<f64>,
    /// The objective's own final validation metrics, by key.
    #[serde(default)]
    pub objective_metrics: std::collections::BTreeMap<String, f64>,
    /// The unigram baseline the metrics are read against (absent in reports made before it).
    #[serde(default)]
    pub unigram: Option<Unigram>,
    /// The validation curve.
    pub curve: Vec<CurvePoint>,
}

/// One validation of a pre-training run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Step.
    pub step: u64,
    /// Input tokens seen by then.
    pub tokens_seen: u64,
    /// Loss, nats.
    pub loss: f64,
    /// Accuracy.
    pub accuracy: f64,
    /// Bits per byte.
    pub bpb: f64,
    /// Minimal-pair accuracy on the run's subset, when it scored one.
    #[serde(default)]
    pub minimal_pairs: Option<f64>,
    /// The objective's own metrics, by key.
    #[serde(default)]
    pub objective_metrics: std::collections::BTreeMap<String, f64>,
}

/// A matched quantity: its value per objective, and whether they agree.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FairnessRow {
    /// What is matched.
    pub quantity: String,
    /// The value per objective, formatted, in the spec's objective order.
    pub values: Vec<String>,
    /// Whether the values agree (wall time: within 20%).
    pub matched: bool,
}

/// One task's results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskResult {
    /// The task as given.
    pub task: String,
    /// Label names.
    pub labels: Vec<String>,
    /// Training examples in the full task.
    pub train_examples: usize,
    /// Validation examples.
    pub valid_examples: usize,
    /// Accuracy of always answering the most frequent validation label.
    pub majority_accuracy: f64,
    /// One cell per objective, method and label budget (zero-shot: no budget).
    pub cells: Vec<Cell>,
    /// Paired differences with bootstrap confidence intervals.
    pub comparisons: Vec<Comparison>,
    /// What the k-shot prompts lost to fit the context, per objective and K (none without
    /// k-shot rows).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shot_cuts: Vec<super::shots::ShotCuts>,
}

/// Accuracy over seeds of one objective, method and label budget.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cell {
    /// Pre-training objective.
    pub objective: ObjectiveConfig,
    /// How the classifier was made.
    pub method: Method,
    /// Label budget; `None` for zero-shot.
    pub budget: Option<LabelBudget>,
    /// Labelled examples actually used.
    pub labels_used: usize,
    /// Dev accuracy per seed, in the spec's seed order.
    pub accuracies: Vec<f64>,
    /// Mean over seeds.
    pub mean: f64,
    /// Sample standard deviation over seeds (0 with one seed).
    pub std: f64,
    /// Run directories (or JSON files), relative to the report.
    pub runs: Vec<String>,
    /// Per seed, whether each validation example was classified right.
    #[serde(skip)]
    pub correct: Vec<Vec<bool>>,
}

/// A difference between two cells at one label budget.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Comparison {
    /// Label budget; `None` on minimal pairs.
    pub budget: Option<LabelBudget>,
    /// The first cell, e.g. `mlm fine-tune`.
    pub a: String,
    /// The second cell.
    pub b: String,
    /// Mean accuracy of a minus b, over seeds.
    pub difference: f64,
    /// 2.5th percentile of the bootstrap difference.
    pub ci_low: f64,
    /// 97.5th percentile of the bootstrap difference.
    pub ci_high: f64,
    /// Whether the interval excludes zero.
    pub supported: bool,
}

impl Comparison {
    /// The difference of `a` over `b` in accuracy, with its paired bootstrap interval.
    pub fn of(
        budget: Option<LabelBudget>,
        a: String,
        a_correct: &[Vec<bool>],
        b: String,
        b_correct: &[Vec<bool>],
    ) -> Self {
        let (difference, ci_low, ci_high) = bootstrap_difference(a_correct, b_correct, BOOTSTRAP_ITERATIONS, 0);
        Self {
            budget,
            a,
            b,
            difference,
            ci_low,
            ci_high,
            supported: ci_low > 0.0 || ci_high < 0.0,
        }
    }

    /// The comparison in words.
    pub fn sentence(&self) -> String {
        let points = |x: f64| format!("{:.1}", x * 100.0);
        let ci = |low: f64, high: f64| format!("95% CI {} to {} points", points(low), points(high));
        let at = match self.budget {
            Some(budget) => format!("At {budget} labels"),
            None => "On the minimal pairs".into(),
        };
        if !self.supported {
            format!(
                "{at}, {} and {} differ by {} points ({}): the data does not support a difference.",
                self.a,
                self.b,
                points(self.difference),
                ci(self.ci_low, self.ci_high)
            )
        } else {
            // The interval of the winner's lead over the loser.
            let (winner, loser, low, high) = if self.difference > 0.0 {
                (&self.a, &self.b, self.ci_low, self.ci_high)
            } else {
                (&self.b, &self.a, -self.ci_high, -self.ci_low)
            };
            format!(
                "{at}, {winner} beats {loser} by {} points ({}): the data supports this.",
                points(self.difference.abs()),
                ci(low, high)
            )
        }
    }
}

/// One fine-tuning run's size and time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FinetuneRun {
    /// Run directory, relative to the report.
    pub run: String,
    /// Training examples.
    pub train_examples: usize,
    /// Optimizer steps.
    pub steps: u64,
    /// Parameters trained.
    pub trained_parameters: usize,
    /// Wall time, seconds.
    pub wall_time_s: f64,
}

/// What `primer eval --json` wrote.
#[derive(Debug, Deserialize)]
struct EvalReport {
    pseudo_ppl: Option<f64>,
    unigram_baseline: Unigram,
}

/// The validation numbers of a model that knows only the train split's token frequencies.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Unigram {
    /// Cross-entropy, nats per token.
    pub loss: f64,
    /// Accuracy of always guessing the most frequent token.
    pub accuracy: f64,
}

/// Reads a job's JSON output.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: unexpected contents", path.display()))
}

/// Reads every finished job's output into [`Results`].
pub fn collect(spec: &CompareSpec, layout: &Layout, command: String, machine: Machine) -> anyhow::Result<Results> {
    let relative = |p: &Path| p.strip_prefix(&layout.root).unwrap_or(p).display().to_string();
    let mut pretrain = Vec::new();
    for &seed in &spec.seeds {
        for (index, objective) in spec.objectives.iter().enumerate() {
            let dir = layout.pretrain_run(objective, seed);
            let run = RunDir::new(&dir);
            let summary: Summary = read_json(&run.summary())?;
            let job = Job::Eval { objective: index, seed };
            let eval: EvalReport = read_json(&layout.output(spec, &job))?;
            let curve = read_metrics(&run.metrics())?
                .into_iter()
                .filter(|r| r.split == Split::Valid)
                .map(|r| CurvePoint {
                    step: r.step,
                    tokens_seen: r.tokens_seen,
                    loss: r.loss,
                    accuracy: r.accuracy,
                    bpb: r.bpb,
                    minimal_pairs: r.minimal_pairs_accuracy,
                    objective_metrics: r.objective_metrics,
                })
                .collect();
            pretrain.push(PretrainResult {
                run: relative(&dir),
                objective: objective.clone(),
                seed,
                parameters: summary.parameters,
                steps: summary.steps,
                tokens_seen: summary.tokens_seen,
                wall_time_s: summary.wall_time_s,
                tokens_per_s: summary.tokens_seen as f64 / summary.wall_time_s.max(1e-9),
                peak_rss_gb: summary.peak_rss_gb,
                valid_loss: summary.valid.loss,
                valid_accuracy: summary.valid.accuracy,
                valid_bpb: summary.valid.bpb,
                pseudo_ppl: eval.pseudo_ppl,
                objective_metrics: summary.valid.objective_metrics.clone(),
                unigram: Some(eval.unigram_baseline),
                curve,
            });
        }
    }
    let fairness = fairness(spec, &pretrain);
    let mut tasks = Vec::new();
    let mut finetune_runs = Vec::new();
    for (index, task_spec) in spec.tasks.iter().enumerate() {
        tasks.push(super::task_results::task_result(
            spec,
            layout,
            index,
            task_spec,
            &relative,
            &mut finetune_runs,
        )?);
    }
    Ok(Results {
        spec: spec.clone(),
        command,
        machine,
        pretrain,
        fairness,
        tasks,
        finetune_runs,
        minimal_pairs: super::pairs::collect(spec, layout)?,
    })
}

impl Cell {
    pub(super) fn new(
        objective: &ObjectiveConfig,
        method: Method,
        budget: Option<LabelBudget>,
        labels_used: usize,
    ) -> Self {
        Self {
            objective: objective.clone(),
            method,
            budget,
            labels_used,
            accuracies: Vec::new(),
            mean: 0.0,
            std: 0.0,
            runs: Vec::new(),
            correct: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, accuracy: f64, correct: Vec<bool>, run: String) {
        self.accuracies.push(accuracy);
        self.correct.push(correct);
        self.runs.push(run);
    }

    pub(super) fn finish(mut self) -> Self {
        (self.mean, self.std) = mean_std(&self.accuracies);
        self
    }

    /// `mlm fine-tune`.
    pub fn label(&self) -> String {
        format!("{} {}", self.objective, self.method.name())
    }
}

/// The matched quantities of the pre-training runs, per objective.
fn fairness(spec: &CompareSpec, pretrain: &[PretrainResult]) -> Vec<FairnessRow> {
    let per_objective = |value: &dyn Fn(&PretrainResult) -> f64| -> Vec<f64> {
        spec.objectives
            .iter()
            .map(|o| {
                let values: Vec<f64> = pretrain.iter().filter(|p| &p.objective == o).map(value).collect();
                mean_std(&values).0
            })
            .collect()
    };
    let exact = |quantity: &str, values: Vec<f64>| FairnessRow {
        quantity: quantity.to_string(),
        matched: values.windows(2).all(|w| w[0] == w[1]),
        values: values.iter().map(|v| format!("{v:.0}")).collect(),
    };
    let wall = per_objective(&|p| p.wall_time_s);
    let (low, high) = wall
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), &w| (lo.min(w), hi.max(w)));
    vec![
        exact("parameters", per_objective(&|p| p.parameters as f64)),
        exact("tokens seen per run", per_objective(&|p| p.tokens_seen as f64)),
        exact("optimizer steps per run", per_objective(&|p| p.steps as f64)),
        FairnessRow {
            quantity: "wall time per run (s)".into(),
            matched: high <= low * 1.2,
            values: wall.iter().map(|v| format!("{v:.1}")).collect(),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_say_which_side_wins_or_that_nothing_is_shown() {
        let mut c = Comparison {
            budget: Some(LabelBudget::Count(1000)),
            a: "mlm fine-tune".into(),
            b: "mlm scratch".into(),
            difference: -0.02,
            ci_low: -0.03,
            ci_high: -0.01,
            supported: true,
        };
        assert_eq!(
            c.sentence(),
            "At 1000 labels, mlm scratch beats mlm fine-tune by 2.0 points (95% CI 1.0 to 3.0 points): the data supports this."
        );
        c.supported = false;
        c.ci_high = 0.01;
        assert!(c.sentence().contains("does not support a difference"));
        c.budget = None;
        assert!(
            c.sentence()
                .starts_with("On the minimal pairs, mlm fine-tune and mlm scratch differ")
        );
    }
}
