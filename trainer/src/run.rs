//! The pre-training loop.
//!
//! primer drives its own loop rather than burn-train's `SupervisedTraining`: the learner
//! checkpoints only at epoch ends and keeps no data cursor or RNG state, so it cannot resume
//! exactly from a step. The loop still uses burn-train's pieces: its TUI renderer and system
//! metrics (see [`crate::tui`]), burn's `ModuleOptimizer` and burnpack records.

use std::path::PathBuf;
use std::time::Instant;

use burn::module::Module;
use burn::tensor::Device;
use burn::train::Interrupter;
use primer_datasets::DataError;
use primer_datasets::blocks::{BlockStream, eval_starts, read_blocks};
use primer_datasets::prepare::PreparedData;
use primer_datasets::tokenizer::PrimerTokenizer;
use primer_model::Precision;
use primer_objectives::scoring::Text;
use primer_objectives::{Objective, ObjectiveConfig, Sampler, batch_seed};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{Checkpointer, TrainState, load_weights, save_networks};
use crate::collective::{Collective, my_micro_batches};
use crate::config::RunConfig;
use crate::divergence::{DIVERGED_BASELINES, DivergenceGuard};
use crate::error::TrainError;
use crate::eval::{EvalMetrics, EvalSet, evaluate};
use crate::loss_scale::LossScale;
use crate::metrics::{MetricsLog, MetricsRecord, Split};
use crate::mfu::mfu;
use crate::networks::Networks;
use crate::optim::optimizer;
use crate::record::{BatchRecorder, RecordedBatch};
use crate::run_dir::RunDir;
use crate::schedule::learning_rate;
use crate::step::{gradient_step, step_batches};
use crate::tensorboard::TensorBoardWriter;
use crate::tui::{Dashboard, DashboardMode, DashboardRecord};

/// Micro-batch index that seeds a step's dropout (masks use 0, 1, ...).
const DROPOUT_SEED_MICRO: u64 = u64::MAX;

/// A pre-training run to carry out.
pub struct PretrainJob<'a> {
    /// Where it writes.
    pub run_dir: &'a RunDir,
    /// Its resolved config (already saved in the run directory).
    pub config: &'a RunConfig,
    /// Its data.
    pub data: &'a PreparedData,
    /// Its tokenizer.
    pub tokenizer: &'a PrimerTokenizer,
    /// Continue from the latest checkpoint.
    pub resume: bool,
    /// Stop cleanly, with a checkpoint, once this step is done.
    pub halt_after: Option<u64>,
    /// How progress is shown.
    pub dashboard: DashboardMode,
    /// Also write the metrics as TensorBoard event files under `RUN_DIR/tensorboard/`.
    pub tensorboard: bool,
    /// The training device's peak rate, FLOP/s, that MFU is measured against.
    pub peak_flops: f64,
    /// A CPU device on which parameters are initialised before they are copied to the training
    /// device, so that every backend starts from the same weights.
    pub host: Device,
    /// Minimal pairs (acceptable, unacceptable), tokenized, scored at every evaluation; may be
    /// empty.
    pub minimal_pairs: &'a [[Text; 2]],
    /// The weights (`model.bpk` of another run) a new run starts from instead of its seed's
    /// draws: continued pre-training. Its model config must be the run's.
    pub init: Option<PathBuf>,
    /// The processes that train the run together ([`SingleProcess`](crate::collective::SingleProcess) for one):
    /// each computes its share of every step's micro-batches, and only rank 0 writes.
    pub collective: &'a dyn Collective,
    /// Write what the run trains on (initial weights, every step's batches, final weights) to
    /// this new folder (see [`crate::record`]); a fresh run of one process only.
    pub record_batches: Option<PathBuf>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// All steps done; `model.bpk` and `summary.json` written.
    Completed(Summary),
    /// Stopped by `--halt-after` after this step, with a checkpoint.
    Halted(u64),
    /// Stopped by a signal or the dashboard after this step, with a checkpoint.
    Interrupted(u64),
}

/// `summary.json`: the final numbers of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Objective.
    pub objective: ObjectiveConfig,
    /// Trainable parameters.
    pub parameters: usize,
    /// Optimizer steps.
    pub steps: u64,
    /// Input tokens seen.
    pub tokens_seen: u64,
    /// Training wall time, seconds, across resumes.
    pub wall_time_s: f64,
    /// Final validation metrics.
    pub valid: EvalMetrics,
    /// Peak resident memory of the process, GB (Linux; `None` elsewhere). Device memory of
    /// GPU backends is not included.
    #[serde(default)]
    pub peak_rss_gb: Option<f64>,
}

