//! `primer minimal-pairs`: how often a pre-trained run scores the acceptable sentence of a
//! minimal pair at least as high as the unacceptable one (BLiMP; a tie counts right, as in
//! lm-evaluation-harness), overall and per field, phenomenon and paradigm, and apart for the
//! pairs whose sentences have as many tokens, where a summed score cannot prefer the shorter.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::bail;
use burn::tensor::Device;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use primer_datasets::pairs::MinimalPair;
use primer_objectives::info::{Scoring, prefers_first};
use primer_objectives::scoring::{Pll, Text};
use serde::Serialize;

use crate::trained::TrainedRun;
use primer_options::BackendArgs;
use primer_options::data::show_progress;

/// Pairs scored between progress updates.
const PAIRS_PER_CHUNK: usize = 500;
/// The length group of pairs whose two sentences have as many tokens.
const EQUAL_LENGTH: &str = "equal length";

/// Arguments of `primer minimal-pairs`.
#[derive(clap::Args, Debug)]
pub struct MinimalPairsArgs {
    /// The pre-training run directory.
    #[arg(long)]
    run: PathBuf,
    /// The pairs: `blimp` (67 paradigms of 1,000 pairs, fetched and checked under the data
    /// home), a JSON Lines file with `sentence_good` and `sentence_bad` (grouped by `field`,
    /// `linguistics_term` and `UID` when given), or a folder of such files.
    #[arg(long, default_value = "blimp")]
    pairs: String,
    /// Only the first N pairs of each paradigm.
    #[arg(long, value_name = "N")]
    limit_per_paradigm: Option<usize>,
    /// Rows per forward pass (a masked model reads one row per token of a sentence; 32 was
    /// the fastest for causal models of the compare size, within 3% of the best for masked ones).
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// One JSON object on stdout instead of tables.
    #[arg(long)]
    json: bool,
    /// Also write the JSON results to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Score the run's model as it was before training (its seed's initial weights): the
    /// baseline of an untrained model of the same size, scored the same way.
    #[arg(long)]
    untrained: bool,
    /// Masked runs: which tokens each masked copy hides besides the one it predicts: none
    /// (original, Salazar et al. 2020) or the rest of its word to its right (word-l2r, Kauf &
    /// Ivanova 2023); minicons' PLL_metric `original` and `within_word_l2r` [default: original].
    #[arg(long, value_parser = primer_options::parser::<Pll>())]
    pll: Option<Pll>,
    /// Also list each pair's two scores (log-probabilities in nats, acceptable sentence first)
    /// in the JSON results, as `scores`.
    #[arg(long)]
    scores: bool,
    #[command(flatten)]
    backend: BackendArgs,
}

/// Accuracy over a group of pairs.
#[derive(Debug, Serialize)]
struct Group {
    name: String,
    pairs: usize,
    accuracy: f64,
}

/// The results, as `--json` prints them.
#[derive(Debug, Serialize)]
struct Results {
    run: PathBuf,
    objective: String,
    /// How each sentence is scored.
    scoring: &'static str,
    /// A masked run's masking (`original`, `word-l2r`); none for other runs.
    pll: Option<&'static str>,
    /// What the model reads.
    framing: &'static str,
    pairs: usize,
    accuracy: f64,
    seconds: f64,
    pairs_per_s: f64,
    fields: Vec<Group>,
    phenomena: Vec<Group>,
    paradigms: Vec<Group>,
    /// Accuracy over the pairs whose two sentences have as many tokens (a summed score
    /// prefers the shorter sentence, whatever it is); none when no pair is of equal length.
    equal_length_accuracy: Option<f64>,
    /// Accuracy by the sentences' token counts: equal, the acceptable one shorter, longer.
    lengths: Vec<Group>,
    /// Each pair in order, `1` scored right (a tie included) and `0` wrong.
    correct: String,
    /// With `--scores`, each pair's scores: acceptable sentence, then unacceptable.
    #[serde(skip_serializing_if = "Option::is_none")]
    scores: Option<Vec<[f64; 2]>>,
}

/// Runs `primer minimal-pairs`.
pub fn run(args: MinimalPairsArgs) -> anyhow::Result<()> {
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    if args.limit_per_paradigm == Some(0) {
        bail!("--limit-per-paradigm 0 leaves no pairs: give at least 1");
    }
    let (_, device) = crate::devices::resolve(&args.backend)?;
    if primer_options::check_only() {
        TrainedRun::check(&args.run, args.untrained)?;
        primer_options::data::minimal_pairs(&args.pairs, args.limit_per_paradigm)?;
        return Ok(());
    }
    let run = match args.untrained {
        true => TrainedRun::untrained(&args.run, &device)?,
        false => TrainedRun::load(&args.run, &device)?,
    };
    let scoring = run.scoring(args.pll)?;
    let pairs = primer_options::data::minimal_pairs(&args.pairs, args.limit_per_paradigm)?;
    let started = Instant::now();
    let scored = score_pairs(&run, scoring, &pairs, args.batch_size, &device)?;
    let seconds = started.elapsed().as_secs_f64();
    let correct: Vec<bool> = scored
        .iter()
        .map(|pair| prefers_first(pair.scores[0], pair.scores[1]))
        .collect();
    let lengths = groups(scored.iter().map(|pair| length_group(pair.tokens)), &correct);
    let results = Results {
        run: args.run.clone(),
        objective: match args.untrained {
            true => format!("{} (untrained)", run.config.objective.label()),
            false => run.config.objective.label(),
        },
        scoring: scoring.name(),
        pll: scoring.pll().map(Pll::name),
        framing: scoring.framing(),
        pairs: pairs.len(),
        accuracy: share(correct.iter().copied()),
        seconds,
        pairs_per_s: pairs.len() as f64 / seconds.max(1e-9),
        fields: groups(pairs.iter().map(|p| p.field.as_str()), &correct),
        phenomena: groups(pairs.iter().map(|p| p.phenomenon.as_str()), &correct),
        paradigms: groups(pairs.iter().map(|p| p.paradigm.as_str()), &correct),
        equal_length_accuracy: lengths
            .iter()
            .find(|group| group.name == EQUAL_LENGTH)
            .map(|group| group.accuracy),
        lengths,
        correct: correct.iter().map(|&ok| if ok { '1' } else { '0' }).collect(),
        scores: args.scores.then(|| scored.iter().map(|pair| pair.scores).collect()),
    };
    let json = serde_json::to_string_pretty(&results)?;
    if let Some(out) = &args.out {
        primer_files::atomic_write(out, json.as_bytes())?;
    }
    if args.json {
        println!("{json}");
    } else {
        print_tables(&results);
    }
    Ok(())
}

