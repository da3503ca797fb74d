//! What a comparison is (`REPORT_DIR/compare.json`) and the runs it takes.

use std::fmt;
use std::path::{Path, PathBuf};

use primer_objectives::ObjectiveConfig;
use primer_objectives::info::Scoring;
use primer_objectives::scoring::Pll;
use serde::{Deserialize, Serialize};

use primer_options::PretrainOptions;
use primer_trainer::config::flatten;

/// How many labelled training examples a fine-tune gets; a number or `"all"` in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "BudgetJson", into = "BudgetJson")]
pub enum LabelBudget {
    /// A seeded, label-stratified subset of this many examples.
    Count(usize),
    /// The whole training split.
    All,
}

impl LabelBudget {
    /// Parses `100` or `all`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "all" => Ok(Self::All),
            n => match n.parse::<usize>() {
                Ok(0) | Err(_) => Err(format!("{n:?} is not a label budget: give a positive count or `all`")),
                Ok(n) => Ok(Self::Count(n)),
            },
        }
    }
}

/// The JSON form of a [`LabelBudget`].
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum BudgetJson {
    Count(usize),
    Word(String),
}

impl From<LabelBudget> for BudgetJson {
    fn from(budget: LabelBudget) -> Self {
        match budget {
            LabelBudget::Count(n) => Self::Count(n),
            LabelBudget::All => Self::Word("all".into()),
        }
    }
}

impl TryFrom<BudgetJson> for LabelBudget {
    type Error = String;

    fn try_from(json: BudgetJson) -> Result<Self, String> {
        match json {
            BudgetJson::Count(n) => LabelBudget::parse(&n.to_string()),
            BudgetJson::Word(word) => LabelBudget::parse(&word),
        }
    }
}

impl fmt::Display for LabelBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Count(n) => write!(f, "{n}"),
            Self::All => write!(f, "all"),
        }
    }
}

/// A downstream task on its own terms: its data, its columns, its validation file and its
/// zero-shot prompt (none: zero-shot is skipped).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    /// The short name the report uses (default: the named task, or the file's stem).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A named task or a task file, as `finetune --task` takes it.
    pub task: String,
    /// A validation (or test) file of the task, as `finetune --valid-file` takes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid: Option<String>,
    /// The text column of task files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_column: Option<String>,
    /// The label column of task files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_column: Option<String>,
    /// The zero-shot template; `None` skips zero-shot.
    #[serde(default)]
    pub template: Option<String>,
    /// `LABEL=WORD` pairs of the zero-shot prompt.
    #[serde(default)]
    pub verbalizer: Vec<(String, String)>,
}

impl TaskSpec {
    /// The task's short name, for headings, tables, job names and file names.
    pub fn name(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        Path::new(&self.task)
            .file_stem()
            .map_or_else(|| self.task.clone(), |s| s.to_string_lossy().into_owned())
    }

    /// [`Self::name`] safe in file names.
    pub fn slug(&self) -> String {
        self.name()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
            .collect()
    }

    /// Whether zero-shot prompting runs on it.
    pub fn prompted(&self) -> bool {
        self.template.is_some()
    }

    /// The task as `finetune` reads it.
    pub fn task_args(&self) -> primer_options::task::TaskArgs {
        let mut args = primer_options::task::TaskArgs::named(&self.task);
        args.valid_file = self.valid.as_ref().map(std::path::PathBuf::from);
        if let Some(columns) = &self.text_column {
            args.text_column = columns.split(',').map(str::to_string).collect();
        }
        if let Some(column) = &self.label_column {
            args.label_column = column.clone();
        }
        args
    }

    /// The task's data arguments of `finetune` and `prompt-classify`.
    pub fn data_arguments(&self) -> Vec<String> {
        let mut args = vec!["--task".to_string(), self.task.clone()];
        for (flag, value) in [
            ("--valid-file", &self.valid),
            ("--text-column", &self.text_column),
            ("--label-column", &self.label_column),
        ] {
            if let Some(value) = value {
                args.extend([flag.to_string(), value.clone()]);
            }
        }
        args
    }
}

/// Fine-tuning settings shared by every fine-tune of the comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinetuneSettings {
    /// Peak learning rate of full fine-tunes and from-scratch runs.
    pub lr: f64,
    /// Peak learning rate of linear probes.
    pub probe_lr: f64,
    /// Epochs at most.
    pub epochs: usize,
}

