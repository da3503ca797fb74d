//! `report.md` and a self-contained `report.html` from one list of blocks, so both show the
//! same numbers; charts are SVG files beside the Markdown and inline in the HTML.

use std::path::Path;

use primer_objectives::info::Metric;

use super::charts;
use super::jobs::Method;
use super::progress::format_duration;
use super::results::Results;
use super::stats::mean_std;

/// A piece of the report.
pub(super) enum Block {
    Heading(u8, String),
    Paragraph(String),
    /// Header and rows; every row has the header's width.
    Table(Vec<String>, Vec<Vec<String>>),
    /// A chart: file name and SVG text.
    Chart(String, String),
    Code(String),
}

/// `0.660 ± 0.010`: how the report shows a mean over seeds.
pub fn mean_pm_std(mean: f64, std: f64) -> String {
    format!("{mean:.3} ± {std:.3}")
}

/// Writes `report.md`, `report.html` and the charts into `dir`.
pub fn write(results: &Results, dir: &Path) -> anyhow::Result<()> {
    let blocks = blocks(results)?;
    for block in &blocks {
        if let Block::Chart(name, svg) = block {
            primer_files::atomic_write(&dir.join(name), svg.as_bytes())?;
        }
    }
    primer_files::atomic_write(&dir.join("report.md"), markdown(&blocks).as_bytes())?;
    primer_files::atomic_write(&dir.join("report.html"), html(&blocks).as_bytes())?;
    Ok(())
}

/// The table of paired differences (with a labels column when they have budgets) and each
/// difference in words.
fn differences(comparisons: &[super::results::Comparison]) -> Vec<Block> {
    let budgets = comparisons.iter().any(|c| c.budget.is_some());
    let mut header: Vec<String> = ["a", "b", "a − b (points)", "95% CI", "supported"]
        .map(String::from)
        .to_vec();
    if budgets {
        header.insert(0, "labels".into());
    }
    let rows = comparisons
        .iter()
        .map(|c| {
            let mut row = vec![
                c.a.clone(),
                c.b.clone(),
                format!("{:+.1}", c.difference * 100.0),
                format!("{:+.1} to {:+.1}", c.ci_low * 100.0, c.ci_high * 100.0),
                if c.supported { "yes" } else { "no" }.into(),
            ];
            if let Some(budget) = c.budget {
                row.insert(0, budget.to_string());
            }
            row
        })
        .collect();
    let mut out = vec![Block::Table(header, rows)];
    out.extend(comparisons.iter().map(|c| Block::Paragraph(c.sentence())));
    out
}

/// The minimal-pairs section: accuracy per objective beside its untrained twin and per field,
/// the curve during pre-training, every difference, and a verdict.
fn minimal_pairs(results: &Results, pairs: &super::pairs::PairsResult) -> anyhow::Result<Vec<Block>> {
    let spec = results
        .spec
        .minimal_pairs
        .as_ref()
        .expect("pair results come from a pair spec");
    let limit = spec
        .limit_per_paradigm
        .map_or(String::new(), |n| format!(", the first {n} of each paradigm"));
    let scorings: Vec<String> = results
        .spec
        .objectives
        .iter()
        .map(|objective| format!("{} by {}", objective.label(), spec.scoring(objective).name()))
        .collect();
    let mut out = vec![
        Block::Heading(2, "Minimal pairs".into()),
        Block::Paragraph(format!(
            "{} pairs from `{}`{limit}. A model gets a pair right when it scores the acceptable sentence above the \
             unacceptable one, each objective in its own way ({}). Untrained: the same model with its seed's initial weights. \
             Mean ± standard deviation over seeds; BLiMP's references are 61.2 (5-gram), 69.8 (LSTM), 83.0 \
             (GPT-2) and 88.6 (humans). Equal length: the pairs whose two sentences have as many tokens; on the \
             others a summed score favours the shorter sentence whatever it is, so there it measures length \
             as much as grammar.",
            pairs.pairs,
            spec.source,
            scorings.join("; ")
        )),
    ];
    let fields: Vec<&String> = pairs
        .rows
        .first()
        .map(|r| r.fields.keys().collect())
        .unwrap_or_default();
    let mut header = vec![
        "objective".to_string(),
        "accuracy".into(),
        "equal length".into(),
        "untrained".into(),
    ];
    header.extend(fields.iter().map(|f| f.to_string()));
    let rows = pairs
        .rows
        .iter()
        .map(|row| {
            let [(trained, trained_std), (untrained, untrained_std)] = row.summary();
            let equal_length = row
                .equal_length_summary()
                .map_or("–".to_string(), |(mean, std)| mean_pm_std(mean, std));
            let mut cells = vec![
                row.objective.label(),
                mean_pm_std(trained, trained_std),
                equal_length,
                mean_pm_std(untrained, untrained_std),
            ];
            cells.extend(
                fields
                    .iter()
                    .map(|f| format!("{:.3}", row.fields.get(*f).copied().unwrap_or(f64::NAN))),
            );
            cells
        })
        .collect();
    out.push(Block::Table(header, rows));
    if let Some(svg) = charts::minimal_pairs_curves(&results.spec.objectives, &results.pretrain)? {
        out.push(Block::Chart("minimal-pairs.svg".into(), svg));
    }
    out.extend(differences(&pairs.comparisons));
    out.push(Block::Paragraph(verdict(&pairs.comparisons)));
    Ok(out)
}

