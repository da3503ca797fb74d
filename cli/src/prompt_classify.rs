//! `primer prompt-classify`: classification by prompting a pre-trained model, with no training,
//! reported as accuracy on the task's validation split: zero-shot, or after K labelled
//! demonstrations from the training split (k-shot, as GPT-3), calibrated or not, over one draw
//! of demonstrations or several.

use std::path::PathBuf;

use anyhow::bail;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use primer_datasets::shots::ShotOrder;
use primer_datasets::task::{Example, Task};
use primer_inference::calibration::{CONTENT_FREE, calibrate, content_free_mean};
use primer_inference::context::{PromptError, demonstrations_refused};
use primer_inference::prompt::Prompt;
use primer_inference::scorer::Scorer;
use primer_objectives::ObjectiveInfo;

use crate::prompt_report::{Draw, DrawCuts, DrawScores, Report};
use crate::trained::TrainedRun;
use primer_options::data::show_progress;
use primer_options::task::TaskArgs;
use primer_options::{BackendArgs, parser};

/// The template of a task file given without `--template`.
const DEFAULT_TEMPLATE: &str = "{text} It was [LABEL].";

/// Arguments of `primer prompt-classify`.
#[derive(clap::Args, Debug)]
pub struct PromptClassifyArgs {
    /// A pre-training run (mlm, clm, prefix or electra).
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
    /// Labelled demonstrations from the training split before each text, each the template
    /// filled with its text and label word, a blank line after each (k-shot prompting).
    #[arg(long, default_value_t = 0)]
    shots: usize,
    /// How demonstrations are drawn and placed: balanced (K/L of each of the L labels,
    /// round-robin over the labels) or random (from the whole training split, in random
    /// order, as GPT-3).
    #[arg(long, default_value = "balanced", value_parser = parser::<ShotOrder>())]
    shot_order: ShotOrder,
    /// Seed of the demonstrations (and of a task file's held-out validation split).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Draws of demonstrations, with seeds --seed, --seed + 1, ...: the report gives each
    /// draw's accuracy and their mean and standard deviation.
    #[arg(long, default_value_t = 1)]
    shot_seeds: u64,
    /// Also report contextual calibration (Zhao et al. 2021): each label's probability divided
    /// by the one the model gives content-free texts (N/A, [MASK], the empty string) after the
    /// same demonstrations.
    #[arg(long)]
    calibrate: bool,
    /// Fail on a prompt longer than the model's context, instead of leaving out
    /// demonstrations (the first ones first), then cutting the end off the text (never the
    /// template or the label slot), and counting the cuts.
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

/// Refuses `--shots K` for a run whose objective cannot read demonstrations.
fn shots_allowed(args: &PromptClassifyArgs, objective: &ObjectiveInfo) -> anyhow::Result<()> {
    match demonstrations_refused(objective).filter(|_| args.shots > 0) {
        Some(reason) => bail!(
            "--shots {}: {reason}: give --shots 0, or a run of another objective",
            args.shots
        ),
        None => Ok(()),
    }
}

/// Runs `primer prompt-classify`.
pub fn run(args: PromptClassifyArgs) -> anyhow::Result<()> {
    if args.shot_seeds == 0 {
        bail!("--shot-seeds 0 draws nothing: give at least 1");
    }
    if args.shot_seeds > 1 && args.shots == 0 {
        bail!(
            "--shot-seeds {} draws demonstrations, and --shots is 0: give --shots K too",
            args.shot_seeds
        );
    }
    let (template, verbalizer) = template_and_words(&args)?;
    let task = args.task.load(args.seed)?;
    let prompt = Prompt::new(&template, &verbalizer, &task.labels).map_err(primer_options::flag_error)?;
    let (_, device) = crate::devices::resolve(&args.backend)?;
    let examples = &task.valid[..args.limit.unwrap_or(task.valid.len()).min(task.valid.len())];
    if examples.is_empty() {
        bail!("--limit 0 leaves no example to score");
    }
    if primer_options::check_only() {
        let (config, _) = TrainedRun::check(&args.run, false)?;
        return shots_allowed(&args, config.objective.info());
    }
    let run = TrainedRun::load(&args.run, &device)?;
    shots_allowed(&args, run.config.objective.info())?;
    let (model, companion) = run.model_and_companion();
    let scorer = Scorer {
        model,
        companion,
        objective: run.config.objective.info(),
        tokenizer: &run.tokenizer,
        device: &device,
    };
    // Every draw is checked before any is scored: a K too large stops at once.
    let draws = (0..args.shot_seeds)
        .map(|i| demonstrations(&args, &scorer, &task, &prompt, args.seed + i))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let labels: Vec<usize> = examples.iter().map(|e| e.label).collect();
    let progress = progress_bar(examples.len() * draws.len());
    let mut scored = Vec::with_capacity(draws.len());
    for (seed, indices, texts) in draws {
        let (probabilities, cuts) = score_examples(&args, &scorer, &prompt, &texts, examples, &progress)?;
        let calibrated = match args.calibrate {
            true => Some(calibrated(&scorer, &prompt, &texts, &probabilities)?),
            false => None,
        };
        let scores = DrawScores {
            probabilities,
            calibrated,
            cuts,
        };
        scored.push(Draw::new(seed, indices, &labels, task.labels.len(), scores));
    }
    progress.finish_and_clear();
    let order = (args.shots, args.shot_order);
    let report = Report::new(&args.run, &task, &prompt, order, &labels, scored);
    report.note_cuts(scorer.max_len());
    report.print(args.json, run.config.objective.name())
}

/// The demonstrations drawn with `seed`: their indices into the training split and their
/// texts, checked to fit the context beside the template and a label word.
fn demonstrations(
    args: &PromptClassifyArgs,
    scorer: &Scorer,
    task: &Task,
    prompt: &Prompt,
    seed: u64,
) -> anyhow::Result<(u64, Vec<usize>, Vec<String>)> {
    let indices = task.demonstrations(args.shots, args.shot_order, seed)?;
    let texts: Vec<String> = indices
        .iter()
        .map(|&i| prompt.demonstration(&task.train[i].text, task.train[i].label))
        .collect();
    let tokens = scorer.fixed_len(&texts, &prompt.query(""))?;
    if tokens > scorer.max_len() {
        if texts.is_empty() {
            bail!(
                "--template {:?} with a label word alone makes {tokens} tokens, more than the model's context of {}: shorten the template or the label words",
                prompt.template(),
                scorer.max_len()
            );
        }
        bail!(
            "--shots {}: the demonstrations drawn with seed {seed} make {tokens} tokens with the template and a label word, more than the model's context of {}: lower --shots",
            args.shots,
            scorer.max_len()
        );
    }
    Ok((seed, indices, texts))
}

/// Each example's label probabilities after `demonstrations`, and what was cut to fit.
fn score_examples(
    args: &PromptClassifyArgs,
    scorer: &Scorer,
    prompt: &Prompt,
    demonstrations: &[String],
    examples: &[Example],
    progress: &ProgressBar,
) -> anyhow::Result<(Vec<Vec<f32>>, DrawCuts)> {
    let mut probabilities = Vec::with_capacity(examples.len());
    let mut cuts = DrawCuts::default();
    for (i, example) in examples.iter().enumerate() {
        let scores = match scorer.label_scores(prompt, demonstrations, &example.text, !args.no_truncate)? {
            Ok(scores) => scores,
            Err(PromptError::TooLong(tokens)) => bail!(
                "validation example {} makes a prompt of {tokens} tokens{}, more than the model's context of {}: drop --no-truncate to {}",
                i + 1,
                if demonstrations.is_empty() {
                    ""
                } else {
                    " with its demonstrations"
                },
                scorer.max_len(),
                if demonstrations.is_empty() {
                    "cut long texts"
                } else {
                    "leave out demonstrations and cut long texts"
                }
            ),
        };
        cuts.truncated += usize::from(scores.truncated);
        cuts.demonstrations_dropped += scores.dropped;
        cuts.prompts_short += usize::from(scores.dropped > 0);
        probabilities.push(softmax(&scores.scores).iter().map(|&p| p as f32).collect());
        progress.inc(1);
    }
    Ok((probabilities, cuts))
}

/// The model's lean after `demonstrations` (the content-free texts' mean label
/// probabilities) and `probabilities` with it divided out.
fn calibrated(
    scorer: &Scorer,
    prompt: &Prompt,
    demonstrations: &[String],
    probabilities: &[Vec<f32>],
) -> anyhow::Result<(Vec<f64>, Vec<Vec<f32>>)> {
    let mut leans = Vec::new();
    for text in CONTENT_FREE {
        let scores = scorer
            .label_scores(prompt, demonstrations, text, true)?
            .expect("the demonstrations fit beside an empty text, so they fit beside any after cuts");
        leans.push(softmax(&scores.scores));
    }
    let lean = content_free_mean(&leans);
    let calibrated = probabilities
        .iter()
        .map(|p| {
            let p: Vec<f64> = p.iter().map(|&x| f64::from(x)).collect();
            calibrate(&p, &lean).iter().map(|&x| x as f32).collect()
        })
        .collect();
    Ok((lean, calibrated))
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
fn softmax(scores: &[f64]) -> Vec<f64> {
    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let total: f64 = scores.iter().map(|s| (s - max).exp()).sum();
    scores.iter().map(|s| (s - max).exp() / total).collect()
}

/// A progress bar over `total` prompts, on stderr when progress is shown.
fn progress_bar(total: usize) -> ProgressBar {
    let target = if show_progress() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    ProgressBar::with_draw_target(Some(total as u64), target).with_style(
        ProgressStyle::with_template("prompting {bar:30} {pos}/{len} prompts, {eta} left").expect("valid template"),
    )
}
