//! `primer pretrain`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, bail};
use burn::tensor::Device;
use burn::train::Interrupter;
use primer_datasets::pairs::MinimalPair;
use primer_datasets::prepare::PreparedData;
use primer_datasets::tokenizer::{PrimerTokenizer, SPECIAL_TOKENS, TokenizerKind};
use primer_files::lock::FolderLock;
use primer_model::TransformerConfig;
use primer_objectives::ObjectiveConfig;
use primer_objectives::scoring::Text;
use primer_trainer::collective::Collective;
use primer_trainer::config::{DataInfo, RunConfig, TrainConfig};
use primer_trainer::run::{Outcome, PretrainJob, pretrain, valid_starts};
use primer_trainer::run_dir::{RunDir, RunDirMode};
use primer_trainer::status::{RunState, RunStatus};
use primer_trainer::tui::DashboardMode;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::devices::Devices;
use primer_options::Backend;
use primer_options::config_file::read_config;
use primer_options::data;
use primer_options::{PretrainOptions, check_only};

/// Arguments of `primer pretrain`.
#[derive(clap::Args, Debug)]
pub struct PretrainArgs {
    #[command(flatten)]
    options: PretrainOptions,
    /// The run directory to create.
    #[arg(long, value_name = "RUN_DIR")]
    out: Option<PathBuf>,
    /// A TOML file with any of the options above (keys = flag names); flags override it.
    #[arg(long, value_name = "FILE.toml")]
    config: Option<PathBuf>,
    /// Continue the run in RUN_DIR (default: --out) from its latest checkpoint.
    #[arg(long, value_name = "RUN_DIR", num_args = 0..=1, default_missing_value = "")]
    resume: Option<PathBuf>,
    /// Replace an existing run directory.
    #[arg(long)]
    overwrite: bool,
    /// Stop cleanly after step N with a checkpoint, as an interrupted run; --resume continues.
    #[arg(long, value_name = "N")]
    halt_after: Option<u64>,
    /// Plain progress lines instead of the terminal dashboard.
    #[arg(long)]
    no_tui: bool,
    /// Also write the metrics as TensorBoard event files under RUN_DIR/tensorboard/ (for
    /// TensorBoard, or W&B with `wandb sync --sync-tensorboard`); a resumed run that has them
    /// goes on writing them.
    #[arg(long)]
    tensorboard: bool,
    /// The device's peak rate in GFLOP/s for the MFU metric [default: the rate the device
    /// multiplies square f32 matrices of up to 1024x1024, measured at start].
    #[arg(long, value_name = "GFLOPS")]
    peak_gflops: Option<f64>,
    /// Write the initial weights, every step's batches and the final weights to this new
    /// folder, for `scripts/parity` (a fresh run of one process only).
    #[arg(long, value_name = "DIR", hide = true)]
    record_batches: Option<PathBuf>,
}

/// Everything a run trains from, checked.
struct Inputs {
    config: RunConfig,
    data: PreparedData,
    tokenizer: PrimerTokenizer,
    /// The run this one continues (`--init-from`).
    init: Option<RunDir>,
    minimal_pairs: Vec<[Text; 2]>,
    backend: Backend,
    device: Device,
}

/// Runs `primer pretrain`, as the one process of the run or as one rank of `collective`: rank 0
/// checks every input and writes the run directory while the others wait, then they read it
/// and all train together.
pub fn run(args: PretrainArgs, collective: &dyn Collective) -> anyhow::Result<ExitCode> {
    let (run_dir, mode) = run_dir_of(&args)?;
    if check_only() {
        check_run(&args, &run_dir, mode, collective.size())?;
        return Ok(ExitCode::SUCCESS);
    }
    let (inputs, _lock) = if collective.writes() {
        let (inputs, lock) = check_and_create(&args, &run_dir, mode, collective.size())?;
        RunStatus::now(RunState::Running, None).write(&run_dir)?;
        collective.barrier();
        (inputs, Some(lock))
    } else {
        collective.barrier();
        (read_created(&run_dir, &args)?, None)
    };
    let peak_flops = match (args.peak_gflops, collective.writes()) {
        (Some(gflops), _) => gflops * 1e9,
        (None, true) => primer_trainer::mfu::measured_matmul_flops(&inputs.device),
        // Only rank 0 logs MFU.
        (None, false) => f64::NAN,
    };
    if collective.writes() {
        announce(
            &inputs.config,
            inputs.backend.name(),
            peak_flops,
            args.peak_gflops.is_some(),
            collective.size(),
        );
    }
    let interrupter = Interrupter::new();
    install_signal_handler(&interrupter);
    let job = PretrainJob {
        run_dir: &run_dir,
        config: &inputs.config,
        data: &inputs.data,
        tokenizer: &inputs.tokenizer,
        resume: mode == RunDirMode::Resume,
        halt_after: args.halt_after,
        dashboard: dashboard_mode(args.no_tui),
        tensorboard: args.tensorboard || (mode == RunDirMode::Resume && run_dir.tensorboard().is_dir()),
        peak_flops,
        host: Backend::Flex.device()?,
        minimal_pairs: &inputs.minimal_pairs,
        init: inputs.init.as_ref().map(RunDir::model),
        collective,
        record_batches: args.record_batches.clone(),
    };
    let outcome = pretrain(job, &inputs.device, &interrupter).inspect_err(|error| {
        if collective.writes() {
            let _ = RunStatus::now(RunState::Failed, Some(error.to_string())).write(&run_dir);
        }
    })?;
    if collective.writes() {
        finished(outcome, &run_dir)
    } else {
        Ok(exit_code(&outcome))
    }
}

