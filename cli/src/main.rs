//! `primer`: pre-train MLM and causal Transformers from a text corpus.

mod backends;
mod classify;
mod datasets;
mod devices;
mod eval;
mod export;
mod fill_mask;
mod finetune;
mod generate;
mod import;
#[cfg(feature = "tch")]
mod libtorch;
mod minimal_pairs;
mod multiple_choice;
mod objectives;
mod prepare;
mod pretrain;
mod prompt_classify;
mod prompt_report;
mod score;
mod tokenizer;
mod trained;

use std::process::ExitCode;

use anyhow::bail;
use clap::{Parser, Subcommand};

/// mimalloc keeps freed tensor buffers for reuse. glibc's malloc serves each buffer of more
/// than a few hundred KB with its own mmap and unmaps it on free, so every training step paid
/// page faults and kernel zeroing for memory it had just released (see docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Tells mimalloc never to hand freed pages back to the OS: a training step frees and
/// allocates the same buffer sizes again, and purged pages come back as page faults and
/// zeroing (5% of a flex step). The peak resident memory is unchanged; it is just not given
/// back between steps.
fn keep_freed_pages() {
    // `mi_option_purge_delay` in mimalloc.h's `mi_option_e` (libmimalloc-sys names no
    // constant for it); -1 means never purge.
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: sets one of mimalloc's global options; no memory is touched.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) };
}

/// Self-supervised pre-training of Transformer language models (MLM and causal) on Burn.
#[derive(Parser, Debug)]
#[command(name = "primer", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Tokenizer commands.
    Tokenizer {
        #[command(subcommand)]
        command: tokenizer::TokenizerCommand,
    },
    /// Tokenize a corpus once into cached token shards (train/valid split by document).
    Prepare(prepare::PrepareArgs),
    /// Pre-train a Transformer with one of the objectives `primer objectives` lists.
    Pretrain(Box<pretrain::PretrainArgs>),
    /// Evaluate a run: loss, perplexity, bits per byte, accuracy (MLM: pseudo-perplexity).
    Eval(eval::EvalArgs),
    /// Fine-tune a pre-trained run on a labelled task (or train a linear probe, or the same
    /// model from scratch).
    Finetune(Box<finetune::FinetuneArgs>),
    /// Compare objectives: pre-train each on one corpus with the same tokenizer, model size,
    /// budget and seeds, fine-tune, probe and prompt them on tasks, and write a report.
    Compare(Box<primer_compare::CompareArgs>),
    /// Serve a web dashboard of the runs under a directory: live charts, run tables, config diffs,
    /// and any job (pretrain, finetune, compare, eval, ...) run through a queue.
    Dashboard(primer_dashboard::DashboardArgs),
    /// Label texts with a fine-tuned classifier.
    Classify(classify::ClassifyArgs),
    /// Classification by prompting a pre-trained run, zero-shot or after K labelled
    /// demonstrations, calibrated or not: accuracy on a task's validation split with no training.
    PromptClassify(prompt_classify::PromptClassifyArgs),
    /// Multiple-choice questions (HellaSwag-style JSON Lines) answered by a pre-trained run:
    /// lm-evaluation-harness's acc and acc_norm, zero-shot or after K demonstrations.
    MultipleChoice(multiple_choice::MultipleChoiceArgs),
    /// Continue a prompt with a causal run (sampling, key/value cache), streaming the text.
    Generate(generate::GenerateArgs),
    /// The most likely tokens at each [MASK] of a text, from a masked-LM run.
    FillMask(fill_mask::FillMaskArgs),
    /// Write a run as a Hugging Face transformers checkpoint (GPT-NeoX or GPT-2 layout, safetensors,
    /// tokenizer files).
    Export(export::ExportArgs),
    /// Read a Hugging Face transformers checkpoint (GPT-NeoX or GPT-2) as a primer run.
    Import(import::ImportArgs),
    /// Per-document perplexity (causal runs) or pseudo-perplexity (masked runs) of a file.
    Score(score::ScoreArgs),
    /// Accuracy on minimal pairs (BLiMP): how often the run scores the acceptable sentence of a
    /// pair above the unacceptable one, overall and per field, phenomenon and paradigm.
    MinimalPairs(minimal_pairs::MinimalPairsArgs),
    /// List the named data sets `--corpus` accepts.
    Datasets,
    /// List the pre-training objectives: what each trains, its settings with their defaults,
    /// and the commands its runs support.
    Objectives,
    /// List the compute backends: compiled in or not, which device answers, a matmul checked
    /// against flex.
    Backends {
        /// One JSON object per backend.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    keep_freed_pages();
    devices::quiet_mesa();
    let cli = Cli::parse();
    let world = match primer_distributed::World::join() {
        Ok(world) => world,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    match run(cli, &world) {
        Ok(code) => code,
        Err(error) => {
            let ranks = world.collective();
            if ranks.size() > 1 {
                // One line naming the rank, then every rank ends: none waits for this one.
                eprintln!("error: rank {} of {}: {error}", ranks.rank(), ranks.size());
                world.abort(2);
            }
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli, world: &primer_distributed::World) -> anyhow::Result<ExitCode> {
    let ranks = world.collective().size();
    if ranks > 1 && !matches!(cli.command, Command::Pretrain(_) | Command::Backends { .. }) {
        bail!(
            "launched as one of {ranks} ranks: only `primer pretrain` trains data-parallel; run other commands as one process"
        );
    }
    if primer_options::check_only() && !checks(&cli.command) {
        bail!(
            "{}=1 checks the commands the dashboard runs as jobs only: unset it to run this one",
            primer_options::check::CHECK_ONLY_VAR
        );
    }
    match cli.command {
        Command::Tokenizer { command } => tokenizer::run(command)?,
        Command::Prepare(args) => prepare::run(args)?,
        Command::Pretrain(args) => return pretrain::run(*args, world.collective()),
        Command::Eval(args) => eval::run(args)?,
        Command::Finetune(args) => return finetune::run(*args),
        Command::Compare(args) => return primer_compare::run(*args),
        Command::Dashboard(args) => primer_dashboard::run(args, <Cli as clap::CommandFactory>::command())?,
        Command::Classify(args) => classify::run(args)?,
        Command::PromptClassify(args) => prompt_classify::run(args)?,
        Command::MultipleChoice(args) => multiple_choice::run(args)?,
        Command::Generate(args) => generate::run(args)?,
        Command::FillMask(args) => fill_mask::run(args)?,
        Command::Score(args) => score::run(args)?,
        Command::Export(args) => export::run(args)?,
        Command::Import(args) => import::run(args)?,
        Command::MinimalPairs(args) => minimal_pairs::run(args)?,
        Command::Backends { json } => backends::run(json, ranks)?,
        Command::Objectives => objectives::run(),
        Command::Datasets => datasets::run(),
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether `command` has a check mode ([`primer_options::check`]): the dashboard's job commands.
fn checks(command: &Command) -> bool {
    matches!(
        command,
        Command::Pretrain(_)
            | Command::Finetune(_)
            | Command::Compare(_)
            | Command::Eval(_)
            | Command::MinimalPairs(_)
            | Command::PromptClassify(_)
            | Command::Score(_)
            | Command::Export(_)
            | Command::Import(_)
    )
}
