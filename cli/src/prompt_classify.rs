//! `primer prompt-classify`: zero-shot classification by prompting a pre-trained model, with no
//! training, reported as accuracy on the task's validation split.

use std::path::PathBuf;

use anyhow::bail;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use primer_inference::prompt::{Prompt, PromptError, label_scores};
use primer_trainer::finetune::{ClassMetrics, predicted_labels};
use serde::Serialize;

use crate::trained::TrainedRun;
use primer_options::BackendArgs;
use primer_options::data::show_progress;
use primer_options::task::TaskArgs;

/// The template of a task file given without `--template`.
const DEFAULT_TEMPLATE: &str = "{text} It was [LABEL].";

/// Arguments of `primer prompt-classify`.
#[derive(clap::Args, Debug)]
pub struct PromptClassifyArgs {
    /// A pre-training run (mlm or clm).
    #[arg(long)]
    run: PathBuf,
    #[command(flatten)]
    task: TaskArgs,
    /// The prompt: {text} is the example, [LABEL] the slot for the label word [default: a
    /// named task's own, else "{text} It was [LABEL]."].
    #[arg(long)]
    template: Option<String>,
    /// A word per label: LABEL=WORD pairs, comma-separated, e.g. 0=terrible,1=great
    /// [default: a named task's own].
    #[arg(long, value_delimiter = ',', value_parser = parse_pair)]
    verbalizer: Option<Vec<(String, String)>>,
    /// Score only the first N validation examples.
    #[arg(long)]
    limit: Option<usize>,
    /// Fail on a text whose prompt is longer than the model's context, instead of cutting the
    /// end off the text (never the template or the label slot) and counting the cuts.
    #[arg(long)]
    no_truncate: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    backend: BackendArgs,
}

/// Parses `LABEL=WORD`.
pub fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((label, word)) => Ok((label.trim().to_string(), word.to_string())),
        None => Err(format!("{text:?} is not LABEL=WORD")),
    }
}

/// What `primer prompt-classify` reports.
#[derive(Debug, Serialize)]
struct Report<'a> {
    run: &'a std::path::Path,
    task: &'a str,
    template: &'a str,
    words: &'a [String],
    labels: &'a [String],
    #[serde(flatten)]
    metrics: ClassMetrics,
    /// Accuracy of always answering the most frequent validation label.
    majority_accuracy: f64,
    /// Texts whose end was cut to fit the model's context.
    truncated: usize,
    /// The label index predicted for each scored example, in order.
    predicted: Vec<usize>,
}

/// Runs `primer prompt-classify`.
pub fn run(args: PromptClassifyArgs) -> anyhow::Result<()> {
    let (template, verbalizer) = template_and_words(&args)?;
    let task = args.task.load(0)?;
    let prompt = Prompt::new(&template, &verbalizer, &task.labels).map_err(primer_options::flag_error)?;
    let (_, device) = crate::devices::resolve(&args.backend)?;
    let examples = &task.valid[..args.limit.unwrap_or(task.valid.len()).min(task.valid.len())];
    if examples.is_empty() {
        bail!("--limit 0 leaves no example to score");
    }
    if primer_options::check_only() {
        TrainedRun::check(&args.run, false)?;
        return Ok(());
    }
    let run = TrainedRun::load(&args.run, &device)?;
    let progress = ProgressBar::with_draw_target(
        Some(examples.len() as u64),
        if show_progress() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    )
    .with_style(
        ProgressStyle::with_template("prompting {bar:30} {pos}/{len} examples, {eta} left").expect("valid template"),
    );
    let mut probabilities = Vec::with_capacity(examples.len());
    let mut truncated = 0;
    for (i, example) in examples.iter().enumerate() {
        let scored = label_scores(
            run.pair(),
            run.config.objective.info(),
            &run.tokenizer,
            &prompt,
            &example.text,
            !args.no_truncate,
            &device,
        )?;
        let scores = match scored {
            Ok(scored) => {
                truncated += usize::from(scored.truncated);
                scored.scores
            }
            Err(PromptError::TooLong(tokens)) if args.no_truncate => bail!(
                "validation example {} makes a prompt of {tokens} tokens, more than the model's context of {}: drop --no-truncate to cut long texts",
                i + 1,
                run.model.max_seq_len()
            ),
            Err(PromptError::TooLong(tokens)) => bail!(
                "--template {template:?} with a label word alone makes {tokens} tokens, more than the model's context of {}: shorten the template or the label words",
                run.model.max_seq_len()
            ),
        };
        probabilities.push(softmax(&scores));
        progress.inc(1);
    }
    progress.finish_and_clear();
    if truncated > 0 {
        eprintln!(
            "{truncated} of {} texts were cut to fit the model's context of {} tokens",
            examples.len(),
            run.model.max_seq_len()
        );
    }
    let labels: Vec<usize> = examples.iter().map(|e| e.label).collect();
    let metrics = ClassMetrics::of(&probabilities, &labels, task.labels.len());
    let majority = (0..task.labels.len())
        .map(|l| labels.iter().filter(|&&x| x == l).count())
        .max()
        .unwrap_or(0) as f64
        / labels.len() as f64;
    let report = Report {
        run: &args.run,
        task: &task.name,
        template: &template,
        truncated,
        words: &prompt.words,
        labels: &task.labels,
        metrics,
        majority_accuracy: majority,
        predicted: predicted_labels(&probabilities),
    };
    print_report(&report, args.json, run.config.objective.name())
}

/// The template and label words: the flags', else the named task's.
fn template_and_words(args: &PromptClassifyArgs) -> anyhow::Result<(String, Vec<(String, String)>)> {
    let named =
        primer_datasets::task::lookup(&args.task.task).filter(|_| !std::path::Path::new(&args.task.task).exists());
    let template = args
        .template
        .clone()
        .unwrap_or_else(|| named.map_or(DEFAULT_TEMPLATE, |t| t.template).to_string());
    let verbalizer = match (&args.verbalizer, named) {
        (Some(verbalizer), _) => verbalizer.clone(),
        (None, Some(named)) => named
            .verbalizer
            .split(',')
            .filter_map(|pair| parse_pair(pair).ok())
            .collect(),
        (None, None) => bail!(
            "--task {} is a file: give a word for each of its labels with --verbalizer LABEL=WORD,...",
            args.task.task
        ),
    };
    Ok((template, verbalizer))
}

/// A softmax over label scores: the probabilities the loss and the predictions read.
fn softmax(scores: &[f64]) -> Vec<f32> {
    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let total: f64 = scores.iter().map(|s| (s - max).exp()).sum();
    scores.iter().map(|s| ((s - max).exp() / total) as f32).collect()
}

/// Prints the report: one JSON object, or lines for a reader.
fn print_report(report: &Report, json: bool, objective: &str) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(report)?);
    } else {
        println!("run          {} ({})", report.run.display(), objective);
        println!(
            "task         {} ({} validation examples)",
            report.task, report.metrics.examples
        );
        println!("template     {}", report.template);
        println!(
            "verbalizer   {}",
            report
                .labels
                .iter()
                .zip(report.words)
                .map(|(l, w)| format!("{l}={w}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!(
            "accuracy     {:.4} (majority label {:.4})",
            report.metrics.accuracy, report.majority_accuracy
        );
        println!("macro-F1     {:.4}", report.metrics.macro_f1);
    }
    Ok(())
}
