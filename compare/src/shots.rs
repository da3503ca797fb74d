//! The k-shot rows of a comparison (`--shots`): every pre-trained model prompted with K
//! demonstrations from a task's training split, calibrated and not, beside the same model
//! fine-tuned on exactly those K examples: the checks made before any work, the cells and their
//! paired differences, and the report's table.

use std::path::Path;

use anyhow::bail;
use primer_datasets::shots::ShotOrder;
use primer_datasets::task::Task;
use primer_datasets::tokenizer::PrimerTokenizer;
use primer_inference::context::{demonstrations_refused, fixed_len};
use primer_inference::prompt::Prompt;
use serde::{Deserialize, Serialize};

use super::jobs::{Job, Method};
use super::report::{Block, mean_pm_std};
use super::results::{Cell, Comparison, FinetuneRun, TaskResult, read_json};
use super::spec::{CompareSpec, LabelBudget, TaskSpec};
use super::task_results::{PromptReport, TaskReader, compare_cells};

/// The K above 0 of a comparison: those with jobs of their own.
fn with_demonstrations(spec: &CompareSpec) -> Vec<usize> {
    spec.shots.iter().copied().filter(|&k| k > 0).collect()
}

/// Checks before any training that the k-shot rows can be made: a prompted task, objectives
/// whose runs read demonstrations, and enough training examples of each label for every seed's
/// draw.
pub fn check(spec: &CompareSpec) -> anyhow::Result<()> {
    if spec.shots.is_empty() {
        return Ok(());
    }
    if !spec.tasks.iter().any(TaskSpec::prompted) {
        bail!("--shots needs a task with a prompt: give --template and --verbalizer, or a named task");
    }
    let shots = with_demonstrations(spec);
    let Some(&first) = shots.first() else {
        return Ok(());
    };
    for objective in &spec.objectives {
        if let Some(reason) = demonstrations_refused(objective.info()) {
            bail!(
                "--shots {first}: {reason}: drop {} from --objectives, or give --shots 0",
                objective.label()
            );
        }
    }
    // Each draw is made once here: a K a label cannot supply stops the comparison now.
    for_each_draw(spec, |_, _, _, _| Ok(()))
}

/// Calls `visit` with every prompted task, its split of each seed, and the demonstrations each
/// K draws with that seed (indices into the split's training examples).
fn for_each_draw(
    spec: &CompareSpec,
    mut visit: impl FnMut(&TaskSpec, &Task, usize, &[usize]) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    for task_spec in spec.tasks.iter().filter(|t| t.prompted()) {
        for &seed in &spec.seeds {
            let task = task_spec.task_args().load(seed)?;
            for k in with_demonstrations(spec) {
                let drawn = task
                    .demonstrations(k, ShotOrder::Balanced, seed)
                    .map_err(|e| anyhow::anyhow!("task {}: {e}", task_spec.name()))?;
                visit(task_spec, &task, k, &drawn)?;
            }
        }
    }
    Ok(())
}

/// Checks, once the shared tokenizer exists, that every draw of demonstrations fits a context
/// of `seq_len` tokens beside its task's template and a label word.
pub fn check_fits(spec: &CompareSpec, tokenizer: &Path, seq_len: usize) -> anyhow::Result<()> {
    if with_demonstrations(spec).is_empty() {
        return Ok(());
    }
    let tokenizer = PrimerTokenizer::from_file(tokenizer)?;
    let encode = |text: &str| tokenizer.encode_with_offsets(text);
    // Every objective opens a prompt with one token.
    let start = spec.objectives[0].info().framing.open.id(tokenizer.specials());
    for_each_draw(spec, |task_spec, task, k, drawn| {
        let template = task_spec
            .template
            .as_deref()
            .expect("only prompted tasks are drawn for");
        let prompt = Prompt::new(template, &task_spec.verbalizer, &task.labels).map_err(anyhow::Error::msg)?;
        let texts: Vec<String> = drawn
            .iter()
            .map(|&i| prompt.demonstration(&task.train[i].text, task.train[i].label))
            .collect();
        let tokens = fixed_len(&encode, start, &texts, &prompt.query(""))?;
        if tokens > seq_len {
            bail!(
                "--shots {k}: the demonstrations of task {} make {tokens} tokens with its template and a label word, more than the context of {seq_len}: lower --shots or raise --seq-len",
                task_spec.name()
            );
        }
        Ok(())
    })
}

/// What a task's k-shot prompts of one objective and K lost to fit the context, over seeds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShotCuts {
    /// The objective's label.
    pub objective: String,
    /// Demonstrations per prompt.
    pub shots: usize,
    /// Prompts, over seeds.
    pub prompts: usize,
    /// Prompts that left out some of their demonstrations.
    pub prompts_short: usize,
    /// Demonstrations left out, in all.
    pub demonstrations_dropped: usize,
}

