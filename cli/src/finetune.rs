//! `primer finetune`: train a classifier on a labelled task from a pre-training run.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use burn::train::Interrupter;
use primer_datasets::shots::ShotOrder;
use primer_datasets::task::Task;
use primer_datasets::tokenizer::PrimerTokenizer;
use primer_model::Pooling;
use primer_trainer::config::RunConfig;
use primer_trainer::finetune::{FinetuneConfig, FinetuneJob, FinetuneSummary, Start, finetune};
use primer_trainer::run_dir::RunDir;
use primer_trainer::status::{RunState, RunStatus};

use crate::devices::Devices;
use crate::pretrain::{dashboard_mode, install_signal_handler};
use crate::trained::TrainedRun;
use primer_options::Backend;
use primer_options::task::{FINETUNE_MAX_LEN, TaskArgs};
use primer_options::{BackendArgs, parser};

/// Arguments of `primer finetune`.
#[derive(clap::Args, Debug)]
pub struct FinetuneArgs {
    /// The pre-training run whose model (architecture, tokenizer and, unless --from-scratch,
    /// weights) is fine-tuned.
    #[arg(long)]
    from: PathBuf,
    #[command(flatten)]
    task: TaskArgs,
    /// Train on exactly the K examples `prompt-classify --shots K` shows as demonstrations with
    /// the same --seed (balanced over labels): k-shot fine-tuning, beside k-shot prompting.
    #[arg(long, value_name = "K", conflicts_with = "train_limit")]
    shots: Option<usize>,
    /// The fine-tuning run directory to write.
    #[arg(long)]
    out: PathBuf,
    /// Replace what is in --out.
    #[arg(long)]
    overwrite: bool,
    /// Train only the head, on frozen encoder features (a linear probe).
    #[arg(long)]
    freeze_encoder: bool,
    /// Start from random weights with the same architecture and tokenizer: the baseline.
    #[arg(long)]
    from_scratch: bool,
    /// Pooling: first ([CLS]), last (last token) or mean [default: first for mlm runs, last for
    /// clm runs].
    #[arg(long, value_parser = parser::<Pooling>())]
    pooling: Option<Pooling>,
    /// Passes over the training examples at most.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Stop after this many epochs without a better validation accuracy.
    #[arg(long, default_value_t = 3)]
    patience: usize,
    /// Examples per step.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Peak learning rate [default: 1e-4, or 1e-3 with --freeze-encoder].
    #[arg(long)]
    lr: Option<f64>,
    /// AdamW weight decay of weight matrices.
    #[arg(long, default_value_t = 0.01)]
    weight_decay: f64,
    /// Share of the steps spent warming up the learning rate.
    #[arg(long, default_value_t = 0.1)]
    warmup_ratio: f64,
    /// Dropout before the head.
    #[arg(long, default_value_t = 0.1)]
    head_dropout: f64,
    /// Tokens per example at most, special tokens included [default: 128, or the model's
    /// context if shorter].
    #[arg(long)]
    max_len: Option<usize>,
    /// Seeds the head, the example order, dropout, --train-limit and --shots.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Plain progress lines instead of the terminal dashboard.
    #[arg(long)]
    no_tui: bool,
    #[command(flatten)]
    backend: BackendArgs,
}

/// Runs `primer finetune`.
pub fn run(args: FinetuneArgs) -> anyhow::Result<ExitCode> {
    if args.freeze_encoder && args.from_scratch {
        bail!("--freeze-encoder with --from-scratch would train a head on random features: choose one");
    }
    let host = Backend::Flex.device()?;
    if primer_options::check_only() {
        let (pretrained, tokenizer) = TrainedRun::check(&args.from, false)?;
        let task = task_of(&args)?;
        crate::devices::resolve(&args.backend)?;
        config_of(&args, &pretrained, &tokenizer, &task)?;
        RunDir::new(&args.out).check_claim(args.overwrite)?;
        return Ok(ExitCode::SUCCESS);
    }
    let pretrained = TrainedRun::load(&args.from, &host)?;
    let task = task_of(&args)?;
    let (backend, device) = crate::devices::resolve(&args.backend)?;
    let config = config_of(&args, &pretrained.config, &pretrained.tokenizer, &task)?;
    let run_dir = RunDir::new(&args.out);
    let _lock = run_dir.claim(args.overwrite)?;
    pretrained.tokenizer.save(&run_dir.tokenizer())?;
    let json = serde_json::to_vec_pretty(&config).expect("configs serialize");
    primer_files::atomic_write(&run_dir.finetune_config(), &json)?;

    announce(&config, &args.from, &task, backend.name());
    let interrupter = Interrupter::new();
    install_signal_handler(&interrupter);
    let job = FinetuneJob {
        run_dir: &run_dir,
        config: &config,
        task: &task,
        tokenizer: &pretrained.tokenizer,
        encoder: (config.start == Start::Pretrained).then(|| pretrained.model.clone()),
        host,
        dashboard: dashboard_mode(args.no_tui),
    };
    RunStatus::now(RunState::Running, None).write(&run_dir)?;
    let outcome = finetune(job, &device, &interrupter).inspect_err(|error| {
        let _ = RunStatus::now(RunState::Failed, Some(error.to_string())).write(&run_dir);
    })?;
    finished(outcome, &run_dir)
}

