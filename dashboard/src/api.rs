//! The dashboard's HTTP API: runs, metrics (whole or followed as server-sent events), run
//! detail, starting, stopping and resuming pre-training runs.

use std::convert::Infallible;
use std::path::{Component, Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use primer_options::{OptionSpec, PretrainOptions};
use primer_trainer::run_dir::RunDir;
use primer_trainer::status::{RunState, RunStatus};
use serde::Deserialize;
use serde_json::{Value, json};

use super::runs;

/// How long a start or resume waits for the CLI to accept or refuse its options.
const ACCEPT_TIMEOUT: Duration = Duration::from_secs(300);

/// Shared by every request.
pub struct AppState {
    /// The runs directory (canonical).
    pub root: PathBuf,
    /// Other directories that corpus paths may name (canonical).
    pub allowed: Vec<PathBuf>,
    /// The `primer` executable that runs started here use.
    pub exe: PathBuf,
    /// The token every state change carries (and, with `token_for_reads`, every request).
    pub token: String,
    /// Whether reads need the token too (the dashboard listens beyond localhost).
    pub token_for_reads: bool,
    /// Children started here, reaped as they end.
    pub children: Mutex<Vec<Child>>,
}

/// An error answered as `{"error": ...}` with a 4xx or 5xx status.
pub struct ApiError(StatusCode, String);

impl ApiError {
    fn bad(message: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, message.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

type Shared = State<Arc<AppState>>;

/// `?run=ID`.
#[derive(Deserialize)]
pub struct RunQuery {
    run: String,
    #[serde(default)]
    offset: u64,
}

/// A relative id that stays inside the root: no absolute paths, no `..`.
fn confined(id: &str) -> Result<PathBuf, ApiError> {
    let path = Path::new(id);
    if id.is_empty() || path.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            format!("{id:?}: give a path relative to the runs directory, without `..`"),
        ));
    }
    Ok(path.to_path_buf())
}

/// The directory of an existing run or report.
fn run_dir(state: &AppState, id: &str) -> Result<PathBuf, ApiError> {
    let dir = state.root.join(confined(id)?);
    let canonical = dir
        .canonicalize()
        .map_err(|_| ApiError(StatusCode::NOT_FOUND, format!("no run {id:?} under the runs directory")))?;
    if !canonical.starts_with(&state.root) {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            format!("{id:?} leads outside the runs directory"),
        ));
    }
    if runs::escapes(&state.root, &canonical) {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            format!("{id:?} holds a link that leads outside the runs directory"),
        ));
    }
    if runs::describe(&state.root, &canonical).is_none() {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("{id:?} is not a run directory"),
        ));
    }
    Ok(canonical)
}

