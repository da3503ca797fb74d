//! `primer compare`: pre-train every objective on one corpus with one tokenizer, model size,
//! budget and set of seeds, judge each on the same downstream tasks, and write a report.

mod charts;
pub mod child;
mod exec;
mod jobs;
mod layout;
mod pairs;
mod progress;
mod report;
mod results;
mod shots;
mod spec;
pub mod stats;
mod task_results;
mod task_specs;
mod workload;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;

use anyhow::{Context, bail};
use primer_datasets::prepare::PreparedData;
use primer_datasets::task as tasks;
use primer_inference::prompt::Prompt;
use primer_objectives::ObjectiveConfig;
use primer_objectives::scoring::Pll;
use primer_trainer::config::TrainConfig;
use primer_trainer::run::valid_starts;

pub use exec::PROGRESS_FILE;
use exec::{Finish, Runner, shell_word};
use jobs::Job;
use layout::Layout;
use primer_files::lock::{FolderLock, LOCK_FILE};
use primer_options::PretrainOptions;
use primer_options::data;
pub use spec::CompareSpec;
use spec::{FinetuneSettings, LabelBudget, PairsSpec, TaskSpec};
use workload::{TaskSize, Workload};

/// How masked objectives score minimal pairs unless `--pll` says otherwise: the original
/// masking, since within-word masking followed sentence length more on a small masked model
/// and was no more accurate (docs/compare.md, "Masking for minimal pairs").
const DEFAULT_PLL: Pll = Pll::Original;

/// Arguments of `primer compare`.
#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// Corpus, tokenizer, model size, budget (--steps or --tokens), optimisation and backend
    /// options, as `pretrain` takes them, shared by every pre-training run.
    #[command(flatten)]
    options: PretrainOptions,
    /// Objectives to compare, comma-separated, each NAME[:SETTING=VALUE...] as pretrain's
    /// --objective takes it (mlm,clm,mlm:span).
    #[arg(long, value_delimiter = ',', default_value = "mlm,clm", value_parser = ObjectiveConfig::from_str)]
    objectives: Vec<ObjectiveConfig>,
    /// Pre-training runs per objective (seeds 0, 1, ...); fine-tunes reuse each run's seed.
    #[arg(long, default_value_t = 3)]
    seeds: u64,
    /// Downstream tasks: named (sst2, waimai) or files with `text` and `label` columns. Tasks
    /// with their own name, valid file, columns and prompt are `[[task]]` tables of --config.
    #[arg(long = "task", num_args = 1.., value_delimiter = ',')]
    tasks: Vec<String>,
    /// Zero-shot template for the --task files [default: the named task's; for a file, none:
    /// zero-shot is skipped].
    #[arg(long)]
    template: Option<String>,
    /// Zero-shot label words for the --task files, LABEL=WORD pairs [default: the named task's].
    #[arg(long, value_delimiter = ',', value_parser = primer_options::task::parse_pair)]
    verbalizer: Vec<(String, String)>,
    /// Labelled examples per fine-tune, comma-separated counts or `all`.
    #[arg(long, value_delimiter = ',', default_value = "100,300,1000,all", value_parser = LabelBudget::parse)]
    label_budgets: Vec<LabelBudget>,
    /// K-shot rows beside fine-tuning on as many labels: demonstrations per prompt,
    /// comma-separated (0 is the zero-shot row), e.g. 0,4,16. Each K above 0 prompts every
    /// pre-trained model with K demonstrations from the training split (balanced over labels,
    /// drawn with the run's seed), calibrated and not, and fine-tunes it on exactly those K.
    #[arg(long, value_delimiter = ',', value_name = "K,...")]
    shots: Vec<usize>,
    /// Peak learning rate of full fine-tunes and from-scratch runs (1e-3 let pre-trained models
    /// move where 3e-4 left them behind scratch: docs/compare.md).
    #[arg(long, default_value_t = 1e-3)]
    finetune_lr: f64,
    /// Only the first N minimal pairs of each paradigm when each pre-trained model is scored
    /// at the end (--minimal-pairs names them: blimp by default, none for no scoring) [default: all].
    #[arg(long, value_name = "N")]
    pairs_limit: Option<usize>,
    /// How masked objectives score the minimal pairs: each token masked alone (original) or
    /// with the rest of its word to its right (word-l2r), as `primer minimal-pairs --pll`
    /// [default: original].
    #[arg(long, value_parser = primer_options::parser::<Pll>())]
    pll: Option<Pll>,
    /// Peak learning rate of linear probes.
    #[arg(long, default_value_t = 1e-3)]
    probe_lr: f64,
    /// Epochs per fine-tune at most (early stopping on dev accuracy).
    #[arg(long, default_value_t = 10)]
    finetune_epochs: usize,
    /// A TOML file of the pre-training options (keys = flag names; flags override them) and of
    /// `[[task]]` tables (task, name, valid, text_column, label_column, template, verbalizer).
    #[arg(long, value_name = "FILE.toml")]
    config: Option<PathBuf>,
    /// The report directory to create.
    #[arg(long, value_name = "REPORT_DIR")]
    out: Option<PathBuf>,
    /// Continue the comparison in REPORT_DIR: finished runs are skipped, the unfinished one
    /// resumes from its checkpoint.
    #[arg(long, value_name = "REPORT_DIR")]
    resume: Option<PathBuf>,
}

