//! Masked language modelling (BERT): hide some tokens and predict them from both sides.

use burn::tensor::Device;
use primer_datasets::tokenizer::SpecialTokens;
use primer_model::AttentionMode;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::{LmBatch, Objective};

/// BERT's masking rates, as in Hugging Face's `DataCollatorForLanguageModeling`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MlmConfig {
    /// Probability that a non-special token is selected for prediction (0.15).
    pub mask_rate: f64,
    /// Of the selected tokens, the share replaced by `[MASK]` (0.8).
    pub mask_token_prob: f64,
    /// Of the selected tokens, the share replaced by a random token (0.1); the rest is kept.
    pub random_token_prob: f64,
}

impl Default for MlmConfig {
    fn default() -> Self {
        Self {
            mask_rate: 0.15,
            mask_token_prob: 0.8,
            random_token_prob: 0.1,
        }
    }
}

impl MlmConfig {
    /// Checks the rates; the message names the option at fault.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.mask_rate > 0.0 && self.mask_rate <= 1.0) {
            return Err(format!("--mask-rate {} must be in (0, 1]", self.mask_rate));
        }
        let (mask, random) = (self.mask_token_prob, self.random_token_prob);
        if !(0.0..=1.0).contains(&mask) || !(0.0..=1.0).contains(&random) || mask + random > 1.0 {
            return Err(format!(
                "--mask-token-prob {mask} and --random-token-prob {random} must be in [0, 1] and sum to at most 1"
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
}

impl MaskedLm {
    /// An MLM objective for a tokenizer with these special tokens and vocabulary size.
    pub fn new(config: MlmConfig, specials: SpecialTokens, vocab_size: usize) -> Self {
        Self {
            config,
            specials,
            vocab_size,
        }
    }

    fn is_special(&self, id: u32) -> bool {
        self.specials.all().contains(&id)
    }

    /// Selects and replaces tokens. Special tokens are never selected; at least one token is
    /// selected whenever the batch has a non-special token.
    pub fn mask(&self, tokens: &[u32], seed: u64) -> MlmMasking {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut inputs = tokens.to_vec();
        let mut selected = Vec::new();
        for (i, &token) in tokens.iter().enumerate() {
            if !self.is_special(token) && rng.random_bool(self.config.mask_rate) {
                selected.push(i as u32);
            }
        }
        if selected.is_empty()
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

    fn random_ordinary_token(&self, rng: &mut ChaCha8Rng) -> u32 {
        loop {
            let id = rng.random_range(0..self.vocab_size as u32);
            if !self.is_special(id) {
                return id;
            }
        }
    }
}

impl Objective for MaskedLm {
    fn name(&self) -> &'static str {
        "mlm"
    }

    fn attention(&self) -> AttentionMode {
        AttentionMode::Bidirectional
    }

    fn block_len(&self, seq_len: usize) -> usize {
        seq_len
    }

    fn batch(&self, blocks: &[u32], n_blocks: usize, seed: u64, device: &Device) -> LmBatch {
        let seq = blocks.len() / n_blocks;
        let masking = self.mask(blocks, seed);
        LmBatch::from_host(
            masking.inputs,
            [n_blocks, seq],
            Some(masking.selected),
            masking.targets,
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
            let m = objective.mask(&tokens, seed);
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

    #[test]
    fn same_seed_same_masks_new_seed_new_masks() {
        let objective = objective();
        let tokens = tokens(500);
        assert_eq!(objective.mask(&tokens, 3), objective.mask(&tokens, 3));
        assert_ne!(objective.mask(&tokens, 3).selected, objective.mask(&tokens, 4).selected);
    }

    #[test]
    fn at_least_one_target_and_custom_rates() {
        let objective = objective();
        let m = objective.mask(&[6, 6, 50, 6], 0);
        assert_eq!(m.selected, [2]);
        let all_masked = MaskedLm::new(
            MlmConfig {
                mask_rate: 1.0,
                mask_token_prob: 1.0,
                random_token_prob: 0.0,
            },
            SPECIALS,
            100,
        );
        let m = all_masked.mask(&tokens(50), 1);
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