/// The run directory the arguments name, and what to do with it.
fn run_dir_of(args: &PretrainArgs) -> anyhow::Result<(RunDir, RunDirMode)> {
    if args.resume.is_some() && args.overwrite {
        bail!("--resume and --overwrite contradict each other: pick one");
    }
    let (root, mode) = match (&args.resume, &args.out) {
        (Some(dir), _) if !dir.as_os_str().is_empty() => (dir.clone(), RunDirMode::Resume),
        (Some(_), Some(out)) => (out.clone(), RunDirMode::Resume),
        (Some(_), None) => bail!("--resume needs a run directory: --resume RUN_DIR"),
        (None, Some(out)) if args.overwrite => (out.clone(), RunDirMode::Overwrite),
        (None, Some(out)) => (out.clone(), RunDirMode::New),
        (None, None) => bail!("no --out given: name the run directory, e.g. --out runs/clm"),
    };
    Ok((RunDir::new(root), mode))
}

/// A run's options resolved (flags over `--config`, over a resumed run's stored options) and
/// checked, before any input is read.
struct Checked {
    options: PretrainOptions,
    backend: Backend,
    device: Device,
    /// The run this one continues (`--init-from`) and its config.
    init: Option<(RunDir, RunConfig)>,
    train: TrainConfig,
    /// The model, its vocabulary not yet known.
    model: TransformerConfig,
    objective: ObjectiveConfig,
}

impl Checked {
    /// The model of the run, with a vocabulary of `vocab_size` unless it continues another.
    fn model(&self, vocab_size: usize) -> anyhow::Result<TransformerConfig> {
        match &self.init {
            Some((dir, continued)) => continued_model(dir, &continued.model, &self.model, self.train.seq_len),
            None => Ok(TransformerConfig {
                vocab_size,
                ..self.model.clone()
            }),
        }
    }
}

/// Resolves and checks the options of a run that `ranks` processes will train; a resumed run
/// is locked first, so a second process fails at once (not in check mode, which writes nothing).
fn check_options(
    args: &PretrainArgs,
    run_dir: &RunDir,
    mode: RunDirMode,
    ranks: usize,
) -> anyhow::Result<(Checked, Option<FolderLock>)> {
    let mut options = args.options.clone();
    if let Some(path) = &args.config {
        options = options.or(read_config(path)?);
    }
    check_record(args, mode, ranks)?;
    let resumed_lock = match mode {
        RunDirMode::Resume => resume_options(run_dir, &mut options)?,
        _ => None,
    };
    // Check every option before any slow work, and all inputs before the run directory exists.
    let (backend, device) = crate::devices::resolve(&options.backend)?;
    crate::devices::check_precision(backend, &device, options.precision())?;
    if let Some(gflops) = args.peak_gflops
        && !(gflops > 0.0 && gflops.is_finite())
    {
        bail!("--peak-gflops {gflops} must be a positive rate in GFLOP/s, e.g. --peak-gflops 200");
    }
    let init = init_from(&mut options)?;
    let (train, model) = options.configs(1)?;
    if !train.grad_accum.is_multiple_of(ranks) {
        bail!(
            "--grad-accum {} does not split over {ranks} ranks: each rank takes an equal share of a step's micro-batches; give --grad-accum {ranks} (or a multiple), or launch {} ranks",
            train.grad_accum,
            ranks_dividing(train.grad_accum)
        );
    }
    let objective = options.objective.clone().with_context(|| {
        format!(
            "no --objective given: pass one of {}",
            primer_objectives::registry::names().join(", ")
        )
    })?;
    let checked = Checked {
        options,
        backend,
        device,
        init,
        train,
        model,
        objective,
    };
    Ok((checked, resumed_lock))
}

