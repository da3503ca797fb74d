//! The dashboard's HTTP API for work: the job commands and their options, submitting jobs to
//! the queue, the queue itself (order, cancel, limit), and stopping and resuming runs.

use std::path::Path;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use primer_trainer::run_dir::RunDir;
use primer_trainer::status::{RunState, RunStatus};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{RunQuery, Shared, log_tail};
use crate::error::ApiError;
use crate::jobs::{CommandSpec, JobLine};
use crate::queue::{Job, JobState};
use crate::runs::{self, Kind};
use crate::system;

/// How long a job that starts at once is watched for the CLI to accept or refuse its options.
const ACCEPT_TIMEOUT: Duration = Duration::from_secs(300);

/// How long a job that writes no run must run to count as accepted: its options are parsed and
/// its inputs opened by then, or it has exited with their error.
const ACCEPT_GRACE: Duration = Duration::from_secs(2);

/// Jobs that may run at once, at most.
const MAX_LIMIT: usize = 64;

/// `GET /api/commands`: every command the dashboard runs, with its options as the CLI
/// declares them (key, help, kind, choices, default), from which the page builds its forms.
pub async fn commands(State(state): Shared) -> Json<Vec<CommandSpec>> {
    Json(state.catalogue.commands().to_vec())
}

/// A job to run: a command and its options by key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    command: String,
    #[serde(default)]
    options: serde_json::Map<String, Value>,
}

type Accepted = Result<(StatusCode, Json<Value>), ApiError>;

/// `POST /api/jobs`: queues a job once the CLI, in its check mode, accepts its options and
/// inputs (else its one-line error, 400). One that starts at once is answered when the CLI has
/// accepted it, or with its one-line error when it refused it.
pub async fn submit(State(state): Shared, body: Result<Json<JobRequest>, JsonRejection>) -> Accepted {
    let Json(request) = body.map_err(|e| ApiError::bad(e.body_text()))?;
    let line = state
        .catalogue
        .command_line(&state.roots, &request.command, request.options)?;
    enqueue(&state, line).await
}

/// Queues a command line the CLI's check mode accepts, unless another job writes its run (409,
/// asked first and again as it is queued).
async fn enqueue(state: &crate::api::AppState, line: JobLine) -> Accepted {
    if let Some(run) = &line.run
        && let Some(refusal) = state.queue.busy(run).map_err(ApiError::internal)?
    {
        return Err(ApiError::conflict(refusal));
    }
    state.launcher.check(&line).await?;
    let id = state
        .queue
        .submit(line)
        .map_err(ApiError::internal)?
        .map_err(ApiError::conflict)?;
    let (job, place) = accepted(state, id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "job": id, "state": job.state, "place": place, "id": job.run })),
    ))
}

/// Starts what the queue allows and, when job `id` started, watches it until the CLI accepts
/// it; returns the job and its place if it waits. A job the CLI refuses at once is forgotten,
/// and its error is the answer.
async fn accepted(state: &crate::api::AppState, id: u64) -> Result<(Job, Option<usize>), ApiError> {
    let started = Instant::now();
    loop {
        let file = state.queue.advance().map_err(ApiError::internal)?;
        let job = file
            .job(id)
            .cloned()
            .ok_or_else(|| ApiError::internal(format!("job {id} left the queue")))?;
        match job.state {
            JobState::Running if !is_accepted(&state.roots.root, &job, started.elapsed()) => {}
            JobState::Failed => {
                state.queue.forget(id).map_err(ApiError::internal)?;
                let error = job.error.unwrap_or_default();
                return Err(if job.exit_code == Some(2) {
                    ApiError::bad(error)
                } else {
                    ApiError::internal(error)
                });
            }
            _ => return Ok((job, file.place(id))),
        }
        if started.elapsed() > ACCEPT_TIMEOUT {
            return Err(ApiError(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "job {id} has not started after {}s; see its log",
                    ACCEPT_TIMEOUT.as_secs()
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether the CLI has accepted a running job: a training run once it says it trains, a
/// comparison once it holds its report's lock, anything else once it has run a moment.
fn is_accepted(root: &Path, job: &Job, waited: Duration) -> bool {
    let dir = job.run.as_ref().map(|run| root.join(run));
    match (job.command.as_str(), dir) {
        ("pretrain" | "finetune", Some(dir)) => {
            RunStatus::read(&RunDir::new(&dir)).is_some_and(|s| Some(s.pid) == job.pid && s.state == RunState::Running)
        }
        ("compare", Some(dir)) => primer_files::lock::holder(&dir) == job.pid,
        _ => waited > ACCEPT_GRACE,
    }
}

/// `GET /api/queue`: the limit, every job (queued ones with their place, running ones with
/// their CPU and memory) and the machine's load.
pub async fn queue(State(state): Shared) -> Result<Json<Value>, ApiError> {
    let file = state.queue.advance().map_err(ApiError::internal)?;
    let jobs: Vec<Value> = file
        .jobs
        .iter()
        .map(|job| {
            let load = (job.state == JobState::Running)
                .then(|| job.pid.and_then(|pid| state.sampler.process(pid)))
                .flatten();
            let mut value = serde_json::to_value(job).expect("jobs serialize");
            // The job's secret stays in the queue file.
            value.as_object_mut().map(|job| job.remove("token"));
            value["place"] = json!(file.place(job.id));
            value["load"] = json!(load);
            value
        })
        .collect();
    Ok(Json(
        json!({ "limit": file.limit, "jobs": jobs, "machine": system::machine() }),
    ))
}

/// `?job=N`, and where to move it.
#[derive(Deserialize)]
pub struct JobQuery {
    job: u64,
    place: Option<usize>,
}

/// The `?job=N` of a request, or why it has none.
fn job_query(query: Result<Query<JobQuery>, QueryRejection>) -> Result<JobQuery, ApiError> {
    query
        .map(|Query(q)| q)
        .map_err(|e| ApiError::bad(format!("{}: give ?job=N, a job's number", e.body_text())))
}

/// `POST /api/jobs/cancel?job=N`: a queued job never starts; a running one is asked to stop.
pub async fn cancel(State(state): Shared, query: Result<Query<JobQuery>, QueryRejection>) -> Accepted {
    let q = job_query(query)?;
    state
        .queue
        .cancel(q.job)
        .map_err(ApiError::internal)?
        .map_err(ApiError::conflict)?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "job": q.job }))))
}