/// One sentence: which differences on the minimal pairs the data supports.
fn verdict(comparisons: &[super::results::Comparison]) -> String {
    let supported: Vec<String> = comparisons
        .iter()
        .filter(|c| c.supported)
        .map(|c| {
            let (winner, loser) = if c.difference > 0.0 { (&c.a, &c.b) } else { (&c.b, &c.a) };
            format!("{winner} over {loser} by {:.1} points", c.difference.abs() * 100.0)
        })
        .collect();
    match supported.is_empty() {
        true => "Verdict: on these pairs the data supports no difference, between objectives or against untrained \
                 weights."
            .into(),
        false => format!(
            "Verdict: the data supports {}; no other difference.",
            supported.join("; ")
        ),
    }
}

/// A pre-training run's final value of a metric.
fn final_value(metric: Metric, run: &super::results::PretrainResult) -> f64 {
    match metric {
        Metric::BitsPerByte => run.valid_bpb,
        Metric::Accuracy => run.valid_accuracy,
        Metric::PseudoPerplexity => run.pseudo_ppl.unwrap_or(f64::NAN),
        Metric::FromObjective { key, .. } => run.objective_metrics.get(key).copied().unwrap_or(f64::NAN),
    }
}

/// What a pre-training run's metric is read against: its value for token frequencies alone, or
/// for guessing.
fn baseline_value(metric: Metric, run: &super::results::PretrainResult) -> Option<f64> {
    let unigram = run.unigram?;
    let bits_per_nat = run.valid_bpb / run.valid_loss;
    metric.baseline_value(unigram.loss, unigram.accuracy, bits_per_nat)
}

fn blocks(results: &Results) -> anyhow::Result<Vec<Block>> {
    let spec = &results.spec;
    let objectives = &spec.objectives;
    let names: Vec<String> = objectives.iter().map(|o| o.label()).collect();
    let mut out = vec![
        Block::Heading(1, format!("primer compare: {}", names.join(" vs "))),
        Block::Paragraph(format!(
            "Corpus {}; {} seed(s) per objective; {} on {} ({} CPUs), primer {}, backend {}{}.",
            spec.pretrain
                .corpus
                .corpus
                .as_ref()
                .map_or_else(|| "(prepared data)".to_string(), |c| c.join(", ")),
            spec.seeds.len(),
            results.machine.os,
            results.machine.cpu,
            results.machine.cpus,
            results.machine.primer_version,
            results.machine.backend,
            results
                .machine
                .device
                .as_ref()
                .map_or(String::new(), |d| format!(" device {d}"))
        )),
    ];

    for (task, task_spec) in results.tasks.iter().zip(&spec.tasks) {
        out.extend(task_section(results, task, task_spec)?);
    }
    out.extend(pretraining_section(results)?);
    if let Some(pairs) = &results.minimal_pairs {
        out.extend(minimal_pairs(results, pairs)?);
    }

    out.extend(fairness_and_cost(results));
    out.extend(summary(results));
    Ok(out)
}