/// Checks every option and input, then creates (or, resuming, locks and checks) the run
/// directory; returns the inputs and the run's lock. `ranks` processes will train it.
fn check_and_create(
    args: &PretrainArgs,
    run_dir: &RunDir,
    mode: RunDirMode,
    ranks: usize,
) -> anyhow::Result<(Inputs, FolderLock)> {
    let (checked, resumed_lock) = check_options(args, run_dir, mode, ranks)?;
    let (data, tokenizer) = data::run_data(&checked.options)?;
    let config = RunConfig {
        objective: checked.objective.clone(),
        model: checked.model(tokenizer.vocab_size())?,
        train: checked.train.clone(),
        data: DataInfo {
            corpus: data.meta.corpus.clone(),
            data_hash: data.meta.key.clone(),
            tokenizer_sha256: data.meta.tokenizer_sha256.clone(),
        },
        options: serde_json::to_value(&checked.options).expect("options serialize"),
    };
    let block_len = config.objective.info().block_len(config.train.seq_len);
    valid_starts(&data, block_len, 1)?;
    let minimal_pairs = minimal_pairs(&checked.options, config.train.seed)?
        .iter()
        .map(|pair| {
            Ok([
                Text::encode(&tokenizer, &pair.good)?,
                Text::encode(&tokenizer, &pair.bad)?,
            ])
        })
        .collect::<anyhow::Result<_>>()?;
    primer_trainer::memory::check_fits(&config.model, config.train.batch_size, config.train.seq_len)?;
    let lock = match resumed_lock {
        Some(lock) => {
            run_dir.check_resume(&config)?;
            lock
        }
        None => run_dir.create(mode == RunDirMode::Overwrite, &config, &tokenizer)?,
    };
    let inputs = Inputs {
        config,
        data,
        tokenizer,
        init: checked.init.map(|(dir, _)| dir),
        minimal_pairs,
        backend: checked.backend,
        device: checked.device,
    };
    Ok((inputs, lock))
}

/// Check mode: what [`check_and_create`] checks, short of training a tokenizer, preparing data
/// and creating the run. A tokenizer still to be trained counts as `--vocab-size` tokens (as
/// its special tokens for `char`, whose size the corpus decides).
fn check_run(args: &PretrainArgs, run_dir: &RunDir, mode: RunDirMode, ranks: usize) -> anyhow::Result<()> {
    let (checked, _) = check_options(args, run_dir, mode, ranks)?;
    let options = &checked.options;
    let vocab_size = match data::check_run_data(options)? {
        Some(tokenizer) => tokenizer.vocab_size(),
        None => {
            let kind = options.tokenizer_kind();
            PrimerTokenizer::check_trainable(kind, options.vocab_size())?;
            match kind {
                TokenizerKind::Char => SPECIAL_TOKENS.len(),
                _ => options.vocab_size(),
            }
        }
    };
    let model = checked.model(vocab_size)?;
    minimal_pairs(options, checked.train.seed)?;
    primer_trainer::memory::check_fits(&model, checked.train.batch_size, checked.train.seq_len)?;
    match mode {
        RunDirMode::Resume => {
            let stored = run_dir.read_config()?;
            // The data's identity is known once it is prepared; everything else must match.
            let config = RunConfig {
                objective: checked.objective,
                model,
                train: checked.train,
                data: stored.data,
                options: serde_json::Value::Null,
            };
            Ok(run_dir.check_resume(&config)?)
        }
        _ => Ok(run_dir.check_new(mode == RunDirMode::Overwrite)?),
    }
}

/// `--record-batches` records a whole run from its first step, in one process, into a new
/// folder.
fn check_record(args: &PretrainArgs, mode: RunDirMode, ranks: usize) -> anyhow::Result<()> {
    let Some(dir) = &args.record_batches else {
        return Ok(());
    };
    if mode == RunDirMode::Resume {
        bail!("--record-batches records a run from its first step: drop --resume, or start a new run");
    }
    if ranks > 1 {
        bail!("--record-batches records the batches of one process: run it without mpirun");
    }
    if std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some()) {
        bail!("--record-batches {} is not empty: give a new folder", dir.display());
    }
    Ok(())
}

/// The rank counts that split `grad_accum` micro-batches evenly, as a list for an error.
fn ranks_dividing(grad_accum: usize) -> String {
    let counts: Vec<String> = (1..=grad_accum)
        .filter(|n| grad_accum.is_multiple_of(*n))
        .map(|n| n.to_string())
        .collect();
    counts.join(", ")
}

