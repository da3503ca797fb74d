//! Pre-training objectives. Each owns everything it means: its settings, how a batch is built
//! from token blocks, its loss, and the facts ([`ObjectiveInfo`]) the rest of primer reads
//! instead of matching on its name: attention, framing, scoring, prompting, samples, metrics and
//! the commands it supports.
//!
//! Adding an objective is one file (its settings, [`ObjectiveInfo`], [`Objective`] and a
//! [`Registration`]) plus one line in [`OBJECTIVES`].

mod causal;
pub mod companion;
mod electra;
mod gpt_bert;
pub mod info;
mod mlm;
mod prefix;
pub mod registry;
pub mod samples;
pub mod scoring;

pub use causal::CausalLm;
pub use companion::{Companion, CompanionConfig};
pub use electra::{Electra, ElectraConfig};
pub use info::ObjectiveInfo;
pub use mlm::{MaskedLm, Masking, MlmConfig, MlmMasking};
pub use prefix::PrefixLm;
pub use registry::{OBJECTIVES, ObjectiveConfig, Registration};
pub use samples::{Sample, SampleRecord, Sampler};

use std::collections::BTreeMap;

use burn::tensor::activation::log_softmax;
use burn::tensor::{Bool, Device, Int, Tensor};
use primer_datasets::blocks::Blocks;
use primer_datasets::tokenizer::PrimerTokenizer;
use primer_model::{AttentionMode, Transformer, TransformerConfig};

/// A pre-training objective, built for a tokenizer by its [`Registration`].
pub trait Objective: Send + Sync {
    /// What the objective is.
    fn info(&self) -> &'static ObjectiveInfo;

    /// Builds a batch from `blocks` of [`ObjectiveInfo::block_len`] tokens, one row each. Any
    /// randomness comes from `seed` alone, so the same blocks and seed give the same batch.
    fn batch(&self, blocks: &Blocks, seed: u64, device: &Device) -> LmBatch;

    /// The targets the loss of `batch` sums over, known before the loss is computed (so that
    /// accumulated micro-batches are normalised as one batch); [`LmSums::n_targets`] agrees.
    fn n_targets(&self, batch: &LmBatch) -> usize {
        batch.n_targets()
    }

    /// The loss per target of a model that guesses uniformly over `vocab_size` tokens (and
    /// evenly on any other choice): where an untrained model starts.
    fn chance_loss(&self, vocab_size: usize) -> f64 {
        (vocab_size as f64).ln()
    }

    /// The networks trained beside a Transformer of this shape, if any (see [`companion`]).
    fn companion(&self, _model: &TransformerConfig) -> Option<CompanionConfig> {
        None
    }

    /// The training loss of a batch, summed, with what validation reports of it: by default
    /// cross-entropy at the batch's predicted positions. `companion` is the one built from
    /// [`Self::companion`]'s config.
    fn loss(&self, model: &Transformer, _companion: Option<&Companion>, batch: LmBatch) -> LmSums {
        forward_sums(model, batch)
    }

    /// Validation metrics of the objective's own, by key (`discriminator_auc`), beyond loss and
    /// accuracy: from [`LmSums::details`] of every validation batch, read back to the host.
    fn own_metrics(&self, _details: &Details) -> Vec<(&'static str, f64)> {
        Vec::new()
    }

    /// What `samples.jsonl` shows of `model` (inference weights) at an evaluation, made from
    /// the sampler's validation excerpt: by default what the model was trained to do, a
    /// continuation for an objective that generates, masks filled for one that does not.
    fn sample(
        &self,
        sampler: &Sampler,
        (model, _companion): (&Transformer, Option<&Companion>),
        tokenizer: &PrimerTokenizer,
        device: &Device,
    ) -> Sample {
        let info = self.info();
        if info.generates() {
            sampler.continuation(model, tokenizer, info.prefix_prompt(), device)
        } else {
            sampler.fills(model, tokenizer, device)
        }
    }
}

/// Model inputs and what to predict.
#[derive(Debug, Clone)]
pub struct LmBatch {
    /// Input ids `[batch, seq]`.
    pub inputs: Tensor<2, Int>,
    /// Flat positions (`row * seq + col`) to predict, `[n_targets]`; `None` predicts every one.
    pub predict_at: Option<Tensor<1, Int>>,
    /// Target ids at those positions, `[n_targets]`.
    pub targets: Tensor<1, Int>,
    /// How the model reads the inputs.
    pub attention: AttentionMode,
    /// Uniform draws in `[0, 1)` that the loss samples with, drawn with the batch so that the
    /// same seed samples the same on every backend, `[n]`.
    pub noise: Option<Tensor<1>>,
}

impl LmBatch {
    /// Builds a batch from host vectors.
    pub fn from_host(
        inputs: Vec<u32>,
        shape: [usize; 2],
        predict_at: Option<Vec<u32>>,
        targets: Vec<u32>,
        attention: AttentionMode,
        device: &Device,
    ) -> Self {
        let ints = |v: Vec<u32>| primer_model::tensors::ids(v, device);
        Self {
            inputs: ints(inputs).reshape(shape),
            predict_at: predict_at.map(ints),
            targets: ints(targets),
            attention,
            noise: None,
        }
    }

    /// Number of predicted positions.
    pub fn n_targets(&self) -> usize {
        self.targets.dims()[0]
    }
}

