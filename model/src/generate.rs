//! Text generation from a causal model: temperature, top-k and top-p sampling with primer's own
//! seeded random generator, and incremental decoding through a key/value cache.

use crate::tensors::{host_floats, ids};
use crate::{AttentionMode, KvCache, Transformer};
use burn::tensor::{Device, Int, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How the next token is drawn from the model's logits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// Divides the logits; `0` picks the most likely token (greedy).
    pub temperature: f32,
    /// Keep only the `k` most likely tokens.
    pub top_k: Option<usize>,
    /// Keep the smallest set of most likely tokens whose probability reaches `p` (nucleus).
    pub top_p: Option<f32>,
}

impl Sampling {
    /// Draws a token id from `logits` (one per vocabulary entry).
    pub fn sample(&self, logits: &[f32], rng: &mut impl Rng) -> u32 {
        if self.temperature <= 0.0 {
            return argmax(logits);
        }
        // (id, probability), most likely first.
        let mut ranked: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .map(|(id, &logit)| (id as u32, logit / self.temperature))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        if let Some(k) = self.top_k {
            ranked.truncate(k.max(1));
        }
        let max = ranked[0].1;
        let mut total = 0.0;
        for (_, value) in &mut ranked {
            *value = (*value - max).exp();
            total += *value;
        }
        for (_, value) in &mut ranked {
            *value /= total;
        }
        if let Some(p) = self.top_p {
            let mut mass = 0.0;
            let keep = ranked
                .iter()
                .position(|&(_, prob)| {
                    mass += prob;
                    mass >= p
                })
                .map_or(ranked.len(), |last| last + 1);
            ranked.truncate(keep);
        }
        let mass: f32 = ranked.iter().map(|(_, prob)| prob).sum();
        let mut draw = rng.random::<f32>() * mass;
        for &(id, prob) in &ranked {
            if draw < prob {
                return id;
            }
            draw -= prob;
        }
        ranked.last().expect("at least one token is kept").0
    }
}

/// Index of the largest value.
pub fn argmax(values: &[f32]) -> u32 {
    values
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(id, _)| id as u32)
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Tokens to add after the prompt at most.
    pub max_new_tokens: usize,
    /// The sampling rule.
    pub sampling: Sampling,
    /// Seeds the sampler.
    pub seed: u64,
    /// Stop after this token (`[EOS]`), which is not returned.
    pub stop: Option<u32>,
    /// Decode incrementally with a key/value cache; `false` re-runs the whole context for each
    /// new token (the reference the cache is checked and benchmarked against).
    pub use_cache: bool,
    /// Read the prompt both ways, as a prefix (prefix-LM); otherwise left to right.
    pub prefix_prompt: bool,
}

/// Continues `prompt` (non-empty, at most the model's `max_seq_len` tokens) with new tokens,
/// calling `on_token` with each as it is drawn. Once the context is full, the oldest tokens
/// fall out of view: the cached decoder then re-reads the newest half of the window at once.
pub fn generate(
    model: &Transformer,
    prompt: &[u32],
    options: &GenerateOptions,
    device: &Device,
    mut on_token: impl FnMut(u32),
) -> Vec<u32> {
    let window = model.max_seq_len();
    assert!(
        !prompt.is_empty() && prompt.len() <= window,
        "the prompt must hold 1 to {window} tokens"
    );
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    // The attention of a window of the context starting at token `start`: the part of the
    // prompt still in it is the prefix.
    let mode = |start: usize| match options.prefix_prompt {
        true => AttentionMode::Prefix(vec![prompt.len().saturating_sub(start)]),
        false => AttentionMode::Causal,
    };
    let mut context = prompt.to_vec();
    let mut cache = KvCache::default();
    // Tokens the model has not read yet.
    let mut unread = context.len();
    let mut generated = Vec::new();
    while generated.len() < options.max_new_tokens {
        let logits = if options.use_cache {
            if cache.len() + unread > window {
                cache = KvCache::default();
                unread = window / 2;
            }
            let new = &context[context.len() - unread..];
            let start = context.len() - unread - cache.len();
            last_logits(model.forward_cached(tokens(new, device), mode(start), &mut cache))
        } else {
            let start = context.len().saturating_sub(window);
            last_logits(model.forward(tokens(&context[start..], device), mode(start)))
        };
        let next = options.sampling.sample(&logits, &mut rng);
        if Some(next) == options.stop {
            break;
        }
        on_token(next);
        generated.push(next);
        context.push(next);
        unread = 1;
    }
    generated
}

/// `[1, len]` token ids on `device`.
fn tokens(tokens: &[u32], device: &Device) -> Tensor<2, Int> {
    ids(tokens.iter().copied(), device).reshape([1, tokens.len()])
}

/// The logits of the last position of a `[1, seq, vocab]` tensor.
fn last_logits(logits: Tensor<3>) -> Vec<f32> {
    let [_, seq, vocab] = logits.dims();
    host_floats(logits.slice([0..1, seq - 1..seq]).reshape([vocab]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TransformerConfig;

    fn options(use_cache: bool, prefix_prompt: bool) -> GenerateOptions {
        GenerateOptions {
            max_new_tokens: 30,
            sampling: Sampling {
                temperature: 1.0,
                top_k: None,
                top_p: None,
            },
            seed: 3,
            stop: None,
            use_cache,
            prefix_prompt,
        }
    }

    #[test]
    fn cached_and_uncached_decoding_draw_the_same_tokens_within_the_window() {
        let device = Device::flex();
        let model = TransformerConfig::new(40)
            .with_d_model(32)
            .with_n_layers(2)
            .with_n_heads(2)
            .with_d_ff(64)
            .with_max_seq_len(64)
            .init(&device);
        let prompt = [5, 9, 11, 2];
        // Left to right, and with the prompt read both ways as a prefix.
        for prefix_prompt in [false, true] {
            let cached = generate(&model, &prompt, &options(true, prefix_prompt), &device, |_| {});
            let uncached = generate(&model, &prompt, &options(false, prefix_prompt), &device, |_| {});
            assert_eq!(cached.len(), 30);
            assert_eq!(cached, uncached, "prefix prompt {prefix_prompt}");
        }
    }

    #[test]
    fn sampling_rules() {
        let logits = [1.0, 3.0, 2.0, -1.0];
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let greedy = Sampling {
            temperature: 0.0,
            top_k: None,
            top_p: None,
        };
        assert_eq!(greedy.sample(&logits, &mut rng), 1);
        let top2 = Sampling {
            temperature: 1.0,
            top_k: Some(2),
            top_p: None,
        };
        let drawn: Vec<u32> = (0..200).map(|_| top2.sample(&logits, &mut rng)).collect();
        assert!(drawn.iter().all(|&id| id == 1 || id == 2));
        assert!(drawn.contains(&1) && drawn.contains(&2));
        // Token 1 alone holds 0.66 of the mass: a nucleus of 0.5 keeps only it.
        let nucleus = Sampling {
            temperature: 1.0,
            top_k: None,
            top_p: Some(0.5),
        };
        assert!((0..50).all(|_| nucleus.sample(&logits, &mut rng) == 1));
    }
}
