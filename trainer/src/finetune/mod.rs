//! Fine-tuning a pre-trained Transformer on a labelled classification task: the whole model,
//! or a linear probe on its frozen features, or the same architecture from random weights as
//! the baseline that shows what pre-training bought.

mod classifier;
mod config;
mod metrics;

use classifier::pad;
pub use classifier::{TrainedClassifier, encode_for_classifier, predict};
pub use config::{FinetuneConfig, Start};
pub use metrics::{ClassMetrics, FinetuneRecord, FinetuneSummary, macro_f1, predicted_labels};

use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::tensor::Device;
use burn::train::Interrupter;
use primer_datasets::task::{Example, Task};
use primer_datasets::tokenizer::PrimerTokenizer;
use primer_model::tensors::ids;
use primer_model::{Classifier, Transformer};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::error::TrainError;
use crate::metrics::{MetricsLog, Split};
use crate::optim::{adamw, clip_global_norm};
use crate::run_dir::RunDir;
use crate::schedule::learning_rate;
use crate::tui::{Dashboard, DashboardMode, DashboardRecord};

/// A fine-tuning run to carry out.
pub struct FinetuneJob<'a> {
    /// Where it writes.
    pub run_dir: &'a RunDir,
    /// Its config (already saved as `finetune.json`).
    pub config: &'a FinetuneConfig,
    /// The task.
    pub task: &'a Task,
    /// The tokenizer.
    pub tokenizer: &'a PrimerTokenizer,
    /// The pre-trained encoder (on `host`), or `None` for random weights.
    pub encoder: Option<Transformer>,
    /// The CPU device where weights are made before they move to the training device.
    pub host: Device,
    /// How progress is shown.
    pub dashboard: DashboardMode,
}

/// Fine-tunes, evaluating on the validation split after every epoch and keeping the weights of
/// the best one in `model.bpk`; stops early after `patience` epochs without improvement.
/// Returns `None` when interrupted (nothing is kept).
pub fn finetune(
    job: FinetuneJob,
    device: &Device,
    interrupter: &Interrupter,
) -> Result<Option<FinetuneSummary>, TrainError> {
    let config = job.config;
    let started = Instant::now();
    let [(train_ids, train_labels), (valid_ids, valid_labels)] =
        [&job.task.train, &job.task.valid].map(|examples| encoded(&job, examples));
    let (train_ids, valid_ids) = (train_ids?, valid_ids?);

    let device = device.clone().autodiff();
    let (mut model, trained_parameters) = init_classifier(&job, &device);
    let mut optim = adamw(0.9, 0.999, config.weight_decay);

    let steps_per_epoch = train_ids.len().div_ceil(config.batch_size) as u64;
    let total_steps = steps_per_epoch * config.epochs as u64;
    let warmup = (total_steps as f64 * config.warmup_ratio).round() as u64;
    let mut log = MetricsLog::open(&job.run_dir.metrics(), None)?;
    let mut dashboard = progress(&job, interrupter, total_steps, steps_per_epoch);
    let mut best: Option<(usize, ClassMetrics, Vec<usize>)> = None;
    let mut step = 0u64;
    // The learning rate of the latest step, which the epoch's validation record also carries.
    let mut lr = 0.0;
    let mut epochs_run = 0;
    for epoch in 1..=config.epochs {
        let mut order: Vec<usize> = (0..train_ids.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(config.seed ^ ((epoch as u64) << 32)));
        for batch in order.chunks(config.batch_size) {
            step += 1;
            let step_started = Instant::now();
            device.seed(config.seed.wrapping_add(step));
            lr = learning_rate(step, total_steps, warmup, config.lr, 0.0);
            let (stepped, loss, correct) =
                classifier_step(model, &mut optim, lr, batch, (&train_ids, &train_labels), &job);
            model = stepped;
            let record = FinetuneRecord {
                loss,
                accuracy: correct as f64 / batch.len() as f64,
                examples_per_s: batch.len() as f64 / step_started.elapsed().as_secs_f64(),
                ..FinetuneRecord::at(step, epoch, Split::Train, lr, &started)
            };
            log.append(&record)?;
            dashboard.train_step(&record);
            if interrupter.should_stop() {
                dashboard.finish();
                return Ok(None);
            }
        }
        epochs_run = epoch;
        let inference = model.valid();
        let pad_id = job.tokenizer.specials().pad;
        let (metrics, probabilities, examples_per_s) =
            validate(&inference, (&valid_ids, &valid_labels), pad_id, config);
        let record = FinetuneRecord::valid(
            &metrics,
            examples_per_s,
            FinetuneRecord::at(step, epoch, Split::Valid, lr, &started),
        );
        log.append(&record)?;
        dashboard.valid(&record);
        if best.as_ref().is_none_or(|(_, b, _)| metrics.accuracy > b.accuracy) {
            best = Some((epoch, metrics, predicted_labels(&probabilities)));
            crate::checkpoint::save_weights(&inference, &job.run_dir.model())?;
        } else if best
            .as_ref()
            .is_some_and(|(best_epoch, _, _)| epoch - best_epoch >= config.patience)
        {
            break;
        }
    }
    dashboard.finish();
    let ran = Ran {
        train_examples: train_ids.len(),
        epochs_run,
        steps: step,
        trained_parameters,
        started,
    };
    write_summary(&job, best.expect("at least one epoch ran"), ran).map(Some)
}

