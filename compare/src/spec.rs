//! What a comparison is: the spec stored as `REPORT_DIR/compare.json`, with its downstream
//! tasks, label budgets, fine-tuning settings and minimal pairs.

use std::fmt;
use std::path::Path;

use primer_objectives::ObjectiveConfig;
use primer_objectives::info::Scoring;
use primer_objectives::scoring::Pll;
use primer_options::PretrainOptions;
use primer_trainer::config::flatten;
use serde::{Deserialize, Serialize};

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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::jobs::Job;

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
    fn a_spec_made_before_shots_reads_and_writes_as_it_was() {
        let json = serde_json::to_string_pretty(&spec()).unwrap();
        assert!(!json.contains("shots"), "{json}");
        let read: CompareSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(serde_json::to_string_pretty(&read).unwrap(), json);
        assert_eq!(Job::all(&read), Job::all(&spec()));
    }
}
