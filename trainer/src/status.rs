//! `RUN_DIR/status.json`: what the process training a run is doing, written by that process,
//! so tools (the dashboard) read a run's state instead of guessing it.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::run_dir::RunDir;

/// The state of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// A process is training it.
    Running,
    /// Training ended at its last step.
    Finished,
    /// Stopped before its last step with a checkpoint (signal, dashboard, `--halt-after`); it
    /// resumes.
    Interrupted,
    /// Training stopped on an error.
    Failed,
}

/// The contents of `status.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStatus {
    /// State.
    pub state: RunState,
    /// The process that wrote it.
    pub pid: u32,
    /// Seconds since the Unix epoch when it was written.
    pub updated_unix_s: u64,
    /// Why it failed, or how it was stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl RunStatus {
    /// A status of this process, now.
    pub fn now(state: RunState, message: Option<String>) -> Self {
        Self {
            state,
            pid: std::process::id(),
            updated_unix_s: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            message,
        }
    }

    /// Writes it atomically into the run directory.
    pub fn write(&self, run_dir: &RunDir) -> Result<(), TrainError> {
        let json = serde_json::to_vec_pretty(self).expect("statuses serialize");
        Ok(primer_files::atomic_write(&run_dir.status(), &json)?)
    }

    /// Reads a run's status; `None` when it has none (or an unreadable one).
    pub fn read(run_dir: &RunDir) -> Option<Self> {
        let text = std::fs::read_to_string(run_dir.status()).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The state, with a `Running` that no process holds the run's lock for read as
    /// `Interrupted` (killed without a chance to say so; the run resumes from its last
    /// checkpoint). The lock, not the pid written here, says whether the run is training.
    pub fn effective_state(&self, run_dir: &RunDir) -> RunState {
        if self.state == RunState::Running && !primer_files::lock::is_locked(&run_dir.root) {
            RunState::Interrupted
        } else {
            self.state
        }
    }
}

/// Asks a primer process to stop with SIGTERM: a training run stops at the next step boundary
/// with a checkpoint, as on Ctrl-C.
pub fn terminate(pid: u32) {
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_status_without_the_runs_lock_reads_as_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        assert_eq!(RunStatus::read(&run), None);
        let status = RunStatus::now(RunState::Running, None);
        status.write(&run).unwrap();
        let read = RunStatus::read(&run).unwrap();
        assert_eq!(read, status);
        assert_eq!(
            read.effective_state(&run),
            RunState::Interrupted,
            "nobody holds the lock"
        );
        let lock = run.lock().unwrap();
        assert_eq!(read.effective_state(&run), RunState::Running);
        drop(lock);
        assert_eq!(read.effective_state(&run), RunState::Interrupted);
        let finished = RunStatus::now(RunState::Finished, None);
        assert_eq!(finished.effective_state(&run), RunState::Finished);
    }
}
