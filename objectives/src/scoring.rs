//! Scoring token sequences with a trained model: the causal log-likelihood of a document, the
//! pseudo-log-likelihood of a masked LM (each token masked in turn), and the most likely tokens
//! at `[MASK]` positions.

use burn::tensor::activation::{log_softmax, softmax, softplus};
use burn::tensor::{Device, Int, Tensor};
use primer_datasets::tokenizer::SpecialTokens;
use primer_model::{AttentionMode, Transformer, padding_mask};

use crate::tensors::{host_floats, ids};
use crate::{Companion, predicted_logits};

/// A sum of negative log-likelihoods and the number of tokens in it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Nll {
    /// Nats.
    pub sum: f64,
    /// Tokens scored.
    pub tokens: usize,
}

impl Nll {
    /// `exp` of the mean: perplexity, or pseudo-perplexity for masked scoring.
    pub fn perplexity(&self) -> f64 {
        (self.sum / self.tokens.max(1) as f64).exp()
    }

    /// Adds another sum.
    pub fn add(&mut self, other: Nll) {
        self.sum += other.sum;
        self.tokens += other.tokens;
    }
}

/// `rows` padded to the longest as `[rows, seq]` ids, with the padding mask when any row is
/// shorter.
fn padded_rows(rows: &[Vec<u32>], device: &Device) -> (Tensor<2, Int>, Option<Tensor<2, burn::tensor::Bool>>) {
    let seq = rows.iter().map(Vec::len).max().unwrap_or(0);
    let padded = rows
        .iter()
        .flat_map(|row| row.iter().copied().chain(std::iter::repeat_n(0, seq - row.len())));
    let inputs = ids(padded, device).reshape([rows.len(), seq]);
    let lengths: Vec<usize> = rows.iter().map(Vec::len).collect();
    let padding = lengths
        .iter()
        .any(|&len| len < seq)
        .then(|| padding_mask(&lengths, seq, device));
    (inputs, padding)
}

/// Log-probabilities of `targets` at flat positions `predict_at` (`row * seq + col`, `seq` the
/// longest row) of `rows`; shorter rows are padded, and no position attends to the padding.
pub fn target_log_probs(
    model: &Transformer,
    rows: &[Vec<u32>],
    predict_at: &[u32],
    targets: &[u32],
    mode: AttentionMode,
    device: &Device,
) -> Vec<f32> {
    let (inputs, padding) = padded_rows(rows, device);
    let predict_at = Some(ids(predict_at.iter().copied(), device));
    let logits = predicted_logits(model, inputs, predict_at, mode, padding);
    let targets = ids(targets.iter().copied(), device).reshape([targets.len(), 1]);
    host_floats(log_softmax(logits, 1).gather(1, targets))
}

/// Causal negative log-likelihood of every token of `tokens`, read left to right in windows of
/// the model's context, one window per forward pass; `start` (the `[EOS]` that precedes every
/// document in training) is the context of the first token.
pub fn causal_nll(model: &Transformer, start: u32, tokens: &[u32], device: &Device) -> Nll {
    let rows = causal_rows(0, start, tokens, model.max_seq_len());
    let mut sum = [0.0];
    score_rows(model, rows, AttentionMode::Causal, 1, &mut sum, device);
    Nll {
        sum: -sum[0],
        tokens: tokens.len(),
    }
}

/// Pseudo-log-likelihood of a masked LM (Salazar et al. 2020): each non-special token of
/// `tokens` (at most `max_tokens` of them) is masked in turn and scored from both sides, in
/// windows of the model's context and batches of `batch_rows` masked copies.
pub fn pseudo_nll(
    model: &Transformer,
    specials: &SpecialTokens,
    tokens: &[u32],
    max_tokens: usize,
    batch_rows: usize,
    device: &Device,
) -> Nll {
    let rows = masked_rows(0, specials, tokens, model.max_seq_len(), max_tokens);
    let scored = rows.len();
    let mut sum = [0.0];
    score_rows(model, rows, AttentionMode::Bidirectional, batch_rows, &mut sum, device);
    Nll {
        sum: -sum[0],
        tokens: scored,
    }
}

