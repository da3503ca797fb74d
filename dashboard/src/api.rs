//! The dashboard's HTTP API for reading: runs, metrics (whole or followed as server-sent
//! events), run detail, config differences, reports. Jobs are in [`crate::control`].

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use primer_trainer::run_dir::RunDir;
use primer_trainer::status::{RunState, RunStatus};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::jobs::Catalogue;
use crate::launch::Launcher;
use crate::paths::Roots;
use crate::queue::Queue;
use crate::runs;
use crate::system::Sampler;

/// Shared by every request.
pub struct AppState {
    /// The runs directory and the directories jobs may read.
    pub roots: Roots,
    /// The commands jobs may run, with their options.
    pub catalogue: Catalogue,
    /// How jobs start, and how they are checked before they are queued.
    pub launcher: Launcher,
    /// The job queue.
    pub queue: Queue,
    /// CPU and memory readings of the processes shown.
    pub sampler: Sampler,
    /// The token every state change carries (and, with `token_for_reads`, every request).
    pub token: String,
    /// Whether reads need the token too (the dashboard listens beyond localhost).
    pub token_for_reads: bool,
}

pub type Shared = State<Arc<AppState>>;

/// `?run=ID`.
#[derive(Deserialize)]
pub struct RunQuery {
    pub run: String,
    #[serde(default)]
    offset: u64,
}

/// The directory of an existing run or report.
fn run_dir(state: &AppState, id: &str) -> Result<PathBuf, ApiError> {
    state.roots.run_dir(id)
}

/// `GET /api/runs`: every run and report, with the CPU and memory of the processes running
/// them.
pub async fn list(State(state): Shared) -> Json<Vec<runs::RunInfo>> {
    let mut list = runs::scan(&state.roots.root);
    for run in list.iter_mut().filter(|run| run.status == Some(RunState::Running)) {
        let holder = primer_files::lock::holder(&state.roots.root.join(&run.id));
        run.load = holder.and_then(|pid| state.sampler.process(pid));
    }
    Json(list)
}

/// `GET /api/objectives`: every objective of the registry, with its description and default
/// settings, for the start form.
pub async fn objectives() -> Json<Value> {
    let list: Vec<Value> = primer_objectives::OBJECTIVES
        .iter()
        .map(|registration| {
            let name = registration.info.name;
            let defaults = primer_objectives::ObjectiveConfig::default_of(name).expect("a registered objective");
            json!({
                "name": name,
                "description": registration.info.description,
                "settings": defaults.settings(),
            })
        })
        .collect();
    Json(Value::Array(list))
}

/// `GET /api/metrics?run=ID&offset=N`: complete records after byte N, and the next offset.
pub async fn metrics(State(state): Shared, Query(q): Query<RunQuery>) -> Result<Json<Value>, ApiError> {
    let dir = run_dir(&state, &q.run)?;
    let (records, offset) = runs::read_from(&RunDir::new(&dir).metrics(), q.offset).map_err(ApiError::internal)?;
    Ok(Json(json!({ "records": records, "offset": offset })))
}

