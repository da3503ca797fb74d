//! One task's numbers, read back from its runs: the cells of every method (prompting read from
//! `prompt-classify --json`, fine-tuning from each run's summary) and their paired differences.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use primer_objectives::ObjectiveConfig;
use primer_trainer::finetune::FinetuneSummary;
use primer_trainer::run_dir::RunDir;
use serde::Deserialize;

use super::jobs::{Job, Method};
use super::layout::Layout;
use super::results::{Cell, Comparison, FinetuneRun, TaskResult, read_json};
use super::spec::{CompareSpec, LabelBudget};
use super::stats::majority_accuracy;

/// What `primer prompt-classify --json` wrote: accuracy and predictions, calibrated beside
/// them when asked for (absent from zero-shot reports made before k-shot rows).
#[derive(Debug, Deserialize)]
pub(super) struct PromptReport {
    accuracy: f64,
    predicted: Vec<usize>,
    #[serde(default)]
    calibrated: Option<CalibratedReport>,
    /// Each draw's cuts (absent before k-shot prompting).
    #[serde(default)]
    pub draws: Vec<DrawCuts>,
}

/// The calibrated part of a [`PromptReport`].
#[derive(Debug, Deserialize)]
struct CalibratedReport {
    accuracy: f64,
    predicted: Vec<usize>,
}

/// What one draw's prompts lost to fit the context.
#[derive(Debug, Deserialize)]
pub(super) struct DrawCuts {
    /// Prompts that left out some of their demonstrations.
    pub prompts_short: usize,
    /// Demonstrations left out, over every prompt.
    pub demonstrations_dropped: usize,
}

/// One task's cells, read back from its runs, and their paired differences.
pub(super) fn task_result(
    spec: &CompareSpec,
    layout: &Layout,
    index: usize,
    task_spec: &super::spec::TaskSpec,
    relative: &dyn Fn(&Path) -> String,
    finetune_runs: &mut Vec<FinetuneRun>,
) -> anyhow::Result<TaskResult> {
    let args = task_spec.task_args();
    // Validation labels per seed (a task without a validation file holds out a seeded share);
    // zero-shot prompting reads seed 0's.
    let task = args.load(0)?;
    let labels = |t: &primer_datasets::task::Task| t.valid.iter().map(|e| e.label).collect::<Vec<_>>();
    let mut valid_labels = BTreeMap::from([(0, labels(&task))]);
    for &seed in spec.seeds.iter().filter(|&&seed| seed != 0) {
        valid_labels.insert(seed, labels(&args.load(seed)?));
    }
    let reader = TaskReader {
        spec,
        layout,
        task: index,
        valid_labels,
        relative,
    };
    let mut cells = Vec::new();
    for objective in (0..spec.objectives.len()).filter(|_| task_spec.prompted()) {
        let job = |seed| Job::ZeroShot {
            task: index,
            objective,
            seed,
        };
        cells.push(reader.prompt_cell(objective, Method::ZeroShot, 0, job)?);
    }
    for &budget in &spec.label_budgets {
        for objective in 0..spec.objectives.len() {
            for method in Method::TRAINED {
                let used = match budget {
                    LabelBudget::Count(n) => n,
                    LabelBudget::All => task.train.len(),
                };
                cells.push(reader.finetune_cell(objective, budget, method, used, finetune_runs)?);
            }
        }
    }
    let mut comparisons = comparisons(spec, &cells);
    let shot_cuts = match task_spec.prompted() {
        true => super::shots::add_cells(&reader, &mut cells, finetune_runs)?,
        false => Vec::new(),
    };
    comparisons.extend(super::shots::comparisons(spec, &cells));
    Ok(TaskResult {
        task: task_spec.name(),
        labels: task.labels.clone(),
        train_examples: task.train.len(),
        valid_examples: task.valid.len(),
        majority_accuracy: majority_accuracy(&reader.valid_labels[&spec.seeds[0]]),
        cells,
        comparisons,
        shot_cuts,
    })
}