/// One row of a scoring pass: which text it belongs to, its tokens, and the positions it
/// predicts with their targets.
struct ScoredRow {
    text: usize,
    tokens: Vec<u32>,
    predict_at: Vec<u32>,
    targets: Vec<u32>,
}

/// The rows that read text `text` left to right in windows of `window` tokens, each token
/// predicted from the one before it (`start` before the first).
fn causal_rows(text: usize, start: u32, tokens: &[u32], window: usize) -> Vec<ScoredRow> {
    let sequence: Vec<u32> = std::iter::once(start).chain(tokens.iter().copied()).collect();
    (0..tokens.len())
        .step_by(window)
        .map(|from| {
            // Inputs from..to, each predicting the token after it.
            let to = (from + window).min(tokens.len());
            ScoredRow {
                text,
                tokens: sequence[from..to].to_vec(),
                predict_at: (0..(to - from) as u32).collect(),
                targets: sequence[from + 1..=to].to_vec(),
            }
        })
        .collect()
}

/// The masked copies of text `text`, in windows of `window` tokens: one row per non-special
/// token (at most `max_tokens` of them), that token hidden behind `[MASK]` and predicted.
fn masked_rows(
    text: usize,
    specials: &SpecialTokens,
    tokens: &[u32],
    window: usize,
    max_tokens: usize,
) -> Vec<ScoredRow> {
    tokens
        .chunks(window)
        .flat_map(|chunk| {
            (0..chunk.len())
                .filter(|&at| !specials.all().contains(&chunk[at]))
                .map(move |at| (chunk, at))
        })
        .take(max_tokens)
        .map(|(chunk, at)| {
            let mut masked = chunk.to_vec();
            masked[at] = specials.mask;
            ScoredRow {
                text,
                tokens: masked,
                predict_at: vec![at as u32],
                targets: vec![chunk[at]],
            }
        })
        .collect()
}

/// Sums the log-probabilities of `rows`' targets into `sums` (one per text), `batch_rows` rows
/// per forward pass, rows of about one length together so that little padding is read.
fn score_rows(
    model: &Transformer,
    mut rows: Vec<ScoredRow>,
    mode: AttentionMode,
    batch_rows: usize,
    sums: &mut [f64],
    device: &Device,
) {
    rows.sort_by_key(|row| row.tokens.len());
    for group in rows.chunks(batch_rows.max(1)) {
        let seq = group.iter().map(|row| row.tokens.len()).max().unwrap_or(0);
        let predict_at: Vec<u32> = group
            .iter()
            .enumerate()
            .flat_map(|(r, row)| row.predict_at.iter().map(move |&at| (r * seq) as u32 + at))
            .collect();
        let targets: Vec<u32> = group.iter().flat_map(|row| row.targets.iter().copied()).collect();
        let tokens: Vec<Vec<u32>> = group.iter().map(|row| row.tokens.clone()).collect();
        let log_probs = target_log_probs(model, &tokens, &predict_at, &targets, mode.clone(), device);
        let mut next = log_probs.into_iter();
        for row in group {
            sums[row.text] += next.by_ref().take(row.targets.len()).map(f64::from).sum::<f64>();
        }
    }
}

/// The log-likelihood of each of `texts` read left to right after `start` (what
/// [`causal_nll`] sums, negated), windows of many texts sharing forward passes, `batch_rows` at
/// a time.
pub fn causal_log_probs(
    model: &Transformer,
    start: u32,
    texts: &[Vec<u32>],
    batch_rows: usize,
    device: &Device,
) -> Vec<f64> {
    let window = model.max_seq_len();
    let rows_of = |text, tokens: &[u32]| causal_rows(text, start, tokens, window);
    text_sums(model, texts, rows_of, AttentionMode::Causal, batch_rows, device)
}

/// The pseudo-log-likelihood of each of `texts` (what [`pseudo_nll`] sums, negated): every
/// masked copy of every text is a row, `batch_rows` rows per forward pass whichever texts they
/// come from.
pub fn pseudo_log_probs(
    model: &Transformer,
    specials: &SpecialTokens,
    texts: &[Vec<u32>],
    batch_rows: usize,
    device: &Device,
) -> Vec<f64> {
    let window = model.max_seq_len();
    let rows_of = |text, tokens: &[u32]| masked_rows(text, specials, tokens, window, usize::MAX);
    text_sums(model, texts, rows_of, AttentionMode::Bidirectional, batch_rows, device)
}