/// Everything that decides a comparison's numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareSpec {
    /// Pre-training options shared by every pre-training run: corpus, tokenizer, model size,
    /// budget, optimisation, backend. Objective and seed vary per run.
    pub pretrain: PretrainOptions,
    /// Objectives compared, with their settings.
    pub objectives: Vec<ObjectiveConfig>,
    /// Seeds: one pre-training run per objective and seed; fine-tunes use the same seed.
    pub seeds: Vec<u64>,
    /// Downstream tasks.
    pub tasks: Vec<TaskSpec>,
    /// Label budgets of the fine-tunes.
    pub label_budgets: Vec<LabelBudget>,
    /// Fine-tuning settings.
    pub finetune: FinetuneSettings,
    /// The minimal pairs every pre-trained model (and its untrained twin) is scored on; absent
    /// in comparisons made before them.
    #[serde(default)]
    pub minimal_pairs: Option<PairsSpec>,
    /// Demonstrations per prompt of the k-shot rows (0: the zero-shot one), each K above 0
    /// prompted and fine-tuned on the same K examples; none in comparisons without them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shots: Vec<usize>,
}

/// Minimal pairs, as `primer minimal-pairs` takes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairsSpec {
    /// `blimp`, a JSON Lines file or a folder of them.
    pub source: String,
    /// Only the first N pairs of each paradigm.
    pub limit_per_paradigm: Option<usize>,
    /// How masked objectives' sentences are masked (`--pll`); absent in comparisons made
    /// before it, which scored them the original way.
    #[serde(default)]
    pub pll: Pll,
}

impl PairsSpec {
    /// How `objective`'s sentences are scored: its own way, masked as [`Self::pll`] says.
    pub fn scoring(&self, objective: &ObjectiveConfig) -> Scoring {
        let scoring = objective.info().scoring;
        scoring.with_pll(self.pll).unwrap_or(scoring)
    }

    /// About how many pairs it holds, for time estimates: BLiMP's 67 paradigms of 1,000, or a
    /// thousand in a file of one's own.
    pub fn approximate_pairs(&self) -> usize {
        let per_paradigm = self.limit_per_paradigm.unwrap_or(1000).min(1000);
        match self.source.as_str() {
            "blimp" => 67 * per_paradigm,
            _ => per_paradigm,
        }
    }
}

impl CompareSpec {
    /// The option names where `self` and `other` differ, for an error message.
    pub fn differences(&self, other: &CompareSpec) -> Vec<String> {
        let (a, b) = (
            serde_json::to_value(self).expect("specs serialize"),
            serde_json::to_value(other).expect("specs serialize"),
        );
        let (a, b) = (flatten(&a), flatten(&b));
        let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
        keys.sort();
        keys.dedup();
        keys.into_iter()
            .filter(|key| {
                let null = serde_json::Value::Null;
                a.get(*key).unwrap_or(&null) != b.get(*key).unwrap_or(&null)
            })
            // The shared pre-training options are named as their flags are.
            .map(|key| key.strip_prefix("pretrain.").unwrap_or(key).to_string())
            .collect()
    }
}

/// How a classifier is trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Every weight trained, from the pre-trained encoder.
    Finetune,
    /// The head alone, on the frozen pre-trained encoder.
    Probe,
    /// Every weight trained, from random weights of the same architecture.
    Scratch,
    /// No training: the pre-trained LM is prompted.
    ZeroShot,
    /// No training: the pre-trained LM is prompted after K labelled demonstrations.
    KShot,
    /// K-shot prompting with contextual calibration.
    KShotCalibrated,
    /// Every weight trained, from the pre-trained encoder, on exactly the K demonstrations
    /// k-shot prompting shows.
    ShotFinetune,
}

impl Method {
    /// Name in tables and file names.
    pub fn name(self) -> &'static str {
        match self {
            Self::Finetune => "fine-tune",
            Self::Probe => "probe",
            Self::Scratch => "scratch",
            Self::ZeroShot => "zero-shot",
            Self::KShot => "k-shot",
            Self::KShotCalibrated => "k-shot calibrated",
            Self::ShotFinetune => "shot fine-tune",
        }
    }

    /// The methods that train a classifier, in report order.
    pub const TRAINED: [Method; 3] = [Method::Finetune, Method::Probe, Method::Scratch];
}

