//! What `primer prompt-classify` reports: each draw of demonstrations, and the mean and spread
//! over the draws, calibrated beside uncalibrated.

use std::path::Path;

use primer_compare::stats::mean_std;
use primer_datasets::shots::ShotOrder;
use primer_datasets::task::Task;
use primer_inference::calibration::CONTENT_FREE;
use primer_inference::prompt::Prompt;
use primer_trainer::finetune::{ClassMetrics, predicted_labels};
use serde::Serialize;

/// What was cut from one draw's prompts to fit the model's context.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct DrawCuts {
    /// Texts whose end was cut.
    pub truncated: usize,
    /// Demonstrations left out, over every prompt.
    pub demonstrations_dropped: usize,
    /// Prompts that left some of their demonstrations out.
    pub prompts_short: usize,
}

/// One draw's label probabilities per example, calibrated beside them (with the content-free
/// lean) when asked for, and its cuts.
pub struct DrawScores {
    /// Per example, the probability of each label.
    pub probabilities: Vec<Vec<f32>>,
    /// The content-free lean and the calibrated probabilities.
    pub calibrated: Option<(Vec<f64>, Vec<Vec<f32>>)>,
    /// What was cut.
    pub cuts: DrawCuts,
}

/// Metrics and predictions of one set of probabilities.
#[derive(Debug, Serialize)]
struct Predictions {
    #[serde(flatten)]
    metrics: ClassMetrics,
    /// The label index predicted for each scored example, in order.
    predicted: Vec<usize>,
}

impl Predictions {
    fn of(probabilities: &[Vec<f32>], labels: &[usize], n_labels: usize) -> Self {
        Self {
            metrics: ClassMetrics::of(probabilities, labels, n_labels),
            predicted: predicted_labels(probabilities),
        }
    }
}

/// Calibrated metrics of a draw, with the lean divided out.
#[derive(Debug, Serialize)]
struct Calibrated {
    /// The label probabilities the model gives content-free texts, averaged.
    content_free: Vec<f64>,
    #[serde(flatten)]
    scoring: Predictions,
}

/// One draw of demonstrations and how the prompts that showed them did.
#[derive(Debug, Serialize)]
pub struct Draw {
    seed: u64,
    /// Indices into the training split, in the order shown.
    demonstrations: Vec<usize>,
    #[serde(flatten)]
    scoring: Predictions,
    #[serde(skip_serializing_if = "Option::is_none")]
    calibrated: Option<Calibrated>,
    #[serde(flatten)]
    cuts: DrawCuts,
}

impl Draw {
    /// The draw of `seed` (demonstrations `indices`) scored on examples labelled `labels`.
    pub fn new(seed: u64, demonstrations: Vec<usize>, labels: &[usize], n_labels: usize, scores: DrawScores) -> Self {
        Self {
            seed,
            demonstrations,
            scoring: Predictions::of(&scores.probabilities, labels, n_labels),
            calibrated: scores.calibrated.map(|(content_free, probabilities)| Calibrated {
                content_free,
                scoring: Predictions::of(&probabilities, labels, n_labels),
            }),
            cuts: scores.cuts,
        }
    }
}

/// Metrics over the draws: their means, the spread of accuracy and macro-F1, and the first
/// draw's predictions.
#[derive(Debug, Serialize)]
struct OverDraws {
    #[serde(flatten)]
    mean: ClassMetrics,
    /// Standard deviation of accuracy over the draws (0 for one).
    accuracy_std: f64,
    /// Standard deviation of macro-F1 over the draws.
    macro_f1_std: f64,
    /// The first draw's predicted label index per example.
    predicted: Vec<usize>,
}

impl OverDraws {
    fn of<'a>(scorings: impl Iterator<Item = &'a Predictions>) -> Self {
        let scorings: Vec<&Predictions> = scorings.collect();
        let over =
            |value: fn(&ClassMetrics) -> f64| mean_std(&scorings.iter().map(|s| value(&s.metrics)).collect::<Vec<_>>());
        let (accuracy, accuracy_std) = over(|m| m.accuracy);
        let (macro_f1, macro_f1_std) = over(|m| m.macro_f1);
        Self {
            mean: ClassMetrics {
                loss: over(|m| m.loss).0,
                accuracy,
                macro_f1,
                examples: scorings[0].metrics.examples,
            },
            accuracy_std,
            macro_f1_std,
            predicted: scorings[0].predicted.clone(),
        }
    }
}

