//! Starting `primer` for a job: its process confined to the directories jobs may read, and the
//! check of a job's command line before it is queued (the CLI's check mode).

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use axum::http::StatusCode;
use primer_compare::child::{self, Exit, Process};
use primer_files::roots::ALLOWED_ROOTS_VAR;
use primer_options::check::CHECK_ONLY_VAR;

use crate::error::ApiError;
use crate::jobs::JobLine;

/// How long the check of a job may take: it reads the job's inputs but does no slow work.
const CHECK_TIMEOUT: Duration = Duration::from_secs(120);

/// How `primer` is started for jobs.
#[derive(Debug, Clone)]
pub struct Launcher {
    /// The `primer` executable.
    exe: PathBuf,
    /// The directories jobs may read, as [`ALLOWED_ROOTS_VAR`] gives them to each.
    allowed_roots: OsString,
}

impl Launcher {
    /// Jobs of the executable `exe` that may read under `allowed_roots` (resolved).
    pub fn new(exe: PathBuf, allowed_roots: &[PathBuf]) -> anyhow::Result<Self> {
        let allowed_roots = std::env::join_paths(allowed_roots)
            .context("--runs and --allow: a directory whose name holds ':' cannot be passed to jobs; rename it")?;
        Ok(Self { exe, allowed_roots })
    }

    /// The executable jobs run.
    pub fn exe(&self) -> &Path {
        &self.exe
    }

    /// `primer COMMAND ARGS...`, confined, with no input.
    pub fn command(&self, command: &str, args: &[String]) -> Command {
        let mut process = child::command(&self.exe, [command]);
        process.args(args).env(ALLOWED_ROOTS_VAR, &self.allowed_roots);
        process
    }

    /// Runs a job's command line in the CLI's check mode: `Ok` when the CLI accepts it; its
    /// one-line error (400) when it refuses it; 504 when the check takes too long.
    pub async fn check(&self, line: &JobLine) -> Result<(), ApiError> {
        let mut command = self.command(&line.command, &line.args);
        command
            .env(CHECK_ONLY_VAR, "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let process = Process::spawn(&mut command)
            .map_err(|e| ApiError::internal(format!("cannot start primer to check the job: {e}")))?;
        tokio::task::spawn_blocking(move || verdict(process))
            .await
            .map_err(ApiError::internal)?
    }
}

/// Waits (at most [`CHECK_TIMEOUT`]) for a check to end and reads its verdict.
fn verdict(mut process: Process) -> Result<(), ApiError> {
    let mut stderr = process.take_stderr().expect("stderr is piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let Some(exit) = process.wait_at_most(CHECK_TIMEOUT).map_err(ApiError::internal)? else {
        process.kill();
        return Err(ApiError(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "checking the job's options took over {}s: are its inputs on a slow disk?",
                CHECK_TIMEOUT.as_secs()
            ),
        ));
    };
    let text = reader.join().unwrap_or_default();
    let error = crate::queue::error_line(&text);
    match exit {
        Exit::Finished => Ok(()),
        Exit::Failed(2) => Err(ApiError::bad(error.unwrap_or_else(|| text.trim().to_string()))),
        _ => Err(ApiError::internal(format!(
            "checking the job failed ({exit}): {}",
            error.unwrap_or_else(|| text.trim().to_string())
        ))),
    }
}