/// `POST /api/jobs/move?job=N&place=K`: the queued job N starts K-th among the queued.
pub async fn move_job(State(state): Shared, query: Result<Query<JobQuery>, QueryRejection>) -> Accepted {
    let q = job_query(query)?;
    let place = q
        .place
        .filter(|&place| place >= 1)
        .ok_or_else(|| ApiError::bad("give place=K, K >= 1: 1 starts next"))?;
    state
        .queue
        .with(|file| file.move_to(q.job, place))
        .map_err(ApiError::internal)?
        .map_err(ApiError::conflict)?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "job": q.job, "place": place }))))
}

/// The body of `POST /api/queue/limit`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitRequest {
    limit: usize,
}

/// `POST /api/queue/limit {"limit": N}`: how many jobs may run at once, from now on.
pub async fn limit(State(state): Shared, body: Result<Json<LimitRequest>, JsonRejection>) -> Accepted {
    let Json(request) = body.map_err(|e| ApiError::bad(e.body_text()))?;
    if !(1..=MAX_LIMIT).contains(&request.limit) {
        return Err(ApiError::bad(format!(
            "limit {} is out of range: give 1 to {MAX_LIMIT}",
            request.limit
        )));
    }
    state
        .queue
        .with(|file| file.limit = request.limit)
        .map_err(ApiError::internal)?;
    state.queue.advance().map_err(ApiError::internal)?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "limit": request.limit }))))
}

/// `GET /api/jobs/log?job=N`: the last lines of a job's output.
pub async fn job_log(
    State(state): Shared,
    query: Result<Query<JobQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let q = job_query(query)?;
    let known = state
        .queue
        .with(|file| file.job(q.job).is_some())
        .map_err(ApiError::internal)?;
    if !known {
        return Err(ApiError::not_found(format!("no job {}", q.job)));
    }
    Ok(Json(
        json!({ "job": q.job, "log": log_tail(&state.queue.log_path(q.job)) }),
    ))
}

/// `POST /api/stop?run=ID`: asks the process training the run to stop; it saves a checkpoint
/// and exits, and the run can be resumed. The signal goes only to the process the kernel says
/// holds the run's own lock file (never a link to another file), never to a pid read from a
/// file, and only when that process is one of this dashboard's jobs or runs `primer`.
pub async fn stop(State(state): Shared, Query(q): Query<RunQuery>) -> Accepted {
    let dir = state.roots.run_dir(&q.run)?;
    let Some(pid) = primer_files::lock::holder(&dir) else {
        return Err(ApiError::conflict(format!("{:?} is not running", q.run)));
    };
    if !state.queue.may_signal(pid).map_err(ApiError::internal)? {
        return Err(ApiError::conflict(format!(
            "{:?} is locked by process {pid}, which is not primer: not signalled",
            q.run
        )));
    }
    primer_trainer::status::terminate(pid);
    Ok((StatusCode::ACCEPTED, Json(json!({ "id": q.run, "stopping": pid }))))
}

/// `POST /api/resume?run=ID`: queues the continuation of an interrupted pre-training run from
/// its checkpoint, or of an unfinished comparison.
pub async fn resume(State(state): Shared, Query(q): Query<RunQuery>) -> Accepted {
    let dir = state.roots.run_dir(&q.run)?;
    let info = runs::describe(&state.roots.root, &dir).expect("run_dir checks it is a run");
    let command = match info.kind {
        Kind::Pretrain => "pretrain",
        Kind::Report => "compare",
        Kind::Finetune => return Err(ApiError::bad(format!("{:?} is a fine-tune: start it again", q.run))),
    };
    match info.status {
        Some(RunState::Running) => return Err(ApiError::conflict(format!("{:?} is running", q.run))),
        Some(RunState::Finished) => return Err(ApiError::conflict(format!("{:?} has finished", q.run))),
        _ => {}
    }
    let mut args = vec!["--resume".to_string(), dir.display().to_string()];
    if command == "pretrain" {
        args.push("--no-tui".into());
    }
    let line = JobLine {
        command: command.into(),
        args,
        run: Some(dir),
    };
    enqueue(&state, line).await
}
