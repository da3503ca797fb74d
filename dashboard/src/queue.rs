//! The job queue. Jobs wait in a file of the runs directory (`.dashboard/queue.json`, changed
//! only under the lock `.dashboard/queue.lock`), start in their order while fewer than the limit
//! run, and can be reordered and cancelled. The file outlives the dashboard: a restarted one
//! continues the queue and watches the jobs its predecessor started, which run on.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use primer_compare::child::{Exit, Process};
use primer_files::lock::FolderLock;
use primer_trainer::run_dir::RunDir;
use primer_trainer::status::{RunState, RunStatus};
use serde::{Deserialize, Serialize};

use crate::jobs::JobLine;
use crate::launch::Launcher;
use crate::system;

/// Ended jobs the queue keeps, newest last.
const HISTORY: usize = 100;

/// The environment variable that carries a job's secret ([`Job::token`]) into its process.
pub const JOB_TOKEN_VAR: &str = "PRIMER_JOB_TOKEN";

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for a free slot.
    Queued,
    /// Its process runs.
    Running,
    /// It exited with success.
    Done,
    /// It exited with an error (or ended unseen with an error in its log).
    Failed,
    /// A signal stopped it; a training run keeps its checkpoint and resumes.
    Stopped,
    /// Cancelled: before it started, or stopped by a cancel.
    Cancelled,
}

/// One job of the queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    /// Its number, unique in this runs directory.
    pub id: u64,
    /// The command (`pretrain`).
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// The run or report it writes, relative to the runs directory.
    pub run: Option<String>,
    /// Where it is.
    pub state: JobState,
    /// Its process, once started.
    pub pid: Option<u32>,
    /// When its process started (ticks after boot), to tell it from a later one with its pid.
    pub start_ticks: Option<u64>,
    /// Seconds since the Unix epoch when it was queued, started and ended.
    pub submitted_at: f64,
    /// When it started.
    pub started_at: Option<f64>,
    /// When it ended.
    pub ended_at: Option<f64>,
    /// Its exit code, when this dashboard saw it end.
    pub exit_code: Option<i32>,
    /// Its one-line error, when it failed.
    pub error: Option<String>,
    /// Whether a cancel asked its process to stop.
    #[serde(default)]
    pub cancelling: bool,
    /// The secret its process was started with ([`JOB_TOKEN_VAR`]): a process is taken for
    /// this job, and signalled, only if its environment holds it, never for its pid alone.
    #[serde(default)]
    pub token: Option<String>,
}

/// The queue file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueueFile {
    /// Jobs that may run at once.
    pub limit: usize,
    /// The next job's number.
    pub next_id: u64,
    /// Every job, queued ones in the order they start.
    pub jobs: Vec<Job>,
}

impl Default for QueueFile {
    /// One job at a time: two training jobs on one machine halve each other's speed.
    fn default() -> Self {
        Self {
            limit: 1,
            next_id: 1,
            jobs: Vec::new(),
        }
    }
}

impl QueueFile {
    /// The job numbered `id`.
    pub fn job(&self, id: u64) -> Option<&Job> {
        self.jobs.iter().find(|job| job.id == id)
    }

    fn job_mut(&mut self, id: u64) -> Option<&mut Job> {
        self.jobs.iter_mut().find(|job| job.id == id)
    }

    /// A queued job's place: 1 starts next.
    pub fn place(&self, id: u64) -> Option<usize> {
        self.jobs
            .iter()
            .filter(|job| job.state == JobState::Queued)
            .position(|job| job.id == id)
            .map(|index| index + 1)
    }

    /// Jobs whose process runs.
    pub fn running(&self) -> impl Iterator<Item = &Job> {
        self.jobs.iter().filter(|job| job.state == JobState::Running)
    }

    /// Moves a queued job to `place` among the queued (1 = next; past the end = last).
    pub fn move_to(&mut self, id: u64, place: usize) -> Result<(), String> {
        if self.place(id).is_none() {
            return Err(format!("job {id} is not queued"));
        }
        let index = self.jobs.iter().position(|job| job.id == id).expect("a queued job");
        let job = self.jobs.remove(index);
        let before = self
            .jobs
            .iter()
            .enumerate()
            .filter(|(_, job)| job.state == JobState::Queued)
            .nth(place.max(1) - 1)
            .map_or(self.jobs.len(), |(index, _)| index);
        self.jobs.insert(before, job);
        Ok(())
    }

    /// Forgets the oldest ended jobs beyond [`HISTORY`].
    fn trim(&mut self) {
        let ended = self.jobs.iter().filter(|job| job.ended_at.is_some()).count();
        let mut excess = ended.saturating_sub(HISTORY);
        self.jobs.retain(|job| {
            let drop = excess > 0 && job.ended_at.is_some();
            excess -= usize::from(drop);
            !drop
        });
    }
}