/// The summed log-probabilities of each text's targets, over the rows `rows_of` makes of every
/// text, read with `mode`.
fn text_sums(
    model: &Transformer,
    texts: &[Vec<u32>],
    rows_of: impl Fn(usize, &[u32]) -> Vec<ScoredRow>,
    mode: AttentionMode,
    batch_rows: usize,
    device: &Device,
) -> Vec<f64> {
    let rows = texts
        .iter()
        .enumerate()
        .flat_map(|(text, tokens)| rows_of(text, tokens))
        .collect();
    let mut sums = vec![0.0; texts.len()];
    score_rows(model, rows, mode, batch_rows, &mut sums, device);
    sums
}

/// The log-probability a discriminator (the model read both ways, then the companion's head)
/// gives each token at flat positions `predict_at` of `rows` of being original: `log sigmoid(-z)`.
pub fn judged_log_probs(
    model: &Transformer,
    companion: &Companion,
    rows: &[Vec<u32>],
    predict_at: &[u32],
    device: &Device,
) -> Vec<f32> {
    let (inputs, padding) = padded_rows(rows, device);
    let hidden = model.forward_hidden_padded(inputs, AttentionMode::Bidirectional, padding);
    let logits = companion
        .head_logits(hidden)
        .select(0, ids(predict_at.iter().copied(), device));
    host_floats(softplus(logits, 1.0).neg())
}

/// The log-probability a discriminator gives each of `texts` of having no replaced token: the
/// sum of [`judged_log_probs`] over its tokens, read in windows of the model's context after
/// `start` (the `[EOS]` that precedes every document in training), `batch_rows` windows at a
/// time.
pub fn detection_log_probs(
    model: &Transformer,
    companion: &Companion,
    start: u32,
    texts: &[Vec<u32>],
    batch_rows: usize,
    device: &Device,
) -> Vec<f64> {
    let window = model.max_seq_len() - 1;
    let mut rows: Vec<(usize, Vec<u32>)> = texts
        .iter()
        .enumerate()
        .flat_map(|(text, tokens)| {
            tokens
                .chunks(window)
                .map(move |chunk| (text, std::iter::once(start).chain(chunk.iter().copied()).collect()))
        })
        .collect();
    rows.sort_by_key(|(_, row)| row.len());
    let mut sums = vec![0.0; texts.len()];
    for group in rows.chunks(batch_rows.max(1)) {
        let seq = group.iter().map(|(_, row)| row.len()).max().unwrap_or(0);
        let tokens: Vec<Vec<u32>> = group.iter().map(|(_, row)| row.clone()).collect();
        let predict_at: Vec<u32> = group
            .iter()
            .enumerate()
            .flat_map(|(r, (_, row))| (1..row.len()).map(move |at| (r * seq + at) as u32))
            .collect();
        let mut scores = judged_log_probs(model, companion, &tokens, &predict_at, device).into_iter();
        for (text, row) in group {
            sums[*text] += scores.by_ref().take(row.len() - 1).map(f64::from).sum::<f64>();
        }
    }
    sums
}

