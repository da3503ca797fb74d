//! Masked language modelling (BERT): hide some tokens and predict them from both sides.

use burn::tensor::Device;
use std::ops::Range;

use primer_datasets::blocks::Blocks;
use primer_datasets::tokenizer::{SpecialTokens, WordBoundaries};
use primer_model::{AttentionMode, Pooling};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::info::{Framing, LabelSlot, Metric, ObjectiveInfo, Scoring, Special};
use crate::registry::{Registration, Settings, read_settings, typed_settings};
use crate::scoring::Pll;
use crate::{LmBatch, Objective};

/// What masked language modelling is.
pub static INFO: ObjectiveInfo = ObjectiveInfo {
    name: "mlm",
    description: "masked-LM: BERT's masked language modelling, hidden tokens predicted from both sides",
    bare_value_setting: Some("masking"),
    attention: AttentionMode::Bidirectional,
    framing: Framing {
        open: Special::Cls,
        close: Special::Sep,
        pooling: Pooling::First,
    },
    scoring: Scoring::PseudoLogLikelihood(Pll::Original),
    masked_scoring: None,
    label_slot: LabelSlot::Masked,
    shifted_targets: 0,
    accuracy: "masked-token accuracy",
    metrics: [Metric::Accuracy, Metric::PseudoPerplexity],
};

/// The registry's entry.
pub const REGISTRATION: Registration = Registration {
    info: &INFO,
    settings: typed_settings::<MlmConfig>,
    build: |settings, tokenizer| {
        let config: MlmConfig = read_settings(settings);
        let objective = MaskedLm::new(config, *tokenizer.specials(), tokenizer.vocab_size());
        Box::new(match config.masking {
            Masking::Token => objective,
            Masking::Word | Masking::Span => objective.with_words(tokenizer.word_boundaries()),
        })
    },
};

/// What is chosen for prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Masking {
    /// Each non-special token on its own with probability `mask_rate`, over the whole batch
    /// (BERT, Hugging Face's `DataCollatorForLanguageModeling`).
    #[default]
    Token,
    /// Whole words until `mask_rate` of each sequence's tokens are chosen; `[MASK]`, random
    /// or kept per token (BERT's whole-word masking, `DataCollatorForWholeWordMask`).
    Word,
    /// Spans of whole words, their lengths in words geometric with p = 0.2 truncated at 10, until
    /// `mask_rate` of each sequence's tokens are chosen; `[MASK]`, random or kept per span
    /// (SpanBERT, Joshi et al. 2020).
    Span,
}

/// BERT's masking rates, as in Hugging Face's `DataCollatorForLanguageModeling`: the settings
/// of `mlm` (`mlm:mask_rate=0.2,masking=span`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MlmConfig {
    /// Probability that a non-special token is selected for prediction (0.15).
    pub mask_rate: f64,
    /// Of the selected tokens, the share replaced by `[MASK]` (0.8).
    pub mask_token_prob: f64,
    /// Of the selected tokens, the share replaced by a random token (0.1); the rest is kept.
    pub random_token_prob: f64,
    /// What is chosen: tokens, whole words or spans (absent in runs made before it existed).
    pub masking: Masking,
}

impl Default for MlmConfig {
    fn default() -> Self {
        Self {
            mask_rate: 0.15,
            mask_token_prob: 0.8,
            random_token_prob: 0.1,
            masking: Masking::Token,
        }
    }
}

/// SpanBERT's span lengths: geometric with this parameter ...
const SPAN_P: f64 = 0.2;
/// ... on 1 to this many words.
const SPAN_MAX_WORDS: usize = 10;