/// One unit of work, whose output is an ordinary run directory or a JSON file.
#[derive(Debug, Clone, PartialEq)]
pub enum Job {
    /// A pre-training run.
    Pretrain {
        /// Index into the spec's objectives.
        objective: usize,
        /// Seed.
        seed: u64,
    },
    /// `primer eval --json` of a pre-training run (pseudo-perplexity for MLM).
    Eval {
        /// Index into the spec's objectives.
        objective: usize,
        /// Seed.
        seed: u64,
    },
    /// A fine-tune, probe or from-scratch run.
    Finetune {
        /// Index into the spec's tasks.
        task: usize,
        /// Index into the spec's objectives: the encoder's.
        objective: usize,
        /// Seed.
        seed: u64,
        /// Labels.
        budget: LabelBudget,
        /// How.
        method: Method,
    },
    /// `primer minimal-pairs --json` of a pre-training run, or of its untrained weights.
    MinimalPairs {
        /// Index into the spec's objectives.
        objective: usize,
        /// Seed.
        seed: u64,
        /// The run's initial weights rather than its trained ones.
        untrained: bool,
    },
    /// Zero-shot prompting of a pre-training run.
    ZeroShot {
        /// Index into the spec's tasks.
        task: usize,
        /// Index into the spec's objectives.
        objective: usize,
        /// Seed.
        seed: u64,
    },
    /// K-shot prompting of a pre-training run, calibrated beside uncalibrated, the
    /// demonstrations drawn with the seed.
    KShot {
        /// Index into the spec's tasks.
        task: usize,
        /// Index into the spec's objectives.
        objective: usize,
        /// Seed of the pre-training run and of the demonstrations.
        seed: u64,
        /// Demonstrations per prompt, at least 1.
        shots: usize,
    },
}

/// Paths inside a report directory.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The report directory.
    pub root: PathBuf,
}

impl Layout {
    /// `compare.json`: the spec.
    pub fn spec(&self) -> PathBuf {
        self.root.join("compare.json")
    }

    /// The shared tokenizer.
    pub fn tokenizer(&self) -> PathBuf {
        self.root.join("tokenizer.json")
    }

    /// Run directories.
    pub fn runs(&self) -> PathBuf {
        self.root.join("runs")
    }

    /// Logs of every job.
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }

    /// Pre-training configs, one TOML file per run, as `primer pretrain --config` reads them.
    pub fn configs(&self) -> PathBuf {
        self.root.join("configs")
    }

    /// The pre-training run of an objective and seed.
    pub fn pretrain_run(&self, objective: &ObjectiveConfig, seed: u64) -> PathBuf {
        self.runs().join(format!("pretrain-{}-s{seed}", slug(objective)))
    }

    /// Where a job writes, and the name of its log.
    pub fn output(&self, spec: &CompareSpec, job: &Job) -> PathBuf {
        match *job {
            Job::Pretrain { objective, seed } => self.pretrain_run(&spec.objectives[objective], seed),
            Job::Eval { objective, seed } => self.pretrain_run(&spec.objectives[objective], seed).join("eval.json"),
            Job::MinimalPairs {
                objective,
                seed,
                untrained,
            } => self.runs().join(format!(
                "minimal-pairs-{}{}-s{seed}.json",
                slug(&spec.objectives[objective]),
                if untrained { "-untrained" } else { "" }
            )),
            Job::Finetune {
                task,
                objective,
                seed,
                budget,
                method,
            } => self.runs().join(format!(
                "{}-{}-{}-{}-s{seed}",
                spec.tasks[task].slug(),
                method.name().replace(' ', "-"),
                slug(&spec.objectives[objective]),
                budget
            )),
            Job::ZeroShot { task, objective, seed } => self.runs().join(format!(
                "{}-zero-shot-{}-s{seed}.json",
                spec.tasks[task].slug(),
                slug(&spec.objectives[objective])
            )),
            Job::KShot {
                task,
                objective,
                seed,
                shots,
            } => self.runs().join(format!(
                "{}-{shots}-shot-{}-s{seed}.json",
                spec.tasks[task].slug(),
                slug(&spec.objectives[objective])
            )),
        }
    }
}