/// What the cells of one task are read with.
pub(super) struct TaskReader<'a> {
    /// The comparison.
    pub spec: &'a CompareSpec,
    /// Its report directory.
    pub layout: &'a Layout,
    /// Index into the spec's tasks.
    pub task: usize,
    /// The validation labels of each seed's split, and of seed 0's.
    pub valid_labels: BTreeMap<u64, Vec<usize>>,
    /// A path relative to the report.
    pub relative: &'a dyn Fn(&Path) -> String,
}

impl TaskReader<'_> {
    /// The cell of `method`'s fine-tunes of `objective`'s runs on `budget` (`used` labels), one
    /// per seed; each run's size and time go to `runs`.
    pub fn finetune_cell(
        &self,
        objective: usize,
        budget: LabelBudget,
        method: Method,
        used: usize,
        runs: &mut Vec<FinetuneRun>,
    ) -> anyhow::Result<Cell> {
        let mut cell = Cell::new(&self.spec.objectives[objective], method, Some(budget), used);
        for &seed in &self.spec.seeds {
            let job = Job::Finetune {
                task: self.task,
                objective,
                seed,
                budget,
                method,
            };
            let dir = self.layout.output(self.spec, &job);
            let summary: FinetuneSummary = read_json(&RunDir::new(&dir).summary())?;
            cell.push(
                summary.valid.accuracy,
                correct(&summary.valid_predicted, &self.valid_labels[&seed]),
                (self.relative)(&dir),
            );
            runs.push(FinetuneRun {
                run: (self.relative)(&dir),
                train_examples: summary.train_examples,
                steps: summary.steps,
                trained_parameters: summary.trained_parameters,
                wall_time_s: summary.wall_time_s,
            });
        }
        Ok(cell.finish())
    }

    /// The cell of prompting `objective`'s runs with `shots` demonstrations (`method` says
    /// whether calibrated), read from each seed's `job` report. Zero-shot runs on seed 0's
    /// validation split; k-shot prompting, like fine-tuning, on the seed's.
    pub fn prompt_cell(
        &self,
        objective: usize,
        method: Method,
        shots: usize,
        job: impl Fn(u64) -> Job,
    ) -> anyhow::Result<Cell> {
        let budget = (shots > 0).then_some(LabelBudget::Count(shots));
        let mut cell = Cell::new(&self.spec.objectives[objective], method, budget, shots);
        for &seed in &self.spec.seeds {
            let job = job(seed);
            let path = self.layout.output(self.spec, &job);
            let report: PromptReport = read_json(&path)?;
            let (accuracy, predicted) = match method {
                Method::KShotCalibrated => report
                    .calibrated
                    .map(|c| (c.accuracy, c.predicted))
                    .with_context(|| format!("{}: no calibrated scores", path.display()))?,
                _ => (report.accuracy, report.predicted),
            };
            let split = if matches!(job, Job::ZeroShot { .. }) { 0 } else { seed };
            cell.push(
                accuracy,
                correct(&predicted, &self.valid_labels[&split]),
                (self.relative)(&path),
            );
        }
        Ok(cell.finish())
    }
}

fn correct(predicted: &[usize], labels: &[usize]) -> Vec<bool> {
    predicted.iter().zip(labels).map(|(p, l)| p == l).collect()
}

/// Objective against objective (fine-tuned), and each pre-trained against from scratch, at
/// every label budget.
fn comparisons(spec: &CompareSpec, cells: &[Cell]) -> Vec<Comparison> {
    let find = |objective: &ObjectiveConfig, method, budget| {
        cells
            .iter()
            .find(|c| &c.objective == objective && c.method == method && c.budget == Some(budget))
            .expect("every cell was collected")
    };
    let mut out = Vec::new();
    for &budget in &spec.label_budgets {
        for (i, a) in spec.objectives.iter().enumerate() {
            for b in &spec.objectives[i + 1..] {
                out.push(compare_cells(
                    budget,
                    find(a, Method::Finetune, budget),
                    find(b, Method::Finetune, budget),
                ));
            }
        }
        for objective in &spec.objectives {
            out.push(compare_cells(
                budget,
                find(objective, Method::Finetune, budget),
                find(objective, Method::Scratch, budget),
            ));
        }
    }
    out
}

pub(super) fn compare_cells(budget: LabelBudget, a: &Cell, b: &Cell) -> Comparison {
    Comparison::of(Some(budget), a.label(), &a.correct, b.label(), &b.correct)
}
