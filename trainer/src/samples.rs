//! `RUN_DIR/samples.jsonl`: what the model makes of one fixed validation excerpt at each
//! evaluation. A causal model continues its opening; a masked model fills masks placed in it.
//! Read side by side over steps, they show what the loss curve means.

use burn::tensor::Device;
use primer_datasets::tokenizer::PrimerTokenizer;
use primer_model::Transformer;
use serde::{Deserialize, Serialize};

use primer_objectives::ObjectiveInfo;
use primer_objectives::info::SampleKind;
use primer_objectives::scoring::fill_mask;

use crate::generate::{GenerateOptions, Sampling, generate};

/// Tokens of the excerpt a causal model is prompted with.
const PROMPT_TOKENS: usize = 16;
/// Tokens a causal model adds at most.
const NEW_TOKENS: usize = 48;
/// Tokens of the excerpt a masked model reads.
const FILL_TOKENS: usize = 32;
/// Masked positions in that excerpt.
const MASKS: usize = 3;
/// Predictions kept per mask.
const TOP_K: usize = 3;

/// One line of `samples.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleRecord {
    /// Optimizer step of the weights that made the sample.
    pub step: u64,
    /// The sample.
    #[serde(flatten)]
    pub sample: Sample,
}

/// A causal continuation or a masked model's fills.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Sample {
    /// A causal model's continuation of a prompt (seeded sampling, temperature 0.8, top-k 40).
    Generate {
        /// The prompt's text.
        prompt: String,
        /// The continuation's text.
        text: String,
    },
    /// A masked model's top predictions at masked positions of an excerpt.
    FillMask {
        /// The excerpt's text with `[MASK]` where tokens were hidden.
        text: String,
        /// Per mask, in order.
        masks: Vec<MaskFill>,
    },
}

/// The hidden token at one mask and the model's best guesses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaskFill {
    /// The token that was hidden.
    pub answer: String,
    /// The top predictions, most likely first: token text and probability.
    pub predictions: Vec<(String, f32)>,
}

/// Makes the samples of one run from a fixed excerpt of its validation text.
pub struct Sampler {
    objective: &'static ObjectiveInfo,
    excerpt: Vec<u32>,
    seed: u64,
}

impl Sampler {
    /// A sampler over `excerpt` (validation tokens, at least two), with sampling seeded by
    /// `seed`.
    pub fn new(objective: &'static ObjectiveInfo, excerpt: Vec<u32>, seed: u64) -> Self {
        Self {
            objective,
            excerpt,
            seed,
        }
    }

    /// The sample of `model` (inference weights on `device`) at `step`.
    pub fn sample(&self, model: &Transformer, tokenizer: &PrimerTokenizer, step: u64, device: &Device) -> SampleRecord {
        let sample = match self.objective.samples {
            SampleKind::Continuation => self.continuation(model, tokenizer, device),
            SampleKind::Fills => self.fills(model, tokenizer, device),
        };
        SampleRecord { step, sample }
    }

    fn continuation(&self, model: &Transformer, tokenizer: &PrimerTokenizer, device: &Device) -> Sample {
        let window = model.max_seq_len();
        let prompt = &self.excerpt[..PROMPT_TOKENS.min(window / 2).clamp(1, self.excerpt.len())];
        let options = GenerateOptions {
            max_new_tokens: NEW_TOKENS.min(window - prompt.len()),
            sampling: Sampling {
                temperature: 0.8,
                top_k: Some(40),
                top_p: None,
            },
            seed: self.seed,
            stop: None,
            use_cache: true,
            prefix_prompt: self.objective.prefix_prompt,
        };
        let generated = generate(model, prompt, &options, device, |_| {});
        Sample::Generate {
            prompt: tokenizer.decode(prompt),
            text: tokenizer.decode(&generated),
        }
    }

    fn fills(&self, model: &Transformer, tokenizer: &PrimerTokenizer, device: &Device) -> Sample {
        let specials = tokenizer.specials();
        let mut tokens = self.excerpt[..FILL_TOKENS.min(model.max_seq_len()).min(self.excerpt.len())].to_vec();
        // Evenly spaced ordinary tokens, away from the edges.
        let candidates: Vec<usize> = (1..tokens.len().saturating_sub(1))
            .filter(|&i| !specials.all().contains(&tokens[i]))
            .collect();
        let masks = MASKS.min(candidates.len());
        let positions: Vec<usize> = (0..masks)
            .map(|m| candidates[(2 * m + 1) * candidates.len() / (2 * masks)])
            .collect();
        let answers: Vec<u32> = positions.iter().map(|&i| tokens[i]).collect();
        for &i in &positions {
            tokens[i] = specials.mask;
        }
        let top = fill_mask(model, &tokens, specials.mask, TOP_K, device);
        let masks = answers
            .iter()
            .zip(top)
            .map(|(&answer, predictions)| MaskFill {
                answer: tokenizer.decode(&[answer]),
                predictions: predictions
                    .into_iter()
                    .map(|(id, p)| (tokenizer.decode(&[id]), p))
                    .collect(),
            })
            .collect();
        // The text between masks, decoded piece by piece so that `[MASK]` survives decoding.
        let pieces: Vec<String> = tokens
            .split(|&id| id == specials.mask)
            .map(|piece| tokenizer.decode(piece))
            .collect();
        Sample::FillMask {
            text: pieces.join(" [MASK] "),
            masks,
        }
    }
}
