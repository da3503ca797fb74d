//! Scoring token sequences with a trained model: the causal log-likelihood of a document, the
//! pseudo-log-likelihood of a masked LM (each token masked in turn, alone or with the rest of
//! its word to its right), and the most likely tokens at `[MASK]` positions.

use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Device, Int, Tensor};
use primer_datasets::error::DataError;
use primer_datasets::tokenizer::{PrimerTokenizer, SpecialTokens};
use primer_model::tensors::{host_floats, ids};
use primer_model::{AttentionMode, Transformer, padding_mask};
use serde::{Deserialize, Serialize};

use crate::predicted_logits;

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

/// Which tokens each masked copy of a text hides besides the one it predicts: minicons'
/// `PLL_metric`, whose masks these are, token for token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pll {
    /// None: each token predicted from all the others (Salazar et al. 2020; minicons
    /// `original`).
    #[default]
    Original,
    /// The tokens of its own word to its right (Kauf & Ivanova 2023; minicons
    /// `within_word_l2r`): a word split into several tokens is no longer predicted from its
    /// own later pieces, which inflated the original's score of such words.
    WordL2r,
}

impl Pll {
    /// Its name on the command line and in reports (`word-l2r`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Original => "original",
            Self::WordL2r => "word-l2r",
        }
    }
}

/// A text to score: its tokens and, for each, the word it belongs to (the tokenizer's word
/// ids, which [`Pll::WordL2r`] reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    /// Token ids.
    pub tokens: Vec<u32>,
    /// Per token, its word's index; a word's tokens stand together.
    pub words: Vec<u32>,
}

impl Text {
    /// A text of `tokens` that belong to the words `words` (one per token).
    pub fn new(tokens: Vec<u32>, words: Vec<u32>) -> Self {
        assert_eq!(tokens.len(), words.len(), "one word index per token");
        Self { tokens, words }
    }

    /// `text` as `tokenizer` splits it into tokens and words.
    pub fn encode(tokenizer: &PrimerTokenizer, text: &str) -> Result<Self, DataError> {
        let (tokens, words) = tokenizer.encode_with_words(text)?;
        Ok(Self { tokens, words })
    }

    /// `tokens`, each a word of its own (no word split into pieces).
    pub fn of_tokens(tokens: Vec<u32>) -> Self {
        let words = (0..tokens.len() as u32).collect();
        Self { tokens, words }
    }
}