/// The `k` most likely tokens, with their probabilities, at each `mask` position of `tokens`
/// (at most the model's context), read from both sides.
pub fn fill_mask(model: &Transformer, tokens: &[u32], mask: u32, k: usize, device: &Device) -> Vec<Vec<(u32, f32)>> {
    let positions: Vec<u32> = (0..tokens.len() as u32)
        .filter(|&i| tokens[i as usize] == mask)
        .collect();
    if positions.is_empty() {
        return Vec::new();
    }
    let inputs = ids(tokens.iter().copied(), device).reshape([1, tokens.len()]);
    let logits = predicted_logits(
        model,
        inputs,
        Some(ids(positions.iter().copied(), device)),
        AttentionMode::Bidirectional,
        None,
    );
    let vocab = logits.dims()[1];
    let probs = host_floats(softmax(logits, 1));
    probs
        .chunks(vocab)
        .map(|row| {
            let mut ranked: Vec<(u32, f32)> = row.iter().enumerate().map(|(id, &p)| (id as u32, p)).collect();
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
            ranked.truncate(k);
            ranked
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use primer_model::TransformerConfig;

    fn model() -> Transformer {
        TransformerConfig::new(30)
            .with_d_model(16)
            .with_n_layers(1)
            .with_n_heads(2)
            .with_d_ff(32)
            .with_max_seq_len(8)
            .init(&Device::flex())
    }

    #[test]
    fn causal_nll_spans_windows_and_matches_a_full_forward_in_one() {
        let (model, device) = (model(), Device::flex());
        let tokens = [9u32, 12, 7, 20, 11, 8, 9, 10, 14, 15, 16];
        let nll = causal_nll(&model, 6, &tokens, &device);
        assert_eq!(nll.tokens, tokens.len());
        // The first window by hand: [EOS] + 7 tokens predicting the next 8.
        let first = causal_nll(&model, 6, &tokens[..8], &device);
        let row: Vec<u32> = std::iter::once(6).chain(tokens[..7].iter().copied()).collect();
        let by_hand: f64 = target_log_probs(
            &model,
            &[row],
            &(0..8).collect::<Vec<_>>(),
            &tokens[..8],
            AttentionMode::Causal,
            &device,
        )
        .iter()
        .map(|&lp| -lp as f64)
        .sum();
        assert!((first.sum - by_hand).abs() < 1e-4);
        assert!(nll.sum > first.sum);
    }

    #[test]
    fn pseudo_nll_skips_specials_and_respects_the_limit() {
        let (model, device) = (model(), Device::flex());
        let specials = SpecialTokens::PRIMER;
        let tokens = [9u32, 6, 12, 7, 20, 11, 8, 9, 10, 6, 14];
        assert_eq!(pseudo_nll(&model, &specials, &tokens, 100, 3, &device).tokens, 9);
        let limited = pseudo_nll(&model, &specials, &tokens, 4, 3, &device);
        assert_eq!(limited.tokens, 4);
        // Batching does not change the sum.
        let one_by_one = pseudo_nll(&model, &specials, &tokens, 4, 1, &device);
        assert!((limited.sum - one_by_one.sum).abs() < 1e-4);
    }

    #[test]
    fn batched_scores_equal_one_text_at_a_time() {
        let (model, device) = (model(), Device::flex());
        let specials = SpecialTokens::PRIMER;
        // Lengths 3 to 11 (one longer than the context of 8), with a special token inside.
        let texts: Vec<Vec<u32>> = vec![
            vec![9, 12, 7],
            vec![20, 11, 8, 9, 10, 14, 15],
            vec![13, 6, 12, 7, 20],
            vec![9, 12, 7, 20, 11, 8, 9, 10, 14, 15, 16],
        ];
        let causal = causal_log_probs(&model, 6, &texts, 3, &device);
        let masked = pseudo_log_probs(&model, &specials, &texts, 5, &device);
        for (i, text) in texts.iter().enumerate() {
            let one_causal = -causal_nll(&model, 6, text, &device).sum;
            let one_masked = -pseudo_nll(&model, &specials, text, usize::MAX, 1, &device).sum;
            assert!(
                (causal[i] - one_causal).abs() < 1e-5 * one_causal.abs().max(1.0),
                "causal {i}"
            );
            assert!(
                (masked[i] - one_masked).abs() < 1e-5 * one_masked.abs().max(1.0),
                "masked {i}"
            );
        }
    }

    #[test]
    fn fill_mask_ranks_probabilities_at_each_mask() {
        let (model, device) = (model(), Device::flex());
        let predictions = fill_mask(&model, &[9, 4, 12, 4], 4, 3, &device);
        assert_eq!(predictions.len(), 2);
        for top in predictions {
            assert_eq!(top.len(), 3);
            assert!(top[0].1 >= top[1].1 && top[1].1 >= top[2].1);
            assert!(top[0].1 > 0.0 && top[0].1 <= 1.0);
        }
    }
}
