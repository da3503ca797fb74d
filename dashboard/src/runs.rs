//! What the dashboard knows of the run directories under its root, read from the directories
//! themselves: `config.json`/`finetune.json`, `status.json`, `summary.json` and the tail of
//! `metrics.jsonl`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use primer_compare::CompareSpec;
use primer_options::{Backend, PretrainOptions};
use primer_trainer::checkpoint::Checkpointer;
use primer_trainer::config::RunConfig;
use primer_trainer::finetune::FinetuneConfig;
use primer_trainer::run_dir::RunDir;
use primer_trainer::status::{RunState, RunStatus};
use serde::Serialize;
use serde_json::Value;

use crate::system::ProcessLoad;

/// Bytes read from the end of `metrics.jsonl` for the latest records.
const TAIL_BYTES: u64 = 16 * 1024;

/// What kind of directory a listed entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A pre-training run (`config.json`).
    Pretrain,
    /// A fine-tuning run (`finetune.json`).
    Finetune,
    /// A `primer compare` report (`compare.json`).
    Report,
}

/// One row of the runs list.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    /// Path relative to the dashboard's root, with `/` separators.
    pub id: String,
    /// Kind.
    pub kind: Kind,
    /// Objective (pre-training) or the encoder's objective (fine-tuning).
    pub objective: Option<String>,
    /// Task of a fine-tuning run.
    pub task: Option<String>,
    /// State from `status.json`; a run without one is finished when it has a summary.
    pub status: Option<RunState>,
    /// Latest step logged.
    pub step: u64,
    /// Steps the run is configured for (pre-training).
    pub total_steps: Option<u64>,
    /// Input tokens seen (pre-training).
    pub tokens_seen: Option<u64>,
    /// The latest validation record.
    pub valid: Option<Value>,
    /// Backend named in the run's options.
    pub backend: Option<String>,
    /// Wall-clock seconds so far.
    pub elapsed_s: Option<f64>,
    /// Every value known of it, by dotted key, for the table's chosen columns, filters and
    /// groups: `config.*` (its config file), `summary.*`, and the latest `train.*` and
    /// `valid.*` metrics.
    pub fields: BTreeMap<String, Value>,
    /// CPU and memory of the process running it.
    pub load: Option<ProcessLoad>,
}

/// Every run and report under `root`, sorted by id.
pub fn scan(root: &Path) -> Vec<RunInfo> {
    let mut runs: Vec<RunInfo> = walkdir::WalkDir::new(root)
        .max_depth(8)
        .into_iter()
        .filter_entry(|e| {
            let name = e.file_name().to_string_lossy();
            e.depth() == 0 || (name != "checkpoints" && !name.starts_with('.'))
        })
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_dir())
        .filter_map(|e| describe(root, e.path()))
        .collect();
    runs.sort_by(|a, b| a.id.cmp(&b.id));
    runs
}

/// Whether `path` resolves, through every link, to a place inside `root`.
pub fn inside(root: &Path, path: &Path) -> bool {
    path.canonicalize().is_ok_and(|resolved| resolved.starts_with(root))
}

/// Whether a file of `dir` is a link that leads outside `root` (or nowhere): the dashboard
/// neither lists nor serves such a directory, so a link cannot expose a file elsewhere.
pub fn escapes(root: &Path, dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_symlink()))
        .any(|e| !inside(root, &e.path()))
}

