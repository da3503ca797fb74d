//! The downstream tasks of a comparison, each on its own terms: from `--task` (with the shared
//! `--template` and `--verbalizer`), or from `[[task]]` tables of the `--config` TOML, each with
//! its own name, files, columns and prompt:
//!
//! ```toml
//! [[task]]
//! task = "trec/train.tsv"          # a task file, or a named task (sst2)
//! name = "trec"                    # the report's name for it [default: the file's stem]
//! valid = "trec/test.tsv"          # its validation or test file [default: a held-out share]
//! text_column = "text"             # [default: text]
//! label_column = "label"           # [default: label]
//! template = "{text} It asks for [LABEL]."   # none: zero-shot is skipped
//! verbalizer = "ABBR=abbreviation,DESC=description,ENTY=thing,HUM=person,LOC=place,NUM=number"
//! ```

use std::path::Path;

use anyhow::bail;
use primer_datasets::task as tasks;
use serde::Deserialize;

use super::spec::TaskSpec;
use primer_options::PretrainOptions;
use primer_options::config_file::{CONFIG_KEYS, config_fault, options_of, read_toml};
use primer_options::task::parse_pair;

/// One `[[task]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskTable {
    task: String,
    name: Option<String>,
    valid: Option<String>,
    text_column: Option<String>,
    label_column: Option<String>,
    template: Option<String>,
    verbalizer: Option<String>,
}

/// Reads a compare `--config`: the pre-training options (keys = pretrain flag names) and its
/// `[[task]]` tables.
pub fn read_config(path: &Path) -> anyhow::Result<(PretrainOptions, Vec<TaskSpec>)> {
    let hint = format!("{CONFIG_KEYS}, and [[task]] tables");
    let mut table = read_toml(path, &hint)?;
    let task_tables = table.remove("task");
    let options = options_of(path, table, &hint)?;
    let tables: Vec<TaskTable> = match task_tables {
        Some(value) => value.try_into().map_err(|e| {
            config_fault(
                path,
                e,
                "a [[task]] table has task, and optionally name, valid, text_column, label_column, template and verbalizer",
            )
        })?,
        None => Vec::new(),
    };
    let specs = tables
        .into_iter()
        .map(|table| {
            let verbalizer = match &table.verbalizer {
                Some(pairs) => parse_pairs(pairs).map_err(|e| anyhow::anyhow!("config {}: {e}", path.display()))?,
                None => Vec::new(),
            };
            complete(TaskSpec {
                name: table.name,
                task: table.task,
                valid: table.valid,
                text_column: table.text_column,
                label_column: table.label_column,
                template: table.template,
                verbalizer,
            })
            .map_err(|e| anyhow::anyhow!("config {}: {e}", path.display()))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok((options, specs))
}

/// A `--task` with the shared `--template` and `--verbalizer`.
pub fn from_flags(task: &str, template: Option<&str>, verbalizer: &[(String, String)]) -> anyhow::Result<TaskSpec> {
    complete(TaskSpec {
        name: None,
        task: task.to_string(),
        valid: None,
        text_column: None,
        label_column: None,
        template: template.map(str::to_string),
        verbalizer: verbalizer.to_vec(),
    })
}

/// Checks that the task exists and fills a named task's prompt where none is given. A task
/// file without a template has no prompt: zero-shot is skipped for it.
fn complete(mut spec: TaskSpec) -> anyhow::Result<TaskSpec> {
    let task = spec.task.clone();
    let named = tasks::lookup(&task).filter(|_| !Path::new(&task).exists());
    if named.is_none() && !Path::new(&task).exists() {
        let names: Vec<&str> = tasks::TASKS.iter().map(|t| t.name).collect();
        bail!(
            "task {task}: no such file nor named task (named tasks: {})",
            names.join(", ")
        );
    }
    if let Some(valid) = spec.valid.as_ref().filter(|valid| !Path::new(valid).exists()) {
        bail!("task {task}: its valid file {valid} does not exist: check the path");
    }
    if let Some(named) = named {
        spec.template = spec.template.or(Some(named.template.to_string()));
        if spec.verbalizer.is_empty() {
            spec.verbalizer = parse_pairs(named.verbalizer)?;
        }
    }
    match (&spec.template, spec.verbalizer.is_empty()) {
        (Some(_), true) => bail!(
            "task {task}: a zero-shot template needs label words: give LABEL=WORD,... (a word per label) as --verbalizer or as the verbalizer of its [[task]] table"
        ),
        (None, false) => bail!(
            "task {task}: label words without a template: give a template with [LABEL], e.g. \"{{text}} It was [LABEL].\""
        ),
        _ => Ok(spec),
    }
}

fn parse_pairs(pairs: &str) -> anyhow::Result<Vec<(String, String)>> {
    pairs
        .split(',')
        .map(parse_pair)
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)
}