/// The process's peak resident set size in GB, from `/proc/self/status` (`VmHWM`).
fn peak_rss_gb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / (1024.0 * 1024.0))
}

/// The validation set of a run: fixed blocks spread over the valid shard.
pub fn valid_starts(data: &PreparedData, block_len: usize, blocks: usize) -> Result<Vec<usize>, TrainError> {
    let valid_name = match &data.meta.valid_corpus {
        Some(valid) => format!("validation corpus {valid}"),
        None => format!("valid split of {}", data.meta.corpus),
    };
    let train_name = format!("train split of {}", data.meta.corpus);
    for (what, shard) in [(train_name, &data.train), (valid_name, &data.valid)] {
        if shard.len() < block_len {
            return Err(DataError::TooFewTokens {
                what,
                tokens: shard.len() as u64,
                block: block_len,
            }
            .into());
        }
    }
    Ok(eval_starts(data.valid.len(), block_len, blocks))
}

/// Trains, evaluating, logging and checkpointing as configured, until done, halted or
/// interrupted. The caller holds the run directory's lock.
pub fn pretrain(job: PretrainJob, device: &Device, interrupter: &Interrupter) -> Result<Outcome, TrainError> {
    let config = job.config;
    let train = &config.train;
    let objective = config.objective.build(job.tokenizer);
    let block_len = config.objective.info().block_len(train.seq_len);
    let valid_blocks = valid_starts(job.data, block_len, train.eval_batches * train.batch_size)?;
    let tokens_per_byte = |stats: primer_datasets::prepare::SplitStats| stats.tokens as f64 / stats.bytes as f64;
    let device = device.clone().autodiff();
    let checkpointer = Checkpointer::new(job.run_dir.checkpoints(), train.keep_checkpoints);
    let (mut networks, mut optim, mut state) = restore(&job, objective.as_ref(), &checkpointer, &device)?;
    let recorder = match &job.record_batches {
        Some(dir) => Some(BatchRecorder::create(dir, &networks)?),
        None => None,
    };
    networks.model = networks.model.with_precision(train.precision);
    let run = TrainingLoop {
        job: &job,
        objective: objective.as_ref(),
        valid_set: EvalSet {
            shard: &job.data.valid,
            starts: &valid_blocks,
            block_len,
            batch_size: train.batch_size,
            tokens_per_byte: tokens_per_byte(job.data.meta.valid),
        },
        train_tokens_per_byte: tokens_per_byte(job.data.meta.train),
        flops_per_token: config.model.train_flops_per_token(train.seq_len),
        divergence: DivergenceGuard {
            objective: objective.as_ref(),
            loss_limit: DIVERGED_BASELINES * objective.chance_loss(config.model.vocab_size),
            config,
            run_dir: job.run_dir,
        },
        checkpointer,
        sampler: Sampler::new(
            read_blocks(&job.data.valid, &valid_blocks[..1], block_len).tokens,
            train.seed,
        ),
        device,
        clock: (Instant::now(), state.elapsed_s),
        recorder,
    };
    let parameters = networks.num_params();
    // Only rank 0 writes metrics and samples and shows progress.
    let mut outputs = if job.collective.writes() {
        Some(Outputs::open(&job, state.step, interrupter)?)
    } else {
        None
    };
    let mut stream = BlockStream::new(job.data.train.len(), block_len, train.seed);
    // Validation of the newest weights; the summary reuses it rather than evaluating again.
    let mut last_valid: Option<(u64, EvalMetrics)> = None;
    while state.step < train.steps {
        networks = run.train_step(networks, &mut optim, &mut state, &mut stream, &mut outputs)?;
        if let Some(outputs) = outputs.as_mut()
            && (state.step.is_multiple_of(train.eval_every) || state.step == train.steps)
        {
            last_valid = Some((state.step, run.evaluate_and_sample(&networks, &state, outputs)?));
        }
        let stop = run.checkpoint_or_stop(&networks, &optim, &state, &mut stream, &mut outputs, interrupter)?;
        if let Some(outcome) = stop {
            finish_progress(&mut outputs);
            return Ok(outcome);
        }
    }
    finish_progress(&mut outputs);
    if let Some(recorder) = &run.recorder {
        recorder.finish(&networks)?;
    }
    run.finish(networks, &state, last_valid, parameters)
}

