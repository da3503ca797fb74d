//! primer's inference on a trained model: classification by prompting ([`prompt`]) with
//! demonstrations fitted into the context ([`context`]) and calibrated ([`calibration`]), and
//! multiple-choice questions ([`choice`]), all scored by a [`scorer::Scorer`]. Text generation
//! is the model's (`primer_model::generate`); scoring texts (log-likelihood,
//! pseudo-log-likelihood), filling masks and the samples a run shows while it trains belong to
//! each objective (`primer_objectives::scoring`, `primer_objectives::samples`).

pub mod calibration;
pub mod choice;
pub mod context;
pub mod prompt;
pub mod scorer;