/// The closing table: per objective, each task's and the minimal pairs' supported differences
/// that involve it, from its side.
fn summary(results: &Results) -> Vec<Block> {
    let mut header = vec!["objective".to_string()];
    let mut sources: Vec<&[super::results::Comparison]> = Vec::new();
    for task in &results.tasks {
        header.push(task.task.clone());
        sources.push(&task.comparisons);
    }
    if let Some(pairs) = &results.minimal_pairs {
        header.push("minimal pairs".into());
        sources.push(&pairs.comparisons);
    }
    let rows = results
        .spec
        .objectives
        .iter()
        .map(|objective| {
            let mut row = vec![objective.label()];
            row.extend(
                sources
                    .iter()
                    .map(|comparisons| supported_findings(&objective.label(), comparisons)),
            );
            row
        })
        .collect();
    vec![
        Block::Heading(2, "Summary".into()),
        Block::Paragraph(
            "What the data supports, per objective: every difference whose 95% interval excludes zero, from the \
             objective's side, in points."
                .into(),
        ),
        Block::Table(header, rows),
    ]
}

/// The supported differences among `comparisons` that involve the objective labelled `label`
/// (its cells are `label` or `label METHOD`), said from its side: `fine-tune over clm fine-tune
/// by 2.1 at 1000 labels`.
fn supported_findings(label: &str, comparisons: &[super::results::Comparison]) -> String {
    let own = |cell: &str| cell == label || cell.starts_with(&format!("{label} "));
    let findings: Vec<String> = comparisons
        .iter()
        .filter(|c| c.supported)
        .filter_map(|c| {
            let (mine, other, lead) = match (own(&c.a), own(&c.b)) {
                (true, _) => (&c.a, &c.b, c.difference),
                (false, true) => (&c.b, &c.a, -c.difference),
                _ => return None,
            };
            let side = if lead > 0.0 { "over" } else { "under" };
            let mine = mine.strip_prefix(label).unwrap_or(mine).trim();
            let budget = c.budget.map_or(String::new(), |b| format!(" at {b} labels"));
            Some(
                format!("{mine} {side} {other} by {:.1}{budget}", lead.abs() * 100.0)
                    .trim()
                    .to_string(),
            )
        })
        .collect();
    match findings.is_empty() {
        true => "no supported difference".into(),
        false => findings.join("; "),
    }
}

/// One task: the accuracy table, zero-shot, the label-efficiency chart and the differences.
fn task_section(
    results: &Results,
    task: &super::results::TaskResult,
    task_spec: &super::spec::TaskSpec,
) -> anyhow::Result<Vec<Block>> {
    let spec = &results.spec;
    let objectives = &spec.objectives;
    let mut out = Vec::new();
    out.push(Block::Heading(2, format!("Task {}", task.task)));
    out.push(Block::Paragraph(format!(
        "Dev accuracy, mean ± standard deviation over {} seed(s); {} dev examples, labels {}, majority label {:.3}. \
         Fine-tune trains every weight from the pre-trained model; probe trains a linear head on the frozen model; \
         scratch trains the same architecture from random weights.",
        spec.seeds.len(),
        task.valid_examples,
        task.labels.join("/"),
        task.majority_accuracy
    )));
    let mut header = vec!["objective".to_string(), "method".to_string()];
    header.extend(spec.label_budgets.iter().map(|b| format!("{b} labels")));
    let mut rows = Vec::new();
    for objective in objectives {
        for method in Method::TRAINED {
            let mut row = vec![objective.label(), method.name().to_string()];
            for &budget in &spec.label_budgets {
                let cell = task
                    .cells
                    .iter()
                    .find(|c| &c.objective == objective && c.method == method && c.budget == Some(budget))
                    .expect("every cell was collected");
                row.push(mean_pm_std(cell.mean, cell.std));
            }
            rows.push(row);
        }
    }
    out.push(Block::Table(header, rows));
    out.extend(prompting(results, task, task_spec));
    out.push(Block::Chart(
        format!("label-efficiency-{}.svg", task_spec.slug()),
        charts::label_efficiency(task, objectives)?,
    ));
    out.push(Block::Heading(3, "Which differences the data supports".into()));
    out.push(Block::Paragraph(
        "Accuracy differences in points, with 95% bootstrap intervals that resample seeds and dev examples, \
         paired (both sides scored on the same draws). A difference is supported when its interval excludes zero."
            .into(),
    ));
    out.extend(differences(&task.comparisons));

    Ok(out)
}

