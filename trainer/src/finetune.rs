//! Fine-tuning a pre-trained Transformer on a labelled classification task: the whole model,
//! or a linear probe on its frozen features, or the same architecture from random weights as
//! the baseline that shows what pre-training bought.

use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::GradientsParams;
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Int, Tensor};
use burn::train::Interrupter;
use primer_datasets::task::{Example, Task};
use primer_datasets::tokenizer::PrimerTokenizer;
use primer_model::{AttentionMode, Classifier, ClassifierConfig, FieldError, Pooling, Transformer, TransformerConfig};
use primer_objectives::tensors::{host_floats, ids};
use primer_objectives::{ObjectiveConfig, ObjectiveInfo};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::metrics::{MetricsLog, Split};
use crate::optim::{adamw, clip_global_norm};
use crate::run_dir::RunDir;
use crate::schedule::learning_rate;
use crate::tui::{Dashboard, DashboardMode, DashboardRecord, Plotted};

/// What a fine-tuning run starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Start {
    /// The weights of a pre-training run.
    Pretrained,
    /// Random weights: the baseline.
    Scratch,
}

/// `finetune.json`: everything that defines a fine-tuning run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FinetuneConfig {
    /// The pre-training run the architecture and tokenizer (and, unless from scratch, the
    /// weights) come from.
    pub from: std::path::PathBuf,
    /// Pre-trained weights or random ones.
    pub start: Start,
    /// Train only the head on frozen encoder features (a linear probe).
    pub freeze_encoder: bool,
    /// The objective the encoder was pre-trained with; it fixes the attention mode and framing.
    pub objective: ObjectiveConfig,
    /// The encoder's architecture.
    pub model: TransformerConfig,
    /// How hidden states are pooled.
    pub pooling: Pooling,
    /// The task's name.
    pub task: String,
    /// Label names, in the head's order.
    pub labels: Vec<String>,
    /// Training examples used (after `--train-limit`).
    pub train_examples: usize,
    /// `--train-limit`, when given.
    pub train_limit: Option<usize>,
    /// Tokens per example at most, special tokens included.
    pub max_len: usize,
    /// Passes over the training examples at most.
    pub epochs: usize,
    /// Examples per optimizer step.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// AdamW weight decay of weight matrices.
    pub weight_decay: f64,
    /// Share of the steps spent warming the learning rate up.
    pub warmup_ratio: f64,
    /// Stop after this many epochs without a better validation accuracy.
    pub patience: usize,
    /// Dropout before the head.
    pub head_dropout: f64,
    /// Seeds the head, the example order and dropout.
    pub seed: u64,
    /// sha256 of the tokenizer.
    pub tokenizer_sha256: String,
}

impl FinetuneConfig {
    /// The encoder's attention mode.
    pub fn attention(&self) -> AttentionMode {
        self.objective.info().attention.clone()
    }

    /// The classifier's architecture.
    pub fn classifier(&self) -> ClassifierConfig {
        ClassifierConfig::new(self.labels.len(), self.pooling, self.attention()).with_dropout(self.head_dropout)
    }

    /// Checks option ranges; messages name the flag.
    pub fn validate(&self) -> Result<(), FieldError> {
        FieldError::at_least_one([
            ("epochs", self.epochs),
            ("batch_size", self.batch_size),
            ("patience", self.patience),
        ])?;
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(FieldError::new(
                "lr",
                format!("`lr` {} must be a positive number", self.lr),
            ));
        }
        for (field, value) in [("warmup_ratio", self.warmup_ratio), ("head_dropout", self.head_dropout)] {
            if !(0.0..1.0).contains(&value) {
                return Err(FieldError::new(field, format!("`{field}` {value} must be in [0, 1)")));
            }
        }
        if self.max_len < 3 || self.max_len > self.model.max_seq_len {
            return Err(FieldError::new(
                "max_len",
                format!(
                    "`max_len` {} must be between 3 and the model's context, {}",
                    self.max_len, self.model.max_seq_len
                ),
            ));
        }
        Ok(())
    }
}