/// Adds a prompted task's k-shot cells to `cells`: per objective, calibrated zero-shot (its
/// uncalibrated cell is there already), and per K above 0 prompting, calibrated prompting and
/// the fine-tune on the same examples (whose runs go to `runs`). Returns the prompts' cuts.
pub fn add_cells(
    reader: &TaskReader,
    cells: &mut Vec<Cell>,
    runs: &mut Vec<FinetuneRun>,
) -> anyhow::Result<Vec<ShotCuts>> {
    let spec = reader.spec;
    let task = reader.task;
    let mut cuts = Vec::new();
    for objective in (0..spec.objectives.len()).filter(|_| !spec.shots.is_empty()) {
        let zero_shot = |seed| Job::ZeroShot { task, objective, seed };
        cells.push(reader.prompt_cell(objective, Method::KShotCalibrated, 0, zero_shot)?);
        for shots in with_demonstrations(spec) {
            let k_shot = |seed| Job::KShot {
                task,
                objective,
                seed,
                shots,
            };
            for method in [Method::KShot, Method::KShotCalibrated] {
                cells.push(reader.prompt_cell(objective, method, shots, k_shot)?);
            }
            let budget = LabelBudget::Count(shots);
            cells.push(reader.finetune_cell(objective, budget, Method::ShotFinetune, shots, runs)?);
            let mut cut = ShotCuts {
                objective: spec.objectives[objective].label(),
                shots,
                prompts: 0,
                prompts_short: 0,
                demonstrations_dropped: 0,
            };
            for &seed in &spec.seeds {
                let report: PromptReport = read_json(&reader.layout.output(spec, &k_shot(seed)))?;
                cut.prompts += reader.valid_labels[&seed].len();
                cut.prompts_short += report.draws.iter().map(|d| d.prompts_short).sum::<usize>();
                cut.demonstrations_dropped += report.draws.iter().map(|d| d.demonstrations_dropped).sum::<usize>();
            }
            cuts.push(cut);
        }
    }
    Ok(cuts)
}

/// Per K above 0 and objective: prompting, and calibrated prompting, against fine-tuning on
/// the same K examples.
pub fn comparisons(spec: &CompareSpec, cells: &[Cell]) -> Vec<Comparison> {
    let find = |objective, method, shots| {
        cells
            .iter()
            .find(|c| &c.objective == objective && c.method == method && c.budget == Some(LabelBudget::Count(shots)))
            .expect("every k-shot cell was collected")
    };
    let mut out = Vec::new();
    for shots in with_demonstrations(spec) {
        for objective in &spec.objectives {
            let tuned = find(objective, Method::ShotFinetune, shots);
            for method in [Method::KShot, Method::KShotCalibrated] {
                out.push(compare_cells(
                    LabelBudget::Count(shots),
                    find(objective, method, shots),
                    tuned,
                ));
            }
        }
    }
    out
}

/// The report's k-shot table of a task: per objective, prompting and calibrated prompting at
/// each K, and the fine-tune on the same K examples, with what the prompts lost to the context.
pub fn section(spec: &CompareSpec, task: &TaskResult) -> Vec<Block> {
    if spec.shots.is_empty() {
        return Vec::new();
    }
    let mut header = vec!["objective".to_string(), "method".to_string()];
    header.extend(spec.shots.iter().map(|k| format!("{k} labels")));
    let mut rows = Vec::new();
    for objective in &spec.objectives {
        let find = |method: Method, shots: usize| {
            let method = if shots == 0 && method == Method::KShot {
                Method::ZeroShot
            } else {
                method
            };
            let budget = (shots > 0).then_some(LabelBudget::Count(shots));
            task.cells
                .iter()
                .find(|c| &c.objective == objective && c.method == method && c.budget == budget)
                .map_or("—".to_string(), |c| mean_pm_std(c.mean, c.std))
        };
        for method in [Method::KShot, Method::KShotCalibrated, Method::ShotFinetune] {
            let mut row = vec![objective.label(), method.name().to_string()];
            row.extend(spec.shots.iter().map(|&k| find(method, k)));
            rows.push(row);
        }
    }
    let mut out = vec![
        Block::Paragraph(
            "K-shot prompting against fine-tuning on the same labels: each prompt shows K demonstrations from the \
             training split (balanced over labels, round-robin, drawn with the run's seed, a blank line after each) \
             before the text; k-shot calibrated divides out the label probabilities the model gives the content-free \
             texts `N/A`, `[MASK]` and the empty string (Zhao et al. 2021); shot fine-tune trains every weight on \
             exactly those K examples (`finetune --shots K`), stopping early on dev accuracy as every fine-tune \
             here does. K of 0 is zero-shot."
                .into(),
        ),
        Block::Table(header, rows),
    ];
    let short: Vec<String> = task
        .shot_cuts
        .iter()
        .filter(|c| c.prompts_short > 0)
        .map(|c| {
            format!(
                "{} at {} shots: {} of {} prompts ({} demonstrations in all)",
                c.objective, c.shots, c.prompts_short, c.prompts, c.demonstrations_dropped
            )
        })
        .collect();
    out.push(Block::Paragraph(match short.is_empty() {
        true => "No prompt left out a demonstration to fit the context.".into(),
        false => format!(
            "Prompts that left out demonstrations (the first ones) to fit the context: {}.",
            short.join("; ")
        ),
    }));
    out
}