/// A span length in words: geometric with p = [`SPAN_P`] on 1, 2, ..., truncated to
/// [`SPAN_MAX_WORDS`] and renormalised, as SpanBERT's code draws it (mean 3.8, the paper's).
pub fn span_length(rng: &mut ChaCha8Rng) -> usize {
    loop {
        let uniform: f64 = 1.0 - rng.random::<f64>();
        let length = 1.0 + (uniform.ln() / (1.0 - SPAN_P).ln()).floor();
        if length <= SPAN_MAX_WORDS as f64 {
            return length as usize;
        }
    }
}

impl Settings for MlmConfig {
    fn validate(&self) -> Result<(), String> {
        if !(self.mask_rate > 0.0 && self.mask_rate <= 1.0) {
            return Err(format!("mask_rate {} must be in (0, 1]", self.mask_rate));
        }
        let (mask, random) = (self.mask_token_prob, self.random_token_prob);
        if !(0.0..=1.0).contains(&mask) || !(0.0..=1.0).contains(&random) || mask + random > 1.0 {
            return Err(format!(
                "mask_token_prob {mask} and random_token_prob {random} must be in [0, 1] and sum to at most 1"
            ));
        }
        Ok(())
    }
}

/// The result of masking one batch of tokens, on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct MlmMasking {
    /// Tokens after replacement (`[MASK]`, random or kept).
    pub inputs: Vec<u32>,
    /// Flat positions selected for prediction, ascending.
    pub selected: Vec<u32>,
    /// Original tokens at those positions.
    pub targets: Vec<u32>,
}

/// The masked-LM objective: bidirectional attention, loss only at selected positions, masks
/// drawn afresh for every batch from the batch seed.
#[derive(Debug, Clone)]
pub struct MaskedLm {
    config: MlmConfig,
    specials: SpecialTokens,
    vocab_size: usize,
    words: WordBoundaries,
}

impl MaskedLm {
    /// An MLM objective for a tokenizer with these special tokens and vocabulary size; whole
    /// words and spans count every token as a word until [`Self::with_words`] says otherwise.
    pub fn new(config: MlmConfig, specials: SpecialTokens, vocab_size: usize) -> Self {
        Self {
            config,
            specials,
            vocab_size,
            words: WordBoundaries::every_token(),
        }
    }

    /// The tokenizer's word boundaries, for whole-word and span masking.
    pub fn with_words(self, words: WordBoundaries) -> Self {
        Self { words, ..self }
    }

    fn is_special(&self, id: u32) -> bool {
        self.specials.all().contains(&id)
    }

    /// Selects and replaces tokens of a batch of sequences of `seq` tokens, following the
    /// config's [`Masking`]. Special tokens are never selected; at least one token is selected
    /// whenever the batch has a non-special token, unless the mask rate is 0 (which ELECTRA
    /// allows: its discriminator then trains alone).
    pub fn mask(&self, tokens: &[u32], seq: usize, seed: u64) -> MlmMasking {
        match self.config.masking {
            Masking::Token => self.mask_tokens(tokens, seed),
            Masking::Word | Masking::Span => self.mask_words(tokens, seq, seed),
        }
    }

    /// [`Masking::Token`]: every token on its own, over the whole batch.
    fn mask_tokens(&self, tokens: &[u32], seed: u64) -> MlmMasking {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut inputs = tokens.to_vec();
        let mut selected = Vec::new();
        for (i, &token) in tokens.iter().enumerate() {
            if !self.is_special(token) && rng.random_bool(self.config.mask_rate) {
                selected.push(i as u32);
            }
        }
        if selected.is_empty()
            && self.config.mask_rate > 0.0
            && let Some(i) = tokens.iter().position(|&t| !self.is_special(t))
        {
            selected.push(i as u32);
        }
        for &i in &selected {
            let roll: f64 = rng.random();
            if roll < self.config.mask_token_prob {
                inputs[i as usize] = self.specials.mask;
            } else if roll < self.config.mask_token_prob + self.config.random_token_prob {
                inputs[i as usize] = self.random_ordinary_token(&mut rng);
            }
        }
        let targets = selected.iter().map(|&i| tokens[i as usize]).collect();
        MlmMasking {
            inputs,
            selected,
            targets,
        }
    }

