//! Scoring token sequences with a trained model: the causal log-likelihood of a document, the
//! pseudo-log-likelihood of a masked LM (each token masked in turn), and the most likely tokens
//! at `[MASK]` positions.

use burn::tensor::Device;
use burn::tensor::activation::{log_softmax, softmax};
use primer_datasets::tokenizer::SpecialTokens;
use primer_model::{AttentionMode, Transformer, padding_mask};

use crate::predicted_logits;
use crate::tensors::{host_floats, ids};

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
    let predict_at = Some(ids(predict_at.iter().copied(), device));
    let logits = predicted_logits(model, inputs, predict_at, mode, padding);
    let targets = ids(targets.iter().copied(), device).reshape([targets.len(), 1]);
    host_floats(log_softmax(logits, 1).gather(1, targets))
}

/// Causal negative log-likelihood of every token of `tokens`, read left to right in windows of
/// the model's context; `start` (the `[EOS]` that precedes every document in training) is the
/// context of the first token.
pub fn causal_nll(model: &Transformer, start: u32, tokens: &[u32], device: &Device) -> Nll {
    let window = model.max_seq_len();
    let sequence: Vec<u32> = std::iter::once(start).chain(tokens.iter().copied()).collect();
    let mut nll = Nll::default();
    for from in (0..tokens.len()).step_by(window) {
        // Inputs from..to, each predicting the token after it.
        let to = (from + window).min(tokens.len());
        let row = sequence[from..to].to_vec();
        let positions: Vec<u32> = (0..row.len() as u32).collect();
        let log_probs = target_log_probs(
            model,
            &[row],
            &positions,
            &sequence[from + 1..=to],
            AttentionMode::Causal,
            device,
        );
        nll.add(Nll {
            sum: -log_probs.iter().map(|&lp| lp as f64).sum::<f64>(),
            tokens: log_probs.len(),
        });
    }
    nll
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
    let mut nll = Nll::default();
    let mut remaining = max_tokens;
    for window in tokens.chunks(model.max_seq_len()) {
        let scored: Vec<usize> = (0..window.len())
            .filter(|&i| !specials.all().contains(&window[i]))
            .take(remaining)
            .collect();
        remaining -= scored.len();
        for group in scored.chunks(batch_rows.max(1)) {
            let rows: Vec<Vec<u32>> = group
                .iter()
                .map(|&i| {
                    let mut row = window.to_vec();
                    row[i] = specials.mask;
                    row
                })
                .collect();
            let positions: Vec<u32> = group
                .iter()
                .enumerate()
                .map(|(row, &i)| (row * window.len() + i) as u32)
                .collect();
            let targets: Vec<u32> = group.iter().map(|&i| window[i]).collect();
            let log_probs = target_log_probs(model, &rows, &positions, &targets, AttentionMode::Bidirectional, device);
            nll.add(Nll {
                sum: -log_probs.iter().map(|&lp| lp as f64).sum::<f64>(),
                tokens: log_probs.len(),
            });
        }
        if remaining == 0 {
            break;
        }
    }
    nll
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