/// `GET /api/runs`.
pub async fn list(State(state): Shared) -> Json<Vec<runs::RunInfo>> {
    reap(&state);
    Json(runs::scan(&state.root))
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
    let (records, offset) = runs::read_from(&RunDir::new(&dir).metrics(), q.offset)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
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

/// `GET /api/run?run=ID`: config, status, summary, checkpoints, the newest samples, the
/// dashboard's log of it.
pub async fn detail(State(state): Shared, Query(q): Query<RunQuery>) -> Result<Json<Value>, ApiError> {
    let dir = run_dir(&state, &q.run)?;
    let run = RunDir::new(&dir);
    let config = runs::config_file(&dir).unwrap_or(Value::Null);
    let log_path = runs::log_path(&state.root, &q.run);
    let log = if runs::inside(&state.root, &log_path) {
        std::fs::read_to_string(log_path).unwrap_or_default()
    } else {
        String::new()
    };
    let log_tail: Vec<&str> = log
        .lines()
        .rev()
        .take(40)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    Ok(Json(json!({
        "id": q.run,
        "info": runs::describe(&state.root, &dir),
        "config": config,
        "summary": runs::read_json(&run.summary()),
        "status": RunStatus::read(&run),
        "checkpoints": runs::checkpoints(&dir),
        "samples": newest_samples(&run.samples()),
        "log": log_tail,
        "report": dir.join("report.html").exists(),
    })))
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
        .map_err(|_| ApiError(StatusCode::NOT_FOUND, format!("{:?} has no report.html", q.run)))?;
    Ok(axum::response::Html(html).into_response())
}

/// `GET /api/options`: every pre-training option (key, help, kind, choices, default), from
/// which the start form builds its fields.
pub async fn options() -> Json<Vec<OptionSpec>> {
    Json(PretrainOptions::schema())
}

/// The start-run form: a run directory and pre-training options, by their config keys (the
/// form's `d_model` is the key `d-model`).
#[derive(Debug, Deserialize)]
pub struct StartRequest {
    /// Run directory, relative to the runs directory.
    name: String,
    /// The options.
    #[serde(flatten)]
    options: serde_json::Map<String, Value>,
}

/// Options that name files: each must be a named data set or a path inside the allowed roots.
const FILE_OPTIONS: [&str; 6] = ["corpus", "valid", "data", "tokenizer", "init-from", "minimal-pairs"];

/// The options of a start request, typed, with every file they name confined.
fn start_options(state: &AppState, form: serde_json::Map<String, Value>) -> Result<PretrainOptions, ApiError> {
    let keys: Vec<String> = PretrainOptions::schema().into_iter().map(|spec| spec.key).collect();
    let mut options = serde_json::Map::new();
    for (key, mut value) in form {
        let dashed = key.replace('_', "-");
        let key = if keys.contains(&dashed) { dashed } else { key };
        if FILE_OPTIONS.contains(&key.as_str()) {
            value = confine(state, &key, value)?;
        }
        options.insert(key, value);
    }
    serde_json::from_value(Value::Object(options)).map_err(|e| ApiError::bad(e.to_string()))
}

/// A file option's value with each name or path confined ([`file_arg`]); a corpus as a list.
fn confine(state: &AppState, key: &str, value: Value) -> Result<Value, ApiError> {
    match value {
        Value::String(text) => {
            let confined = Value::String(file_arg(state, key, &text)?);
            Ok(if key == "corpus" {
                Value::Array(vec![confined])
            } else {
                confined
            })
        }
        Value::Array(items) => items.into_iter().map(|item| confine_item(state, key, item)).collect(),
        other => Ok(other),
    }
}

/// One element of a list of files.
fn confine_item(state: &AppState, key: &str, item: Value) -> Result<Value, ApiError> {
    match item {
        Value::String(text) => Ok(Value::String(file_arg(state, key, &text)?)),
        other => Ok(other),
    }
}

/// `POST /api/runs`: starts `primer pretrain` with the form's options. Answers once the CLI
/// has accepted them (the run directory exists) or refused them (its one-line error, 400).
pub async fn start(
    State(state): Shared,
    body: Result<Json<StartRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(form) = body.map_err(|e| ApiError::bad(e.body_text()))?;
    let out = output_dir(&state, &form.name)?;
    let options = start_options(&state, form.options)?;
    let mut args: Vec<String> = vec!["pretrain".into()];
    args.extend(options.to_args());
    args.extend(["--out".into(), out.display().to_string(), "--no-tui".into()]);
    let id = runs::id_of(&state.root, &out);
    let run = RunDir::new(&out);
    spawn_and_wait(&state, &id, &args, |pid| {
        RunStatus::read(&run).is_some_and(|s| s.pid == pid)
    })
    .await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "id": id }))))
}

/// Where a run named `name` is created: under the runs directory once every link on the
/// way is resolved, so a linked folder cannot send it elsewhere.
fn output_dir(state: &AppState, name: &str) -> Result<PathBuf, ApiError> {
    let out = state.root.join(confined(name)?);
    let existing = out.ancestors().find(|path| path.exists()).unwrap_or(&state.root);
    if !runs::inside(&state.root, existing) {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            format!("{name:?} leads outside the runs directory through a link"),
        ));
    }
    Ok(out)
}

/// The file option `key`'s value `corpus`: a named data set (or the named minimal pairs) as it
/// is; a path only inside the allowed roots.
fn file_arg(state: &AppState, key: &str, corpus: &str) -> Result<String, ApiError> {
    let is_named = match key {
        "corpus" | "valid" => primer_datasets::named::lookup(corpus).is_some(),
        "minimal-pairs" => corpus == "blimp",
        _ => false,
    };
    if is_named && !Path::new(corpus).exists() {
        return Ok(corpus.to_string());
    }
    let path = Path::new(corpus);
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        state.root.join(path)
    };
    let canonical = absolute.canonicalize().map_err(|_| {
        ApiError::bad(format!(
            "{key} {corpus:?} is neither a named data set nor an existing path"
        ))
    })?;
    if !std::iter::once(&state.root)
        .chain(&state.allowed)
        .any(|root| canonical.starts_with(root))
    {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            format!("{key} {corpus:?} is outside the dashboard's allowed roots (--runs and --allow)"),
        ));
    }
    Ok(canonical.display().to_string())
}