/// What [`LmSums::details`] held over many batches, read back to the host: each name's values,
/// batch after batch.
pub type Details = BTreeMap<&'static str, Vec<f32>>;

/// Sums over one batch, still on the device (reading them back is the caller's choice).
#[derive(Debug, Clone)]
pub struct LmSums {
    /// Sum of the negative log-likelihoods of the targets, in nats, `[1]`.
    pub nll: Tensor<1>,
    /// Number of targets that are the model's top prediction, `[1]`.
    pub correct: Tensor<1, Int>,
    /// Number of targets.
    pub n_targets: usize,
    /// What the objective's [`Objective::own_metrics`] read, e.g. a discriminator's scores and
    /// labels; empty for most.
    pub details: Vec<(&'static str, Tensor<1>)>,
}

/// Runs the model on a batch and sums the cross-entropy at the predicted positions.
pub fn forward_sums(model: &Transformer, batch: LmBatch) -> LmSums {
    let n_targets = batch.n_targets();
    let logits = predicted_logits(model, batch.inputs, batch.predict_at, batch.attention, None);
    let targets = batch.targets.reshape([n_targets, 1]);
    let correct = logits.clone().argmax(1).equal(targets.clone()).int().sum();
    let nll = log_softmax(logits, 1).gather(1, targets).sum().neg();
    LmSums {
        nll,
        correct,
        n_targets,
        details: Vec::new(),
    }
}

/// The model's vocabulary logits at the predicted positions only: the LM head never runs on
/// the others.
///
/// # Shapes
/// - inputs: `[batch, seq]`
/// - predict_at: `[n]` flat positions (`row * seq + col`); `None` for all `batch * seq`
/// - padding: `[batch, seq]`, true at padding positions, which no position attends to
/// - output: `[n, vocab_size]`
pub fn predicted_logits(
    model: &Transformer,
    inputs: Tensor<2, Int>,
    predict_at: Option<Tensor<1, Int>>,
    mode: AttentionMode,
    padding: Option<Tensor<2, Bool>>,
) -> Tensor<2> {
    let hidden = model.forward_hidden_padded(inputs, mode, padding);
    let [b, t, d] = hidden.dims();
    let mut flat = hidden.reshape([b * t, d]);
    if let Some(positions) = predict_at {
        flat = flat.select(0, positions);
    }
    let n = flat.dims()[0];
    // [n, d] -> [n, vocab]
    model.lm_logits(flat.reshape([1, n, d])).reshape([n as i64, -1])
}

/// Mixes a run seed with a step and a micro-batch index into one batch seed.
pub fn batch_seed(seed: u64, step: u64, micro: u64) -> u64 {
    let mut z = seed ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ micro.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z ^ (z >> 29)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Module;
    use burn::optim::GradientsParams;
    use burn::tensor::{TensorData, Tolerance};
    use primer_model::TransformerConfig;

    /// The loss at a subset of positions (gathered before the LM head) must give the same value
    /// and gradients as scoring every position and keeping only those.
    #[test]
    fn predicting_selected_positions_matches_masking_the_full_loss() {
        let device = Device::flex().autodiff();
        let model = TransformerConfig::new(20)
            .with_d_model(16)
            .with_n_layers(1)
            .with_n_heads(2)
            .with_d_ff(32)
            .with_max_seq_len(8)
            .init(&device);
        let inputs: Vec<u32> = (0..16).map(|i| (i * 7 % 20) as u32).collect();
        let positions = vec![1u32, 4, 9, 14];
        let targets = vec![3u32, 5, 7, 11];
        let batch = LmBatch::from_host(
            inputs.clone(),
            [2, 8],
            Some(positions.clone()),
            targets.clone(),
            AttentionMode::Bidirectional,
            &device,
        );
        let selected = forward_sums(&model, batch).nll;

        let logits = model.forward(
            LmBatch::from_host(inputs, [2, 8], None, vec![0; 16], AttentionMode::Bidirectional, &device).inputs,
            AttentionMode::Bidirectional,
        );
        let logp = log_softmax(logits.reshape([16, 20]), 1);
        let mut full_targets = vec![0i64; 16];
        let mut weights = vec![0f32; 16];
        for (&p, &t) in positions.iter().zip(&targets) {
            full_targets[p as usize] = t as i64;
            weights[p as usize] = 1.0;
        }
        let full_targets = Tensor::<2, Int>::from_data(TensorData::new(full_targets, [16, 1]), &device);
        let weights = Tensor::<2>::from_data(TensorData::new(weights, [16, 1]), &device);
        let masked = (logp.gather(1, full_targets) * weights).sum().neg();

        selected
            .clone()
            .into_data()
            .assert_approx_eq::<f32>(&masked.clone().into_data(), Tolerance::default());
        let grads_selected = GradientsParams::from_grads(selected.backward(), &model);
        let grads_masked = GradientsParams::from_grads(masked.backward(), &model);
        let weight = &model.blocks[0].attn.qkv.weight;
        let a = grads_selected.get::<2>(weight.id).expect("gradient reaches the blocks");
        let b = grads_masked.get::<2>(weight.id).unwrap();
        a.into_data()
            .assert_approx_eq::<f32>(&b.into_data(), Tolerance::rel_abs(1e-3, 1e-6));
        assert!(model.num_params() > 0);
    }
}