/// The inputs of a run rank 0 has checked and written, as a rank that does not write reads
/// them: its config, tokenizer and prepared data, with the backend of this rank's options.
fn read_created(run_dir: &RunDir, args: &PretrainArgs) -> anyhow::Result<Inputs> {
    let config = run_dir.read_config()?;
    let options = stored_options(run_dir, &config)?;
    let (backend, device) = crate::devices::resolve(&args.options.backend.clone().or(options.backend.clone()))?;
    let (data, tokenizer) = data::run_data(&options)?;
    let init = options.init_from.as_ref().map(RunDir::new);
    Ok(Inputs {
        config,
        data,
        tokenizer,
        init,
        // Only rank 0 evaluates.
        minimal_pairs: Vec::new(),
        backend,
        device,
    })
}

/// Says on stderr what is about to train, and against what peak MFU is measured.
fn announce(config: &RunConfig, backend: &str, peak_flops: f64, peak_given: bool, ranks: usize) {
    let ranks = match ranks {
        1 => String::new(),
        n => format!(" on {n} ranks"),
    };
    eprintln!(
        "{} model: {} parameters ({} layers, d_model {}, {} heads, vocab {}), {} steps of {} tokens, backend {backend}{ranks}; \
         MFU against {:.0} GFLOP/s ({})",
        config.objective,
        config.model.num_params(),
        config.model.n_layers,
        config.model.d_model,
        config.model.n_heads,
        config.model.vocab_size,
        config.train.steps,
        config.train.tokens_per_step(),
        peak_flops / 1e9,
        if peak_given {
            "--peak-gflops"
        } else {
            "measured matmul rate; set --peak-gflops"
        }
    );
}

/// Records how the run ended in `status.json` and says it, with the command that continues a
/// stopped run; the exit code is 130 after an interruption.
fn finished(outcome: Outcome, run_dir: &RunDir) -> anyhow::Result<ExitCode> {
    let resume_hint = format!("primer pretrain --resume {}", run_dir.root.display());
    let state = match outcome {
        Outcome::Completed(_) => RunStatus::now(RunState::Finished, None),
        Outcome::Halted(step) => RunStatus::now(RunState::Interrupted, Some(format!("halted after step {step}"))),
        Outcome::Interrupted(step) => RunStatus::now(RunState::Interrupted, Some(format!("stopped after step {step}"))),
    };
    state.write(run_dir)?;
    let code = exit_code(&outcome);
    match outcome {
        Outcome::Completed(summary) => {
            let v = summary.valid;
            println!(
                "done: {} steps, {} tokens in {:.0}s; valid loss {:.4} ppl {:.2} bpb {:.4} accuracy {:.4}; weights in {}",
                summary.steps,
                summary.tokens_seen,
                summary.wall_time_s,
                v.loss,
                v.ppl,
                v.bpb,
                v.accuracy,
                run_dir.model().display()
            );
        }
        Outcome::Halted(step) => {
            println!("halted after step {step} (checkpoint saved); continue with: {resume_hint}");
        }
        Outcome::Interrupted(step) => {
            println!("interrupted after step {step} (checkpoint saved); continue with: {resume_hint}");
        }
    }
    Ok(code)
}

/// The exit code of an outcome: 130 after an interruption.
fn exit_code(outcome: &Outcome) -> ExitCode {
    match outcome {
        Outcome::Interrupted(_) => ExitCode::from(130),
        _ => ExitCode::SUCCESS,
    }
}

/// The minimal pairs of `--minimal-pairs`: at most `--minimal-pairs-limit` of them, a subset
/// drawn with the run's seed and kept in file order.
fn minimal_pairs(options: &PretrainOptions, seed: u64) -> anyhow::Result<Vec<MinimalPair>> {
    let Some(source) = &options.minimal_pairs else {
        if options.minimal_pairs_limit.is_some() {
            bail!("--minimal-pairs-limit without --minimal-pairs: name the pairs, e.g. --minimal-pairs blimp");
        }
        return Ok(Vec::new());
    };
    let limit = options.minimal_pairs_limit();
    if limit == 0 {
        bail!("--minimal-pairs-limit 0 scores nothing: give at least 1");
    }
    let mut pairs = data::minimal_pairs(source, None)?;
    if pairs.len() > limit {
        let mut chosen: Vec<usize> = (0..pairs.len()).collect();
        chosen.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        chosen.truncate(limit);
        chosen.sort_unstable();
        pairs = chosen.into_iter().map(|i| pairs[i].clone()).collect();
    }
    Ok(pairs)
}

