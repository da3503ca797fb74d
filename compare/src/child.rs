//! Child `primer` processes, as a comparison runs its jobs and the dashboard its queue: started
//! with no input, waited for, their end told apart (finished, interrupted, failed, killed), and
//! asked to stop. Where their output goes and what environment they get is each caller's own.

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::path::Path;
use std::process::{ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The exit code of a `primer` command a signal interrupted: it saved its state first (a
/// training run its checkpoint) and can be resumed.
pub const INTERRUPTED_CODE: u8 = 130;

/// How often [`Process::wait`] looks whether the process has ended.
const POLL: Duration = Duration::from_millis(20);

/// `exe ARGS...` with no input.
pub fn command<S: AsRef<OsStr>>(exe: &Path, args: impl IntoIterator<Item = S>) -> Command {
    let mut command = Command::new(exe);
    command.args(args).stdin(Stdio::null());
    command
}

/// How a child process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with success.
    Finished,
    /// It exited with [`INTERRUPTED_CODE`]: a signal asked it to stop and it saved its state.
    Interrupted,
    /// It exited with this error code.
    Failed(i32),
    /// A signal killed it.
    Killed,
}

impl Exit {
    /// How a process with this status ended.
    pub fn of(status: ExitStatus) -> Self {
        match status.code() {
            Some(0) => Self::Finished,
            Some(code) if code == i32::from(INTERRUPTED_CODE) => Self::Interrupted,
            Some(code) => Self::Failed(code),
            None => Self::Killed,
        }
    }

    /// Its exit code; `None` when a signal killed it.
    pub fn code(self) -> Option<i32> {
        match self {
            Self::Finished => Some(0),
            Self::Interrupted => Some(i32::from(INTERRUPTED_CODE)),
            Self::Failed(code) => Some(code),
            Self::Killed => None,
        }
    }
}

impl fmt::Display for Exit {
    /// `exit 2`, or `killed by a signal`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code() {
            Some(code) => write!(f, "exit {code}"),
            None => f.write_str("killed by a signal"),
        }
    }
}

/// A started child process.
#[derive(Debug)]
pub struct Process {
    child: std::process::Child,
}

impl Process {
    /// Starts `command`.
    pub fn spawn(command: &mut Command) -> io::Result<Self> {
        command.spawn().map(|child| Self { child })
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Its standard output, once, when it is piped.
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    /// Its standard error, once, when it is piped.
    pub fn take_stderr(&mut self) -> Option<ChildStderr> {
        self.child.stderr.take()
    }

    /// How it ended, if it has, without waiting.
    pub fn try_wait(&mut self) -> io::Result<Option<Exit>> {
        Ok(self.child.try_wait()?.map(Exit::of))
    }

    /// Waits for it to end.
    pub fn wait(&mut self) -> io::Result<Exit> {
        loop {
            if let Some(exit) = self.try_wait()? {
                return Ok(exit);
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits for it to end, at most `timeout`; `None` when it still runs then.
    pub fn wait_at_most(&mut self, timeout: Duration) -> io::Result<Option<Exit>> {
        let started = Instant::now();
        loop {
            if let Some(exit) = self.try_wait()? {
                return Ok(Some(exit));
            }
            if started.elapsed() > timeout {
                return Ok(None);
            }
            std::thread::sleep(POLL);
        }
    }

    /// Asks it to stop (SIGTERM): a `primer` command saves its state and exits with
    /// [`INTERRUPTED_CODE`].
    pub fn terminate(&self) {
        primer_trainer::status::terminate(self.id());
    }

    /// Kills it at once and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(script: &str) -> Process {
        Process::spawn(&mut command(Path::new("sh"), ["-c", script])).unwrap()
    }

    #[test]
    fn ends_are_told_apart_by_exit_code_and_signal() {
        assert_eq!(shell("exit 0").wait().unwrap(), Exit::Finished);
        assert_eq!(shell("exit 130").wait().unwrap(), Exit::Interrupted);
        let failed = shell("exit 3").wait().unwrap();
        assert_eq!((failed, failed.code()), (Exit::Failed(3), Some(3)));
        let mut sleeping = shell("exec sleep 30");
        assert_eq!(sleeping.wait_at_most(Duration::from_millis(50)).unwrap(), None);
        sleeping.terminate();
        let killed = sleeping.wait().unwrap();
        assert_eq!((killed, killed.code()), (Exit::Killed, None));
        assert_eq!(killed.to_string(), "killed by a signal");
    }

    #[test]
    fn a_child_has_no_input() {
        // `cat` of no input ends at once.
        let mut cat = shell("cat");
        assert_eq!(cat.wait_at_most(Duration::from_secs(10)).unwrap(), Some(Exit::Finished));
    }
}