/// A task's prompting tables: zero-shot beside the majority label, and the k-shot table when
/// the comparison has one; or why the task was not prompted.
fn prompting(results: &Results, task: &super::results::TaskResult, task_spec: &super::spec::TaskSpec) -> Vec<Block> {
    let spec = &results.spec;
    let objectives = &spec.objectives;
    let mut out = Vec::new();
    let zero_shot: Vec<Vec<String>> = objectives
        .iter()
        .filter_map(|objective| {
            let cell = task
                .cells
                .iter()
                .find(|c| &c.objective == objective && c.method == Method::ZeroShot)?;
            Some(vec![
                objective.label(),
                mean_pm_std(cell.mean, cell.std),
                format!("{:.3}", task.majority_accuracy),
            ])
        })
        .collect();
    match &task_spec.template {
        Some(template) => {
            out.push(Block::Paragraph(format!(
                "Zero-shot prompting (no labels; template `{template}`, verbalizer {}):",
                task_spec
                    .verbalizer
                    .iter()
                    .map(|(l, w)| format!("{l}={w}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
            out.push(Block::Table(
                vec!["objective".into(), "zero-shot".into(), "majority label".into()],
                zero_shot,
            ));
        }
        None => out.push(Block::Paragraph(
            "Zero-shot prompting skipped: the task has no prompt (give it a `template` and a `verbalizer`).".into(),
        )),
    }
    if task_spec.prompted() {
        out.extend(super::shots::section(spec, task));
    }
    out
}

/// Pre-training: each objective's own metrics beside their unigram values, and its curve.
fn pretraining_section(results: &Results) -> anyhow::Result<Vec<Block>> {
    let objectives = &results.spec.objectives;
    let mut out = Vec::new();
    out.push(Block::Heading(2, "Pre-training".into()));
    out.push(Block::Paragraph(
        "Each objective is judged on its own yardstick, the metrics it names itself (bits per byte is the loss \
         spread over the UTF-8 bytes of the text), each beside its value for a model that knows only the train \
         split's token frequencies (unigram) or guesses (chance). Losses of different objectives are not shown side by side: they predict \
         different tokens from different context, so the numbers do not measure the same thing."
            .into(),
    ));
    let mut rows = Vec::new();
    for objective in objectives {
        let runs: Vec<_> = results.pretrain.iter().filter(|p| &p.objective == objective).collect();
        let info = objective.info();
        let mut row = vec![objective.label()];
        for metric in info.metrics {
            let values: Vec<f64> = runs.iter().map(|r| final_value(metric, r)).collect();
            let (m, s) = mean_std(&values);
            let baselines: Vec<f64> = runs.iter().filter_map(|r| baseline_value(metric, r)).collect();
            let baseline = match baselines.is_empty() {
                true => String::new(),
                false => format!(" ({} {:.3})", metric.baseline_name(), mean_std(&baselines).0),
            };
            row.push(format!("{} {}{baseline}", metric.name(info), mean_pm_std(m, s)));
        }
        rows.push(row);
    }
    out.push(Block::Table(
        vec!["objective".into(), "main metric".into(), "second metric".into()],
        rows,
    ));
    for (i, objective) in objectives.iter().enumerate() {
        let runs: Vec<_> = results.pretrain.iter().filter(|p| &p.objective == objective).collect();
        out.push(Block::Chart(
            format!("pretrain-{}.svg", super::layout::slug(objective)),
            charts::pretrain_curve(objective, &runs, i)?,
        ));
    }

    Ok(out)
}

/// The matched quantities, throughput and wall time, and how to reproduce the comparison.
fn fairness_and_cost(results: &Results) -> Vec<Block> {
    let names: Vec<String> = results.spec.objectives.iter().map(|o| o.label()).collect();
    let mut out = Vec::new();
    out.push(Block::Heading(2, "Fair by construction".into()));
    out.push(Block::Paragraph(format!(
        "Every objective uses one tokenizer (`tokenizer.json`), one prepared copy of the corpus and the same model \
         options; only the objective and the seed change between runs. Parameters count everything a run \
         trains, the networks an objective trains beside the model included. Means over seeds per objective ({}):",
        names.join(", ")
    )));
    let mut header = vec!["quantity".to_string()];
    header.extend(names.iter().map(|n| n.to_string()));
    header.push("matched".into());
    out.push(Block::Table(
        header,
        results
            .fairness
            .iter()
            .map(|row| {
                let mut cells = vec![row.quantity.clone()];
                cells.extend(row.values.iter().cloned());
                cells.push(if row.matched { "yes" } else { "DIFFERS" }.into());
                cells
            })
            .collect(),
    ));

    out.push(Block::Heading(2, "Throughput and wall time".into()));
    out.push(Block::Table(
        ["run", "steps", "tokens seen", "wall time", "tokens/s", "peak RSS (GB)"]
            .map(String::from)
            .to_vec(),
        results
            .pretrain
            .iter()
            .map(|p| {
                vec![
                    p.run.clone(),
                    p.steps.to_string(),
                    p.tokens_seen.to_string(),
                    format_duration(p.wall_time_s),
                    format!("{:.0}", p.tokens_per_s),
                    p.peak_rss_gb.map_or("n/a".into(), |g| format!("{g:.2}")),
                ]
            })
            .collect(),
    ));
    out.push(Block::Table(
        [
            "fine-tuning run",
            "train examples",
            "steps",
            "trained parameters",
            "wall time",
        ]
        .map(String::from)
        .to_vec(),
        results
            .finetune_runs
            .iter()
            .map(|f| {
                vec![
                    f.run.clone(),
                    f.train_examples.to_string(),
                    f.steps.to_string(),
                    f.trained_parameters.to_string(),
                    format_duration(f.wall_time_s),
                ]
            })
            .collect(),
    ));

    out.push(Block::Heading(2, "Reproduce".into()));
    out.push(Block::Paragraph(
        "The command; every run's own config is in `configs/` (pre-training, as `primer pretrain --config` reads \
         it) and in each run directory under `runs/`; every job's command line heads its log in `logs/`."
            .into(),
    ));
    out.push(Block::Code(results.command.clone()));
    out.push(Block::Code(
        serde_json::to_string_pretty(&results.spec).expect("specs serialize"),
    ));
    out
}

fn markdown(blocks: &[Block]) -> String {
    let mut md = String::new();
    for block in blocks {
        match block {
            Block::Heading(level, text) => md.push_str(&format!("{} {text}\n\n", "#".repeat(*level as usize))),
            Block::Paragraph(text) => md.push_str(&format!("{text}\n\n")),
            Block::Table(header, rows) => {
                let line = |cells: &[String]| format!("| {} |\n", cells.join(" | ").replace('\n', " "));
                md.push_str(&line(header));
                md.push_str(&line(&vec!["---".to_string(); header.len()]));
                for row in rows {
                    md.push_str(&line(row));
                }
                md.push('\n');
            }
            Block::Chart(name, _) => md.push_str(&format!("![{name}]({name})\n\n")),
            Block::Code(text) => md.push_str(&format!("```\n{text}\n```\n\n")),
        }
    }
    md
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Inline code spans (`x`) of a paragraph, the only Markdown the paragraphs use.
fn inline(text: &str) -> String {
    escape(text)
        .split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("<code>{part}</code>")
            } else {
                part.to_string()
            }
        })
        .collect()
}

fn html(blocks: &[Block]) -> String {
    let mut body = String::new();
    for block in blocks {
        match block {
            Block::Heading(level, text) => body.push_str(&format!("<h{level}>{}</h{level}>\n", escape(text))),
            Block::Paragraph(text) => body.push_str(&format!("<p>{}</p>\n", inline(text))),
            Block::Table(header, rows) => {
                body.push_str("<table>\n<tr>");
                for cell in header {
                    body.push_str(&format!("<th>{}</th>", escape(cell)));
                }
                body.push_str("</tr>\n");
                for row in rows {
                    body.push_str("<tr>");
                    for cell in row {
                        body.push_str(&format!("<td>{}</td>", escape(cell)));
                    }
                    body.push_str("</tr>\n");
                }
                body.push_str("</table>\n");
            }
            Block::Chart(_, svg) => body.push_str(&format!("<figure>{svg}</figure>\n")),
            Block::Code(text) => body.push_str(&format!("<pre>{}</pre>\n", escape(text))),
        }
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>primer compare report</title>\n<style>\n\
         body {{ font-family: sans-serif; max-width: 60em; margin: 2em auto; padding: 0 1em; color: #222; }}\n\
         table {{ border-collapse: collapse; margin: 1em 0; }}\n\
         th, td {{ border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }}\n\
         th {{ background: #f3f3f3; }}\n\
         pre {{ background: #f6f6f6; padding: 0.8em; overflow-x: auto; }}\n\
         figure {{ margin: 1em 0; }}\n\
         </style>\n</head>\n<body>\n{body}</body>\n</html>\n"
    )
}