/// Locks a run to resume (unless only checking) and fills `options` from its config, checking first that its
/// tokenizer is the one it was trained with (before any data is prepared with it).
fn resume_options(run_dir: &RunDir, options: &mut PretrainOptions) -> anyhow::Result<Option<FolderLock>> {
    let stored = run_dir.read_config()?;
    let lock = (!check_only()).then(|| run_dir.lock()).transpose()?;
    let tokenizer = PrimerTokenizer::from_file(&run_dir.tokenizer())?;
    if tokenizer.fingerprint() != stored.data.tokenizer_sha256 {
        bail!(
            "{} is not the tokenizer this run was trained with (edited or replaced): restore it, or start over with --overwrite",
            run_dir.tokenizer().display()
        );
    }
    // The run's own tokenizer, whatever --tokenizer says.
    let stored = stored_options(run_dir, &stored)?;
    *options = PretrainOptions {
        tokenizer: stored.tokenizer.clone(),
        ..options.clone().or(stored)
    };
    Ok(lock)
}

/// The options a run was started with (`config.json`'s `options`), with the run's own tokenizer.
fn stored_options(run_dir: &RunDir, stored: &RunConfig) -> anyhow::Result<PretrainOptions> {
    let mut options: PretrainOptions = serde_json::from_value(stored.options.clone())
        .with_context(|| format!("{}: corrupt run config options", run_dir.config().display()))?;
    options.tokenizer = Some(run_dir.tokenizer());
    Ok(options)
}

/// With `--init-from RUN`, the run this one continues, whose tokenizer it uses; options that
/// would shape another model are refused.
fn init_from(options: &mut PretrainOptions) -> anyhow::Result<Option<(RunDir, RunConfig)>> {
    let Some(path) = options.init_from.clone() else {
        return Ok(None);
    };
    let shaping = [
        ("--model", options.model.is_some()),
        ("--layers", options.layers.is_some()),
        ("--d-model", options.d_model.is_some()),
        ("--heads", options.heads.is_some()),
        ("--d-ff", options.d_ff.is_some()),
        ("--positions", options.positions.is_some()),
        ("--tie-embeddings", options.tie_embeddings.is_some()),
        ("--tokenizer-kind", options.tokenizer_kind.is_some()),
        ("--vocab-size", options.vocab_size.is_some()),
    ];
    if let Some((flag, _)) = shaping.iter().find(|(_, given)| *given) {
        bail!(
            "{flag} conflicts with --init-from: the model and tokenizer come from {}",
            path.display()
        );
    }
    let dir = RunDir::new(&path);
    let config = dir.read_config()?;
    if let Some(given) = &options.tokenizer
        && PrimerTokenizer::from_file(given)?.fingerprint()
            != PrimerTokenizer::from_file(&dir.tokenizer())?.fingerprint()
    {
        bail!(
            "--tokenizer {} is not the tokenizer of --init-from {}: drop --tokenizer",
            given.display(),
            path.display()
        );
    }
    options.tokenizer.get_or_insert(dir.tokenizer());
    Ok(Some((dir, config)))
}

/// The model of a run that continues `continued` (of the run in `dir`): its sizes, with the
/// dropout of this run's options.
fn continued_model(
    dir: &RunDir,
    continued: &TransformerConfig,
    options: &TransformerConfig,
    seq_len: usize,
) -> anyhow::Result<TransformerConfig> {
    if !dir.model().exists() {
        bail!(
            "--init-from {} has no model.bpk: finish that run, or import a checkpoint with `primer import`",
            dir.root.display()
        );
    }
    if seq_len > continued.max_seq_len {
        bail!(
            "--seq-len {seq_len} is longer than the {} positions of --init-from {}: give at most that",
            continued.max_seq_len,
            dir.root.display()
        );
    }
    Ok(TransformerConfig {
        dropout: options.dropout,
        ..continued.clone()
    })
}

/// burn-train's TUI when stdout is a terminal, unless `no_tui`; plain lines otherwise.
pub fn dashboard_mode(no_tui: bool) -> DashboardMode {
    if std::io::stdout().is_terminal() && !no_tui {
        DashboardMode::Tui
    } else {
        DashboardMode::Plain
    }
}

/// The first Ctrl-C (or SIGTERM) stops at the next step boundary; a second one exits at once.
pub fn install_signal_handler(interrupter: &Interrupter) {
    let interrupter = interrupter.clone();
    let signalled = AtomicBool::new(false);
    let _ = ctrlc::set_handler(move || {
        if signalled.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("stopping after this step (again to quit now)");
        interrupter.stop(Some("interrupted"));
    });
}