    /// [`Masking::Word`] and [`Masking::Span`]: whole words of each sequence until its
    /// budget of `mask_rate` of its ordinary tokens (at least one) is reached.
    fn mask_words(&self, tokens: &[u32], seq: usize, seed: u64) -> MlmMasking {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut inputs = tokens.to_vec();
        let mut selected = Vec::new();
        for (block, sequence) in tokens.chunks(seq.max(1)).enumerate() {
            let offset = block * seq;
            let words = self.words_of(sequence);
            let ordinary: usize = words.iter().map(|w| w.len()).sum();
            let budget = ((ordinary as f64 * self.config.mask_rate).round() as usize).max(1);
            let chosen = match self.config.masking {
                Masking::Span => choose_spans(&words, budget, &mut rng),
                _ => choose_words(&words, budget, &mut rng),
            };
            for group in chosen {
                // Span masking replaces a span as one; whole-word masking each token.
                let mut roll: f64 = rng.random();
                for i in group.into_iter().map(|i| i + offset) {
                    if self.config.masking == Masking::Word {
                        roll = rng.random();
                    }
                    if roll < self.config.mask_token_prob {
                        inputs[i] = self.specials.mask;
                    } else if roll < self.config.mask_token_prob + self.config.random_token_prob {
                        inputs[i] = self.random_ordinary_token(&mut rng);
                    }
                    selected.push(i as u32);
                }
            }
        }
        selected.sort_unstable();
        let targets = selected.iter().map(|&i| tokens[i as usize]).collect();
        MlmMasking {
            inputs,
            selected,
            targets,
        }
    }

    /// The words of a sequence as position ranges, special tokens left out.
    fn words_of(&self, sequence: &[u32]) -> Vec<Range<usize>> {
        let mut words: Vec<Range<usize>> = Vec::new();
        for (i, &token) in sequence.iter().enumerate() {
            if self.is_special(token) {
                continue;
            }
            let previous = i.checked_sub(1).map(|p| sequence[p]);
            match words.last_mut() {
                Some(word) if word.end == i && !self.words.starts_word(previous, token) => word.end += 1,
                _ => words.push(i..i + 1),
            }
        }
        words
    }

    fn random_ordinary_token(&self, rng: &mut ChaCha8Rng) -> u32 {
        loop {
            let id = rng.random_range(0..self.vocab_size as u32);
            if !self.is_special(id) {
                return id;
            }
        }
    }
}

/// Whole words in a seeded random order while they fit the budget (a word that would pass it
/// is skipped, as in `DataCollatorForWholeWordMask`); the first word when none fits.
fn choose_words(words: &[Range<usize>], budget: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..words.len()).collect();
    order.shuffle(rng);
    let mut chosen = Vec::new();
    let mut taken = 0;
    for &w in &order {
        if taken + words[w].len() <= budget {
            taken += words[w].len();
            chosen.push(words[w].clone().collect());
        }
    }
    if chosen.is_empty()
        && let Some(&w) = order.first()
    {
        chosen.push(words[w].clone().collect());
    }
    chosen
}

