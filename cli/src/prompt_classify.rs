//! `primer prompt-classify`: zero-shot classification by prompting a pre-trained model, with no
//! training, reported as accuracy on the task's validation split.

use std::path::PathBuf;

use anyhow::bail;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use primer_trainer::finetune::{ClassMetrics, predicted_labels};
use primer_trainer::prompt::{Prompt, PromptError, label_scores};
use serde::Serialize;

use crate::data::show_progress;
use crate::options::BackendArgs;
use crate::task::TaskArgs;
use crate::trained::TrainedRun;

/// Arguments of `primer prompt-classify`.
#[derive(clap::Args, Debug)]
pub struct PromptClassifyArgs {
    /// A pre-training run (mlm or clm).
    #[arg(long)]
    run: PathBuf,
    #[command(flatten)]
    task: TaskArgs,
    /// The prompt: {text} is the example, [LABEL] the slot for the label word.
    #[arg(long, default_value = "{text} It was [LABEL].")]
    template: String,
    /// A word per label: LABEL=WORD pairs, comma-separated, e.g. 0=terrible,1=great.
    #[arg(long, value_delimiter = ',', value_parser = parse_pair, required = true)]
    verbalizer: Vec<(String, String)>,
    /// Score only the first N validation examples.
    #[arg(long)]
    limit: Option<usize>,
    /// Cut the end off texts whose prompt is longer than the model's context instead of failing.
    #[arg(long)]
    truncate: bool,
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
    /// The label index predicted for each scored example, in order.
    predicted: Vec<usize>,
}

/// Runs `primer prompt-classify`.
pub fn run(args: PromptClassifyArgs) -> anyhow::Result<()> {
    let task = args.task.load(0)?;
    let prompt = Prompt::new(&args.template, &args.verbalizer, &task.labels)?;
    let (_, device) = args.backend.resolve()?;
    let run = TrainedRun::load(&args.run, &device)?;
    let examples = &task.valid[..args.limit.unwrap_or(task.valid.len()).min(task.valid.len())];
    if examples.is_empty() {
        bail!("--limit 0 leaves no example to score");
    }
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
    for (i, example) in examples.iter().enumerate() {
        let scores = label_scores(
            &run.model,
            run.config.objective,
            &run.tokenizer,
            &prompt,
            &example.text,
            args.truncate,
            &device,
        )?;
        let scores = match scores {
            Ok(scores) => scores,
            Err(PromptError::TooLong(tokens)) => bail!(
                "validation example {} makes a prompt of {tokens} tokens, more than the model's context of {}: pass --truncate to cut long texts",
                i + 1,
                run.model.max_seq_len()
            ),
        };
        // A softmax over the label scores, for the loss.
        let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let total: f64 = scores.iter().map(|s| (s - max).exp()).sum();
        probabilities.push(
            scores
                .iter()
                .map(|s| ((s - max).exp() / total) as f32)
                .collect::<Vec<_>>(),
        );
        progress.inc(1);
    }
    progress.finish_and_clear();
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
        template: &args.template,
        words: &prompt.words,
        labels: &task.labels,
        metrics,
        majority_accuracy: majority,
        predicted: predicted_labels(&probabilities),
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("run          {} ({})", args.run.display(), run.config.objective.name());
        println!("task         {} ({} validation examples)", task.name, metrics.examples);
        println!("template     {}", args.template);
        println!(
            "verbalizer   {}",
            task.labels
                .iter()
                .zip(&prompt.words)
                .map(|(l, w)| format!("{l}={w}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!("accuracy     {:.4} (majority label {:.4})", metrics.accuracy, majority);
        println!("macro-F1     {:.4}", metrics.macro_f1);
    }
    Ok(())
}
