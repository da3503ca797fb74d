//! Runs a comparison's jobs as child `primer` processes, each writing an ordinary run
//! directory, under an overall progress view.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, bail};
use indicatif::ProgressBar;
use primer_trainer::run_dir::RunDir;

use super::child::{self, Exit, Process};
use super::jobs::{Job, Method};
use super::layout::Layout;
use super::progress::ProgressView;
use super::spec::{CompareSpec, LabelBudget};
use super::workload::Workload;

/// The file of a report directory that says how far its comparison is: each job's state and the
/// ETA, rewritten as each job starts and when all are done.
pub const PROGRESS_FILE: &str = "progress.json";

/// How a comparison's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// Every job is done.
    Complete,
    /// A signal stopped it; the unfinished job kept its checkpoint.
    Interrupted,
}

/// Runs jobs one after another.
pub struct Runner<'a> {
    exe: PathBuf,
    spec: &'a CompareSpec,
    layout: &'a Layout,
    prepared: &'a Path,
    /// What each job processes, for the ETA.
    workload: Workload,
    /// The process id of the running child, 0 when none.
    child_pid: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
}

impl<'a> Runner<'a> {
    /// A runner of `spec`'s jobs into `layout`, pre-training on the `prepared` data folder;
    /// `workload` sizes the jobs for the ETA.
    /// Installs the signal handler: a signal is passed once to the running child, which saves
    /// a checkpoint and exits; then the comparison stops.
    pub fn new(
        spec: &'a CompareSpec,
        layout: &'a Layout,
        prepared: &'a Path,
        workload: Workload,
    ) -> anyhow::Result<Self> {
        let child_pid = Arc::new(AtomicU32::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (handler_pid, handler_stop) = (child_pid.clone(), stop.clone());
        let _ = ctrlc::set_handler(move || {
            if handler_stop.swap(true, Ordering::SeqCst) {
                std::process::exit(i32::from(child::INTERRUPTED_CODE));
            }
            eprintln!("stopping: the running job saves its state (again to quit now)");
            let pid = handler_pid.load(Ordering::SeqCst);
            if pid != 0 {
                primer_trainer::status::terminate(pid);
            }
        });
        Ok(Self {
            exe: std::env::current_exe().context("cannot find the primer executable")?,
            spec,
            layout,
            prepared,
            workload,
            child_pid,
            stop,
        })
    }

    /// Whether a job's output is complete.
    pub fn is_done(&self, job: &Job) -> bool {
        let output = self.layout.output(self.spec, job);
        match job {
            Job::Pretrain { .. } | Job::Finetune { .. } => RunDir::new(&output).summary().exists(),
            Job::Eval { .. } | Job::ZeroShot { .. } | Job::KShot { .. } | Job::MinimalPairs { .. } => output.exists(),
        }
    }

    /// Runs every unfinished job; returns how the comparison ended.
    pub fn run_all(&self, jobs: &[Job]) -> anyhow::Result<Finish> {
        let total = jobs.len() as u64;
        let finished = jobs.iter().filter(|job| self.is_done(job)).count() as u64;
        if finished > 0 {
            eprintln!("{finished} of {total} jobs already finished: skipping them");
        }
        let view = ProgressView::new(total, finished);
        let mut timed: HashMap<&'static str, Timed> = HashMap::new();
        let work = |job: &Job| self.workload.of(self.spec, job);
        let began = Instant::now();
        for (index, job) in jobs.iter().enumerate() {
            if self.is_done(job) {
                continue;
            }
            let remaining = &jobs[index..];
            let eta_s = eta(remaining, &timed, work, |j| self.is_done(j));
            view.start(&job.describe(self.spec), eta_s);
            self.write_progress(jobs, Some(index), eta_s, began)?;
            let started = Instant::now();
            let log = self.layout.logs().join(format!(
                "{}.log",
                self.layout
                    .output(self.spec, job)
                    .file_name()
                    .expect("outputs have names")
                    .to_string_lossy()
            ));
            let exit = self.run_job(job, &log, &view)?;
            if exit == Exit::Interrupted || self.stop.load(Ordering::SeqCst) {
                view.finish();
                return Ok(Finish::Interrupted);
            }
            if exit != Exit::Finished {
                view.finish();
                let last = last_line(&log);
                bail!(
                    "{} failed ({exit}): {last}; its log is {}",
                    job.describe(self.spec),
                    log.display()
                );
            }
            let so_far = timed.entry(job.kind()).or_default();
            so_far.seconds += started.elapsed().as_secs_f64();
            so_far.work += work(job);
            view.done(&job.describe(self.spec), started.elapsed());
        }
        view.finish();
        self.write_progress(jobs, None, Some(0.0), began)?;
        Ok(Finish::Complete)
    }

    /// Writes [`PROGRESS_FILE`]: every job done, running (`running`, the index) or pending, the
    /// seconds this invocation has run, and the ETA, for the dashboard.
    fn write_progress(
        &self,
        jobs: &[Job],
        running: Option<usize>,
        eta_s: Option<f64>,
        began: Instant,
    ) -> anyhow::Result<()> {
        let states: Vec<&str> = jobs
            .iter()
            .enumerate()
            .map(|(index, job)| {
                if self.is_done(job) {
                    "done"
                } else if running == Some(index) {
                    "running"
                } else {
                    "pending"
                }
            })
            .collect();
        let listed: Vec<serde_json::Value> = jobs
            .iter()
            .zip(&states)
            .map(|(job, state)| serde_json::json!({ "what": job.describe(self.spec), "state": state }))
            .collect();
        let progress = serde_json::json!({
            "total": jobs.len(),
            "done": states.iter().filter(|state| **state == "done").count(),
            "eta_s": eta_s,
            "elapsed_s": began.elapsed().as_secs_f64(),
            "jobs": listed,
        });
        let json = serde_json::to_vec_pretty(&progress).expect("progress serializes");
        Ok(primer_files::atomic_write(
            &self.layout.root.join(PROGRESS_FILE),
            &json,
        )?)
    }

    /// Runs one job; returns how it ended.
    fn run_job(&self, job: &Job, log: &Path, view: &ProgressView) -> anyhow::Result<Exit> {
        let output = self.layout.output(self.spec, job);
        let (args, json_out) = self.arguments(job, &output)?;
        let mut command = child::command(&self.exe, &args);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        if let Some(mut roots) = primer_files::roots::allowed_roots() {
            // Confined as the comparison is, and allowed the data it prepared for its runs.
            roots.push(self.prepared.to_path_buf());
            let roots = std::env::join_paths(roots).context("the allowed roots")?;
            command.env(primer_files::roots::ALLOWED_ROOTS_VAR, roots);
        }
        // Its own process group: a Ctrl-C reaches the comparison, which passes it on once.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut process =
            Process::spawn(&mut command).with_context(|| format!("cannot start {}", self.exe.display()))?;
        self.child_pid.store(process.id(), Ordering::SeqCst);
        let log_file = Arc::new(Mutex::new(
            File::create(log).with_context(|| format!("cannot write {}", log.display()))?,
        ));
        writeln!(
            log_file.lock().expect("log lock"),
            "$ primer {}",
            args.iter().map(|a| shell_word(a)).collect::<Vec<_>>().join(" ")
        )?;
        let stdout = follow(
            process.take_stdout(),
            log_file.clone(),
            view.line.clone(),
            json_out.is_some(),
        );
        let stderr = follow(process.take_stderr(), log_file, view.line.clone(), false);
        let exit = process.wait()?;
        self.child_pid.store(0, Ordering::SeqCst);
        let captured = stdout.join().expect("reader thread");
        stderr.join().expect("reader thread");
        if let (Some(path), Exit::Finished) = (json_out, exit) {
            primer_files::atomic_write(&path, captured.as_bytes())?;
        }
        Ok(exit)
    }

    /// `primer minimal-pairs` of the pre-training run of an objective and seed, or of its
    /// untrained weights (without the backend options).
    fn minimal_pairs_arguments(&self, objective: usize, seed: u64, untrained: bool) -> Vec<String> {
        let pairs = self
            .spec
            .minimal_pairs
            .as_ref()
            .expect("minimal-pair jobs come with pairs");
        let run = self.layout.pretrain_run(&self.spec.objectives[objective], seed);
        let mut args = vec!["minimal-pairs".into(), "--run".into(), run.display().to_string()];
        args.extend(["--pairs".into(), pairs.source.clone(), "--json".into()]);
        if let Some(limit) = pairs.limit_per_paradigm {
            args.extend(["--limit-per-paradigm".into(), limit.to_string()]);
        }
        if let Some(pll) = pairs.scoring(&self.spec.objectives[objective]).pll() {
            args.extend(["--pll".into(), pll.name().into()]);
        }
        if untrained {
            args.push("--untrained".into());
        }
        args
    }

    /// The command line of a job, and where its standard output is saved (JSON jobs).
    fn arguments(&self, job: &Job, output: &Path) -> anyhow::Result<(Vec<String>, Option<PathBuf>)> {
        let spec = self.spec;
        let path = |p: &Path| p.display().to_string();
        let backend = spec.pretrain.backend.to_args();
        let words = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Ok(match *job {
            Job::Pretrain { objective, seed } => (self.pretrain_arguments(objective, seed, output)?, None),
            Job::Eval { objective, seed } => {
                let mut args = words(&["eval"]);
                args.push(path(&self.layout.pretrain_run(&spec.objectives[objective], seed)));
                args.push("--json".into());
                args.extend(backend);
                (args, Some(output.to_path_buf()))
            }
            Job::MinimalPairs {
                objective,
                seed,
                untrained,
            } => {
                let mut args = self.minimal_pairs_arguments(objective, seed, untrained);
                args.extend(backend);
                (args, Some(output.to_path_buf()))
            }
            Job::ZeroShot { task, objective, seed } => {
                let mut args = self.prompt_arguments(task, objective, seed);
                // Beside k-shot rows, zero-shot is their K of 0, calibrated too.
                if !spec.shots.is_empty() {
                    args.push("--calibrate".into());
                }
                args.extend(backend);
                (args, Some(output.to_path_buf()))
            }
            Job::KShot {
                task,
                objective,
                seed,
                shots,
            } => {
                let mut args = self.prompt_arguments(task, objective, seed);
                args.extend(["--shots".into(), shots.to_string(), "--seed".into(), seed.to_string()]);
                args.push("--calibrate".into());
                args.extend(backend);
                (args, Some(output.to_path_buf()))
            }
            Job::Finetune {
                task,
                objective,
                seed,
                budget,
                method,
            } => {
                let mut args = self.finetune_arguments(task, objective, seed, budget, method);
                args.extend(["--out".into(), path(output)]);
                args.extend(words(&["--overwrite", "--no-tui"]));
                args.extend(backend);
                (args, None)
            }
        })
    }

    /// `primer prompt-classify --json` of the pre-training run of an objective and seed on a
    /// prompted task, with the task's template and label words.
    fn prompt_arguments(&self, task: usize, objective: usize, seed: u64) -> Vec<String> {
        let spec = self.spec;
        let task = &spec.tasks[task];
        let mut args = vec!["prompt-classify".to_string(), "--run".into()];
        args.push(
            self.layout
                .pretrain_run(&spec.objectives[objective], seed)
                .display()
                .to_string(),
        );
        args.extend(task.data_arguments());
        let template = task
            .template
            .clone()
            .expect("prompting jobs are planned for prompted tasks");
        args.extend(["--template".into(), template]);
        let verbalizer: Vec<String> = task.verbalizer.iter().map(|(l, w)| format!("{l}={w}")).collect();
        args.extend(["--verbalizer".into(), verbalizer.join(","), "--json".into()]);
        args
    }

    /// The command line of a pre-training run: its options in a config file (kept with the
    /// comparison), resumed when it has a checkpoint, started over when it has none.
    fn pretrain_arguments(&self, objective: usize, seed: u64, output: &Path) -> anyhow::Result<Vec<String>> {
        let spec = self.spec;
        let path = |p: &Path| p.display().to_string();
        let config = self.layout.configs().join(format!(
            "pretrain-{}-s{seed}.toml",
            super::layout::slug(&spec.objectives[objective])
        ));
        let options = super::pretrain_options(spec, &spec.objectives[objective], seed, self.prepared);
        primer_files::atomic_write(&config, toml::to_string(&options)?.as_bytes())?;
        let has_checkpoint = RunDir::new(output)
            .checkpoints()
            .read_dir()
            .is_ok_and(|mut entries| entries.next().is_some());
        let mut args = vec!["pretrain".to_string(), "--config".into(), path(&config)];
        match (output.exists(), has_checkpoint) {
            (true, true) => args.extend(["--resume".into(), path(output)]),
            (true, false) => args.extend(["--out".into(), path(output), "--overwrite".into()]),
            (false, _) => args.extend(["--out".into(), path(output)]),
        }
        args.push("--no-tui".into());
        Ok(args)
    }

    /// The command line of a fine-tune (or probe, or scratch run), without its output.
    fn finetune_arguments(
        &self,
        task: usize,
        objective: usize,
        seed: u64,
        budget: LabelBudget,
        method: Method,
    ) -> Vec<String> {
        let spec = self.spec;
        let mut args = vec!["finetune".to_string(), "--from".into()];
        args.push(
            self.layout
                .pretrain_run(&spec.objectives[objective], seed)
                .display()
                .to_string(),
        );
        args.extend(spec.tasks[task].data_arguments());
        match (budget, method) {
            (LabelBudget::Count(n), Method::ShotFinetune) => args.extend(["--shots".into(), n.to_string()]),
            (LabelBudget::Count(n), _) => args.extend(["--train-limit".into(), n.to_string()]),
            (LabelBudget::All, _) => {}
        }
        args.extend(["--seed".into(), seed.to_string()]);
        args.extend(["--epochs".into(), spec.finetune.epochs.to_string()]);
        let lr = match method {
            Method::Probe => {
                args.push("--freeze-encoder".into());
                spec.finetune.probe_lr
            }
            Method::Scratch => {
                args.push("--from-scratch".into());
                spec.finetune.lr
            }
            Method::Finetune | Method::ShotFinetune => spec.finetune.lr,
            Method::ZeroShot | Method::KShot | Method::KShotCalibrated => {
                unreachable!("prompting is not fine-tuning")
            }
        };
        args.extend(["--lr".into(), lr.to_string()]);
        args
    }
}

/// Copies a child's stream into the log, line by line, showing each under the progress bar;
/// returns what it read when `capture` is set.
fn follow<R: Read + Send + 'static>(
    stream: Option<R>,
    log: Arc<Mutex<File>>,
    line_view: ProgressBar,
    capture: bool,
) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut captured = String::new();
        let Some(stream) = stream else {
            return captured;
        };
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let _ = writeln!(log.lock().expect("log lock"), "{line}");
            if capture {
                captured.push_str(&line);
                captured.push('\n');
            } else if !line.trim().is_empty() {
                line_view.set_message(line);
            }
        }
        captured
    })
}