/// An objective's label as a file name: `mlm:span` is `mlm-span`.
pub fn slug(objective: &ObjectiveConfig) -> String {
    objective.label().replace([':', '='], "-")
}

impl Job {
    /// Every job of a comparison, in the order they run: pre-training first, since the rest
    /// reads its runs.
    pub fn all(spec: &CompareSpec) -> Vec<Job> {
        let mut jobs = Vec::new();
        for &seed in &spec.seeds {
            for objective in 0..spec.objectives.len() {
                jobs.push(Job::Pretrain { objective, seed });
                jobs.push(Job::Eval { objective, seed });
                if spec.minimal_pairs.is_some() {
                    for untrained in [false, true] {
                        jobs.push(Job::MinimalPairs {
                            objective,
                            seed,
                            untrained,
                        });
                    }
                }
            }
        }
        for task in 0..spec.tasks.len() {
            for &seed in spec.seeds.iter().filter(|_| spec.tasks[task].prompted()) {
                for objective in 0..spec.objectives.len() {
                    jobs.push(Job::ZeroShot { task, objective, seed });
                }
            }
            if spec.tasks[task].prompted() {
                jobs.extend(Self::k_shot(spec, task));
            }
            for &budget in &spec.label_budgets {
                for &seed in &spec.seeds {
                    for objective in 0..spec.objectives.len() {
                        for method in Method::TRAINED {
                            jobs.push(Job::Finetune {
                                task,
                                objective,
                                seed,
                                budget,
                                method,
                            });
                        }
                    }
                }
            }
        }
        jobs
    }

    /// The k-shot jobs of a prompted task: per K above 0, prompting with K demonstrations and
    /// fine-tuning on them, per seed and objective.
    fn k_shot(spec: &CompareSpec, task: usize) -> Vec<Job> {
        let mut jobs = Vec::new();
        for &shots in spec.shots.iter().filter(|&&k| k > 0) {
            for &seed in &spec.seeds {
                for objective in 0..spec.objectives.len() {
                    jobs.push(Job::KShot {
                        task,
                        objective,
                        seed,
                        shots,
                    });
                    jobs.push(Job::Finetune {
                        task,
                        objective,
                        seed,
                        budget: LabelBudget::Count(shots),
                        method: Method::ShotFinetune,
                    });
                }
            }
        }
        jobs
    }

    /// What it is, in a few words.
    pub fn describe(&self, spec: &CompareSpec) -> String {
        match *self {
            Job::Pretrain { objective, seed } => format!("pre-train {} seed {seed}", spec.objectives[objective]),
            Job::Eval { objective, seed } => format!("evaluate {} seed {seed}", spec.objectives[objective]),
            Job::MinimalPairs {
                objective,
                seed,
                untrained,
            } => format!(
                "minimal pairs {}{} seed {seed}",
                spec.objectives[objective],
                if untrained { " untrained" } else { "" }
            ),
            Job::Finetune {
                task,
                objective,
                seed,
                budget,
                method,
            } => format!(
                "{} {} {} labels {budget} seed {seed}",
                spec.tasks[task].name(),
                method.name(),
                spec.objectives[objective]
            ),
            Job::ZeroShot { task, objective, seed } => {
                format!(
                    "{} zero-shot {} seed {seed}",
                    spec.tasks[task].name(),
                    spec.objectives[objective]
                )
            }
            Job::KShot {
                task,
                objective,
                seed,
                shots,
            } => format!(
                "{} {shots}-shot {} seed {seed}",
                spec.tasks[task].name(),
                spec.objectives[objective]
            ),
        }
    }

