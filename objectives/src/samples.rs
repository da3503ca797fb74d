//! `RUN_DIR/samples.jsonl`: what the model makes of one fixed validation excerpt at each
//! evaluation, as its objective's [`Objective::sample`] makes it. A causal model continues its
//! opening; a masked model fills masks placed in it. Read side by side over steps, they show what
//! the loss curve means.

use burn::tensor::Device;
use primer_datasets::tokenizer::PrimerTokenizer;
use primer_model::Transformer;
use primer_model::generate::{GenerateOptions, Sampling, generate};
use serde::{Deserialize, Serialize};

use crate::scoring::fill_mask;
use crate::{Companion, Objective};

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
    /// A discriminator's judgments of an excerpt in which a generator's best guesses replaced
    /// some tokens.
    Detect {
        /// The excerpt as the discriminator read it.
        text: String,
        /// Per replaced position, in order.
        replaced: Vec<Judgment>,
        /// Positions judged replaced (probability above one half), of all the excerpt's.
        flagged: usize,
    },
}

/// A position the generator filled, and what the discriminator made of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judgment {
    /// The token that was there.
    pub original: String,
    /// The generator's guess, which the discriminator read.
    pub shown: String,
    /// The discriminator's probability that the position was replaced.
    pub p_replaced: f32,
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
    excerpt: Vec<u32>,
    seed: u64,
}

impl Sampler {
    /// A sampler over `excerpt` (validation tokens, at least two), with sampling seeded by
    /// `seed`.
    pub fn new(excerpt: Vec<u32>, seed: u64) -> Self {
        Self { excerpt, seed }
    }

    /// The sample `objective` makes of `model` and its companion (inference weights on
    /// `device`) at `step`.
    pub fn sample(
        &self,
        objective: &dyn Objective,
        networks: (&Transformer, Option<&Companion>),
        tokenizer: &PrimerTokenizer,
        step: u64,
        device: &Device,
    ) -> SampleRecord {
        let sample = objective.sample(self, networks, tokenizer, device);
        SampleRecord { step, sample }
    }

    /// A continuation of the excerpt's opening (read as a prefix with `prefix_prompt`).
    pub fn continuation(
        &self,
        model: &Transformer,
        tokenizer: &PrimerTokenizer,
        prefix_prompt: bool,
        device: &Device,
    ) -> Sample {
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
            prefix_prompt,
        };
        let generated = generate(model, prompt, &options, device, |_| {});
        Sample::Generate {
            prompt: tokenizer.decode(prompt),
            text: tokenizer.decode(&generated),
        }
    }

    /// The start of the excerpt that fits `model`, and [`MASKS`] evenly spaced ordinary
    /// positions of it, away from the edges.
    pub fn masked_excerpt(&self, model: &Transformer, tokenizer: &PrimerTokenizer) -> (Vec<u32>, Vec<usize>) {
        let specials = tokenizer.specials();
        let tokens = self.excerpt[..FILL_TOKENS.min(model.max_seq_len()).min(self.excerpt.len())].to_vec();
        let candidates: Vec<usize> = (1..tokens.len().saturating_sub(1))
            .filter(|&i| !specials.all().contains(&tokens[i]))
            .collect();
        let masks = MASKS.min(candidates.len());
        let positions = (0..masks)
            .map(|m| candidates[(2 * m + 1) * candidates.len() / (2 * masks)])
            .collect();
        (tokens, positions)
    }

    /// The model's best guesses at masks placed in the excerpt.
    pub fn fills(&self, model: &Transformer, tokenizer: &PrimerTokenizer, device: &Device) -> Sample {
        let specials = tokenizer.specials();
        let (mut tokens, positions) = self.masked_excerpt(model, tokenizer);
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