/// The last non-empty line of a log.
fn last_line(log: &Path) -> String {
    std::fs::read_to_string(log)
        .ok()
        .and_then(|text| text.lines().rev().find(|l| !l.trim().is_empty()).map(str::to_string))
        .unwrap_or_else(|| "no output".into())
}

/// Quotes a word for a shell when it needs it.
pub fn shell_word(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=,:+@".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Seconds the unfinished jobs should take: each job's work at the seconds per unit of work of
/// its kind's finished jobs, or, for a kind not timed yet, of all finished jobs (so the first
/// fine-tune is estimated from pre-training's speed). `None` before any job has finished.
fn eta(
    jobs: &[Job],
    timed: &HashMap<&'static str, Timed>,
    work: impl Fn(&Job) -> f64,
    done: impl Fn(&Job) -> bool,
) -> Option<f64> {
    let overall = timed.values().fold(Timed::default(), |sum, t| Timed {
        seconds: sum.seconds + t.seconds,
        work: sum.work + t.work,
    });
    if overall.work <= 0.0 {
        return None;
    }
    Some(
        jobs.iter()
            .filter(|job| !done(job))
            .map(|job| work(job) * timed.get(job.kind()).unwrap_or(&overall).rate())
            .sum(),
    )
}

/// Seconds and work of the finished jobs of one kind.
#[derive(Debug, Clone, Copy, Default)]
struct Timed {
    seconds: f64,
    work: f64,
}

impl Timed {
    /// Seconds per unit of work.
    fn rate(&self) -> f64 {
        self.seconds / self.work
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untimed_kinds_are_estimated_from_their_work_at_the_rate_of_finished_jobs() {
        let objective = 0;
        let finetune = |seed| Job::Finetune {
            task: 0,
            objective,
            seed,
            budget: LabelBudget::Count(100),
            method: Method::Finetune,
        };
        let jobs = [
            Job::Pretrain { objective, seed: 0 },
            Job::Pretrain { objective, seed: 1 },
            finetune(0),
            finetune(1),
        ];
        let work = |job: &Job| if job.kind() == "pretrain" { 100.0 } else { 10.0 };
        let first_done = |job: &Job| *job == jobs[0];
        let mut timed = HashMap::new();
        assert_eq!(eta(&jobs, &timed, work, first_done), None);
        timed.insert(
            "pretrain",
            Timed {
                seconds: 50.0,
                work: 100.0,
            },
        );
        // Fine-tunes untimed: 10 units each at pre-training's 0.5 s per unit.
        assert_eq!(eta(&jobs, &timed, work, first_done), Some(50.0 + 2.0 * 5.0));
        timed.insert(
            "finetune",
            Timed {
                seconds: 2.0,
                work: 10.0,
            },
        );
        assert_eq!(eta(&jobs, &timed, work, first_done), Some(50.0 + 2.0 * 2.0));
    }
}
