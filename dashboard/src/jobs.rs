//! The commands the dashboard runs as jobs, with their options read from the CLI's own clap
//! definitions, and a form's values turned into a command line the CLI's parser accepts, with
//! every file it names confined.

use std::path::{Path, PathBuf};

use primer_options::OptionSpec;
use serde::Serialize;
use serde_json::Value;

use crate::error::ApiError;
use crate::paths::Roots;

/// The commands a job may run: each writes a run, a report or a result (printed into the job's
/// log). `generate`, `fill-mask` and `classify` answer a person at a terminal; `prepare` and
/// `tokenizer` make inputs, not results.
pub const JOB_COMMANDS: [&str; 10] = [
    "pretrain",
    "finetune",
    "compare",
    "eval",
    "minimal-pairs",
    "prompt-classify",
    "multiple-choice",
    "score",
    "export",
    "import",
];

/// Options the dashboard sets itself, never asked for: a job has no terminal for a TUI.
const SET_BY_DASHBOARD: [&str; 1] = ["no-tui"];

/// Options whose value is a named data set, task or pair set, or else a file.
const NAMED_OR_FILE: [&str; 6] = ["corpus", "valid", "file", "task", "minimal-pairs", "pairs"];

/// One command, as a form shows it.
#[derive(Debug, Clone, Serialize)]
pub struct CommandSpec {
    /// Its name (`finetune`).
    pub name: String,
    /// What it does: its first help line.
    pub about: String,
    /// Its options, as clap declares them, less those the dashboard sets.
    pub options: Vec<OptionSpec>,
    /// The flags of [`SET_BY_DASHBOARD`] it has, which every job of it gets.
    #[serde(skip)]
    set_by_dashboard: Vec<String>,
}

/// The job commands of the CLI, and its parser to check a job's command line with.
pub struct Catalogue {
    cli: clap::Command,
    commands: Vec<CommandSpec>,
}

/// A job's command line, checked.
#[derive(Debug)]
pub struct JobLine {
    /// The command (`pretrain`).
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// The run or report the job writes or continues, if it names one.
    pub run: Option<PathBuf>,
}

impl Catalogue {
    /// The job commands of `cli`, the whole `primer` command line.
    pub fn new(mut cli: clap::Command) -> Self {
        cli.build();
        let commands = JOB_COMMANDS
            .iter()
            .filter_map(|name| cli.find_subcommand(name))
            .map(|command| {
                let (set, options) = primer_options::options_of(command)
                    .into_iter()
                    .partition::<Vec<_>, _>(|spec| SET_BY_DASHBOARD.contains(&spec.key.as_str()));
                CommandSpec {
                    name: command.get_name().to_string(),
                    about: command.get_about().map(|a| a.to_string()).unwrap_or_default(),
                    options,
                    set_by_dashboard: set.into_iter().map(|spec| format!("--{}", spec.key)).collect(),
                }
            })
            .collect();
        Self { cli, commands }
    }

    /// Every job command with its options.
    pub fn commands(&self) -> &[CommandSpec] {
        &self.commands
    }

    /// The command line of a job of `command` with the options of a form (keys as flags,
    /// `seq-len`, or as fields, `seq_len`), checked by the CLI's parser: the first line of its
    /// error when it refuses them.
    pub fn command_line(
        &self,
        roots: &Roots,
        command: &str,
        form: serde_json::Map<String, Value>,
    ) -> Result<JobLine, ApiError> {
        let spec = self.commands.iter().find(|c| c.name == command).ok_or_else(|| {
            ApiError::bad(format!(
                "command {command:?}: the dashboard runs {}",
                JOB_COMMANDS.join(", ")
            ))
        })?;
        let mut line = JobLine {
            command: command.to_string(),
            args: Vec::new(),
            run: None,
        };
        let mut positional = Vec::new();
        for (key, value) in form {
            let key = key.replace('_', "-");
            let option = spec.options.iter().find(|o| o.key == key).ok_or_else(|| {
                ApiError::bad(format!(
                    "{command} has no option {key:?}: see `primer {command} --help`"
                ))
            })?;
            let Some(text) = value_text(option, &value)? else {
                continue;
            };
            if option.kind == "flag" {
                line.args.push(format!("--{key}"));
                continue;
            }
            let text = confine(roots, command, option, &text, &mut line.run)?;
            if option.positional {
                positional.push(text);
            } else {
                line.args.extend([format!("--{key}"), text]);
            }
        }
        // Positional values first: a list option (`--corpus a b`) would take them as its own.
        line.args.splice(0..0, positional);
        line.args.extend(spec.set_by_dashboard.iter().cloned());
        self.check(&line)?;
        Ok(line)
    }