/// What a fine-tuning run did, for its summary.
struct Ran {
    train_examples: usize,
    epochs_run: usize,
    steps: u64,
    trained_parameters: usize,
    started: Instant,
}

/// Writes `summary.json` of a run whose kept weights are `best`'s: its epoch, validation
/// metrics and predicted labels.
fn write_summary(
    job: &FinetuneJob,
    (best_epoch, valid, valid_predicted): (usize, ClassMetrics, Vec<usize>),
    ran: Ran,
) -> Result<FinetuneSummary, TrainError> {
    let config = job.config;
    let summary = FinetuneSummary {
        task: config.task.clone(),
        start: config.start.clone(),
        freeze_encoder: config.freeze_encoder,
        objective: config.objective.clone(),
        train_examples: ran.train_examples,
        best_epoch,
        epochs_run: ran.epochs_run,
        steps: ran.steps,
        valid,
        valid_predicted,
        trained_parameters: ran.trained_parameters,
        wall_time_s: ran.started.elapsed().as_secs_f64(),
    };
    let json = serde_json::to_vec_pretty(&summary).expect("summaries serialize");
    primer_files::atomic_write(&job.run_dir.summary(), &json)?;
    Ok(summary)
}

/// `examples` encoded for the classifier as the job's objective frames them, and their labels.
fn encoded(job: &FinetuneJob, examples: &[Example]) -> (Result<Vec<Vec<u32>>, TrainError>, Vec<usize>) {
    let config = job.config;
    let ids = examples
        .iter()
        .map(|e| encode_for_classifier(job.tokenizer, config.objective.info(), &e.text, config.max_len))
        .collect();
    (ids, examples.iter().map(|e| e.label).collect())
}

/// The fine-tune's dashboard: `total_steps` steps, validated every `steps_per_epoch`.
fn progress(job: &FinetuneJob, interrupter: &Interrupter, total_steps: u64, steps_per_epoch: u64) -> Dashboard {
    let label = format!("{} {}", job.config.task, job.run_dir.root.display());
    Dashboard::new(
        job.dashboard,
        interrupter,
        0,
        total_steps,
        steps_per_epoch,
        &label,
        FinetuneRecord::PLOTTED,
    )
}

/// The classifier to fine-tune, on `device`, and how many parameters training changes. Its
/// weights are made on the host and copied, so every backend starts from the same ones.
fn init_classifier(job: &FinetuneJob, device: &Device) -> (Classifier, usize) {
    let config = job.config;
    job.host.seed(config.seed);
    let encoder = job.encoder.clone().unwrap_or_else(|| config.model.init(&job.host));
    let weights = config.classifier().init(encoder, &job.host).into_record();
    let mut model = config
        .classifier()
        .init(config.model.init(device), device)
        .load_record(weights);
    if config.freeze_encoder {
        model.encoder = model.encoder.freeze();
    }
    let trained = match config.freeze_encoder {
        true => model.head.num_params(),
        false => model.num_params(),
    };
    (model, trained)
}

/// One optimizer step on the examples `batch` (indices into the encoded examples and their
/// labels): the stepped model, the batch's mean loss and how many it classified right.
fn classifier_step(
    model: Classifier,
    optim: &mut burn::optim::ModuleOptimizer,
    lr: f64,
    batch: &[usize],
    (encoded, all_labels): (&[Vec<u32>], &[usize]),
    job: &FinetuneJob,
) -> (Classifier, f64, i64) {
    let rows: Vec<&[u32]> = batch.iter().map(|&i| encoded[i].as_slice()).collect();
    let labels: Vec<usize> = batch.iter().map(|&i| all_labels[i]).collect();
    let device = model.devices()[0].clone();
    let (tokens, lengths) = pad(&rows, job.tokenizer.specials().pad, &device);
    let targets = ids(labels.iter().map(|&label| label as u32), &device);
    let logits = model.forward(tokens, &lengths);
    let correct = logits
        .clone()
        .argmax(1)
        .reshape([labels.len()])
        .equal(targets.clone())
        .int()
        .sum()
        .into_scalar::<i64>();
    let loss = CrossEntropyLossConfig::new().init(&device).forward(logits, targets);
    let mut grads = GradientsParams::from_grads(loss.backward(), &model);
    clip_global_norm(&model, &mut grads, 1.0);
    (optim.step(lr, model, grads), loss.into_scalar::<f64>(), correct)
}

/// The classifier's metrics on the encoded validation texts and their labels, its label
/// probabilities, and the examples it read per second.
fn validate(
    model: &Classifier,
    (encoded, labels): (&[Vec<u32>], &[usize]),
    pad_id: u32,
    config: &FinetuneConfig,
) -> (ClassMetrics, Vec<Vec<f32>>, f64) {
    let started = Instant::now();
    let probabilities = predict(model, encoded, pad_id, config.batch_size * 4);
    let metrics = ClassMetrics::of(&probabilities, labels, config.labels.len());
    (
        metrics,
        probabilities,
        encoded.len() as f64 / started.elapsed().as_secs_f64(),
    )
}
