//! `primer multiple-choice`: HellaSwag-style questions (a context and candidate continuations)
//! answered by a pre-trained model with no training, after K demonstrations or none, scored as
//! lm-evaluation-harness 0.4 scores them: `acc` (summed log-probability) and `acc_norm` (divided
//! by the continuation's length in characters).

use std::path::{Path, PathBuf};

use anyhow::bail;
use primer_datasets::choices::{ChoiceItem, draw, read_choices};
use primer_inference::choice::{ChoiceQuery, demonstration};
use primer_inference::context::{PromptError, demonstrations_refused};
use primer_inference::scorer::Scorer;
use serde::Serialize;

use crate::trained::TrainedRun;
use primer_options::BackendArgs;

/// Arguments of `primer multiple-choice`.
#[derive(clap::Args, Debug)]
pub struct MultipleChoiceArgs {
    /// A pre-training run (mlm, clm, prefix or electra).
    #[arg(long)]
    run: PathBuf,
    /// The questions: JSON Lines with `context`, `choices` and `label` (the index of the right
    /// choice), or HellaSwag's `ctx`, `endings` and `label`.
    #[arg(long)]
    file: PathBuf,
    /// Questions in the same format to draw demonstrations from (--shots).
    #[arg(long)]
    train_file: Option<PathBuf>,
    /// Demonstrations before each question: a context and its right continuation, drawn at
    /// random from --train-file, a blank line after each.
    #[arg(long, default_value_t = 0)]
    shots: usize,
    /// Seed of the demonstrations.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Score only the first N questions.
    #[arg(long)]
    limit: Option<usize>,
    /// Fail on a prompt longer than the model's context, instead of leaving out demonstrations
    /// (the first ones first), then cutting the start off the context, and counting the cuts.
    #[arg(long)]
    no_truncate: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    backend: BackendArgs,
}

/// What `primer multiple-choice` reports.
#[derive(Debug, Serialize)]
struct Report<'a> {
    run: &'a Path,
    file: &'a Path,
    questions: usize,
    shots: usize,
    seed: u64,
    /// Share of questions whose right continuation has the highest summed log-probability.
    acc: f64,
    /// The same with each sum divided by the continuation's length in characters.
    acc_norm: f64,
    /// The accuracy of picking a continuation at random: the mean of 1 / choices.
    chance: f64,
    /// Contexts whose start was cut to fit the model's context.
    truncated: usize,
    /// Demonstrations left out to fit the model's context, over every prompt.
    demonstrations_dropped: usize,
    /// `acc`'s pick for each question, in order.
    predicted: Vec<usize>,
    /// `acc_norm`'s pick for each question.
    predicted_norm: Vec<usize>,
}

/// Runs `primer multiple-choice`.
pub fn run(args: MultipleChoiceArgs) -> anyhow::Result<()> {
    let items = read_choices(&args.file)?;
    let items = &items[..args.limit.unwrap_or(items.len()).min(items.len())];
    if items.is_empty() {
        bail!("--limit 0 leaves no question to score");
    }
    let demonstrations = demonstrations(&args)?;
    let (_, device) = crate::devices::resolve(&args.backend)?;
    let run = TrainedRun::load(&args.run, &device)?;
    if let Some(reason) = demonstrations_refused(run.config.objective.info()).filter(|_| args.shots > 0) {
        bail!(
            "--shots {}: {reason}: give --shots 0, or a run of another objective",
            args.shots
        );
    }
    let (model, companion) = run.model_and_companion();
    let scorer = Scorer {
        model,
        companion,
        objective: run.config.objective.info(),
        tokenizer: &run.tokenizer,
        device: &device,
    };
    let tokens = scorer.fixed_len(&demonstrations, &ChoiceQuery(&items[0]))?;
    if !demonstrations.is_empty() && tokens > scorer.max_len() {
        bail!(
            "--shots {}: the demonstrations drawn with seed {} make {tokens} tokens with the first question's longest continuation, more than the model's context of {}: lower --shots",
            args.shots,
            args.seed,
            scorer.max_len()
        );
    }
    let report = answer(&args, &scorer, items, &demonstrations)?;
    if report.truncated > 0 || report.demonstrations_dropped > 0 {
        eprintln!(
            "to fit the model's context of {} tokens, {} demonstrations were left out and {} of {} contexts cut",
            scorer.max_len(),
            report.demonstrations_dropped,
            report.truncated,
            items.len()
        );
    }
    print(&report, args.json, run.config.objective.name())
}

/// The demonstrations: `--shots` questions of `--train-file` with their right continuations.
fn demonstrations(args: &MultipleChoiceArgs) -> anyhow::Result<Vec<String>> {
    match (&args.train_file, args.shots) {
        (None, 0) => Ok(Vec::new()),
        (None, shots) => bail!("--shots {shots} draws demonstrations from --train-file: give one"),
        (Some(_), 0) => bail!("--train-file is read for demonstrations only: give --shots K too"),
        (Some(path), shots) => {
            let train = read_choices(path)?;
            let drawn = draw(&train, shots, args.seed, path)?;
            Ok(drawn.iter().map(|&i| demonstration(&train[i])).collect())
        }
    }
}

/// Scores every question and counts what was right.
fn answer<'a>(
    args: &'a MultipleChoiceArgs,
    scorer: &Scorer,
    items: &[ChoiceItem],
    demonstrations: &[String],
) -> anyhow::Result<Report<'a>> {
    let mut report = Report {
        run: &args.run,
        file: &args.file,
        questions: items.len(),
        shots: args.shots,
        seed: args.seed,
        acc: 0.0,
        acc_norm: 0.0,
        chance: items.iter().map(|i| 1.0 / i.choices.len() as f64).sum::<f64>() / items.len() as f64,
        truncated: 0,
        demonstrations_dropped: 0,
        predicted: Vec::with_capacity(items.len()),
        predicted_norm: Vec::with_capacity(items.len()),
    };
    for (i, item) in items.iter().enumerate() {
        let scores = match scorer.choice_scores(item, demonstrations, !args.no_truncate)? {
            Ok(scores) => scores,
            Err(PromptError::TooLong(tokens)) if args.no_truncate => bail!(
                "question {} makes a prompt of {tokens} tokens, more than the model's context of {}: drop --no-truncate to cut it",
                i + 1,
                scorer.max_len()
            ),
            Err(PromptError::TooLong(tokens)) => bail!(
                "question {}: a continuation alone makes {tokens} tokens, more than the model's context of {}: shorten it, or use a run with a longer context",
                i + 1,
                scorer.max_len()
            ),
        };
        report.truncated += usize::from(scores.truncated);
        report.demonstrations_dropped += scores.dropped;
        report.acc += f64::from(u8::from(scores.pick == item.label));
        report.acc_norm += f64::from(u8::from(scores.pick_norm == item.label));
        report.predicted.push(scores.pick);
        report.predicted_norm.push(scores.pick_norm);
    }
    report.acc /= items.len() as f64;
    report.acc_norm /= items.len() as f64;
    Ok(report)
}

/// Prints the report: one JSON object, or lines for a reader.
fn print(report: &Report, json: bool, objective: &str) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(report)?);
        return Ok(());
    }
    println!("run          {} ({objective})", report.run.display());
    println!("questions    {} ({})", report.file.display(), report.questions);
    if report.shots > 0 {
        println!("shots        {} per question (seed {})", report.shots, report.seed);
    }
    println!("acc          {:.4} (summed log-probability)", report.acc);
    println!(
        "acc_norm     {:.4} (per character of the continuation)",
        report.acc_norm
    );
    println!("chance       {:.4}", report.chance);
    Ok(())
}