/// The queue of one runs directory, and the processes this dashboard started.
pub struct Queue {
    /// The runs directory; the queue's files are in its `.dashboard`.
    root: PathBuf,
    /// How jobs' processes start.
    launcher: Launcher,
    /// The processes started here, by job number, reaped as they end.
    children: Mutex<HashMap<u64, Process>>,
}

/// How a job's process ended.
#[derive(Clone, Copy)]
enum Ended {
    /// As this dashboard saw it end.
    Seen(Exit),
    /// Unseen: an earlier dashboard started it, so its exit code is lost (its log tells).
    Unseen,
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Queue {
    /// The queue of the runs directory `root`, whose jobs `launcher` starts; `limit`, when
    /// given, is the number of jobs that may run at once from now on.
    pub fn open(root: &Path, launcher: Launcher, limit: Option<usize>) -> anyhow::Result<Self> {
        let queue = Self {
            root: root.to_path_buf(),
            launcher,
            children: Mutex::new(HashMap::new()),
        };
        std::fs::create_dir_all(queue.dir().join("logs"))
            .with_context(|| format!("cannot create {}", queue.dir().display()))?;
        queue.with(|file| {
            if let Some(limit) = limit {
                file.limit = limit;
            }
        })?;
        Ok(queue)
    }

    /// The dashboard's folder of the runs directory.
    fn dir(&self) -> PathBuf {
        self.root.join(crate::paths::DASHBOARD_DIR)
    }

    /// The log of job `id`: its standard output and error.
    pub fn log_path(&self, id: u64) -> PathBuf {
        self.dir().join("logs").join(format!("job-{id}.log"))
    }

    /// Reads the queue file under its lock, lets `change` change it, and writes it back
    /// (atomically) if it changed. The lock keeps two dashboards of one runs directory apart;
    /// the mutex, two requests of one.
    pub fn with<R>(&self, change: impl FnOnce(&mut QueueFile) -> R) -> anyhow::Result<R> {
        self.with_children(|file, _| change(file))
    }

    /// [`Queue::with`], with the processes started here.
    fn with_children<R>(
        &self,
        change: impl FnOnce(&mut QueueFile, &mut HashMap<u64, Process>) -> R,
    ) -> anyhow::Result<R> {
        let mut children = self.children.lock().expect("queue lock");
        let _lock = FolderLock::wait_for(&self.dir().join("queue.lock"))?;
        let path = self.dir().join("queue.json");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let mut file: QueueFile = if text.is_empty() {
            QueueFile::default()
        } else {
            serde_json::from_str(&text).with_context(|| {
                format!(
                    "{} is not a queue file: move it away to start an empty queue",
                    path.display()
                )
            })?
        };
        let result = change(&mut file, &mut children);
        let json = serde_json::to_string_pretty(&file).expect("queues serialize");
        if json != text {
            primer_files::atomic_write(&path, json.as_bytes())?;
        }
        Ok(result)
    }

    /// Why a job writing `run` (a run or report directory) cannot be queued now, if it cannot:
    /// another job writes it, queued or running with the run's lock held.
    pub fn busy(&self, run: &Path) -> anyhow::Result<Option<String>> {
        let run = crate::runs::id_of(&self.root, run);
        self.with_children(|file, children| {
            self.note_ends(file, children);
            self.busy_in(file, &run)
        })
    }

    fn busy_in(&self, file: &QueueFile, run: &str) -> Option<String> {
        let locked = primer_files::lock::is_locked(&self.root.join(run));
        let busy = file.jobs.iter().any(|job| {
            job.run.as_deref() == Some(run)
                && (job.state == JobState::Queued || (job.state == JobState::Running && locked))
        });
        busy.then(|| format!("{run:?} is already queued or running"))
    }

    /// Queues a job and returns its number, unless another job writes its run (see
    /// [`Queue::busy`]; the refusal says so).
    pub fn submit(&self, line: JobLine) -> anyhow::Result<Result<u64, String>> {
        self.with_children(|file, children| {
            self.note_ends(file, children);
            let run = line.run.map(|dir| crate::runs::id_of(&self.root, &dir));
            if let Some(refusal) = run.as_deref().and_then(|run| self.busy_in(file, run)) {
                return Err(refusal);
            }
            let id = file.next_id;
            file.next_id += 1;
            file.jobs.push(Job {
                id,
                command: line.command,
                args: line.args,
                run,
                state: JobState::Queued,
                pid: None,
                start_ticks: None,
                submitted_at: now(),
                started_at: None,
                ended_at: None,
                exit_code: None,
                error: None,
                cancelling: false,
                token: None,
            });
            Ok(id)
        })
    }

    /// Notes the jobs that ended and starts queued ones while slots are free; returns the queue
    /// as it then is.
    pub fn advance(&self) -> anyhow::Result<QueueFile> {
        self.with_children(|file, children| {
            self.note_ends(file, children);
            while file.running().count() < file.limit {
                let Some(job) = file.jobs.iter_mut().find(|job| job.state == JobState::Queued) else {
                    break;
                };
                self.start(job, children);
            }
            file.trim();
            file.clone()
        })
    }

    /// Records how each running job ended, if it has.
    fn note_ends(&self, file: &mut QueueFile, children: &mut HashMap<u64, Process>) {
        for job in file.jobs.iter_mut().filter(|job| job.state == JobState::Running) {
            self.note_end(job, children);
        }
    }

    /// Records how a running job ended, if it has.
    fn note_end(&self, job: &mut Job, children: &mut HashMap<u64, Process>) {
        let ended = match children.get_mut(&job.id) {
            Some(process) => process.try_wait().ok().flatten().map(Ended::Seen),
            // Started by an earlier dashboard (its exit code is not ours to read), or planted:
            // a process that is not the job's has ended as far as the queue knows.
            None => (!runs_as(job)).then_some(Ended::Unseen),
        };
        let Some(ended) = ended else { return };
        children.remove(&job.id);
        let error = last_error(&self.log_path(job.id));
        // An unseen end of a job that writes a run is told by the run's status.
        let run_state = job
            .run
            .as_ref()
            .and_then(|run| RunStatus::read(&RunDir::new(self.root.join(run))))
            .map(|status| status.state);
        job.ended_at = Some(now());
        job.state = match (ended, run_state) {
            _ if job.cancelling => JobState::Cancelled,
            (Ended::Seen(Exit::Finished), _) => JobState::Done,
            (Ended::Seen(Exit::Interrupted | Exit::Killed), _) | (Ended::Unseen, Some(RunState::Interrupted)) => {
                JobState::Stopped
            }
            (Ended::Unseen, Some(RunState::Finished)) => JobState::Done,
            (Ended::Unseen, None) if error.is_none() => JobState::Done,
            _ => JobState::Failed,
        };
        if let Ended::Seen(exit) = ended {
            job.exit_code = exit.code();
        }
        if job.state == JobState::Failed {
            job.error = Some(error.unwrap_or_else(|| match job.exit_code {
                Some(code) => format!("exit code {code}, with no error in its log"),
                None => "it ended while no dashboard watched it, with no error in its log".to_string(),
            }));
        }
    }

    fn start(&self, job: &mut Job, children: &mut HashMap<u64, Process>) {
        job.started_at = Some(now());
        job.token = Some(crate::random_token());
        match self.spawn(job) {
            Ok(process) => {
                job.pid = Some(process.id());
                job.start_ticks = system::start_ticks(process.id());
                job.state = JobState::Running;
                children.insert(job.id, process);
            }
            Err(e) => {
                job.state = JobState::Failed;
                job.ended_at = job.started_at;
                job.error = Some(format!("{e:#}"));
            }
        }
    }

    /// Starts a job's process, once what it writes is checked again: since it was queued, its
    /// output path may have come to exist.
    fn spawn(&self, job: &Job) -> anyhow::Result<Process> {
        if let Some(run) = &job.run {
            crate::paths::output_path(&self.root, &job.command, run).map_err(|e| anyhow::anyhow!(e.1))?;
        }
        let path = self.log_path(job.id);
        let log = File::create(&path).with_context(|| format!("cannot write {}", path.display()))?;
        let mut command = self.launcher.command(&job.command, &job.args);
        command
            .env(JOB_TOKEN_VAR, job.token.as_deref().unwrap_or_default())
            .stdout(log.try_clone()?)
            .stderr(log);
        Process::spawn(&mut command).context("cannot start primer")
    }

    /// Whether the process `pid` may be signalled as one of this dashboard's: a job started by
    /// this server, a job started by an earlier one (known by its secret), or, holding a run's
    /// lock, a process of the `primer` executable.
    pub fn may_signal(&self, pid: u32) -> anyhow::Result<bool> {
        let ours = self.with_children(|file, children| {
            children.values().any(|process| process.id() == pid)
                || file.running().any(|job| job.pid == Some(pid) && runs_as(job))
        })?;
        Ok(ours
            || system::runs_executable(pid, self.launcher.exe())
            || system::runs_executable(pid, Path::new("/proc/self/exe")))
    }

    /// Cancels a job: a queued one never starts; a running one is asked to stop (a training
    /// run checkpoints first).
    pub fn cancel(&self, id: u64) -> anyhow::Result<Result<(), String>> {
        self.with_children(|file, children| {
            let Some(job) = file.job_mut(id) else {
                return Err(format!("no job {id}"));
            };
            match job.state {
                JobState::Queued => {
                    job.state = JobState::Cancelled;
                    job.ended_at = Some(now());
                    Ok(())
                }
                JobState::Running => {
                    // Only the job's own process: a child of this server, or one that carries
                    // the job's secret; never a pid the queue file merely names.
                    let pid = match children.get(&job.id) {
                        Some(process) => Some(process.id()),
                        None => job.pid.filter(|_| runs_as(job)),
                    };
                    if let Some(pid) = pid {
                        primer_trainer::status::terminate(pid);
                    }
                    job.cancelling = true;
                    Ok(())
                }
                ended => Err(format!("job {id} has already ended ({ended:?})").to_lowercase()),
            }
        })
    }

    /// Forgets a job the CLI refused at once: it never ran, and its error is the answer.
    pub fn forget(&self, id: u64) -> anyhow::Result<()> {
        self.with(|file| file.jobs.retain(|job| job.id != id))?;
        let _ = std::fs::remove_file(self.log_path(id));
        Ok(())
    }
}

/// Whether the process a job file names is that job's: alive, started when the job's was, and
/// holding the job's secret in its environment.
fn runs_as(job: &Job) -> bool {
    let (Some(pid), Some(token)) = (job.pid, job.token.as_deref()) else {
        return false;
    };
    system::alive(pid, job.start_ticks) && system::has_env(pid, JOB_TOKEN_VAR, token)
}

/// The one-line error `primer` printed last in a log (`error: ...`), if any.
pub fn last_error(log: &Path) -> Option<String> {
    error_line(&std::fs::read_to_string(log).ok()?)
}

/// The one-line error `primer` printed last in `text` (`error: ...`), if any.
pub fn error_line(text: &str) -> Option<String> {
    text.lines()
        .rev()
        .find_map(|line| line.strip_prefix("error: "))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(ids: &[u64]) -> QueueFile {
        let mut file = QueueFile::default();
        for &id in ids {
            file.jobs.push(Job {
                id,
                command: "pretrain".into(),
                args: Vec::new(),
                run: None,
                state: JobState::Queued,
                pid: None,
                start_ticks: None,
                submitted_at: 0.0,
                started_at: None,
                ended_at: None,
                exit_code: None,
                error: None,
                cancelling: false,
                token: None,
            });
        }
        file
    }

    #[test]
    fn queued_jobs_move_among_themselves_and_ended_ones_stay_put() {
        let mut file = queued(&[1, 2, 3, 4]);
        file.jobs[0].state = JobState::Running;
        file.move_to(4, 1).unwrap();
        let order: Vec<u64> = file.jobs.iter().map(|j| j.id).collect();
        assert_eq!(order, [1, 4, 2, 3]);
        assert_eq!((file.place(4), file.place(3), file.place(1)), (Some(1), Some(3), None));
        file.move_to(4, 99).unwrap();
        assert_eq!(file.place(4), Some(3));
        assert!(file.move_to(1, 1).is_err(), "a running job does not move");
        assert!(file.move_to(9, 1).is_err());
    }

    #[test]
    fn jobs_wait_for_a_slot_run_in_order_and_survive_a_new_queue_object() {
        let dir = tempfile::tempdir().unwrap();
        // `true` stands in for primer: every job succeeds at once.
        let launcher = Launcher::new(PathBuf::from("true"), &[dir.path().to_path_buf()]).unwrap();
        let queue = Queue::open(dir.path(), launcher.clone(), Some(1)).unwrap();
        let line = |command: &str| JobLine {
            command: command.into(),
            args: Vec::new(),
            run: None,
        };
        let first = queue.submit(line("a")).unwrap().unwrap();
        let second = queue.submit(line("b")).unwrap().unwrap();
        queue.advance().unwrap();
        let state = |queue: &Queue, id| queue.with(|f| f.job(id).unwrap().state).unwrap();
        assert_eq!(
            (state(&queue, first), state(&queue, second)),
            (JobState::Running, JobState::Queued)
        );
        assert_eq!(queue.cancel(second).unwrap(), Ok(()));
        // A second dashboard of the same directory reads the same queue.
        let again = Queue::open(dir.path(), launcher, None).unwrap();
        assert_eq!(state(&again, second), JobState::Cancelled);
        let started = std::time::Instant::now();
        while state(&queue, first) == JobState::Running {
            assert!(started.elapsed().as_secs() < 10);
            std::thread::sleep(std::time::Duration::from_millis(20));
            queue.advance().unwrap();
        }
        assert_eq!(state(&queue, first), JobState::Done);
        assert!(queue.cancel(first).unwrap().is_err(), "an ended job is not cancelled");
        assert_eq!(again.with(|f| f.limit).unwrap(), 1);
    }
}