/// The report directory, its comparison, and whether it is new: `--resume`'s, with the flags
/// (if any) checked against it, or `--out`'s, which must hold nothing else.
fn open_report(args: &CompareArgs) -> anyhow::Result<(Layout, CompareSpec, bool)> {
    Ok(match (&args.resume, &args.out) {
        (Some(_), Some(_)) => bail!("--resume REPORT_DIR and --out contradict each other: give one"),
        (None, None) => bail!("no --out given: name the report directory, e.g. --out reports/mlm-vs-clm"),
        (Some(dir), None) => {
            let layout = Layout { root: dir.clone() };
            let stored = read_spec(&layout)?;
            if args.options.corpus.corpus.is_some() || args.options.data.is_some() {
                let given = spec_of(args)?;
                let differences = given.differences(&stored);
                if !differences.is_empty() {
                    bail!(
                        "{} holds a comparison that differs in {}: resume it with --resume alone, or start a new one with --out",
                        dir.display(),
                        differences.join(", ")
                    );
                }
            }
            (layout, stored, false)
        }
        (None, Some(dir)) => {
            let spec = spec_of(args)?;
            let layout = Layout { root: dir.clone() };
            if layout.spec().exists() {
                let stored = read_spec(&layout)?;
                let differences = spec.differences(&stored);
                if differences.is_empty() {
                    bail!(
                        "{} already holds this comparison: continue it with `primer compare --resume {}`",
                        dir.display(),
                        dir.display()
                    );
                }
                bail!(
                    "{} holds a different comparison (differs in {}): choose another --out",
                    dir.display(),
                    differences.join(", ")
                );
            }
            if dir
                .read_dir()
                .is_ok_and(|entries| entries.filter_map(Result::ok).any(|e| e.file_name() != LOCK_FILE))
            {
                bail!(
                    "{} is not empty and holds no comparison: choose another --out",
                    dir.display()
                );
            }
            (layout, spec, true)
        }
    })
}