/// Token ids of a text as the classifier reads it, framed as the encoder's objective frames
/// it (`[CLS] text [SEP]` for masked-LM encoders). Texts longer than `max_len` lose their end.
pub fn encode_for_classifier(
    tokenizer: &PrimerTokenizer,
    objective: &ObjectiveInfo,
    text: &str,
    max_len: usize,
) -> Result<Vec<u32>, TrainError> {
    Ok(objective
        .framing
        .frame(tokenizer.specials(), tokenizer.encode(text)?, max_len))
}

/// Classification metrics over a set of examples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    /// Mean cross-entropy, nats.
    pub loss: f64,
    /// Share of examples whose most likely label is right.
    pub accuracy: f64,
    /// F1 averaged over labels with equal weight.
    pub macro_f1: f64,
    /// Examples scored.
    pub examples: usize,
}

impl ClassMetrics {
    /// Metrics of predicted label probabilities against the true labels.
    pub fn of(probabilities: &[Vec<f32>], labels: &[usize], n_labels: usize) -> Self {
        let predicted = predicted_labels(probabilities);
        let loss = probabilities
            .iter()
            .zip(labels)
            .map(|(p, &label)| -(p[label].max(1e-12) as f64).ln())
            .sum::<f64>()
            / labels.len().max(1) as f64;
        let correct = predicted.iter().zip(labels).filter(|(p, l)| p == l).count();
        Self {
            loss,
            accuracy: correct as f64 / labels.len().max(1) as f64,
            macro_f1: macro_f1(&predicted, labels, n_labels),
            examples: labels.len(),
        }
    }
}

/// The most likely label of each example.
pub fn predicted_labels(probabilities: &[Vec<f32>]) -> Vec<usize> {
    probabilities
        .iter()
        .map(|p| primer_inference::generate::argmax(p) as usize)
        .collect()
}

/// F1 per label (0 where a label is never predicted nor present), averaged.
pub fn macro_f1(predicted: &[usize], labels: &[usize], n_labels: usize) -> f64 {
    let f1 = |label: usize| {
        let tp = predicted
            .iter()
            .zip(labels)
            .filter(|&(&p, &l)| p == label && l == label)
            .count() as f64;
        let predicted_n = predicted.iter().filter(|&&p| p == label).count() as f64;
        let actual_n = labels.iter().filter(|&&l| l == label).count() as f64;
        if predicted_n + actual_n == 0.0 {
            0.0
        } else {
            2.0 * tp / (predicted_n + actual_n)
        }
    };
    (0..n_labels).map(f1).sum::<f64>() / n_labels as f64
}

/// One line of a fine-tuning run's `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinetuneRecord {
    /// Optimizer step (1-based).
    pub step: u64,
    /// Epoch (1-based).
    pub epoch: usize,
    /// Split.
    pub split: Split,
    /// Mean cross-entropy, nats.
    pub loss: f64,
    /// Accuracy.
    pub accuracy: f64,
    /// Macro-F1 (valid only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub macro_f1: Option<f64>,
    /// Learning rate.
    pub lr: f64,
    /// Examples per second of the step (train) or the evaluation (valid).
    pub examples_per_s: f64,
    /// Wall-clock seconds so far.
    pub elapsed_s: f64,
}

impl FinetuneRecord {
    /// A record of `step` in `epoch` at learning rate `lr`, `started` when fine-tuning began,
    /// its values zero until set.
    fn at(step: u64, epoch: usize, split: Split, lr: f64, started: &Instant) -> Self {
        Self {
            step,
            epoch,
            split,
            loss: 0.0,
            accuracy: 0.0,
            macro_f1: None,
            lr,
            examples_per_s: 0.0,
            elapsed_s: started.elapsed().as_secs_f64(),
        }
    }
}