/// The task to fine-tune on: with `--shots K`, only the K training examples that
/// `prompt-classify --shots K` would show as demonstrations.
fn task_of(args: &FinetuneArgs) -> anyhow::Result<Task> {
    let mut task = args.task.load(args.seed)?;
    if let Some(shots) = args.shots {
        if shots == 0 {
            bail!("--shots 0 leaves nothing to train on: give at least 1");
        }
        let chosen = task.demonstrations(shots, ShotOrder::Balanced, args.seed)?;
        task.train = chosen.iter().map(|&i| task.train[i].clone()).collect();
    }
    Ok(task)
}

/// The fine-tune's config, checked: the run's tokenizer against its model, every option, and
/// that training fits in memory.
fn config_of(
    args: &FinetuneArgs,
    pretrained: &RunConfig,
    tokenizer: &PrimerTokenizer,
    task: &Task,
) -> anyhow::Result<FinetuneConfig> {
    // A model's vocabulary may be padded beyond its tokenizer's (Pythia's is), never short of it.
    if tokenizer.vocab_size() > pretrained.model.vocab_size {
        bail!(
            "{} has {} tokens but the model of {} only {}: the run's tokenizer was replaced; restore it",
            RunDir::new(&args.from).tokenizer().display(),
            tokenizer.vocab_size(),
            args.from.display(),
            pretrained.model.vocab_size
        );
    }
    let config = FinetuneConfig {
        from: args.from.clone(),
        start: if args.from_scratch {
            Start::Scratch
        } else {
            Start::Pretrained
        },
        freeze_encoder: args.freeze_encoder,
        objective: pretrained.objective.clone(),
        model: pretrained.model.clone(),
        pooling: args.pooling.unwrap_or(pretrained.objective.info().framing.pooling),
        task: task.name.clone(),
        labels: task.labels.clone(),
        train_examples: task.train.len(),
        train_limit: args.task.train_limit,
        shots: args.shots,
        max_len: args
            .max_len
            .unwrap_or(FINETUNE_MAX_LEN.min(pretrained.model.max_seq_len)),
        epochs: args.epochs,
        batch_size: args.batch_size,
        lr: args.lr.unwrap_or(if args.freeze_encoder { 1e-3 } else { 1e-4 }),
        weight_decay: args.weight_decay,
        warmup_ratio: args.warmup_ratio,
        patience: args.patience,
        head_dropout: args.head_dropout,
        seed: args.seed,
        tokenizer_sha256: tokenizer.fingerprint(),
    };
    config.validate().map_err(primer_options::flag_error)?;
    primer_trainer::memory::check_fits(&config.model, config.batch_size, config.max_len)?;
    Ok(config)
}

/// Says on stderr what is about to be fine-tuned, on what.
fn announce(config: &FinetuneConfig, from: &std::path::Path, task: &primer_datasets::task::Task, backend: &str) {
    let counts = task.train_label_counts();
    let what = match (&config.start, config.freeze_encoder) {
        (Start::Scratch, _) => "from scratch",
        (Start::Pretrained, true) => "linear probe",
        (Start::Pretrained, false) => "full fine-tune",
    };
    eprintln!(
        "{what} of {} ({}) on {}: {} train examples ({}), {} valid, labels {}, backend {}",
        from.display(),
        config.objective.name(),
        task.name,
        task.train.len(),
        counts
            .iter()
            .zip(&task.labels)
            .map(|(n, l)| format!("{l}: {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        task.valid.len(),
        task.labels.join("/"),
        backend
    );
}

/// Records how the fine-tune ended in `status.json` and says it; the exit code is 130 after an
/// interruption.
fn finished(outcome: Option<FinetuneSummary>, run_dir: &RunDir) -> anyhow::Result<ExitCode> {
    let state = match &outcome {
        Some(_) => RunStatus::now(RunState::Finished, None),
        None => RunStatus::now(
            RunState::Interrupted,
            Some("stopped; fine-tuning runs again from the start".into()),
        ),
    };
    state.write(run_dir)?;
    match outcome {
        Some(summary) => {
            println!(
                "done: best valid accuracy {:.4} (macro-F1 {:.4}, loss {:.4}) at epoch {} of {}; {} steps in {:.0}s; classifier in {}",
                summary.valid.accuracy,
                summary.valid.macro_f1,
                summary.valid.loss,
                summary.best_epoch,
                summary.epochs_run,
                summary.steps,
                summary.wall_time_s,
                run_dir.root.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        None => {
            println!("interrupted: fine-tuning is short and does not resume; run it again with --overwrite");
            Ok(ExitCode::from(130))
        }
    }
}
