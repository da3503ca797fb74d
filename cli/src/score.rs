//! `primer score`: per-document perplexity (causal runs) or pseudo-perplexity (masked runs).

use std::path::PathBuf;

use anyhow::bail;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use primer_datasets::corpus::DocSplit;
use primer_objectives::scoring::{Nll, Pll, Text};
use serde::Serialize;

use crate::trained::TrainedRun;
use primer_options::data;
use primer_options::{BackendArgs, CorpusArgs};

/// Arguments of `primer score`.
#[derive(clap::Args, Debug)]
pub struct ScoreArgs {
    /// The run directory.
    #[arg(long)]
    run: PathBuf,
    /// File to score (.txt, .jsonl, .tsv or .csv, as for `--corpus`).
    #[arg(long)]
    file: String,
    /// How a .txt file splits into documents: line, paragraph (blank lines) or file.
    #[arg(long, default_value = "line", value_parser = primer_options::parser::<DocSplit>())]
    doc_split: DocSplit,
    /// MLM: masked copies scored per batch.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Masked runs: which tokens each masked copy hides besides the one it predicts: none
    /// (original) or the rest of its word to its right (word-l2r), as `primer minimal-pairs
    /// --pll` [default: original].
    #[arg(long, value_parser = primer_options::parser::<Pll>())]
    pll: Option<Pll>,
    /// One JSON object per document instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    backend: BackendArgs,
}

/// The score of one document.
#[derive(Debug, Serialize)]
struct DocScore {
    /// 1-based position of the document in the file.
    doc: usize,
    tokens: usize,
    /// The document's score: its (pseudo-)log-likelihood, the sum over its tokens, nats.
    log_prob: f64,
    /// Mean negative log-likelihood per token, nats.
    nll: f64,
    /// Perplexity (causal) or pseudo-perplexity (MLM).
    #[serde(rename = "ppl")]
    perplexity: f64,
    kind: &'static str,
}

/// Runs `primer score`.
pub fn run(args: ScoreArgs) -> anyhow::Result<()> {
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let format = CorpusArgs {
        doc_split: Some(args.doc_split),
        ..CorpusArgs::default()
    };
    let corpus = data::corpus(std::slice::from_ref(&args.file), &format)?;
    let documents: Vec<String> = corpus
        .documents()
        .map(|doc| doc.map(|doc| doc.text))
        .collect::<Result<_, _>>()?;
    if documents.is_empty() {
        bail!("{} holds no text: give a file with documents to score", args.file);
    }
    let (_, device) = crate::devices::resolve(&args.backend)?;
    if primer_options::check_only() {
        TrainedRun::check(&args.run, false)?;
        return Ok(());
    }
    let run = TrainedRun::load(&args.run, &device)?;
    let (scoring, specials) = (run.scoring(args.pll)?, *run.tokenizer.specials());
    let progress = ProgressBar::with_draw_target(
        Some(documents.len() as u64),
        if data::show_progress() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    )
    .with_style(
        ProgressStyle::with_template("scoring {bar:30} {pos}/{len} documents, {eta} left").expect("valid template"),
    );
    let mut total = Nll::default();
    let mut scores = Vec::new();
    for (i, text) in documents.iter().enumerate() {
        let text = Text::encode(&run.tokenizer, text)?;
        let nll = scoring.nll(run.model_and_companion(), &specials, &text, args.batch_size, &device);
        total.add(nll);
        scores.push(DocScore {
            doc: i + 1,
            tokens: nll.tokens,
            log_prob: -nll.sum,
            nll: nll.sum / nll.tokens.max(1) as f64,
            perplexity: nll.perplexity(),
            kind: scoring.perplexity_name(),
        });
        progress.inc(1);
    }
    progress.finish_and_clear();
    for score in &scores {
        if args.json {
            println!("{}", serde_json::to_string(score)?);
        } else {
            println!(
                "doc {:>5}  {:>6} tokens  {} {:.3}",
                score.doc, score.tokens, score.kind, score.perplexity
            );
        }
    }
    if !args.json {
        println!(
            "all        {:>6} tokens  {} {:.3}",
            total.tokens,
            scores[0].kind,
            total.perplexity()
        );
    }
    Ok(())
}