/// A minimal pair as scored: acceptable sentence first.
struct ScoredPair {
    /// Each sentence's score.
    scores: [f64; 2],
    /// Each sentence's token count.
    tokens: [usize; 2],
}

/// Each pair scored by `scoring`, a chunk of pairs at a time behind a progress bar.
fn score_pairs(
    run: &TrainedRun,
    scoring: Scoring,
    pairs: &[MinimalPair],
    batch_rows: usize,
    device: &Device,
) -> anyhow::Result<Vec<ScoredPair>> {
    let specials = *run.tokenizer.specials();
    let progress = progress_bar(pairs.len());
    let mut scored = Vec::with_capacity(pairs.len());
    for chunk in pairs.chunks(PAIRS_PER_CHUNK) {
        let texts = chunk
            .iter()
            .flat_map(|pair| [&pair.good, &pair.bad])
            .map(|sentence| Text::encode(&run.tokenizer, sentence))
            .collect::<Result<Vec<_>, _>>()?;
        let chunk_scores = scoring.log_probs(run.model_and_companion(), &specials, &texts, batch_rows, device);
        scored.extend(
            chunk_scores
                .chunks(2)
                .zip(texts.chunks(2))
                .map(|(scores, texts)| ScoredPair {
                    scores: [scores[0], scores[1]],
                    tokens: [texts[0].tokens.len(), texts[1].tokens.len()],
                }),
        );
        progress.inc(chunk.len() as u64);
    }
    progress.finish_and_clear();
    Ok(scored)
}

/// The length group of a pair whose acceptable sentence has `good` tokens and the other `bad`.
fn length_group([good, bad]: [usize; 2]) -> &'static str {
    match good.cmp(&bad) {
        Ordering::Equal => EQUAL_LENGTH,
        Ordering::Less => "acceptable shorter",
        Ordering::Greater => "acceptable longer",
    }
}

fn progress_bar(pairs: usize) -> ProgressBar {
    let target = match show_progress() {
        true => ProgressDrawTarget::stderr(),
        false => ProgressDrawTarget::hidden(),
    };
    ProgressBar::with_draw_target(Some(pairs as u64), target).with_style(
        ProgressStyle::with_template("minimal pairs {bar:30} {pos}/{len}, {per_sec}, {eta} left")
            .expect("valid template"),
    )
}

/// The share of true values.
fn share(values: impl Iterator<Item = bool>) -> f64 {
    let (right, total) = values.fold((0usize, 0usize), |(r, t), ok| (r + ok as usize, t + 1));
    right as f64 / total.max(1) as f64
}

/// Accuracy per group, each pair's group named by `keys`, in name order.
fn groups<'a>(keys: impl Iterator<Item = &'a str>, correct: &[bool]) -> Vec<Group> {
    let mut by_name: BTreeMap<&str, Vec<bool>> = BTreeMap::new();
    for (key, &ok) in keys.zip(correct) {
        by_name.entry(key).or_default().push(ok);
    }
    by_name
        .into_iter()
        .map(|(name, oks)| Group {
            name: name.to_string(),
            pairs: oks.len(),
            accuracy: share(oks.into_iter()),
        })
        .collect()
}

fn print_tables(results: &Results) {
    println!("run        {} ({})", results.run.display(), results.objective);
    println!("scoring    {}: {}", results.scoring, results.framing);
    println!(
        "accuracy   {:.4} over {} pairs ({:.0} pairs/s, {:.1} s)",
        results.accuracy, results.pairs, results.pairs_per_s, results.seconds
    );
    if let Some(equal) = results.lengths.iter().find(|group| group.name == EQUAL_LENGTH) {
        println!(
            "           {:.4} over the {} pairs of equal token counts",
            equal.accuracy, equal.pairs
        );
    }
    for (title, groups) in [
        ("token counts", &results.lengths),
        ("field", &results.fields),
        ("phenomenon", &results.phenomena),
        ("paradigm", &results.paradigms),
    ] {
        println!("\n{title:<56} {:>6} {:>8}", "pairs", "accuracy");
        for group in groups {
            println!("{:<56} {:>6} {:>8.4}", group.name, group.pairs, group.accuracy);
        }
    }
}