/// What `primer prompt-classify` reports.
#[derive(Debug, Serialize)]
pub struct Report<'a> {
    run: &'a Path,
    task: &'a str,
    template: &'a str,
    words: &'a [String],
    labels: &'a [String],
    /// Demonstrations per prompt.
    shots: usize,
    shot_order: ShotOrder,
    /// Accuracy of always answering the most frequent validation label.
    majority_accuracy: f64,
    #[serde(flatten)]
    uncalibrated: OverDraws,
    #[serde(skip_serializing_if = "Option::is_none")]
    calibrated: Option<OverDraws>,
    /// Texts whose end was cut to fit the model's context, over every draw.
    truncated: usize,
    /// Demonstrations left out to fit the model's context, over every draw.
    demonstrations_dropped: usize,
    draws: Vec<Draw>,
}

impl<'a> Report<'a> {
    /// The report of `draws` (at least one) of `shots` demonstrations placed by `order`, on
    /// examples labelled `labels`.
    pub fn new(
        run: &'a Path,
        task: &'a Task,
        prompt: &'a Prompt,
        (shots, shot_order): (usize, ShotOrder),
        labels: &[usize],
        draws: Vec<Draw>,
    ) -> Self {
        let majority = (0..task.labels.len())
            .map(|l| labels.iter().filter(|&&x| x == l).count())
            .max()
            .unwrap_or(0) as f64
            / labels.len() as f64;
        let calibrated = draws[0].calibrated.is_some();
        Self {
            run,
            task: &task.name,
            template: prompt.template(),
            words: &prompt.words,
            labels: &task.labels,
            shots,
            shot_order,
            majority_accuracy: majority,
            uncalibrated: OverDraws::of(draws.iter().map(|d| &d.scoring)),
            calibrated: calibrated
                .then(|| OverDraws::of(draws.iter().filter_map(|d| d.calibrated.as_ref().map(|c| &c.scoring)))),
            truncated: draws.iter().map(|d| d.cuts.truncated).sum(),
            demonstrations_dropped: draws.iter().map(|d| d.cuts.demonstrations_dropped).sum(),
            draws,
        }
    }

    /// Says on stderr what was cut to fit a context of `max_len` tokens, if anything.
    pub fn note_cuts(&self, max_len: usize) {
        let prompts = self.uncalibrated.mean.examples * self.draws.len();
        let short: usize = self.draws.iter().map(|d| d.cuts.prompts_short).sum();
        if short > 0 {
            eprintln!(
                "{short} of {prompts} prompts left out some of their demonstrations ({} in all) to fit the model's context of {max_len} tokens",
                self.demonstrations_dropped
            );
        }
        if self.truncated > 0 {
            eprintln!(
                "{} of {prompts} texts were cut to fit the model's context of {max_len} tokens",
                self.truncated
            );
        }
    }

    /// Prints the report: one JSON object, or lines for a reader.
    pub fn print(&self, json: bool, objective: &str) -> anyhow::Result<()> {
        if json {
            println!("{}", serde_json::to_string(self)?);
            return Ok(());
        }
        println!("run          {} ({})", self.run.display(), objective);
        println!(
            "task         {} ({} validation examples)",
            self.task, self.uncalibrated.mean.examples
        );
        println!("template     {}", self.template);
        let pairs: Vec<String> = self
            .labels
            .iter()
            .zip(self.words)
            .map(|(l, w)| format!("{l}={w}"))
            .collect();
        println!("verbalizer   {}", pairs.join(", "));
        let draws = self.draws.len();
        if self.shots > 0 {
            let seeds = match draws {
                1 => format!("seed {}", self.draws[0].seed),
                n => format!("{n} draws, seeds {} to {}", self.draws[0].seed, self.draws[n - 1].seed),
            };
            println!("shots        {} per prompt, {} ({seeds})", self.shots, self.shot_order);
        }
        let spread = |mean: f64, std: f64| match draws {
            1 => format!("{mean:.4}"),
            n => format!("{mean:.4} ± {std:.4} over {n} draws"),
        };
        let over = &self.uncalibrated;
        println!(
            "accuracy     {} (majority label {:.4})",
            spread(over.mean.accuracy, over.accuracy_std),
            self.majority_accuracy
        );
        println!("macro-F1     {}", spread(over.mean.macro_f1, over.macro_f1_std));
        if let Some(calibrated) = &self.calibrated {
            let free: Vec<String> = CONTENT_FREE.iter().map(|t| format!("{t:?}")).collect();
            println!(
                "calibrated   accuracy {}, macro-F1 {} (content-free texts {})",
                spread(calibrated.mean.accuracy, calibrated.accuracy_std),
                spread(calibrated.mean.macro_f1, calibrated.macro_f1_std),
                free.join(", ")
            );
        }
        Ok(())
    }
}
