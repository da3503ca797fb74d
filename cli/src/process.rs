//! Signals to other primer processes.

/// Sends SIGTERM to a process: a primer training run stops at the next step boundary with a
/// checkpoint, as on Ctrl-C.
pub fn terminate(pid: u32) {
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
}