/// SpanBERT's spans: a length in words from [`span_length`] and a random first word, again
/// until the budget is reached; a span overlapping one already chosen is drawn again, and one
/// that would pass the budget is cut to it (whole words only: its first word alone may pass
/// it, when that ends nearer the budget than stopping short).
fn choose_spans(words: &[Range<usize>], budget: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<usize>> {
    let mut taken_words = vec![false; words.len()];
    let mut chosen = Vec::new();
    let mut taken = 0;
    // Enough draws to fill any budget the words allow; overlaps make some draws fail.
    for _ in 0..words.len() * 4 {
        if taken >= budget || words.is_empty() {
            break;
        }
        let length = span_length(rng);
        let first = rng.random_range(0..words.len());
        let mut last = (first + length).min(words.len());
        if taken_words[first..last].iter().any(|&t| t) {
            continue;
        }
        let tokens = |last: usize| words[first..last].iter().map(|w| w.len()).sum::<usize>();
        while last > first + 1 && taken + tokens(last) > budget {
            last -= 1;
        }
        // A last word that passes the budget is taken only when that ends nearer to it.
        if taken > 0 && taken + tokens(last) > budget && taken + tokens(last) - budget > budget - taken {
            break;
        }
        taken_words[first..last].iter_mut().for_each(|t| *t = true);
        taken += tokens(last);
        // The span's words, without the special tokens that may sit between them.
        chosen.push(words[first..last].iter().flat_map(|w| w.clone()).collect());
    }
    chosen
}

impl Objective for MaskedLm {
    fn info(&self) -> &'static ObjectiveInfo {
        &INFO
    }

    fn batch(&self, blocks: &Blocks, seed: u64, device: &Device) -> LmBatch {
        let masking = self.mask(&blocks.tokens, blocks.block_len, seed);
        LmBatch::from_host(
            masking.inputs,
            [blocks.count(), blocks.block_len],
            Some(masking.selected),
            masking.targets,
            AttentionMode::Bidirectional,
            device,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECIALS: SpecialTokens = SpecialTokens::PRIMER;

    fn objective() -> MaskedLm {
        MaskedLm::new(MlmConfig::default(), SPECIALS, 100)
    }

    /// Tokens 7..100 with an [EOS] every tenth position.
    fn tokens(n: usize) -> Vec<u32> {
        (0..n)
            .map(|i| if i % 10 == 9 { 6 } else { 7 + (i % 93) as u32 })
            .collect()
    }

    #[test]
    fn rates_match_bert_over_many_draws_and_specials_are_never_selected() {
        let objective = objective();
        let tokens = tokens(1000);
        let ordinary = tokens.iter().filter(|&&t| t != 6).count() as f64;
        let (mut selected, mut masked, mut random, mut kept, mut draws) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for seed in 0..400 {
            let m = objective.mask(&tokens, 100, seed);
            draws += ordinary;
            for (&i, &target) in m.selected.iter().zip(&m.targets) {
                assert_ne!(tokens[i as usize], 6, "special token selected");
                assert_eq!(target, tokens[i as usize]);
                selected += 1.0;
                match m.inputs[i as usize] {
                    4 => masked += 1.0,
                    t if t == target => kept += 1.0,
                    t => {
                        assert!(
                            (7..100).contains(&t),
                            "random token {t} is special or out of vocabulary"
                        );
                        random += 1.0;
                    }
                }
            }
            // Unselected positions are untouched.
            let changed = (0..tokens.len()).filter(|&i| m.inputs[i] != tokens[i]).count();
            assert!(changed <= m.selected.len());
        }
        let rate = selected / draws;
        assert!((rate - 0.15).abs() < 0.005, "selection rate {rate}");
        // A random replacement can draw the original token (1 in 93): counted as kept.
        assert!(
            (masked / selected - 0.8).abs() < 0.01,
            "mask share {}",
            masked / selected
        );
        assert!(
            (random / selected - 0.1 * 92.0 / 93.0).abs() < 0.01,
            "random share {}",
            random / selected
        );
        assert!(
            (kept / selected - (0.1 + 0.1 / 93.0)).abs() < 0.01,
            "kept share {}",
            kept / selected
        );
    }

    /// An objective whose words begin at ids divisible by 3 (and after [EOS]).
    fn by_words(masking: Masking) -> MaskedLm {
        let opens = (0..100).map(|id| id % 3 == 0).collect();
        let config = MlmConfig {
            masking,
            ..Default::default()
        };
        MaskedLm::new(config, SPECIALS, 100).with_words(WordBoundaries::from_tables(opens, vec![false; 100]))
    }

    #[test]
    fn whole_words_and_spans_are_never_split_and_fill_the_budget_of_each_sequence() {
        let tokens = tokens(2000);
        let seq = 100;
        for masking in [Masking::Word, Masking::Span] {
            let objective = by_words(masking);
            let (mut chosen, mut ordinary) = (0usize, 0usize);
            for seed in 0..200 {
                let m = objective.mask(&tokens, seq, seed);
                let selected: std::collections::HashSet<usize> = m.selected.iter().map(|&i| i as usize).collect();
                for (block, sequence) in tokens.chunks(seq).enumerate() {
                    for word in objective.words_of(sequence) {
                        let hits = word.clone().filter(|i| selected.contains(&(i + block * seq))).count();
                        assert!(hits == 0 || hits == word.len(), "{masking:?} split the word {word:?}");
                    }
                }
                assert!(
                    m.selected.iter().all(|&i| tokens[i as usize] != 6),
                    "a special token selected"
                );
                chosen += m.selected.len();
                ordinary += tokens.iter().filter(|&&t| t != 6).count();
            }
            let rate = chosen as f64 / ordinary as f64;
            assert!((rate - 0.15).abs() < 0.01, "{masking:?}: rate {rate}");
        }
    }

    #[test]
    fn span_lengths_are_geometric_with_p_0_2_truncated_at_10() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let draws = 100_000;
        let mut counts = [0usize; SPAN_MAX_WORDS + 1];
        for _ in 0..draws {
            counts[span_length(&mut rng)] += 1;
        }
        let geometric = |k: usize| (1.0 - SPAN_P).powi(k as i32 - 1) * SPAN_P;
        let total: f64 = (1..=SPAN_MAX_WORDS).map(geometric).sum();
        let expected = |k: usize| geometric(k) / total;
        let chi2: f64 = (1..=SPAN_MAX_WORDS)
            .map(|k| {
                let e = expected(k) * draws as f64;
                (counts[k] as f64 - e).powi(2) / e
            })
            .sum();
        // 9 degrees of freedom: 27.9 is the 0.001 critical value.
        assert!(chi2 < 27.9, "chi-squared {chi2}: {counts:?}");
        let mean = (1..=SPAN_MAX_WORDS).map(|k| k * counts[k]).sum::<usize>() as f64 / draws as f64;
        assert!((mean - 3.8).abs() < 0.05, "mean span {mean}");
    }

    #[test]
    fn same_seed_same_masks_new_seed_new_masks() {
        let tokens = tokens(500);
        for masking in [Masking::Token, Masking::Word, Masking::Span] {
            let objective = by_words(masking);
            assert_eq!(objective.mask(&tokens, 50, 3), objective.mask(&tokens, 50, 3));
            assert_ne!(
                objective.mask(&tokens, 50, 3).selected,
                objective.mask(&tokens, 50, 4).selected
            );
        }
    }

    #[test]
    fn at_least_one_target_and_custom_rates() {
        let objective = objective();
        let m = objective.mask(&[6, 6, 50, 6], 4, 0);
        assert_eq!(m.selected, [2]);
        let all_masked = MaskedLm::new(
            MlmConfig {
                mask_rate: 1.0,
                mask_token_prob: 1.0,
                random_token_prob: 0.0,
                masking: Masking::Token,
            },
            SPECIALS,
            100,
        );
        let m = all_masked.mask(&tokens(50), 50, 1);
        assert_eq!(m.selected.len(), 45);
        assert!(m.selected.iter().all(|&i| m.inputs[i as usize] == 4));
        assert!(
            MlmConfig {
                mask_rate: 0.0,
                ..Default::default()
            }
            .validate()
            .is_err()
        );
        assert!(
            MlmConfig {
                mask_token_prob: 0.95,
                ..Default::default()
            }
            .validate()
            .is_err()
        );
    }
}