/// `rows` padded to the longest as `[rows, seq]` ids, with the padding mask when any row is
/// shorter.
pub(crate) fn padded_rows(
    rows: &[Vec<u32>],
    device: &Device,
) -> (Tensor<2, Int>, Option<Tensor<2, burn::tensor::Bool>>) {
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
/// `text` (at most `max_tokens` of them) is masked in turn, with what `pll` hides beside it,
/// and scored from both sides, in windows of the model's context and batches of `batch_rows`
/// masked copies.
pub fn pseudo_nll(
    model: &Transformer,
    specials: &SpecialTokens,
    (text, pll, slot): (&Text, Pll, PllSlot),
    max_tokens: usize,
    batch_rows: usize,
    device: &Device,
) -> Nll {
    let rows = masked_rows(0, specials, (text, pll, slot), model.max_seq_len(), max_tokens);
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

/// Where a masked token is predicted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PllSlot {
    /// At its own position (BERT).
    Own,
    /// From the position before it, the text read after an `[EOS]` so that its first token has
    /// one (GPT-BERT's masked next-token prediction).
    Previous,
}

/// The masked copies of text number `index`, in windows of `window` tokens: one row per
/// non-special token (at most `max_tokens` of them), that token hidden behind `[MASK]` and
/// predicted where `slot` says, and with [`Pll::WordL2r`] the later tokens of its word hidden
/// too.
fn masked_rows(
    index: usize,
    specials: &SpecialTokens,
    (text, pll, slot): (&Text, Pll, PllSlot),
    window: usize,
    max_tokens: usize,
) -> Vec<ScoredRow> {
    // A row read from the previous position starts with the `[EOS]` before its window.
    let lead = usize::from(slot == PllSlot::Previous);
    text.tokens
        .chunks(window - lead)
        .zip(text.words.chunks(window))
        .flat_map(|(chunk, words)| {
            (0..chunk.len())
                .filter(|&at| !specials.all().contains(&chunk[at]))
                .map(move |at| (chunk, words, at))
        })
        .take(max_tokens)
        .map(|(chunk, words, at)| {
            let mut masked: Vec<u32> = std::iter::repeat_n(specials.eos, lead)
                .chain(chunk.iter().copied())
                .collect();
            masked[lead + at] = specials.mask;
            if pll == Pll::WordL2r {
                for later in at + 1..chunk.len() {
                    if words[later] == words[at] {
                        masked[lead + later] = specials.mask;
                    }
                }
            }
            ScoredRow {
                text: index,
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
    texts: &[Text],
    batch_rows: usize,
    device: &Device,
) -> Vec<f64> {
    let window = model.max_seq_len();
    let rows_of = |index, text: &Text| causal_rows(index, start, &text.tokens, window);
    text_sums(model, texts, rows_of, AttentionMode::Causal, batch_rows, device)
}

/// The pseudo-log-likelihood of each of `texts`, masked as `pll` says (what [`pseudo_nll`]
/// sums, negated): every masked copy of every text is a row, `batch_rows` rows per forward
/// pass whichever texts they come from.
pub fn pseudo_log_probs(
    model: &Transformer,
    specials: &SpecialTokens,
    (texts, pll, slot): (&[Text], Pll, PllSlot),
    batch_rows: usize,
    device: &Device,
) -> Vec<f64> {
    let window = model.max_seq_len();
    let rows_of = |index, text: &Text| masked_rows(index, specials, (text, pll, slot), window, usize::MAX);
    text_sums(model, texts, rows_of, AttentionMode::Bidirectional, batch_rows, device)
}

/// The summed log-probabilities of each text's targets, over the rows `rows_of` makes of every
/// text, read with `mode`.
fn text_sums(
    model: &Transformer,
    texts: &[Text],
    rows_of: impl Fn(usize, &Text) -> Vec<ScoredRow>,
    mode: AttentionMode,
    batch_rows: usize,
    device: &Device,
) -> Vec<f64> {
    let rows = texts
        .iter()
        .enumerate()
        .flat_map(|(index, text)| rows_of(index, text))
        .collect();
    let mut sums = vec![0.0; texts.len()];
    score_rows(model, rows, mode, batch_rows, &mut sums, device);
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
        let text = Text::of_tokens(vec![9u32, 6, 12, 7, 20, 11, 8, 9, 10, 6, 14]);
        let scored = (&text, Pll::Original, PllSlot::Own);
        assert_eq!(pseudo_nll(&model, &specials, scored, 100, 3, &device).tokens, 9);
        let limited = pseudo_nll(&model, &specials, scored, 4, 3, &device);
        assert_eq!(limited.tokens, 4);
        // Batching does not change the sum.
        let one_by_one = pseudo_nll(&model, &specials, scored, 4, 1, &device);
        assert!((limited.sum - one_by_one.sum).abs() < 1e-4);
    }

    #[test]
    fn batched_scores_equal_one_text_at_a_time() {
        let (model, device) = (model(), Device::flex());
        let specials = SpecialTokens::PRIMER;
        // Lengths 3 to 11 (one longer than the context of 8), with a special token inside.
        let texts: Vec<Text> = [
            vec![9, 12, 7],
            vec![20, 11, 8, 9, 10, 14, 15],
            vec![13, 6, 12, 7, 20],
            vec![9, 12, 7, 20, 11, 8, 9, 10, 14, 15, 16],
        ]
        .into_iter()
        .map(|tokens| {
            // Words of two tokens, so that within-word masking hides something.
            let words = (0..tokens.len() as u32).map(|i| i / 2).collect();
            Text::new(tokens, words)
        })
        .collect();
        let causal = causal_log_probs(&model, 6, &texts, 3, &device);
        let masked = pseudo_log_probs(&model, &specials, (&texts, Pll::WordL2r, PllSlot::Own), 5, &device);
        for (i, text) in texts.iter().enumerate() {
            let one_causal = -causal_nll(&model, 6, &text.tokens, &device).sum;
            let one_masked = -pseudo_nll(
                &model,
                &specials,
                (text, Pll::WordL2r, PllSlot::Own),
                usize::MAX,
                1,
                &device,
            )
            .sum;
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
    fn next_token_masking_reads_after_eos_and_predicts_each_hidden_token_from_the_one_before() {
        let specials = SpecialTokens::PRIMER;
        let (e, m) = (specials.eos, specials.mask);
        // Words: [9] [12 7]; the special token 6 is never a target.
        let text = Text::new(vec![9, 12, 7, 6], vec![0, 1, 1, 2]);
        let rows = |pll, window| masked_rows(0, &specials, (&text, pll, PllSlot::Previous), window, usize::MAX);
        let read: Vec<_> = rows(Pll::WordL2r, 8)
            .into_iter()
            .map(|row| (row.tokens, row.predict_at, row.targets))
            .collect();
        assert_eq!(
            read,
            [
                (vec![e, m, 12, 7, 6], vec![0], vec![9]),
                (vec![e, 9, m, m, 6], vec![1], vec![12]),
                (vec![e, 9, 12, m, 6], vec![2], vec![7]),
            ]
        );
        // A window holds the `[EOS]` too: windows of 3 read 2 tokens of the text each.
        let windows: Vec<_> = rows(Pll::Original, 3).into_iter().map(|row| row.tokens).collect();
        assert_eq!(windows, [vec![e, m, 12], vec![e, 9, m], vec![e, m, 6]]);
    }

    #[test]
    fn within_word_masking_hides_the_rest_of_the_word_to_the_right() {
        let specials = SpecialTokens::PRIMER;
        // Words: [9] [12 7 20] [11]; the special token 6 is never a target.
        let text = Text::new(vec![9, 12, 7, 20, 6, 11], vec![0, 1, 1, 1, 2, 3]);
        let masks = |pll| -> Vec<Vec<u32>> {
            masked_rows(0, &specials, (&text, pll, PllSlot::Own), 8, usize::MAX)
                .into_iter()
                .map(|row| row.tokens)
                .collect()
        };
        let m = specials.mask;
        assert_eq!(
            masks(Pll::WordL2r),
            [
                vec![m, 12, 7, 20, 6, 11],
                vec![9, m, m, m, 6, 11],
                vec![9, 12, m, m, 6, 11],
                vec![9, 12, 7, m, 6, 11],
                vec![9, 12, 7, 20, 6, m],
            ]
        );
        assert_eq!(masks(Pll::Original)[1], vec![9, m, 7, 20, 6, 11]);
        // Words of one token each: both masks are the same.
        let single = Text::of_tokens(text.tokens.clone());
        let rows = |pll| {
            masked_rows(0, &specials, (&single, pll, PllSlot::Own), 8, usize::MAX)
                .into_iter()
                .map(|row| row.tokens)
        };
        assert!(rows(Pll::WordL2r).eq(rows(Pll::Original)));
        // A window cuts a word: each window masks its own part.
        let cut = masked_rows(0, &specials, (&text, Pll::WordL2r, PllSlot::Own), 3, usize::MAX);
        assert_eq!(cut[1].tokens, vec![9, m, m]);
        assert_eq!(cut[3].tokens, vec![m, 6, 11]);
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
