//! primer's inference on a trained model: text generation with a key/value cache
//! ([`generate`]), zero-shot classification by prompting ([`prompt`]) and the samples a run
//! shows while it trains ([`samples`]). Scoring texts (log-likelihood, pseudo-log-likelihood)
//! and filling masks belong to each objective (`primer_objectives::scoring`).

pub mod generate;
pub mod prompt;
pub mod samples;
