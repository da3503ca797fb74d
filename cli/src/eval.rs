//! `primer eval`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use primer_datasets::blocks::eval_starts;
use primer_datasets::prepare::{PreparedData, SplitOptions};
use primer_datasets::tokenizer::PrimerTokenizer;
use primer_objectives::ObjectiveConfig;
use primer_objectives::info::Metric;
use primer_trainer::config::RunConfig;
use primer_trainer::eval::{EvalSet, UnigramBaseline, evaluate, pseudo_perplexity, unigram_baseline};
use primer_trainer::run::valid_starts;
use primer_trainer::run_dir::RunDir;
use serde::Serialize;

use crate::trained::TrainedRun;
use primer_options::data;
use primer_options::{BackendArgs, CorpusArgs, PretrainOptions};

/// Arguments of `primer eval`.
#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// The run directory.
    run_dir: PathBuf,
    /// Evaluate on this corpus (all of it) instead of the run's validation split.
    #[command(flatten)]
    corpus: CorpusArgs,
    /// Batches to evaluate [default: the run's --eval-batches].
    #[arg(long)]
    eval_batches: Option<usize>,
    /// MLM: tokens scored for pseudo-perplexity, each masked in turn.
    #[arg(long, default_value_t = 512)]
    pppl_tokens: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    backend: BackendArgs,
}

/// What `primer eval` reports.
#[derive(Debug, Serialize)]
struct Report {
    run: PathBuf,
    objective: ObjectiveConfig,
    step: Option<u64>,
    corpus: String,
    loss: f64,
    ppl: f64,
    bpb: f64,
    accuracy: f64,
    targets: u64,
    unigram_baseline: UnigramBaseline,
    #[serde(skip_serializing_if = "Option::is_none")]
    pseudo_ppl: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pseudo_ppl_tokens: Option<u64>,
    /// The objective's own metrics, by key.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    objective_metrics: std::collections::BTreeMap<String, f64>,
}

/// What `PRIMER_CHECK_ONLY` checks of `primer eval`: the run and the data it would read.
fn check(args: &EvalArgs) -> anyhow::Result<()> {
    let (config, _) = TrainedRun::check(&args.run_dir, false)?;
    match &args.corpus.corpus {
        Some(specs) => {
            data::corpus(specs, &args.corpus)?;
        }
        None => {
            data::check_run_data(&stored_options(&config, &args.run_dir)?)?;
        }
    }
    Ok(())
}

/// The data `primer eval` reads: the corpus given, whole as the evaluation split, or the run's
/// own prepared data; either must use the run's tokenizer.
fn eval_data(
    args: &EvalArgs,
    config: &RunConfig,
    run_dir: &RunDir,
    tokenizer: &PrimerTokenizer,
) -> anyhow::Result<PreparedData> {
    let data = match &args.corpus.corpus {
        Some(specs) => {
            let corpus = data::corpus(specs, &args.corpus)?;
            data::prepare(&corpus, Some(&corpus), tokenizer, &SplitOptions::default())?
        }
        None => data::run_data(&stored_options(config, &run_dir.root)?)?.0,
    };
    if data.meta.tokenizer_sha256 != tokenizer.fingerprint() {
        bail!(
            "prepared data {} does not use the run's tokenizer: prepare it again",
            data.dir.display()
        );
    }
    Ok(data)
}

/// Runs `primer eval`.
pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    if args.eval_batches == Some(0) {
        bail!("--eval-batches 0 evaluates nothing: give at least 1");
    }
    let (_, device) = crate::devices::resolve(&args.backend)?;
    if primer_options::check_only() {
        return check(&args);
    }
    let TrainedRun {
        dir: run_dir,
        config,
        tokenizer,
        model,
        companion,
        unfinished_step: step,
    } = TrainedRun::load(&args.run_dir, &device)?;
    let data = eval_data(&args, &config, &run_dir, &tokenizer)?;
    let objective = config.objective.build(&tokenizer);
    let block_len = config.objective.info().block_len(config.train.seq_len);
    let batches = args.eval_batches.unwrap_or(config.train.eval_batches);
    let starts = valid_starts(&data, block_len, batches * config.train.batch_size)?;
    let set = EvalSet {
        shard: &data.valid,
        starts: &starts,
        block_len,
        batch_size: config.train.batch_size,
        tokens_per_byte: data.meta.valid.tokens as f64 / data.meta.valid.bytes as f64,
    };
    let metrics = evaluate(
        (&model, companion.as_ref()),
        objective.as_ref(),
        &set,
        config.train.seed,
        &device,
        |_| {},
    );
    let baseline = unigram_baseline(&data.train, &set, tokenizer.vocab_size(), tokenizer.specials());
    let info = config.objective.info();
    let pseudo = info.metrics.contains(&Metric::PseudoPerplexity).then(|| {
        let mlm_starts = eval_starts(
            data.valid.len(),
            config.train.seq_len,
            batches * config.train.batch_size,
        );
        let mlm_set = EvalSet {
            starts: &mlm_starts,
            block_len: config.train.seq_len,
            ..set
        };
        pseudo_perplexity(&model, tokenizer.specials(), &mlm_set, args.pppl_tokens, &device)
    });
    let report = Report {
        run: args.run_dir.clone(),
        objective: config.objective.clone(),
        step,
        corpus: data.meta.corpus.clone(),
        loss: metrics.loss,
        ppl: metrics.ppl,
        bpb: metrics.bpb,
        accuracy: metrics.accuracy,
        targets: metrics.targets,
        unigram_baseline: baseline,
        pseudo_ppl: pseudo.map(|p| p.0),
        pseudo_ppl_tokens: pseudo.map(|p| p.1),
        objective_metrics: metrics.objective_metrics,
    };
    print_report(&report, args.json, info.accuracy);
    Ok(())
}

/// The options the run in `dir` was trained with, with its own tokenizer: its data.
fn stored_options(config: &RunConfig, dir: &Path) -> anyhow::Result<PretrainOptions> {
    let mut options: PretrainOptions =
        serde_json::from_value(config.options.clone()).context("corrupt run config options")?;
    options.tokenizer = Some(RunDir::new(dir).tokenizer());
    Ok(options)
}

/// Prints the report: one JSON object, or lines for a reader.
fn print_report(report: &Report, json: bool, accuracy_name: &str) {
    if json {
        println!("{}", serde_json::to_string(report).expect("reports serialize"));
    } else {
        println!("run         {} ({})", report.run.display(), report.objective);
        println!("corpus      {}", report.corpus);
        println!("loss        {:.4}", report.loss);
        println!("perplexity  {:.3}", report.ppl);
        println!("bits/byte   {:.4}", report.bpb);
        println!(
            "accuracy    {:.4} ({} targets, {})",
            report.accuracy, report.targets, accuracy_name
        );
        println!(
            "unigram     loss {:.4}, accuracy {:.4} (token frequencies alone)",
            report.unigram_baseline.loss, report.unigram_baseline.accuracy
        );
        if let (Some(value), Some(tokens)) = (report.pseudo_ppl, report.pseudo_ppl_tokens) {
            println!("pseudo-ppl  {value:.3} ({tokens} tokens, each masked in turn)");
        }
        for (key, value) in &report.objective_metrics {
            println!("{key:<11} {value:.4}");
        }
    }
}
