//! Live view of a run: burn-train's terminal dashboard, or plain progress lines.

use std::sync::Arc;
use std::time::Instant;

use burn::data::dataloader::Progress;
use burn::train::Interrupter;
use burn::train::metric::{
    CpuMemory, CpuUse, Metric, MetricAttributes, MetricDefinition, MetricEntry, MetricId, MetricMetadata, Numeric,
    NumericAttributes, NumericEntry, SerializedEntry,
};
use burn::train::renderer::tui::TuiMetricsRendererWrapper;
use burn::train::renderer::{MetricState, MetricsRenderer};

use crate::metrics::{MetricsRecord, Split};

/// How a run shows progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DashboardMode {
    /// burn-train's TUI (needs a terminal on stdout).
    Tui,
    /// One line every few seconds and at each evaluation.
    Plain,
}

/// A metric the dashboard plots: name, unit, and whether higher is better.
pub type Plotted = (&'static str, Option<&'static str>, bool);

/// A line of `metrics.jsonl` as the dashboard shows it.
pub trait DashboardRecord {
    /// The metrics plotted for records of this kind.
    const PLOTTED: &'static [Plotted];

    /// Optimizer step (1-based).
    fn step(&self) -> u64;

    /// Values of [`Self::PLOTTED`], in order.
    fn plotted_values(&self) -> Vec<f64>;

    /// CPU use (percent) and memory use (GB), when measured.
    fn system(&self) -> (Option<f64>, Option<f64>);

    /// One plain progress line.
    fn progress_line(&self, total_steps: u64) -> String;
}

impl DashboardRecord for MetricsRecord {
    const PLOTTED: &'static [Plotted] = &[
        ("Loss", None, false),
        ("Perplexity", None, false),
        ("Accuracy", Some("%"), true),
        ("Bits per byte", None, false),
        ("Learning rate", None, false),
        ("Tokens/s", None, true),
    ];

    fn step(&self) -> u64 {
        self.step
    }

    fn plotted_values(&self) -> Vec<f64> {
        vec![
            self.loss,
            self.ppl,
            self.accuracy * 100.0,
            self.bpb,
            self.lr,
            self.tokens_per_s,
        ]
    }

    fn system(&self) -> (Option<f64>, Option<f64>) {
        (self.cpu_percent, self.memory_gb)
    }

    fn progress_line(&self, total_steps: u64) -> String {
        progress_line(self, total_steps)
    }
}

/// Shows a run's metrics and progress; also measures CPU and memory use.
pub struct Dashboard {
    renderer: Option<Box<dyn MetricsRenderer>>,
    cpu: CpuUse,
    memory: CpuMemory,
    total_steps: u64,
    eval_every: u64,
    last_line: Instant,
}

impl Dashboard {
    /// Starts the dashboard for steps `start_step + 1 ..= total_steps`.
    pub fn new(
        mode: DashboardMode,
        interrupter: &Interrupter,
        start_step: u64,
        total_steps: u64,
        eval_every: u64,
        label: &str,
        plotted: &[Plotted],
    ) -> Self {
        let renderer = (mode == DashboardMode::Tui).then(|| {
            let mut renderer: Box<dyn MetricsRenderer> =
                Box::new(TuiMetricsRendererWrapper::new(interrupter.clone(), None));
            for (name, unit, higher_is_better) in plotted.iter().copied() {
                renderer.register_metric(definition(name, unit, higher_is_better));
            }
            for metric in [
                definition("CPU Usage", Some("%"), false),
                definition("CPU Memory", Some("Gb"), false),
            ] {
                renderer.register_metric(metric);
            }
            let epochs = total_steps.div_ceil(eval_every) as usize;
            renderer.start(epochs, (start_step / eval_every) as usize + 1, None, Some(label));
            renderer
        });
        let mut dashboard = Self {
            renderer,
            cpu: CpuUse::new(),
            memory: CpuMemory::new(),
            total_steps,
            eval_every,
            last_line: Instant::now(),
        };
        dashboard.begin_interval(start_step);
        dashboard
    }

    fn begin_interval(&mut self, step_done: u64) {
        let end = ((step_done / self.eval_every + 1) * self.eval_every).min(self.total_steps);
        if let Some(renderer) = &mut self.renderer {
            renderer.start_split("train", (end - step_done / self.eval_every * self.eval_every) as usize);
        }
    }