/// Closes the progress view of the rank that shows one.
fn finish_progress(outputs: &mut Option<Outputs>) {
    if let Some(outputs) = outputs {
        outputs.dashboard.finish();
    }
}

/// What the loop reads at every step.
struct TrainingLoop<'a> {
    job: &'a PretrainJob<'a>,
    objective: &'a dyn Objective,
    valid_set: EvalSet<'a>,
    /// Tokens per byte of the train split, for the training records' bits per byte.
    train_tokens_per_byte: f64,
    /// Training FLOPs per token, for MFU.
    flops_per_token: f64,
    divergence: DivergenceGuard<'a>,
    checkpointer: Checkpointer,
    sampler: Sampler,
    /// The training device, with autodiff.
    device: Device,
    /// When this process started training, and the training time of the run before it.
    clock: (Instant, f64),
    /// Where the run's batches are recorded, if anywhere.
    recorder: Option<BatchRecorder>,
}

/// What the loop writes to: the metrics and samples logs and the dashboard.
struct Outputs {
    log: MetricsLog,
    samples: MetricsLog,
    dashboard: Dashboard,
}

impl Outputs {
    /// The run's logs opened to go on after `step`, and its dashboard.
    fn open(job: &PretrainJob, step: u64, interrupter: &Interrupter) -> Result<Self, TrainError> {
        let train = &job.config.train;
        let mut log = MetricsLog::resume(&job.run_dir.metrics(), step)?;
        if job.tensorboard {
            log = log.mirror_to(TensorBoardWriter::create(&job.run_dir.tensorboard())?);
        }
        let label = format!("{} {}", job.config.objective, job.run_dir.root.display());
        Ok(Self {
            log,
            samples: MetricsLog::open(&job.run_dir.samples(), Some(step))?,
            dashboard: Dashboard::new(
                job.dashboard,
                interrupter,
                step,
                train.steps,
                train.eval_every,
                &label,
                MetricsRecord::PLOTTED,
            ),
        })
    }
}