    /// The kind of job, for time estimates.
    pub fn kind(&self) -> &'static str {
        match self {
            Job::Pretrain { .. } => "pretrain",
            Job::Eval { .. } => "eval",
            Job::MinimalPairs { .. } => "minimal-pairs",
            Job::Finetune { .. } => "finetune",
            Job::ZeroShot { .. } => "zero-shot",
            Job::KShot { .. } => "k-shot",
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Two objectives, two seeds, one prompted task, two budgets.
    pub(crate) fn spec() -> CompareSpec {
        CompareSpec {
            pretrain: PretrainOptions::default(),
            objectives: vec!["mlm".parse().unwrap(), "clm".parse().unwrap()],
            seeds: vec![0, 1],
            tasks: vec![TaskSpec {
                task: "sst2".into(),
                name: None,
                valid: None,
                text_column: None,
                label_column: None,
                template: Some("{text} It was [LABEL].".into()),
                verbalizer: vec![("0".into(), "terrible".into()), ("1".into(), "great".into())],
            }],
            label_budgets: vec![LabelBudget::Count(100), LabelBudget::All],
            finetune: FinetuneSettings {
                lr: 3e-4,
                probe_lr: 1e-3,
                epochs: 10,
            },
            minimal_pairs: Some(PairsSpec {
                pll: Pll::Original,
                source: "blimp".into(),
                limit_per_paradigm: Some(10),
            }),
            shots: Vec::new(),
        }
    }

    #[test]
    fn every_combination_is_one_job_with_its_own_output() {
        let spec = spec();
        let jobs = Job::all(&spec);
        // 2 objectives x 2 seeds x (pretrain + eval + minimal pairs trained and untrained +
        // zero-shot + 2 budgets x 3 methods).
        assert_eq!(jobs.len(), 2 * 2 * (5 + 2 * 3));
        let layout = Layout { root: "r".into() };
        let mut outputs: Vec<PathBuf> = jobs.iter().map(|j| layout.output(&spec, j)).collect();
        outputs.sort();
        outputs.dedup();
        assert_eq!(outputs.len(), jobs.len());
        assert!(matches!(jobs[0], Job::Pretrain { .. }));
    }

    #[test]
    fn budgets_parse_and_differences_name_the_option() {
        assert_eq!(LabelBudget::parse("all"), Ok(LabelBudget::All));
        assert_eq!(LabelBudget::parse(" 300"), Ok(LabelBudget::Count(300)));
        assert!(LabelBudget::parse("0").is_err());
        assert!(LabelBudget::parse("many").is_err());
        let json = serde_json::to_string(&[LabelBudget::Count(100), LabelBudget::All]).unwrap();
        assert_eq!(json, r#"[100,"all"]"#);
        assert_eq!(
            serde_json::from_str::<Vec<LabelBudget>>(&json).unwrap(),
            [LabelBudget::Count(100), LabelBudget::All]
        );
        let mut other = spec();
        other.seeds = vec![0];
        other.pretrain.steps = Some(10);
        assert_eq!(spec().differences(&other), ["steps", "seeds"]);
        assert!(spec().differences(&spec()).is_empty());
    }

    #[test]
    fn shots_add_prompting_and_a_fine_tune_on_the_same_examples_per_k_above_zero() {
        let mut spec = spec();
        let without = Job::all(&spec);
        spec.shots = vec![0, 4, 16];
        let jobs = Job::all(&spec);
        // Per K of 4 and 16: 2 objectives x 2 seeds x (prompting + fine-tuning on the shots).
        assert_eq!(jobs.len(), without.len() + 2 * 2 * 2 * 2);
        let k_shot = |job: &&Job| matches!(job, Job::KShot { .. });
        assert_eq!(jobs.iter().filter(k_shot).count(), 8);
        assert!(jobs.contains(&Job::Finetune {
            task: 0,
            objective: 1,
            seed: 1,
            budget: LabelBudget::Count(16),
            method: Method::ShotFinetune,
        }));
        let layout = Layout { root: "r".into() };
        let mut outputs: Vec<PathBuf> = jobs.iter().map(|j| layout.output(&spec, j)).collect();
        assert!(
            outputs.iter().all(|o| !o.to_string_lossy().contains(' ')),
            "{outputs:?}"
        );
        outputs.sort();
        outputs.dedup();
        assert_eq!(outputs.len(), jobs.len());
        // A task without a prompt gets neither.
        spec.tasks[0].template = None;
        assert!(!Job::all(&spec).iter().any(|j| matches!(j, Job::KShot { .. })));
    }

    #[test]
    fn a_spec_made_before_shots_reads_and_writes_as_it_was() {
        let json = serde_json::to_string_pretty(&spec()).unwrap();
        assert!(!json.contains("shots"), "{json}");
        let read: CompareSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(serde_json::to_string_pretty(&read).unwrap(), json);
        assert_eq!(Job::all(&read), Job::all(&spec()));
    }
}