    /// CPU use in percent and memory use in GB, sampled now.
    pub fn system_usage(&mut self) -> (Option<f64>, Option<f64>) {
        let metadata = MetricMetadata {
            progress: Progress::new(0, 0, None),
            iteration: None,
            lr: None,
        };
        let cpu = self
            .cpu
            .update(&(), &metadata)
            .ok()
            .and(self.cpu.value())
            .map(|v| v.current());
        let memory = self
            .memory
            .update(&(), &metadata)
            .ok()
            .and(self.memory.value())
            .map(|v| v.current());
        (cpu, memory)
    }

    /// Shows a training step's record.
    pub fn train_step<R: DashboardRecord>(&mut self, record: &R) {
        match &mut self.renderer {
            Some(renderer) => {
                for (&(name, _, _), value) in R::PLOTTED.iter().zip(record.plotted_values()) {
                    renderer.update_train(numeric_state(name, value));
                }
                let (cpu, memory) = record.system();
                if let Some(cpu) = cpu {
                    renderer.update_train(numeric_state("CPU Usage", cpu));
                }
                if let Some(memory) = memory {
                    renderer.update_train(numeric_state("CPU Memory", memory));
                }
                let into_interval = (record.step() - 1) % self.eval_every + 1;
                renderer.update_split(into_interval as usize);
            }
            None if self.last_line.elapsed().as_secs_f64() >= 5.0 || record.step() == self.total_steps => {
                self.last_line = Instant::now();
                println!("{}", record.progress_line(self.total_steps));
            }
            None => {}
        }
    }

    /// Marks the start of an evaluation of `batches` batches.
    pub fn begin_eval(&mut self, batches: usize) {
        if let Some(renderer) = &mut self.renderer {
            renderer.end_split();
            renderer.start_split("valid", batches);
        }
    }

    /// Shows progress inside an evaluation.
    pub fn eval_progress(&mut self, batches_done: usize) {
        if let Some(renderer) = &mut self.renderer {
            renderer.update_split(batches_done);
        }
    }

    /// Shows an evaluation's record and begins the next training interval.
    pub fn valid<R: DashboardRecord>(&mut self, record: &R) {
        match &mut self.renderer {
            Some(renderer) => {
                for (&(name, _, _), value) in R::PLOTTED.iter().zip(record.plotted_values()) {
                    renderer.update_valid(numeric_state(name, value));
                }
                renderer.end_split();
                renderer.update_epoch(record.step().div_ceil(self.eval_every) as usize);
            }
            None => println!("{}", record.progress_line(self.total_steps)),
        }
        if record.step() < self.total_steps {
            self.begin_interval(record.step());
        }
    }

    /// Closes the TUI (restoring the terminal) before anything else is printed; later calls do
    /// nothing.
    pub fn finish(&mut self) {
        if let Some(mut renderer) = self.renderer.take() {
            renderer.end();
            let _ = renderer.on_train_end(None);
        }
    }
}

fn definition(name: &str, unit: Option<&str>, higher_is_better: bool) -> MetricDefinition {
    MetricDefinition {
        metric_id: MetricId::new(Arc::new(name.to_string())),
        name: Arc::new(name.to_string()),
        description: None,
        attributes: MetricAttributes::Numeric(NumericAttributes {
            unit: unit.map(str::to_string),
            higher_is_better,
        }),
    }
}

fn numeric_state(name: &str, value: f64) -> MetricState {
    let entry = SerializedEntry::new(format!("{name}: {value:.4}"), value.to_string());
    MetricState::Numeric(
        MetricEntry::new(MetricId::new(Arc::new(name.to_string())), entry),
        Some(NumericEntry::Value(value)),
    )
}

/// One plain progress line.
pub fn progress_line(record: &MetricsRecord, total_steps: u64) -> String {
    let split = match record.split {
        Split::Train => "train",
        Split::Valid => "valid",
    };
    format!(
        "step {:>6}/{total_steps} {split} loss {:.4} ppl {:.2} acc {:.3} bpb {:.3} | lr {:.2e} | {:.0} tok/s | {:.0}s",
        record.step,
        record.loss,
        record.ppl,
        record.accuracy,
        record.bpb,
        record.lr,
        record.tokens_per_s,
        record.elapsed_s
    )
}
