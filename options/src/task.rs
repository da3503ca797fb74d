//! `--task` and its options, shared by `finetune`, `prompt-classify` and `compare`.

use std::path::PathBuf;

use primer_datasets::named;
use primer_datasets::task::{self, Task, TaskSource};

use crate::data::show_progress;

/// The longest example, in tokens, that fine-tuning reads unless told (`--max-len`); runs with a
/// shorter context read up to theirs.
pub const FINETUNE_MAX_LEN: usize = 128;

/// Which labelled task, and how to read it.
#[derive(clap::Args, Debug, Clone)]
pub struct TaskArgs {
    /// A named task (sst2, waimai), or a training file (.tsv, .csv or .jsonl).
    #[arg(long)]
    pub task: String,
    /// The validation file of a task given as a file [default: a seeded 10% of the training
    /// file, stratified by label].
    #[arg(long)]
    pub valid_file: Option<PathBuf>,
    /// Text column (JSON Lines: field) of a task file; two, comma-separated, form a sentence pair.
    #[arg(long, value_delimiter = ',', default_value = "text")]
    pub text_column: Vec<String>,
    /// Label column (field) of a task file; labels are strings or integers.
    #[arg(long, default_value = "label")]
    pub label_column: String,
    /// Train on a seeded, label-stratified subset of N examples.
    #[arg(long)]
    pub train_limit: Option<usize>,
}

impl TaskArgs {
    /// A task by name or file, with the default columns and no limit.
    pub fn named(task: &str) -> Self {
        Self {
            task: task.to_string(),
            valid_file: None,
            text_column: vec!["text".into()],
            label_column: "label".into(),
            train_limit: None,
        }
    }

    /// Reads the task; `seed` draws the held-out split and the `--train-limit` subset.
    pub fn load(&self, seed: u64) -> anyhow::Result<Task> {
        let source = match task::lookup(&self.task) {
            Some(named_task) if !std::path::Path::new(&self.task).exists() => {
                let mirror = std::env::var("PRIMER_DATA_URL").ok();
                task::named_source(named_task, &named::data_home(), mirror.as_deref(), show_progress())?
            }
            _ => {
                let train = PathBuf::from(&self.task);
                primer_files::roots::check_input("--task", &train)?;
                if let Some(valid) = &self.valid_file {
                    primer_files::roots::check_input("--valid-file", valid)?;
                }
                if !train.exists() {
                    let names: Vec<&str> = task::TASKS.iter().map(|t| t.name).collect();
                    anyhow::bail!(
                        "--task {}: no such file nor named task (named tasks: {})",
                        self.task,
                        names.join(", ")
                    );
                }
                TaskSource {
                    train,
                    valid: self.valid_file.clone(),
                    text_columns: self.text_column.clone(),
                    label_column: self.label_column.clone(),
                }
            }
        };
        let mut task = Task::read(&self.task, &source, seed)?;
        if let Some(limit) = self.train_limit {
            task.limit_train(limit, seed)?;
        }
        Ok(task)
    }
}

/// Parses `LABEL=WORD`, a verbalizer's pair.
pub fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((label, word)) => Ok((label.trim().to_string(), word.to_string())),
        None => Err(format!("{text:?} is not LABEL=WORD")),
    }
}