/// Runs `primer compare`.
pub fn run(args: CompareArgs) -> anyhow::Result<ExitCode> {
    let (layout, spec, fresh) = open_report(&args)?;
    let (train, _) = spec.pretrain.configs(1)?;
    let task_sizes = check(&spec, &train)?;
    if primer_options::check_only() {
        data::check_run_data(&shared_options(&spec, &layout))?;
        return Ok(ExitCode::SUCCESS);
    }

    // The report is locked for as long as this process runs: a second compare or resume on
    // it fails at once instead of running the same jobs twice.
    let _lock = FolderLock::acquire(&layout.root, "report")?;
    let started = if fresh {
        start_report(&layout, &spec)
    } else {
        Ok(read_command(&layout))
    };
    // A fresh report that cannot get its data, or whose demonstrations do not fit the context,
    // is removed, so the corrected command can start.
    let started = started.and_then(|command| {
        let data = shared_data(&spec, &layout)?;
        shots::check_fits(&spec, &layout.tokenizer(), train.seq_len)?;
        Ok((command, data))
    });
    let (command, data) = match started {
        Ok(started) => started,
        Err(error) => {
            if fresh {
                let _ = std::fs::remove_dir_all(&layout.root);
            }
            return Err(error);
        }
    };
    let jobs = Job::all(&spec);
    let runner = Runner::new(&spec, &layout, &data.dir, workload(&train, task_sizes))?;
    if runner.run_all(&jobs)? == Finish::Interrupted {
        println!(
            "interrupted (the unfinished run kept its checkpoint); continue with: primer compare --resume {}",
            layout.root.display()
        );
        return Ok(ExitCode::from(child::INTERRUPTED_CODE));
    }

    let backend = spec.pretrain.backend.backend()?;
    let machine = results::Machine::this(backend.name(), spec.pretrain.backend.device.clone());
    let results = results::collect(&spec, &layout, command, machine)?;
    primer_files::atomic_write(
        &layout.root.join("results.json"),
        serde_json::to_string_pretty(&results)
            .expect("results serialize")
            .as_bytes(),
    )?;
    report::write(&results, &layout.root)?;
    print_summary(&results, &layout);
    Ok(ExitCode::SUCCESS)
}

/// Prints each task's accuracies and where the report is.
fn print_summary(results: &results::Results, layout: &Layout) {
    for task in &results.tasks {
        println!(
            "{}: dev accuracy, mean ± std over {} seed(s)",
            task.task,
            results.spec.seeds.len()
        );
        for cell in &task.cells {
            let budget = cell.budget.map_or("no labels".to_string(), |b| format!("{b} labels"));
            println!(
                "  {:<20} {:<12} {}",
                cell.label(),
                budget,
                report::mean_pm_std(cell.mean, cell.std)
            );
        }
    }
    println!(
        "report: {} (report.html and results.json beside it)",
        layout.root.join("report.md").display()
    );
}

/// Writes a new report's folders, command and spec; returns the command.
fn start_report(layout: &Layout, spec: &CompareSpec) -> anyhow::Result<String> {
    let words: Vec<String> = std::env::args().map(|a| shell_word(&a)).collect();
    let command = format!("primer {}", words[1..].join(" "));
    for dir in [layout.runs(), layout.logs(), layout.configs()] {
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    primer_files::atomic_write(&layout.root.join("command.txt"), format!("{command}\n").as_bytes())?;
    primer_files::atomic_write(
        &layout.spec(),
        serde_json::to_string_pretty(spec).expect("specs serialize").as_bytes(),
    )?;
    Ok(command)
}

/// The command a resumed report was started with.
fn read_command(layout: &Layout) -> String {
    std::fs::read_to_string(layout.root.join("command.txt"))
        .map(|c| c.trim().to_string())
        .unwrap_or_default()
}

fn read_spec(layout: &Layout) -> anyhow::Result<CompareSpec> {
    primer_files::roots::check_input("report", &layout.root)?;
    let path = layout.spec();
    let text = std::fs::read_to_string(&path).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e}: not a comparison's report directory (start one with --out)",
            path.display()
        )
    })?;
    serde_json::from_str(&text).with_context(|| format!("{}: corrupt comparison spec", path.display()))
}