/// `GET /api/events?run=ID&offset=N`: server-sent events following `metrics.jsonl` as it
/// grows (`metrics` events) and the run's state (`status` events); each poll reads only the
/// new bytes.
pub async fn events(
    State(state): Shared,
    Query(q): Query<RunQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let dir = run_dir(&state, &q.run)?;
    let metrics = RunDir::new(&dir).metrics();
    let stream = futures_util::stream::unfold(
        (q.offset, None::<Option<RunState>>, true),
        move |(offset, last_state, first)| {
            let (metrics, dir) = (metrics.clone(), dir.clone());
            async move {
                if !first {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                let (records, next) = runs::read_from(&metrics, offset).unwrap_or((Vec::new(), offset));
                let run = RunDir::new(&dir);
                let state = RunStatus::read(&run).map(|s| s.effective_state(&run));
                let mut events = Vec::new();
                if !records.is_empty() {
                    events.push(
                        Event::default()
                            .event("metrics")
                            .data(json!({ "records": records, "offset": next }).to_string()),
                    );
                }
                if last_state != Some(state) {
                    events.push(
                        Event::default()
                            .event("status")
                            .data(json!({ "status": state }).to_string()),
                    );
                }
                Some((
                    futures_util::stream::iter(events.into_iter().map(Ok)),
                    (next, Some(state), false),
                ))
            }
        },
    );
    use futures_util::StreamExt;
    Ok(Sse::new(stream.flatten()).keep_alive(KeepAlive::default()))
}

/// Samples shown per run: the newest ones.
const SAMPLES_SHOWN: usize = 20;

/// `GET /api/run?run=ID`: config, status, summary, checkpoints, the newest samples, a compare's
/// progress, and the log of the newest job that wrote it.
pub async fn detail(State(state): Shared, Query(q): Query<RunQuery>) -> Result<Json<Value>, ApiError> {
    let dir = run_dir(&state, &q.run)?;
    let run = RunDir::new(&dir);
    let config = runs::config_file(&dir).unwrap_or(Value::Null);
    let job = state
        .queue
        .with(|file| {
            file.jobs
                .iter()
                .rev()
                .find(|job| job.run.as_deref() == Some(&q.run))
                .map(|job| job.id)
        })
        .map_err(ApiError::internal)?;
    let log = job.map(|id| log_tail(&state.queue.log_path(id))).unwrap_or_default();
    Ok(Json(json!({
        "id": q.run,
        "info": runs::describe(&state.roots.root, &dir),
        "config": config,
        "summary": runs::read_json(&run.summary()),
        "status": RunStatus::read(&run),
        "checkpoints": runs::checkpoints(&dir),
        "samples": newest_samples(&run.samples()),
        "progress": runs::read_json(&dir.join(primer_compare::PROGRESS_FILE)),
        "job": job,
        "log": log,
        "report": dir.join("report.html").exists(),
    })))
}

/// Lines of a log shown: the last ones.
const LOG_LINES: usize = 40;

/// The last [`LOG_LINES`] lines of a job's log.
pub fn log_tail(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_LINES)..]
        .iter()
        .map(|line| line.to_string())
        .collect()
}

/// The newest [`SAMPLES_SHOWN`] whole records of `samples.jsonl`, oldest first.
fn newest_samples(path: &Path) -> Vec<Value> {
    let (mut records, _) = runs::read_from(path, 0).unwrap_or_default();
    records.split_off(records.len().saturating_sub(SAMPLES_SHOWN))
}

/// The query of `GET /api/diff`: run ids, comma-separated.
#[derive(Debug, Deserialize)]
pub struct DiffQuery {
    runs: String,
}

/// `GET /api/diff?runs=A,B,...`: the configs of two or more runs side by side, only the keys
/// (dotted paths, `train.lr`) whose values differ; a key a run lacks is `null` for it.
pub async fn diff(State(state): Shared, Query(q): Query<DiffQuery>) -> Result<Json<Value>, ApiError> {
    let ids: Vec<&str> = q.runs.split(',').filter(|id| !id.is_empty()).collect();
    if ids.len() < 2 {
        return Err(ApiError::bad(format!(
            "runs={:?} names {} run(s): give two or more, comma-separated",
            q.runs,
            ids.len()
        )));
    }
    let configs = ids
        .iter()
        .map(|id| {
            let config = runs::config_file(&run_dir(&state, id)?).unwrap_or(Value::Null);
            Ok(primer_trainer::config::flatten(&config))
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let keys: std::collections::BTreeSet<&String> = configs.iter().flat_map(|c| c.keys()).collect();
    let differing: Vec<Value> = keys
        .into_iter()
        .filter_map(|key| {
            let values: Vec<Value> = configs
                .iter()
                .map(|c| c.get(key).cloned().unwrap_or(Value::Null))
                .collect();
            values
                .iter()
                .any(|v| *v != values[0])
                .then(|| json!({ "key": key, "values": values }))
        })
        .collect();
    Ok(Json(json!({ "runs": ids, "keys": differing })))
}

/// `GET /report?run=ID`: a compare report's self-contained HTML.
pub async fn report(State(state): Shared, Query(q): Query<RunQuery>) -> Result<Response, ApiError> {
    let dir = run_dir(&state, &q.run)?;
    let html = std::fs::read_to_string(dir.join("report.html"))
        .map_err(|_| ApiError::not_found(format!("{:?} has no report.html", q.run)))?;
    Ok(axum::response::Html(html).into_response())
}

/// The reply to any path the dashboard does not serve.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such page or endpoint")
}