/// `POST /api/stop?run=ID`: asks the process training the run to stop; it saves a checkpoint
/// and exits, and the run can be resumed. The signal goes only to the process the kernel says
/// holds the run's lock, never to a pid read from a file.
pub async fn stop(State(state): Shared, Query(q): Query<RunQuery>) -> Result<(StatusCode, Json<Value>), ApiError> {
    let dir = run_dir(&state, &q.run)?;
    match primer_datasets::lock::holder(&dir) {
        Some(pid) => {
            primer_trainer::status::terminate(pid);
            Ok((StatusCode::ACCEPTED, Json(json!({ "id": q.run, "stopping": pid }))))
        }
        None => Err(ApiError(StatusCode::CONFLICT, format!("{:?} is not running", q.run))),
    }
}

/// `POST /api/resume?run=ID`: continues an interrupted pre-training run from its checkpoint.
pub async fn resume(State(state): Shared, Query(q): Query<RunQuery>) -> Result<(StatusCode, Json<Value>), ApiError> {
    let dir = run_dir(&state, &q.run)?;
    let run = RunDir::new(&dir);
    if !run.config().exists() {
        return Err(ApiError::bad(format!("{:?} is not a pre-training run", q.run)));
    }
    let before = RunStatus::read(&run);
    match before.as_ref().map(|status| status.effective_state(&run)) {
        Some(RunState::Running) => return Err(ApiError(StatusCode::CONFLICT, format!("{:?} is running", q.run))),
        Some(RunState::Finished) => return Err(ApiError(StatusCode::CONFLICT, format!("{:?} has finished", q.run))),
        _ => {}
    }
    let args: Vec<String> = vec![
        "pretrain".into(),
        "--resume".into(),
        dir.display().to_string(),
        "--no-tui".into(),
    ];
    spawn_and_wait(&state, &q.run, &args, |pid| {
        RunStatus::read(&run).is_some_and(|s| s.pid == pid && s.state == RunState::Running)
    })
    .await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "id": q.run }))))
}

/// Starts `primer ARGS` with its output in the run's dashboard log, then waits until
/// `accepted` holds (answer: started) or the child exits first (answer: its error).
async fn spawn_and_wait(
    state: &AppState,
    id: &str,
    args: &[String],
    accepted: impl Fn(u32) -> bool,
) -> Result<(), ApiError> {
    let log = runs::log_path(&state.root, id);
    let internal = |e: std::io::Error| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    let logs = log.parent().expect("logs have a folder");
    std::fs::create_dir_all(logs).map_err(internal)?;
    if !runs::inside(&state.root, logs) || log.is_symlink() {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            format!("{} leads outside the runs directory through a link", log.display()),
        ));
    }
    let file = std::fs::File::create(&log).map_err(internal)?;
    let mut child = Command::new(&state.exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(file.try_clone().map_err(internal)?)
        .stderr(file)
        .spawn()
        .map_err(internal)?;
    let pid = child.id();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().map_err(internal)? {
            if accepted(pid) || status.success() {
                return Ok(());
            }
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let line = text
                .lines()
                .find(|l| l.starts_with("error"))
                .unwrap_or("primer stopped without an error message")
                .trim_start_matches("error: ")
                .to_string();
            return Err(if status.code() == Some(2) {
                ApiError::bad(line)
            } else {
                ApiError(StatusCode::INTERNAL_SERVER_ERROR, line)
            });
        }
        if accepted(pid) {
            state.children.lock().expect("children lock").push(child);
            return Ok(());
        }
        if started.elapsed() > ACCEPT_TIMEOUT {
            state.children.lock().expect("children lock").push(child);
            return Err(ApiError(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "primer has not started {id:?} after {}s; see its log",
                    ACCEPT_TIMEOUT.as_secs()
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Collects the exit status of finished children, so none lingers as a zombie.
fn reap(state: &AppState) {
    state
        .children
        .lock()
        .expect("children lock")
        .retain_mut(|child| matches!(child.try_wait(), Ok(None)));
}

/// The reply to any path the dashboard does not serve.
pub async fn not_found() -> ApiError {
    ApiError(StatusCode::NOT_FOUND, "no such page or endpoint".into())
}