    /// Parses a command line as `primer` would.
    fn check(&self, line: &JobLine) -> Result<(), ApiError> {
        let words = ["primer", line.command.as_str()]
            .into_iter()
            .chain(line.args.iter().map(String::as_str));
        self.cli.clone().try_get_matches_from(words).map(|_| ()).map_err(|e| {
            // Its message, on one line: the lines before the usage.
            let text = e.render().to_string();
            let message: Vec<&str> = text
                .lines()
                .map(str::trim)
                .take_while(|line| !line.starts_with("Usage:"))
                .filter(|line| !line.is_empty())
                .collect();
            ApiError::bad(message.join(" ").trim_start_matches("error: ").to_string())
        })
    }
}

/// A form value as the command line's text: `None` when it is left empty (or a flag unset);
/// lists comma-separated.
fn value_text(option: &OptionSpec, value: &Value) -> Result<Option<String>, ApiError> {
    Ok(match value {
        Value::Null => None,
        Value::Bool(set) if option.kind == "flag" => set.then(String::new),
        Value::Bool(set) => Some(set.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(s.trim().to_string()),
        Value::Array(items) => {
            let texts: Vec<String> = items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(n) => Ok(n.to_string()),
                    other => Err(ApiError::bad(format!("{}: {other} is not a value", option.key))),
                })
                .collect::<Result<_, _>>()?;
            (!texts.is_empty()).then(|| texts.join(","))
        }
        Value::Object(_) => return Err(ApiError::bad(format!("{}: an object is not a value", option.key))),
    })
}

/// An option's value with what it names confined: `out` (a new path, see
/// [`crate::paths::output_path`]) and `resume` (an existing run) under the runs directory, and the job's run set from them; input files and folders under
/// the allowed roots, named data sets as they are.
fn confine(
    roots: &Roots,
    command: &str,
    option: &OptionSpec,
    text: &str,
    run: &mut Option<PathBuf>,
) -> Result<String, ApiError> {
    let key = option.key.as_str();
    match key {
        "out" => {
            let out = roots.output_dir(command, text)?;
            *run = Some(out.clone());
            Ok(out.display().to_string())
        }
        "resume" => {
            // A run by its id, or by its path under the runs directory.
            let id = Path::new(text).strip_prefix(&roots.root).unwrap_or(Path::new(text));
            let dir = roots.run_dir(&id.to_string_lossy())?;
            *run = Some(dir.clone());
            Ok(dir.display().to_string())
        }
        _ if NAMED_OR_FILE.contains(&key) => text
            .split(',')
            .map(|item| roots.input(key, item, is_named(key, item)))
            .collect::<Result<Vec<_>, _>>()
            .map(|items| items.join(",")),
        _ if option.kind == "path" => roots.input(key, text, false),
        _ => Ok(text.to_string()),
    }
}

/// Whether `value` names a data set, task or pair set that option `key` accepts by name.
fn is_named(key: &str, value: &str) -> bool {
    match key {
        "corpus" | "valid" | "file" => primer_datasets::named::lookup(value).is_some(),
        "task" => primer_datasets::task::lookup(value).is_some(),
        _ => value == "blimp" || value == "none",
    }
}