/// The id of a directory under `root`.
pub fn id_of(root: &Path, dir: &Path) -> String {
    let relative = dir.strip_prefix(root).unwrap_or(dir);
    relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// The row of one directory, or `None` when it is not a run nor a report.
pub fn describe(root: &Path, dir: &Path) -> Option<RunInfo> {
    if escapes(root, dir) {
        return None;
    }
    let run = RunDir::new(dir);
    let config = Config::of(dir)?;
    let kind = config.kind();
    let status = match kind {
        Kind::Report => Some(if dir.join("report.md").exists() {
            RunState::Finished
        } else if primer_files::lock::is_locked(dir) {
            RunState::Running
        } else {
            RunState::Interrupted
        }),
        _ => RunStatus::read(&run)
            .map(|s| s.effective_state(&run))
            .or_else(|| run.summary().exists().then_some(RunState::Finished)),
    };
    let (records, _) = tail_records(&run.metrics());
    let last = records.last();
    let valid = records.iter().rev().find(|r| r["split"] == "valid").cloned();
    let progress = read_json(&dir.join(primer_compare::PROGRESS_FILE));
    let (objective, task, total_steps, backend) = match &config {
        Config::Pretrain(config) => (
            Some(config.objective.label()),
            None,
            Some(config.train.steps),
            Some(backend_of(&config.options).unwrap_or_default().name().to_string()),
        ),
        Config::Finetune(config) => (Some(config.objective.label()), Some(config.task.clone()), None, None),
        Config::Report(spec) => (
            None,
            None,
            None,
            spec.pretrain.backend.backend.map(|b| b.name().to_string()),
        ),
        Config::Unreadable(_) => (None, None, None, None),
    };
    // A comparison counts its jobs as steps.
    let jobs = |key: &str| progress.as_ref().and_then(|p| p[key].as_u64());
    Some(RunInfo {
        id: id_of(root, dir),
        kind,
        objective,
        task,
        status,
        step: last.and_then(|r| r["step"].as_u64()).or(jobs("done")).unwrap_or(0),
        total_steps: total_steps.or(jobs("total")),
        tokens_seen: last.and_then(|r| r["tokens_seen"].as_u64()),
        fields: fields(dir, &records),
        valid,
        backend,
        elapsed_s: last.and_then(|r| r["elapsed_s"].as_f64()),
        load: None,
    })
}

/// The values of a run by dotted key: its config, its summary, and the latest record of each
/// split (an objective's own metrics among them).
fn fields(dir: &Path, records: &[Value]) -> BTreeMap<String, Value> {
    let mut fields = BTreeMap::new();
    let mut add = |prefix: &str, value: &Value| {
        for (key, value) in primer_trainer::config::flatten(value) {
            fields.insert(format!("{prefix}.{key}"), value);
        }
    };
    if let Some(config) = config_file(dir) {
        add("config", &config);
    }
    if let Some(summary) = read_json(&RunDir::new(dir).summary()) {
        add("summary", &summary);
    }
    for split in ["train", "valid"] {
        if let Some(mut record) = records.iter().rev().find(|r| r["split"] == split).cloned() {
            if let Some(own) = record.as_object_mut().and_then(|r| r.remove("objective_metrics")) {
                add(split, &own);
            }
            record.as_object_mut().map(|r| r.remove("split"));
            add(split, &record);
        }
    }
    fields
}

/// The backend a run's stored options name, if any.
fn backend_of(options: &Value) -> Option<Backend> {
    serde_json::from_value::<PretrainOptions>(options.clone())
        .ok()?
        .backend
        .backend
}

/// The config of a run or report directory, read as its type.
pub enum Config {
    /// `config.json` of a pre-training run (of any age: old ones are upgraded as on resume).
    Pretrain(Box<RunConfig>),
    /// `finetune.json` of a fine-tuned classifier.
    Finetune(Box<FinetuneConfig>),
    /// `compare.json` of a `primer compare` report.
    Report(Box<CompareSpec>),
    /// A config file of this kind that does not read (being written, or corrupt).
    Unreadable(Kind),
}

impl Config {
    /// The config of `dir`, or `None` when it is not a run nor a report.
    pub fn of(dir: &Path) -> Option<Config> {
        let run = RunDir::new(dir);
        let read = |path: &Path| std::fs::read_to_string(path).ok();
        Some(if run.finetune_config().exists() {
            read(&run.finetune_config())
                .and_then(|text| serde_json::from_str(&text).ok())
                .map_or(Config::Unreadable(Kind::Finetune), |c| Config::Finetune(Box::new(c)))
        } else if run.config().exists() {
            run.read_config()
                .map_or(Config::Unreadable(Kind::Pretrain), |c| Config::Pretrain(Box::new(c)))
        } else if dir.join("compare.json").exists() {
            read(&dir.join("compare.json"))
                .and_then(|text| serde_json::from_str(&text).ok())
                .map_or(Config::Unreadable(Kind::Report), |c| Config::Report(Box::new(c)))
        } else {
            return None;
        })
    }

    /// What kind of directory it is.
    pub fn kind(&self) -> Kind {
        match self {
            Config::Pretrain(_) => Kind::Pretrain,
            Config::Finetune(_) => Kind::Finetune,
            Config::Report(_) => Kind::Report,
            Config::Unreadable(kind) => *kind,
        }
    }
}

/// The config file that makes `dir` a run or a report (`finetune.json`, `config.json` or
/// `compare.json`), or `None` when it is neither.
pub fn config_path(dir: &Path) -> Option<PathBuf> {
    let run = RunDir::new(dir);
    [run.finetune_config(), run.config(), dir.join("compare.json")]
        .into_iter()
        .find(|path| path.exists())
}

/// The config file of `dir` as it is on disk, for display (`Null` when unreadable), or `None`
/// when it is not a run nor a report.
pub fn config_file(dir: &Path) -> Option<Value> {
    Some(read_json(&config_path(dir)?).unwrap_or(Value::Null))
}

/// A JSON file's contents, `None` when it is missing or not JSON.
pub fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// The records in the last bytes of a metrics file (none when it is missing).
fn tail_records(path: &Path) -> (Vec<Value>, u64) {
    let Ok(len) = std::fs::metadata(path).map(|m| m.len()) else {
        return (Vec::new(), 0);
    };
    let start = len.saturating_sub(TAIL_BYTES);
    let (mut records, end) = read_from(path, start).unwrap_or_default();
    if start > 0 && !records.is_empty() {
        // The first line read may be the end of a cut one.
        records.remove(0);
    }
    (records, end)
}

/// The complete records after byte `offset` of a metrics file, and the offset after the last
/// complete line. A truncated last line (a run killed mid-write, or one still writing) is left
/// for the next read; a line that is not JSON is skipped.
pub fn read_from(path: &Path, offset: u64) -> std::io::Result<(Vec<Value>, u64)> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), offset)),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    if offset >= len {
        return Ok((Vec::new(), offset.min(len)));
    }
    file.seek(SeekFrom::Start(offset))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let records = bytes[..complete]
        .split(|&b| b == b'\n')
        .filter_map(|line| serde_json::from_slice::<Value>(line).ok())
        .collect();
    Ok((records, offset + complete as u64))
}

/// Complete checkpoints of a run, oldest first.
pub fn checkpoints(dir: &Path) -> Vec<String> {
    Checkpointer::new(RunDir::new(dir).checkpoints(), 0)
        .list()
        .unwrap_or_default()
        .iter()
        .filter_map(|path| Some(path.file_name()?.to_string_lossy().into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_from_an_offset_leaves_a_truncated_line_for_later() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        std::fs::write(&path, "{\"step\":1}\n{\"step\":2}\n{\"st").unwrap();
        let (records, offset) = read_from(&path, 0).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(offset, 22);
        let (more, same) = read_from(&path, offset).unwrap();
        assert!(more.is_empty());
        assert_eq!(same, offset);
        std::fs::write(&path, "{\"step\":1}\n{\"step\":2}\n{\"step\":3}\nnot json\n").unwrap();
        let (more, end) = read_from(&path, offset).unwrap();
        assert_eq!(more, [serde_json::json!({"step": 3})]);
        assert_eq!(end, std::fs::metadata(&path).unwrap().len());
        assert_eq!(read_from(&dir.path().join("none"), 5).unwrap().0.len(), 0);
    }
}
