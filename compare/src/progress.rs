//! The comparison's progress on the terminal: jobs done of all, elapsed time and ETA, above the
//! running job's latest line.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Overall progress (jobs done of all, elapsed, ETA) above the running job's latest line; plain
/// lines when stderr is not a terminal.
pub struct ProgressView {
    overall: ProgressBar,
    /// The running job's latest line.
    pub line: ProgressBar,
    plain: bool,
    total: u64,
}

impl ProgressView {
    /// The view of `total` jobs, `finished` of them already done.
    pub fn new(total: u64, finished: u64) -> Self {
        let plain = !std::io::stderr().is_terminal();
        let multi = MultiProgress::with_draw_target(if plain {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        });
        let overall = multi.add(ProgressBar::new(total)).with_style(
            ProgressStyle::with_template("compare [{bar:30}] {pos}/{len} jobs, {elapsed} so far, {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        overall.set_position(finished);
        let line = multi.add(ProgressBar::new_spinner());
        line.enable_steady_tick(Duration::from_millis(200));
        Self {
            overall,
            line,
            plain,
            total,
        }
    }

    /// Shows that the job `what` starts, with the ETA of all that are left.
    pub fn start(&self, what: &str, eta_s: Option<f64>) {
        let eta = eta_s.map_or("ETA after the first job".to_string(), |s| {
            format!("about {} left", format_duration(s))
        });
        self.overall.set_message(format!("now: {what}; {eta}"));
        self.line.set_message(String::new());
        if self.plain {
            eprintln!("[{}/{}] {what} ({eta})", self.overall.position() + 1, self.total);
        }
    }

    /// Counts the job `what` done, in `took`.
    pub fn done(&self, what: &str, took: Duration) {
        self.overall.inc(1);
        if self.plain {
            eprintln!(
                "[{}/{}] {what}: done in {:.0}s",
                self.overall.position(),
                self.total,
                took.as_secs_f64()
            );
        } else {
            self.overall
                .println(format!("{what}: done in {:.0}s", took.as_secs_f64()));
        }
    }

    /// Clears the view: the comparison ended.
    pub fn finish(&self) {
        self.line.finish_and_clear();
        self.overall.finish_and_clear();
    }
}

/// `1h02m`, `5m07s` or `42s`.
pub fn format_duration(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, _) => format!("{h}h{m:02}m"),
    }
}