impl DashboardRecord for FinetuneRecord {
    const PLOTTED: &'static [Plotted] = &[
        ("Loss", None, false),
        ("Accuracy", Some("%"), true),
        ("Macro-F1", Some("%"), true),
        ("Learning rate", None, false),
        ("Examples/s", None, true),
    ];

    fn step(&self) -> u64 {
        self.step
    }

    fn plotted_values(&self) -> Vec<f64> {
        vec![
            self.loss,
            self.accuracy * 100.0,
            self.macro_f1.unwrap_or(f64::NAN) * 100.0,
            self.lr,
            self.examples_per_s,
        ]
    }

    fn system(&self) -> (Option<f64>, Option<f64>) {
        (None, None)
    }

    fn progress_line(&self, total_steps: u64) -> String {
        let (split, f1) = match (self.split, self.macro_f1) {
            (Split::Valid, Some(f1)) => ("valid", format!(" macro-F1 {f1:.4}")),
            _ => ("train", String::new()),
        };
        format!(
            "step {:>5}/{total_steps} epoch {} {split} loss {:.4} acc {:.4}{f1} | lr {:.2e} | {:.0} ex/s | {:.0}s",
            self.step, self.epoch, self.loss, self.accuracy, self.lr, self.examples_per_s, self.elapsed_s
        )
    }
}

/// `summary.json` of a fine-tuning run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinetuneSummary {
    /// The task.
    pub task: String,
    /// Pre-trained or from scratch.
    pub start: Start,
    /// Linear probe.
    pub freeze_encoder: bool,
    /// The pre-training objective of the encoder.
    pub objective: ObjectiveConfig,
    /// Training examples.
    pub train_examples: usize,
    /// The epoch whose weights were kept (best validation accuracy).
    pub best_epoch: usize,
    /// Epochs run (fewer than configured when early stopping ended the run).
    pub epochs_run: usize,
    /// Optimizer steps run.
    pub steps: u64,
    /// Validation metrics of the kept weights.
    pub valid: ClassMetrics,
    /// The label index the kept weights predict for each validation example, in order (for
    /// paired comparisons between runs).
    #[serde(default)]
    pub valid_predicted: Vec<usize>,
    /// Parameters trained (the head alone for a probe).
    pub trained_parameters: usize,
    /// Wall-clock seconds.
    pub wall_time_s: f64,
}

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
    let loss_fn = CrossEntropyLossConfig::new().init(&device);

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
            let rows: Vec<&[u32]> = batch.iter().map(|&i| train_ids[i].as_slice()).collect();
            let labels: Vec<usize> = batch.iter().map(|&i| train_labels[i]).collect();
            let (stepped, loss, correct) = classifier_step(
                model,
                &mut optim,
                lr,
                (&rows, &labels),
                job.tokenizer.specials().pad,
                &loss_fn,
            );
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
        let record = FinetuneRecord {
            loss: metrics.loss,
            accuracy: metrics.accuracy,
            macro_f1: Some(metrics.macro_f1),
            examples_per_s,
            ..FinetuneRecord::at(step, epoch, Split::Valid, lr, &started)
        };
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
    let (best_epoch, valid, valid_predicted) = best.expect("at least one epoch ran");
    let summary = FinetuneSummary {
        task: config.task.clone(),
        start: config.start.clone(),
        freeze_encoder: config.freeze_encoder,
        objective: config.objective.clone(),
        train_examples: train_ids.len(),
        best_epoch,
        epochs_run,
        steps: step,
        valid,
        valid_predicted,
        trained_parameters,
        wall_time_s: started.elapsed().as_secs_f64(),
    };
    let json = serde_json::to_vec_pretty(&summary).expect("summaries serialize");
    primer_datasets::files::atomic_write(&job.run_dir.summary(), &json)?;
    Ok(Some(summary))
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