impl TrainingLoop<'_> {
    /// One optimizer step after `state`: the gradients of its micro-batches, checked for
    /// divergence before they are applied, and its training record.
    fn train_step(
        &self,
        networks: Networks,
        optim: &mut burn::optim::ModuleOptimizer,
        state: &mut TrainState,
        stream: &mut BlockStream,
        outputs: &mut Option<Outputs>,
    ) -> Result<Networks, TrainError> {
        let train = &self.job.config.train;
        let step = state.step + 1;
        let started = Instant::now();
        self.device.seed(batch_seed(train.seed, step, DROPOUT_SEED_MICRO));
        let lr = learning_rate(step, train.steps, train.warmup_steps, train.lr, train.min_lr);
        let micros = my_micro_batches(self.job.collective, train.grad_accum);
        let batches = step_batches(self.job, self.objective, stream, state, &self.device, &micros);
        let recorded = self
            .recorder
            .as_ref()
            .map(|_| batches.iter().map(RecordedBatch::of).collect::<Vec<_>>());
        let loss_scale = state.loss_scale.map(|scale| scale.scale);
        let (result, grads) = gradient_step(
            &networks,
            batches,
            self.objective,
            train.grad_clip,
            loss_scale,
            self.job.collective,
        );
        let loss = result.nll / result.targets as f64;
        // A float16 step whose gradients overflowed is skipped: its data consumed, no update.
        let applied = match state.loss_scale.as_mut() {
            Some(scale) => scale.update(result.grad_norm.is_finite()),
            None => true,
        };
        let grad_norm = applied.then_some(result.grad_norm);
        if let Err(error) = self
            .divergence
            .check(step, loss, grad_norm, state.loss_scale.as_ref(), &self.checkpointer)
        {
            finish_progress(outputs);
            return Err(error);
        }
        if let (Some(recorder), Some(batches)) = (&self.recorder, &recorded) {
            recorder.step(step, lr, loss, result.grad_norm, batches)?;
        }
        let networks = match applied {
            true => optim.step(lr, networks, grads),
            false => networks,
        };

        state.step = step;
        state.cursor += (train.grad_accum * train.batch_size) as u64;
        state.tokens_seen += train.tokens_per_step();
        state.elapsed_s = self.clock.1 + self.clock.0.elapsed().as_secs_f64();
        let Some(outputs) = outputs.as_mut() else {
            return Ok(networks);
        };
        let metrics = crate::eval::metrics(
            result.nll,
            result.correct,
            result.targets as u64,
            self.train_tokens_per_byte,
            train.tokens_per_step() as f64 / started.elapsed().as_secs_f64(),
        );
        let (cpu_percent, memory_gb) = outputs.dashboard.system_usage();
        let record = MetricsRecord {
            grad_norm,
            loss_scale: state.loss_scale.map(|scale| scale.scale),
            skipped_steps: state.loss_scale.map(|scale| scale.skipped_steps),
            mfu: Some(mfu(self.flops_per_token, metrics.tokens_per_s, self.job.peak_flops)),
            cpu_percent,
            memory_gb,
            sync_s: (self.job.collective.size() > 1).then_some(result.sync_s),
            ..make_record(step, Split::Train, state, lr, &metrics)
        };
        outputs.log.append(&record)?;
        outputs.dashboard.train_step(&record);
        Ok(networks)
    }

    /// Validates the weights after `state.step` and logs the record and a sample.
    fn evaluate_and_sample(
        &self,
        networks: &Networks,
        state: &TrainState,
        outputs: &mut Outputs,
    ) -> Result<EvalMetrics, TrainError> {
        let train = &self.job.config.train;
        let lr = learning_rate(state.step, train.steps, train.warmup_steps, train.lr, train.min_lr);
        let dashboard = &mut outputs.dashboard;
        dashboard.begin_eval(self.valid_set.starts.len().div_ceil(train.batch_size));
        let inference = networks.valid();
        let device = inference.devices()[0].clone();
        let metrics = validate(self.job, &inference, self.objective, &self.valid_set, |done| {
            dashboard.eval_progress(done)
        });
        let record = make_record(state.step, Split::Valid, state, lr, &metrics);
        outputs.log.append(&record)?;
        let sample = self.sampler.sample(
            self.objective,
            inference.model_and_companion(),
            self.job.tokenizer,
            state.step,
            &device,
        );
        outputs.samples.append(&sample)?;
        outputs.dashboard.valid(&record);
        Ok(metrics)
    }

    /// Checkpoints when one is due, or when the run halts or is interrupted after this step
    /// (weights that diverge on the next batch are never checkpointed); says how the run ends,
    /// if it ends here.
    fn checkpoint_or_stop(
        &self,
        networks: &Networks,
        optim: &burn::optim::ModuleOptimizer,
        state: &TrainState,
        stream: &mut BlockStream,
        outputs: &mut Option<Outputs>,
        interrupter: &Interrupter,
    ) -> Result<Option<Outcome>, TrainError> {
        let (train, step) = (&self.job.config.train, state.step);
        let halted = self.job.halt_after.is_some_and(|h| step >= h);
        // A signal to any rank stops them all after the same step.
        let interrupted = self.job.collective.any(interrupter.should_stop());
        if step.is_multiple_of(train.checkpoint_every) || step == train.steps || halted || interrupted {
            // Every rank probes (they hold the same weights), so all stop on divergence alike.
            let inference = networks.valid();
            let next = step_batches(self.job, self.objective, stream, state, &inference.devices()[0], &[0]);
            if let Err(error) = self.divergence.probe(&inference, next, step, &self.checkpointer) {
                finish_progress(outputs);
                return Err(error);
            }
            if self.job.collective.writes() {
                self.checkpointer.save(networks, optim, state)?;
            }
        }
        Ok(match (halted, interrupted) {
            (true, _) => Some(Outcome::Halted(step)),
            (false, true) => Some(Outcome::Interrupted(step)),
            (false, false) => None,
        })
    }

    /// The end of a completed run: its final validation (reused when the last step was
    /// validated in this process), weights and `summary.json`.
    fn finish(
        &self,
        networks: Networks,
        state: &TrainState,
        last_valid: Option<(u64, EvalMetrics)>,
        parameters: usize,
    ) -> Result<Outcome, TrainError> {
        let final_networks = networks.valid();
        // A run resumed after its last step has no evaluation in this process yet.
        let valid = match last_valid {
            Some((step, metrics)) if step == state.step => metrics,
            _ => validate(self.job, &final_networks, self.objective, &self.valid_set, |_| {}),
        };
        let summary = Summary {
            objective: self.job.config.objective.clone(),
            parameters,
            steps: state.step,
            tokens_seen: state.tokens_seen,
            wall_time_s: state.elapsed_s,
            peak_rss_gb: peak_rss_gb(),
            valid,
        };
        if !self.job.collective.writes() {
            return Ok(Outcome::Completed(summary));
        }
        save_networks(&final_networks, &self.job.run_dir.model())?;
        let json = serde_json::to_vec_pretty(&summary).expect("summaries serialize");
        primer_files::atomic_write(&self.job.run_dir.summary(), &json)?;
        Ok(Outcome::Completed(summary))
    }
}

