//! primer's inference on a trained model: text generation with a key/value cache
//! ([`generate`]), classification by prompting ([`prompt`]) with demonstrations fitted into the
//! context ([`context`]) and calibrated ([`calibration`]), multiple-choice questions
//! ([`choice`]), all scored by a [`scorer::Scorer`], and the samples a run shows while it
//! trains ([`samples`]). Scoring texts (log-likelihood, pseudo-log-likelihood)
//! and filling masks belong to each objective (`primer_objectives::scoring`).

pub mod calibration;
pub mod choice;
pub mod context;
pub mod generate;
pub mod prompt;
pub mod samples;
pub mod scorer;
