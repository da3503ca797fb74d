//! Evaluation of a model on fixed blocks of a token shard.

use std::collections::BTreeMap;
use std::time::Instant;

use burn::tensor::Device;
use primer_datasets::blocks::read_blocks;
use primer_datasets::shard::TokenShard;
use primer_datasets::tokenizer::SpecialTokens;
use primer_model::Transformer;
use primer_model::tensors::host_floats;
use primer_objectives::{Companion, Details, Objective, batch_seed};

use primer_objectives::scoring::{Nll, Pll, PllSlot, Text, pseudo_nll};
use serde::{Deserialize, Serialize};

/// The step number that seeds evaluation masks: the same masks at every evaluation.
const EVAL_SEED_STEP: u64 = u64::MAX;

/// Validation metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalMetrics {
    /// Mean cross-entropy per predicted token, nats.
    pub loss: f64,
    /// `exp(loss)`.
    pub ppl: f64,
    /// Top-1 accuracy at predicted positions (MLM: masked positions).
    pub accuracy: f64,
    /// Bits per byte of text.
    pub bpb: f64,
    /// Predicted positions evaluated.
    pub targets: u64,
    /// Input tokens per second of the evaluation.
    pub tokens_per_s: f64,
    /// Share of the run's minimal pairs scored right, when it has some.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimal_pairs_accuracy: Option<f64>,
    /// The objective's own metrics, by key (ELECTRA: `discriminator_auc`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub objective_metrics: BTreeMap<String, f64>,
}

/// Where and how to evaluate.
pub struct EvalSet<'a> {
    /// The shard.
    pub shard: &'a TokenShard,
    /// Block starts (see [`primer_datasets::blocks::eval_starts`]).
    pub starts: &'a [usize],
    /// Tokens per block.
    pub block_len: usize,
    /// Blocks per batch.
    pub batch_size: usize,
    /// Tokens per byte of the shard's text, for bits per byte.
    pub tokens_per_byte: f64,
}

/// Evaluates `model` and its companion (inference copies: no autodiff, no dropout) with an
/// objective's batches. `on_batch` is told how many batches are done.
pub fn evaluate(
    (model, companion): (&Transformer, Option<&Companion>),
    objective: &dyn Objective,
    set: &EvalSet,
    seed: u64,
    device: &Device,
    mut on_batch: impl FnMut(usize),
) -> EvalMetrics {
    let started = Instant::now();
    let (mut nll, mut correct, mut targets, mut inputs) = (0.0, 0i64, 0u64, 0u64);
    let mut details = Details::new();
    for (i, starts) in set.starts.chunks(set.batch_size).enumerate() {
        let blocks = read_blocks(set.shard, starts, set.block_len);
        let batch = objective.batch(&blocks, batch_seed(seed, EVAL_SEED_STEP, i as u64), device);
        inputs += batch.inputs.shape().num_elements() as u64;
        let sums = objective.loss(model, companion, batch);
        for (name, values) in sums.details {
            details.entry(name).or_default().extend(host_floats(values));
        }
        nll += sums.nll.into_scalar::<f64>();
        correct += sums.correct.into_scalar::<i64>();
        targets += sums.n_targets as u64;
        on_batch(i + 1);
    }
    let mut metrics = metrics(
        nll,
        correct,
        targets,
        set.tokens_per_byte,
        inputs as f64 / started.elapsed().as_secs_f64(),
    );
    metrics.objective_metrics = objective
        .own_metrics(&details)
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect();
    metrics
}

/// Metrics from sums.
pub fn metrics(nll: f64, correct: i64, targets: u64, tokens_per_byte: f64, tokens_per_s: f64) -> EvalMetrics {
    let loss = nll / targets.max(1) as f64;
    EvalMetrics {
        loss,
        ppl: loss.exp(),
        accuracy: correct as f64 / targets.max(1) as f64,
        bpb: loss / std::f64::consts::LN_2 * tokens_per_byte,
        targets,
        tokens_per_s,
        minimal_pairs_accuracy: None,
        objective_metrics: BTreeMap::new(),
    }
}

/// Pseudo-perplexity of a masked LM (Salazar et al. 2020) on the evaluation blocks: each token
/// is masked in turn and scored from both sides; `exp` of the mean negative log-likelihood over
/// at most `max_tokens` non-special tokens. Returns the value and the number of tokens scored.
pub fn pseudo_perplexity(
    model: &Transformer,
    specials: &SpecialTokens,
    set: &EvalSet,
    max_tokens: usize,
    device: &Device,
) -> (f64, u64) {
    let mut total = Nll::default();
    for &start in set.starts {
        let block = Text::of_tokens(read_blocks(set.shard, &[start], set.block_len).tokens);
        let nll = pseudo_nll(
            model,
            specials,
            (&block, Pll::Original, PllSlot::Own),
            max_tokens - total.tokens,
            set.batch_size,
            device,
        );
        total.add(nll);
        if total.tokens >= max_tokens {
            break;
        }
    }
    (total.perplexity(), total.tokens as u64)
}

/// What a model that knows only token frequencies would score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UnigramBaseline {
    /// Cross-entropy per token of the train split's unigram distribution (add-one smoothed)
    /// on the evaluated tokens, nats.
    pub loss: f64,
    /// Share of evaluated tokens equal to the train split's most frequent token.
    pub accuracy: f64,
}

/// The unigram baseline of the non-special tokens in `eval`'s blocks, from `train` counts.
pub fn unigram_baseline(
    train: &TokenShard,
    set: &EvalSet,
    vocab_size: usize,
    specials: &SpecialTokens,
) -> UnigramBaseline {
    let special = |id: u32| specials.all().contains(&id);
    let mut counts = vec![1u64; vocab_size];
    let mut tokens = Vec::with_capacity(1 << 20);
    for start in (0..train.len()).step_by(1 << 20) {
        tokens.clear();
        train.read_into(start, (1 << 20).min(train.len() - start), &mut tokens);
        for &id in tokens.iter().filter(|&&id| !special(id)) {
            counts[id as usize] += 1;
        }
    }
    for id in specials.all() {
        counts[id as usize] = 0;
    }
    let total: u64 = counts.iter().sum();
    let top = (0..vocab_size).max_by_key(|&id| counts[id]).unwrap_or(0) as u32;
    let (mut nll, mut hits, mut n) = (0.0, 0u64, 0u64);
    for id in read_blocks(set.shard, set.starts, set.block_len)
        .tokens
        .into_iter()
        .filter(|&id| !special(id))
    {
        nll -= (counts[id as usize] as f64 / total as f64).ln();
        hits += u64::from(id == top);
        n += 1;
    }
    UnigramBaseline {
        loss: nll / n.max(1) as f64,
        accuracy: hits as f64 / n.max(1) as f64,
    }
}