/// The model, optimizer and state to start from: fresh, or the latest checkpoint of a resumed
/// run after removing what killed writers left and checking the state belongs to this run.
fn restore(
    job: &PretrainJob,
    objective: &dyn Objective,
    checkpointer: &Checkpointer,
    device: &Device,
) -> Result<(Networks, burn::optim::ModuleOptimizer, TrainState), TrainError> {
    let train = &job.config.train;
    let companion = objective.companion(&job.config.model);
    let networks = Networks::init_on_host(&job.config.model, companion.as_ref(), train.seed, &job.host, device);
    let networks = match &job.init {
        Some(weights) => Networks {
            model: load_weights(networks.model, weights).map_err(|e| {
                TrainError::Invalid(format!(
                    "{}: {e}: the run this one continues is corrupt or gone",
                    weights.display()
                ))
            })?,
            ..networks
        },
        None => networks,
    };
    let optim = optimizer(train);
    let fresh = TrainState {
        step: 0,
        cursor: 0,
        tokens_seen: 0,
        elapsed_s: 0.0,
        loss_scale: (train.precision == Precision::F16).then(LossScale::default),
    };
    if !job.resume {
        return Ok((networks, optim, fresh));
    }
    // What killed writers left is the writer's to remove.
    if job.collective.writes() {
        checkpointer.remove_leftovers()?;
    }
    let (networks, optim, state) = match checkpointer.load_latest(networks, optim)? {
        (networks, optim, Some(state)) => (networks, optim, state),
        (networks, optim, None) => return Ok((networks, optim, fresh)),
    };
    let expected_cursor = state.step * (train.grad_accum * train.batch_size) as u64;
    if state.step > train.steps
        || state.cursor != expected_cursor
        || state.tokens_seen != state.step * train.tokens_per_step()
    {
        return Err(TrainError::Invalid(format!(
            "the latest checkpoint of {} is not one of this run (step {} of {}, cursor {}, {} tokens): delete that checkpoint folder to resume from the one before, or start over with --overwrite",
            job.run_dir.root.display(),
            state.step,
            train.steps,
            state.cursor,
            state.tokens_seen
        )));
    }
    Ok((networks, optim, state))
}

fn make_record(step: u64, split: Split, state: &TrainState, lr: f64, metrics: &EvalMetrics) -> MetricsRecord {
    MetricsRecord {
        step,
        split,
        tokens_seen: state.tokens_seen,
        elapsed_s: state.elapsed_s,
        loss: metrics.loss,
        ppl: metrics.ppl,
        accuracy: metrics.accuracy,
        bpb: metrics.bpb,
        lr,
        tokens_per_s: metrics.tokens_per_s,
        grad_norm: None,
        loss_scale: None,
        skipped_steps: None,
        mfu: None,
        cpu_percent: None,
        memory_gb: None,
        sync_s: None,
        minimal_pairs_accuracy: metrics.minimal_pairs_accuracy,
        objective_metrics: metrics.objective_metrics.clone(),
    }
}

/// Rows per forward pass when scoring minimal pairs.
const PAIR_BATCH_ROWS: usize = 32;

/// Validation of `networks` (an inference copy): the objective's metrics, and the share of the
/// job's minimal pairs they score right.
fn validate(
    job: &PretrainJob,
    networks: &Networks,
    objective: &dyn Objective,
    set: &EvalSet,
    progress: impl FnMut(usize),
) -> EvalMetrics {
    let device = networks.devices()[0].clone();
    let mut metrics = evaluate(
        networks.model_and_companion(),
        objective,
        set,
        job.config.train.seed,
        &device,
        progress,
    );
    if !job.minimal_pairs.is_empty() {
        let scoring = objective.info().scoring;
        let right = scoring.prefers_first(
            networks.model_and_companion(),
            job.tokenizer.specials(),
            job.minimal_pairs,
            PAIR_BATCH_ROWS,
            &device,
        );
        metrics.minimal_pairs_accuracy = Some(right.iter().filter(|&&ok| ok).count() as f64 / right.len() as f64);
    }
    metrics
}
