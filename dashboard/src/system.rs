//! The load of the machine and of the processes the dashboard watches, read from Linux's
//! `/proc` (elsewhere: nothing, and a process is taken to be alive).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

/// Clock ticks per second of `/proc/PID/stat`'s times (`USER_HZ`, 100 on every Linux ABI).
const TICKS_PER_S: f64 = 100.0;

/// What one process uses.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ProcessLoad {
    /// Its process id.
    pub pid: u32,
    /// CPU time per wall time since the last reading (since its start at the first), in percent
    /// of one core.
    pub cpu_percent: f64,
    /// Resident memory, MiB.
    pub rss_mib: f64,
}

/// The machine's load.
#[derive(Debug, Clone, Serialize)]
pub struct MachineLoad {
    /// Logical CPUs.
    pub cpus: usize,
    /// Load averages over 1, 5 and 15 minutes.
    pub load_average: Vec<f64>,
    /// Total and available memory, MiB.
    pub memory_total_mib: Option<f64>,
    /// Memory available to new work, MiB.
    pub memory_available_mib: Option<f64>,
}

/// The fields of `/proc/PID/stat` the dashboard reads.
struct Stat {
    /// `R`, `S`, `Z`, ...
    state: char,
    /// User and system CPU time, ticks.
    cpu_ticks: u64,
    /// When the process started, ticks after boot: with the pid, it names one process.
    start_ticks: u64,
}

fn stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: read after its end.
    let fields: Vec<&str> = text[text.rfind(')')? + 1..].split_whitespace().collect();
    let number = |field: usize| fields.get(field - 3)?.parse::<u64>().ok();
    Some(Stat {
        state: fields.first()?.chars().next()?,
        cpu_ticks: number(14)? + number(15)?,
        start_ticks: number(22)?,
    })
}

/// When the process `pid` started (ticks after boot), to tell it from a later one given the same
/// pid.
pub fn start_ticks(pid: u32) -> Option<u64> {
    stat(pid).map(|s| s.start_ticks)
}

/// Whether the process `pid` that started at `start_ticks` still runs (a zombie does not).
pub fn alive(pid: u32, started: Option<u64>) -> bool {
    if !Path::new("/proc/self/stat").exists() {
        return true;
    }
    stat(pid).is_some_and(|s| s.state != 'Z' && started.is_none_or(|t| t == s.start_ticks))
}

/// Whether the process `pid` was started with `NAME=value` in its environment
/// (`/proc/PID/environ`, which only its owner can read, fixed when it started); `false` when it
/// cannot be read.
pub fn has_env(pid: u32, name: &str, value: &str) -> bool {
    let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    let wanted = format!("{name}={value}");
    environ.split(|&byte| byte == 0).any(|entry| entry == wanted.as_bytes())
}

/// Whether the process `pid` runs the executable file `exe` (the same file, through every
/// link, not merely the same name); `false` when that cannot be read.
pub fn runs_executable(pid: u32, exe: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let identity = |path: &Path| std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
    let running = identity(&Path::new("/proc").join(pid.to_string()).join("exe"));
    running.is_some() && running == identity(exe)
}

/// Readings of CPU time, so each reading of a process's load covers the time since the last.
#[derive(Default)]
pub struct Sampler {
    last: Mutex<HashMap<u32, (u64, Instant)>>,
}

impl Sampler {
    /// The load of process `pid` now, if it runs.
    pub fn process(&self, pid: u32) -> Option<ProcessLoad> {
        let stat = stat(pid).filter(|s| s.state != 'Z')?;
        let now = Instant::now();
        let mut last = self.last.lock().expect("sampler lock");
        let cpu_s = match last.get(&pid) {
            Some(&(ticks, at)) if now > at => {
                (stat.cpu_ticks.saturating_sub(ticks)) as f64 / TICKS_PER_S / (now - at).as_secs_f64()
            }
            _ => {
                let age_s = uptime_s()? - stat.start_ticks as f64 / TICKS_PER_S;
                stat.cpu_ticks as f64 / TICKS_PER_S / age_s.max(0.01)
            }
        };
        last.insert(pid, (stat.cpu_ticks, now));
        Some(ProcessLoad {
            pid,
            cpu_percent: (cpu_s * 1000.0).round() / 10.0,
            rss_mib: rss_kib(pid)? as f64 / 1024.0,
        })
    }
}

fn uptime_s() -> Option<f64> {
    std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn rss_kib(pid: u32) -> Option<u64> {
    kib_field(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?, "VmRSS:")
}

/// The number of a `Name:   123 kB` line.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The machine's load now.
pub fn machine() -> MachineLoad {
    let load_average = std::fs::read_to_string("/proc/loadavg")
        .map(|text| text.split_whitespace().take(3).filter_map(|v| v.parse().ok()).collect())
        .unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mib = |name| kib_field(&meminfo, name).map(|kib| kib as f64 / 1024.0);
    MachineLoad {
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_average,
        memory_total_mib: mib("MemTotal:"),
        memory_available_mib: mib("MemAvailable:"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_measured_and_a_reused_pid_is_not_taken_for_it() {
        let pid = std::process::id();
        let started = start_ticks(pid).expect("Linux /proc");
        assert!(alive(pid, Some(started)));
        assert!(!alive(pid, Some(started + 1)), "another start time is another process");
        let sampler = Sampler::default();
        let load = sampler.process(pid).unwrap();
        assert!(load.rss_mib > 0.0 && load.cpu_percent >= 0.0, "{load:?}");
        let machine = machine();
        assert!(
            machine.cpus >= 1 && machine.memory_total_mib.unwrap() > 0.0,
            "{machine:?}"
        );
        assert_eq!(machine.load_average.len(), 3);
    }

    #[test]
    fn a_process_is_known_by_its_environment_and_executable_not_its_pid_alone() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .env("PRIMER_TEST_TOKEN", "abc")
            .spawn()
            .unwrap();
        let pid = child.id();
        // Its environment and executable are its own once its exec completes.
        let started = Instant::now();
        while !has_env(pid, "PRIMER_TEST_TOKEN", "abc") {
            assert!(started.elapsed().as_secs() < 5, "the child's environment");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let sleep = std::fs::read_link(Path::new("/proc").join(pid.to_string()).join("exe")).unwrap();
        assert!(!has_env(pid, "PRIMER_TEST_TOKEN", "ab"));
        assert!(!has_env(std::process::id(), "PRIMER_TEST_TOKEN", "abc"));
        assert!(runs_executable(pid, &sleep));
        assert!(!runs_executable(std::process::id(), &sleep));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            !has_env(pid, "PRIMER_TEST_TOKEN", "abc"),
            "an ended process has no environment"
        );
    }
}
