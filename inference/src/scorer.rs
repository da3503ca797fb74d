//! A trained model scoring the candidates of a prompt: each candidate's scored tokens read as
//! its objective's label slot reads them (predicted left to right, after a prefix, at a
//! `[MASK]`, or judged), all candidates of one prompt in one forward pass.

use burn::tensor::Device;
use primer_datasets::DataError;
use primer_datasets::tokenizer::PrimerTokenizer;
use primer_model::Transformer;
use primer_objectives::{Companion, ObjectiveInfo};

use crate::context::{self, Filled, Fitted, PromptError, Query};

/// A trained model, its objective and tokenizer, ready to score prompts.
pub struct Scorer<'a> {
    /// The model.
    pub model: &'a Transformer,
    /// What its objective trained beside it, if anything.
    pub companion: Option<&'a Companion>,
    /// Its objective.
    pub objective: &'a ObjectiveInfo,
    /// Its tokenizer.
    pub tokenizer: &'a PrimerTokenizer,
    /// Where it runs.
    pub device: &'a Device,
}

/// The summed score of a candidate's tokens, and how many there were.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// The log-probabilities summed.
    pub sum: f64,
    /// Tokens scored.
    pub tokens: usize,
}

impl Scored {
    /// The mean log-probability per token.
    pub fn mean(&self) -> f64 {
        self.sum / self.tokens.max(1) as f64
    }
}

impl Scorer<'_> {
    /// The model's context, in tokens.
    pub fn max_len(&self) -> usize {
        self.model.max_seq_len()
    }

    fn start(&self) -> u32 {
        self.objective.framing.open.id(self.tokenizer.specials())
    }

    /// The tokens of every demonstration with the query's fixed part and its longest candidate
    /// (see [`context::fixed_len`]).
    pub fn fixed_len(&self, demonstrations: &[String], query: &dyn Query) -> Result<usize, DataError> {
        let encode = |text: &str| self.tokenizer.encode_with_offsets(text);
        context::fixed_len(&encode, self.start(), demonstrations, query)
    }

    /// `demonstrations` and `query` fitted into the context (see [`context::fit`]).
    pub fn fit(
        &self,
        demonstrations: &[String],
        query: &dyn Query,
        cut: bool,
    ) -> Result<Result<Fitted, PromptError>, DataError> {
        let encode = |text: &str| self.tokenizer.encode_with_offsets(text);
        context::fit(&encode, self.start(), demonstrations, query, self.max_len(), cut)
    }

    /// The score of each row's scored tokens, in one forward pass.
    pub fn log_probs(&self, filled: &[Filled]) -> Vec<Scored> {
        let specials = self.tokenizer.specials();
        let slot = self.objective.label_slot;
        let seq = filled.iter().map(|f| f.ids.len()).max().unwrap_or(0);
        let (mut rows, mut positions, mut targets) = (Vec::new(), Vec::new(), Vec::new());
        for (row, candidate) in filled.iter().enumerate() {
            let mut ids = candidate.ids.clone();
            for &at in &candidate.scored {
                targets.push(candidate.ids[at]);
                let predicted_from = slot.place(&mut ids, at, specials);
                positions.push((row * seq + predicted_from) as u32);
            }
            rows.push(ids);
        }
        // Where each row's scored part starts: the end of a prefix read both ways.
        let starts = filled.iter().map(|f| f.scored.first().copied().unwrap_or(0)).collect();
        let log_probs = slot.log_probs(
            (self.model, self.companion),
            &rows,
            (&positions, &targets),
            slot.attention(starts),
            self.device,
        );
        let mut at = 0;
        filled
            .iter()
            .map(|candidate| {
                let tokens = candidate.scored.len();
                let sum = log_probs[at..at + tokens].iter().map(|&lp| f64::from(lp)).sum();
                at += tokens;
                Scored { sum, tokens }
            })
            .collect()
    }
}
