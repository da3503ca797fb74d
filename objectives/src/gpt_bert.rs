//! GPT-BERT (Charpentier & Samuel 2024, "GPT or BERT: why not both?"): one model trained by
//! causal and masked language modelling at once. Most rows of a batch are masked next-token
//! prediction (MNTP): tokens are masked as BERT masks them and the rows read both ways, but each
//! hidden token is predicted from the position before it, so the LM head always predicts the
//! next token; the other rows are plain causal LM. The trained model reads text either way.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor};
use primer_datasets::blocks::Blocks;
use primer_datasets::tokenizer::SpecialTokens;
use primer_model::{AttentionMode, Pooling, Transformer};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::info::{Framing, LabelSlot, Metric, ObjectiveInfo, Scoring, Special};
use crate::mlm::{MaskedLm, Masking, MlmConfig};
use crate::registry::{Registration, Settings, read_settings, typed_settings};
use crate::scoring::Pll;
use crate::{Companion, Details, LmBatch, LmSums, Objective, predicted_logits};

/// The detail ([`LmSums::details`]) of whether each target of a causal row was the model's top
/// prediction.
const CAUSAL_HITS: &str = "causal_hits";

/// What GPT-BERT is.
pub static INFO: ObjectiveInfo = ObjectiveInfo {
    name: "gpt-bert",
    description: "GPT-BERT: masked next-token prediction read both ways mixed with causal LM, one model for both uses",
    bare_value_setting: None,
    // Fine-tuned as a BERT, reading the whole text; every pre-training document follows an
    // `[EOS]`, and no position was trained to sum a text up, so the classifier averages.
    attention: AttentionMode::Bidirectional,
    framing: Framing {
        open: Special::Eos,
        close: Special::Eos,
        pooling: Pooling::Mean,
    },
    // Read left to right it is a causal LM: the cheap scoring, as GPT-BERT's authors use it.
    scoring: Scoring::LogLikelihood,
    // Read both ways, as its masked rows were trained: `--pll original|word-l2r`.
    masked_scoring: Some(Scoring::NextTokenPseudoLogLikelihood(Pll::Original)),
    label_slot: LabelSlot::NextToken,
    shifted_targets: 1,
    accuracy: "next-token accuracy (masked and causal rows)",
    metrics: [
        Metric::Accuracy,
        Metric::FromObjective {
            key: "causal_accuracy",
            name: "next-token accuracy of causal rows",
            chance: None,
        },
    ],
};

/// The registry's entry.
pub const REGISTRATION: Registration = Registration {
    info: &INFO,
    settings: typed_settings::<GptBertConfig>,
    build: |settings, tokenizer| {
        let config: GptBertConfig = read_settings(settings);
        Box::new(GptBert::new(config, *tokenizer.specials(), tokenizer.vocab_size()))
    },
};

/// The settings of `gpt-bert` (`gpt-bert:masked_share=0.5`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GptBertConfig {
    /// Share of each batch's rows trained by masked next-token prediction, rounded down; the
    /// rest are causal (15/16: the `hybrid_numerator` / `hybrid_denominator` of GPT-BERT's
    /// released recipes).
    pub masked_share: f64,
    /// Probability that a non-special token of a masked row is hidden (0.15, BERT's).
    pub mask_rate: f64,
    /// Of the hidden tokens, the share replaced by `[MASK]` (0.8).
    pub mask_token_prob: f64,
    /// Of the hidden tokens, the share replaced by a random token (0.1); the rest is kept.
    pub random_token_prob: f64,
}

impl Default for GptBertConfig {
    fn default() -> Self {
        Self {
            masked_share: 15.0 / 16.0,
            mask_rate: 0.15,
            mask_token_prob: 0.8,
            random_token_prob: 0.1,
        }
    }
}

impl GptBertConfig {
    /// The masking of the masked rows, as `mlm` masks tokens.
    fn masking(&self) -> MlmConfig {
        MlmConfig {
            mask_rate: self.mask_rate,
            mask_token_prob: self.mask_token_prob,
            random_token_prob: self.random_token_prob,
            masking: Masking::Token,
        }
    }
}

impl Settings for GptBertConfig {
    fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.masked_share) {
            return Err(format!("masked_share {} must be in [0, 1]", self.masked_share));
        }
        self.masking().validate()
    }
}

/// The GPT-BERT objective.
#[derive(Debug, Clone)]
pub struct GptBert {
    masked_share: f64,
    masking: MaskedLm,
}