/// The comparison the flags (and `--config`) describe.
fn spec_of(args: &CompareArgs) -> anyhow::Result<CompareSpec> {
    let mut options = args.options.clone();
    let mut config_tasks = Vec::new();
    if let Some(path) = &args.config {
        let (from_file, tasks) = task_specs::read_config(path)?;
        options = options.or(from_file);
        config_tasks = tasks;
    }
    if options.objective.is_some() {
        bail!("compare takes --objectives (a list), not --objective");
    }
    if options.seed.is_some() {
        bail!("compare takes --seeds N (runs per objective), not --seed");
    }
    if options.init_from.is_some() {
        bail!(
            "compare pre-trains every objective from its seed's weights, not --init-from: continue one run with `primer pretrain --init-from`"
        );
    }
    if args.seeds == 0 {
        bail!("--seeds 0 leaves nothing to compare: give at least 1");
    }
    if args.objectives.is_empty() {
        bail!(
            "--objectives is empty: give some of {}",
            primer_objectives::registry::names().join(", ")
        );
    }
    if args.tasks.is_empty() && config_tasks.is_empty() {
        let names: Vec<&str> = tasks::TASKS.iter().map(|t| t.name).collect();
        bail!(
            "no --task given: name a downstream task ({}) or a task file, or give [[task]] tables in --config",
            names.join(", ")
        );
    }
    let mut objectives: Vec<ObjectiveConfig> = Vec::new();
    for objective in &args.objectives {
        if !objectives.contains(objective) {
            objectives.push(objective.clone());
        }
    }
    let mut label_budgets = args.label_budgets.clone();
    label_budgets.sort();
    label_budgets.dedup();
    let mut shots = args.shots.clone();
    shots.sort();
    shots.dedup();
    let task_specs = args
        .tasks
        .iter()
        .map(|task| task_specs::from_flags(task, args.template.as_deref(), &args.verbalizer))
        .chain(config_tasks.into_iter().map(Ok))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let minimal_pairs = pairs_spec(&mut options, args.pairs_limit, args.pll)?;
    Ok(CompareSpec {
        minimal_pairs,
        pretrain: options,
        objectives,
        seeds: (0..args.seeds).collect(),
        tasks: task_specs,
        label_budgets,
        finetune: FinetuneSettings {
            lr: args.finetune_lr,
            probe_lr: args.probe_lr,
            epochs: args.finetune_epochs,
        },
        shots,
    })
}

/// The minimal pairs of a comparison: `--minimal-pairs` (blimp unless given; `none` for none),
/// read once here so that a bad source stops before any work. The pre-training runs score a
/// subset of them at every validation.
fn pairs_spec(
    options: &mut PretrainOptions,
    limit: Option<usize>,
    pll: Option<Pll>,
) -> anyhow::Result<Option<PairsSpec>> {
    let source = options.minimal_pairs.take().unwrap_or_else(|| "blimp".into());
    if source == "none" {
        if limit.is_some() || options.minimal_pairs_limit.is_some() || pll.is_some() {
            bail!(
                "--pairs-limit, --minimal-pairs-limit and --pll need minimal pairs: drop them, or --minimal-pairs none"
            );
        }
        return Ok(None);
    }
    if limit == Some(0) {
        bail!("--pairs-limit 0 scores nothing: give at least 1, or --minimal-pairs none");
    }
    data::minimal_pairs(&source, limit)?;
    options.minimal_pairs = Some(source.clone());
    Ok(Some(PairsSpec {
        source,
        limit_per_paradigm: limit,
        pll: pll.unwrap_or(DEFAULT_PLL),
    }))
}

/// Checks what can be checked before any training: the budget, the tasks and their label
/// budgets, the prompts. Returns each task's size.
/// Refuses two tasks of one name (or of names alike in files): they would share one set of
/// runs, and the second would be reported with the first one's numbers.
fn distinct_task_names(tasks: &[TaskSpec]) -> anyhow::Result<()> {
    for (i, task) in tasks.iter().enumerate() {
        if let Some(other) = tasks[..i].iter().find(|other| other.slug() == task.slug()) {
            bail!(
                "two tasks are named {:?} ({} and {}): give each [[task]] its own `name`, or rename one task file",
                task.name(),
                other.task,
                task.task
            );
        }
    }
    Ok(())
}