/// One optimizer step on a batch of encoded `rows` and their `labels`: the stepped model, the
/// batch's mean loss and how many it classified right.
fn classifier_step(
    model: Classifier,
    optim: &mut burn::optim::ModuleOptimizer,
    lr: f64,
    (rows, labels): (&[&[u32]], &[usize]),
    pad_id: u32,
    loss_fn: &CrossEntropyLoss,
) -> (Classifier, f64, i64) {
    let device = model.devices()[0].clone();
    let (tokens, lengths) = pad(rows, pad_id, &device);
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
    let loss = loss_fn.forward(logits, targets);
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

/// Label probabilities of encoded texts, in batches of `batch_size`.
pub fn predict(model: &Classifier, encoded: &[Vec<u32>], pad_id: u32, batch_size: usize) -> Vec<Vec<f32>> {
    let device = model.devices()[0].clone();
    let mut probabilities = Vec::with_capacity(encoded.len());
    for chunk in encoded.chunks(batch_size.max(1)) {
        let rows: Vec<&[u32]> = chunk.iter().map(Vec::as_slice).collect();
        let (tokens, lengths) = pad(&rows, pad_id, &device);
        let probs = softmax(model.forward(tokens, &lengths), 1);
        let n_labels = probs.dims()[1];
        let values = host_floats(probs);
        probabilities.extend(values.chunks(n_labels).map(<[f32]>::to_vec));
    }
    probabilities
}

/// `[rows, longest]` ids padded on the right with `pad_id`, and each row's length.
fn pad(rows: &[&[u32]], pad_id: u32, device: &Device) -> (Tensor<2, Int>, Vec<usize>) {
    let longest = rows.iter().map(|r| r.len()).max().unwrap_or(1);
    let padded = rows.iter().flat_map(|row| {
        row.iter()
            .copied()
            .chain(std::iter::repeat_n(pad_id, longest - row.len()))
    });
    let lengths = rows.iter().map(|r| r.len()).collect();
    (ids(padded, device).reshape([rows.len(), longest]), lengths)
}

/// A fine-tuned classifier loaded for prediction.
pub struct TrainedClassifier {
    /// Its config.
    pub config: FinetuneConfig,
    /// Its tokenizer.
    pub tokenizer: PrimerTokenizer,
    /// Its weights, without autodiff.
    pub model: Classifier,
}

impl TrainedClassifier {
    /// Loads the classifier in `run_dir` on `device`, checking its tokenizer against the one
    /// it was trained with.
    pub fn load(run_dir: &RunDir, device: &Device) -> Result<Self, TrainError> {
        let path = run_dir.finetune_config();
        let text = std::fs::read_to_string(&path).map_err(|_| {
            TrainError::Invalid(format!(
                "{} is not a fine-tuned classifier (no finetune.json): make one with `primer finetune`",
                run_dir.root.display()
            ))
        })?;
        let config: FinetuneConfig = serde_json::from_str(&text)
            .map_err(|e| TrainError::Invalid(format!("{}: corrupt config ({e}): fine-tune again", path.display())))?;
        let tokenizer = PrimerTokenizer::from_file(&run_dir.tokenizer())?;
        if tokenizer.fingerprint() != config.tokenizer_sha256 {
            return Err(TrainError::Invalid(format!(
                "{} is not the tokenizer this classifier was trained with: restore it, or fine-tune again",
                run_dir.tokenizer().display()
            )));
        }
        let model_path = run_dir.model();
        if !model_path.exists() {
            return Err(TrainError::Invalid(format!(
                "{} has no model.bpk: the fine-tuning did not finish; run it again",
                run_dir.root.display()
            )));
        }
        let model = crate::checkpoint::load_weights(
            config.classifier().init(config.model.init(device), device),
            &model_path,
        )
        .map_err(|e| TrainError::Invalid(format!("{} is corrupt: {e}: fine-tune again", model_path.display())))?;
        Ok(Self {
            config,
            tokenizer,
            model,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macro_f1_weighs_labels_equally() {
        // Always predicting the majority label: F1 1/1.5 for it, 0 for the other.
        let f1 = macro_f1(&[0, 0, 0, 0], &[0, 0, 0, 1], 2);
        assert!((f1 - (2.0 * 3.0 / 7.0) / 2.0).abs() < 1e-12, "{f1}");
        assert_eq!(macro_f1(&[1, 0], &[1, 0], 2), 1.0);
        let metrics = ClassMetrics::of(&[vec![0.9, 0.1], vec![0.2, 0.8]], &[0, 0], 2);
        assert_eq!(metrics.accuracy, 0.5);
        assert!((metrics.loss - (-(0.9f64.ln()) - (0.2f64.ln())) / 2.0).abs() < 1e-6);
    }
}