impl GptBert {
    /// GPT-BERT for a tokenizer with these special tokens and vocabulary size.
    pub fn new(config: GptBertConfig, specials: SpecialTokens, vocab_size: usize) -> Self {
        Self {
            masked_share: config.masked_share,
            masking: MaskedLm::new(config.masking(), specials, vocab_size),
        }
    }

    /// Which of `rows` rows are masked, drawn with `rng`.
    fn masked_rows(&self, rows: usize, rng: &mut ChaCha8Rng) -> Vec<bool> {
        let masked = (rows as f64 * self.masked_share).floor() as usize;
        let mut is_masked: Vec<bool> = (0..rows).map(|row| row < masked).collect();
        is_masked.shuffle(rng);
        is_masked
    }
}

impl Objective for GptBert {
    fn info(&self) -> &'static ObjectiveInfo {
        &INFO
    }

    /// Causal rows read `block[..seq]` left to right and predict `block[1..]`; masked rows mask
    /// `block[1..]` as BERT does, read `block[0]` and the masked tokens before the last both
    /// ways, and predict each hidden token from the position before it. A causal row's prefix
    /// is empty, a masked row's is the whole row; causal rows' targets come first.
    fn batch(&self, blocks: &Blocks, seed: u64, device: &Device) -> LmBatch {
        let (rows, seq) = (blocks.count(), blocks.block_len - 1);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let is_masked = self.masked_rows(rows, &mut rng);
        let shifted: Vec<u32> = blocks
            .iter()
            .zip(&is_masked)
            .filter(|&(_, &masked)| masked)
            .flat_map(|(block, _)| block[1..].iter().copied())
            .collect();
        let masking = self.masking.mask(&shifted, seq, rng.random());
        let mut inputs = Vec::with_capacity(rows * seq);
        let (mut predict_at, mut targets) = (Vec::new(), Vec::new());
        for (row, block) in blocks.iter().enumerate().filter(|&(row, _)| !is_masked[row]) {
            predict_at.extend((0..seq).map(|col| (row * seq + col) as u32));
            targets.extend_from_slice(&block[1..]);
        }
        let mut masked_index = 0;
        for (row, block) in blocks.iter().enumerate() {
            if !is_masked[row] {
                inputs.extend_from_slice(&block[..seq]);
                continue;
            }
            let first = masked_index * seq;
            inputs.push(block[0]);
            inputs.extend_from_slice(&masking.inputs[first..first + seq - 1]);
            for (&at, &target) in masking.selected.iter().zip(&masking.targets) {
                let at = at as usize;
                if (first..first + seq).contains(&at) {
                    predict_at.push((row * seq + at - first) as u32);
                    targets.push(target);
                }
            }
            masked_index += 1;
        }
        let prefixes = is_masked.iter().map(|&masked| if masked { seq } else { 0 }).collect();
        LmBatch::from_host(
            inputs,
            [rows, seq],
            Some(predict_at),
            targets,
            AttentionMode::Prefix(prefixes),
            device,
        )
    }

    /// Cross-entropy at the predicted positions, as every language model's; the details are
    /// the causal rows' hits, for their accuracy alone.
    fn loss(&self, model: &Transformer, _companion: Option<&Companion>, batch: LmBatch) -> LmSums {
        let n_targets = batch.n_targets();
        let seq = batch.inputs.dims()[1];
        let causal_targets = match &batch.attention {
            AttentionMode::Prefix(prefixes) => prefixes.iter().filter(|&&prefix| prefix == 0).count() * seq,
            _ => 0,
        };
        let logits = predicted_logits(model, batch.inputs, batch.predict_at, batch.attention, None);
        let targets = batch.targets.reshape([n_targets, 1]);
        let hits = logits.clone().argmax(1).equal(targets.clone()).int();
        let nll = log_softmax(logits, 1).gather(1, targets).sum().neg();
        let mut details = Vec::new();
        if causal_targets > 0 {
            let causal_hits: Tensor<1> = hits.clone().float().reshape([n_targets]).slice(0..causal_targets);
            details.push((CAUSAL_HITS, causal_hits));
        }
        LmSums {
            nll,
            correct: hits.sum(),
            n_targets,
            details,
        }
    }

    fn own_metrics(&self, details: &Details) -> Vec<(&'static str, f64)> {
        let hits = details.get(CAUSAL_HITS).map_or(&[][..], Vec::as_slice);
        let accuracy = hits.iter().map(|&hit| f64::from(hit)).sum::<f64>() / hits.len().max(1) as f64;
        vec![("causal_accuracy", accuracy)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use primer_model::TransformerConfig;
    use primer_model::tensors::host_floats;

    fn host(tensor: Tensor<1, burn::tensor::Int>) -> Vec<i64> {
        tensor.into_data().convert::<i64>().try_into_vec::<i64>().unwrap()
    }

    fn objective(masked_share: f64) -> GptBert {
        let config = GptBertConfig {
            masked_share,
            mask_rate: 0.5,
            ..GptBertConfig::default()
        };
        GptBert::new(config, SpecialTokens::PRIMER, 200)
    }

    /// Four blocks of 9 tokens (seq 8), every token ordinary and telling its row and column.
    fn blocks() -> Blocks {
        Blocks::new(
            (0..4)
                .flat_map(|row| (0..9).map(move |col| 100 + 10 * row + col))
                .collect(),
            9,
        )
    }

    #[test]
    fn causal_rows_predict_the_next_token_and_masked_rows_each_hidden_token_from_the_one_before() {
        let device = Device::flex();
        let batch = objective(0.5).batch(&blocks(), 3, &device);
        let AttentionMode::Prefix(prefixes) = batch.attention.clone() else {
            panic!("rows read causally or both ways");
        };
        assert_eq!(prefixes.iter().filter(|&&p| p == 8).count(), 2, "{prefixes:?}");
        assert_eq!(prefixes.iter().filter(|&&p| p == 0).count(), 2, "{prefixes:?}");
        let inputs = host(batch.inputs.clone().reshape([32]));
        let (at, targets) = (host(batch.predict_at.clone().unwrap()), host(batch.targets.clone()));
        let causal: Vec<usize> = (0..4).filter(|&row| prefixes[row] == 0).collect();
        // Causal rows first: every position, predicting the token after it.
        for (i, &row) in causal.iter().enumerate() {
            for col in 0..8 {
                assert_eq!(at[i * 8 + col], (row * 8 + col) as i64);
                assert_eq!(targets[i * 8 + col], (100 + 10 * row + col + 1) as i64);
                assert_eq!(inputs[row * 8 + col], (100 + 10 * row + col) as i64);
            }
        }
        // Masked rows: the target at position `col` is the original token at `col + 1`, which
        // the input shows changed (or kept) there; unpredicted positions show the original.
        let masked_targets = &targets[16..];
        assert!(!masked_targets.is_empty());
        for (&position, &target) in at[16..].iter().zip(masked_targets) {
            let (row, col) = (position as usize / 8, position as usize % 8);
            assert_eq!(prefixes[row], 8);
            assert_eq!(target, (100 + 10 * row + col + 1) as i64);
        }
        for row in (0..4).filter(|&row| prefixes[row] == 8) {
            assert_eq!(
                inputs[row * 8],
                (100 + 10 * row) as i64,
                "the first token is never hidden"
            );
            for col in 1..8 {
                let predicted = at[16..].contains(&((row * 8 + col - 1) as i64));
                if !predicted {
                    assert_eq!(inputs[row * 8 + col], (100 + 10 * row + col) as i64);
                }
            }
        }
        // The same blocks and seed give the same batch.
        let again = objective(0.5).batch(&blocks(), 3, &device);
        assert_eq!(
            (host(again.predict_at.unwrap()), again.attention),
            (at, batch.attention)
        );
    }

    #[test]
    fn the_share_of_masked_rows_is_rounded_down_and_all_causal_rows_are_counted() {
        let device = Device::flex();
        let rows = |share: f64| match objective(share).batch(&blocks(), 1, &device).attention {
            AttentionMode::Prefix(prefixes) => prefixes.iter().filter(|&&p| p > 0).count(),
            _ => panic!("rows read causally or both ways"),
        };
        assert_eq!((rows(15.0 / 16.0), rows(0.0), rows(1.0)), (3, 0, 4));

        let config = TransformerConfig::new(200)
            .with_d_model(16)
            .with_n_heads(2)
            .with_n_layers(1);
        let model = config.init(&device);
        let gpt_bert = objective(0.5);
        let sums = gpt_bert.loss(&model, None, gpt_bert.batch(&blocks(), 3, &device));
        let (_, hits) = &sums.details[0];
        assert_eq!(hits.dims(), [16], "two causal rows of 8 targets");
        let details = Details::from([(CAUSAL_HITS, host_floats(hits.clone()))]);
        let [(key, accuracy)] = gpt_bert.own_metrics(&details)[..] else {
            panic!("one metric");
        };
        assert_eq!(key, "causal_accuracy");
        assert!((0.0..=1.0).contains(&accuracy));
    }
}