fn check(spec: &CompareSpec, train: &TrainConfig) -> anyhow::Result<Vec<TaskSize>> {
    if let Some(tokens) = spec.pretrain.tokens
        && tokens < train.tokens_per_step()
    {
        bail!(
            "--tokens {tokens} is less than one optimizer step ({} tokens: batch × grad-accum × seq-len): raise --tokens",
            train.tokens_per_step()
        );
    }
    let eval_every = eval_every(spec)?;
    if eval_every > train.steps {
        bail!(
            "--eval-every {eval_every} is more than the budget of {} steps: the runs would never be evaluated; lower --eval-every or raise the budget",
            train.steps
        );
    }
    distinct_task_names(&spec.tasks)?;
    let mut sizes = Vec::new();
    for task_spec in &spec.tasks {
        let task = task_spec.task_args().load(0)?;
        sizes.push(TaskSize {
            train: task.train.len(),
            dev: task.valid.len(),
            labels: task.labels.len(),
        });
        for budget in &spec.label_budgets {
            if let LabelBudget::Count(n) = *budget
                && n > task.train.len()
            {
                bail!(
                    "--label-budgets {n} is more than the {} training examples of {}: lower it or use `all`",
                    task.train.len(),
                    task_spec.name()
                );
            }
            if let LabelBudget::Count(n) = *budget
                && n < task.labels.len()
            {
                bail!(
                    "--label-budgets {n} is fewer than the {} labels of {}: give at least one example per label",
                    task.labels.len(),
                    task_spec.name()
                );
            }
        }
        if let Some(template) = &task_spec.template {
            Prompt::new(template, &task_spec.verbalizer, &task.labels)
                .map_err(|e| anyhow::anyhow!("task {}: {e}", task_spec.name()))?;
        }
    }
    shots::check(spec)?;
    Ok(sizes)
}

/// The work of each job of a comparison whose pre-training runs train with `train`, for the ETA.
fn workload(train: &TrainConfig, tasks: Vec<TaskSize>) -> Workload {
    Workload {
        pretrain_tokens: (train.steps * train.tokens_per_step()) as f64,
        eval_tokens: (train.eval_batches * train.batch_size * train.seq_len) as f64,
        example_tokens: train.seq_len.min(primer_options::task::FINETUNE_MAX_LEN) as f64,
        tasks,
    }
}

/// Validation interval: the flag, else ten evaluations per run.
fn eval_every(spec: &CompareSpec) -> anyhow::Result<u64> {
    let (train, _) = spec.pretrain.configs(1)?;
    Ok(spec.pretrain.eval_every.unwrap_or((train.steps / 10).max(1)))
}

/// Trains (or reuses) the shared tokenizer and prepares the corpus once, with the default
/// document split (compare refuses `--seed`), so every run sees the same validation split.
fn shared_data(spec: &CompareSpec, layout: &Layout) -> anyhow::Result<PreparedData> {
    let options = shared_options(spec, layout);
    let (data, tokenizer) = data::run_data(&options)?;
    if !layout.tokenizer().exists() {
        tokenizer.save(&layout.tokenizer())?;
    }
    let seq_len = options.configs(1)?.0.seq_len;
    // Some objectives read more tokens per block than the model sees (clm one more).
    let block_len = spec
        .objectives
        .iter()
        .map(|objective| objective.info().block_len(seq_len))
        .max()
        .unwrap_or(seq_len);
    valid_starts(&data, block_len, 1).map_err(|e| {
        anyhow::anyhow!(
            "{e}: the validation split is too small for one evaluation; give a larger corpus or --valid-fraction"
        )
    })?;
    Ok(data)
}

/// The options the shared data is made with: the comparison's, with the report's tokenizer
/// once it has one.
fn shared_options(spec: &CompareSpec, layout: &Layout) -> PretrainOptions {
    let mut options = spec.pretrain.clone();
    if layout.tokenizer().exists() {
        options.tokenizer = Some(layout.tokenizer());
    }
    options
}

/// The pre-training options of one run: the shared ones on the prepared data, with its
/// objective, seed and evaluation interval.
pub fn pretrain_options(
    spec: &CompareSpec,
    objective: &ObjectiveConfig,
    seed: u64,
    prepared: &Path,
) -> PretrainOptions {
    let mut options = spec.pretrain.clone();
    options.corpus = Default::default();
    options.valid = None;
    options.valid_fraction = None;
    options.tokenizer = None;
    options.tokenizer_kind = None;
    options.vocab_size = None;
    options.data = Some(prepared.to_path_buf());
    options.objective = Some(objective.clone());
    options.seed = Some(seed);
    options.eval_every = Some(eval_every(spec).expect("checked before any run"));
    options
}
