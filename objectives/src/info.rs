//! What an objective is, known without a tokenizer or a model: the facts every command reads
//! instead of matching on an objective's name.

use burn::tensor::Device;
use primer_datasets::tokenizer::SpecialTokens;
use primer_model::{AttentionMode, Pooling, Transformer};

use crate::Companion;
use crate::scoring::{
    Nll, causal_log_probs, causal_nll, detection_log_probs, judged_log_probs, pseudo_log_probs, pseudo_nll,
    target_log_probs,
};

/// Every per-objective fact the rest of primer needs.
#[derive(Debug)]
pub struct ObjectiveInfo {
    /// Short name, as in configs, specs and metrics (`mlm`).
    pub name: &'static str,
    /// One line: what it trains, and after whom.
    pub description: &'static str,
    /// The setting a bare value after `NAME:` sets (`mlm:span` sets `masking`), if any.
    pub variant: Option<&'static str>,
    /// How a trained model reads a whole text: fine-tuning, classification and prompting.
    pub attention: AttentionMode,
    /// How a text is framed for classification.
    pub framing: Framing,
    /// How a text is scored (`score`, `eval`).
    pub scoring: Scoring,
    /// How a zero-shot prompt's label word is predicted.
    pub label_slot: LabelSlot,
    /// What `samples.jsonl` shows during pre-training.
    pub samples: SampleKind,
    /// Whether `generate` works: the model predicts the next token.
    pub generates: bool,
    /// Whether generation reads the prompt both ways, as a prefix.
    pub prefix_prompt: bool,
    /// Whether `fill-mask` works: the model predicts `[MASK]` tokens.
    pub fills_masks: bool,
    /// What its validation accuracy counts (`masked-token accuracy`).
    pub accuracy: &'static str,
    /// The validation metrics a comparison reports, main one first (and charted).
    pub metrics: [Metric; 2],
}

impl ObjectiveInfo {
    /// How the objective is named to a user: `masked-LM (mlm)`.
    pub fn describe(&self) -> String {
        format!(
            "{} ({})",
            self.description.split(':').next().unwrap_or(self.name),
            self.name
        )
    }
}

/// The tokens around a classified text, and where the classifier reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    /// Token before the text; also the start of a prompt.
    pub open: Special,
    /// Token after the text.
    pub close: Special,
    /// Default pooling of the hidden states.
    pub pooling: Pooling,
}

impl Framing {
    /// `open text close`, the text cut to leave room for both within `max_len` (at least 2).
    pub fn frame(&self, specials: &SpecialTokens, mut text: Vec<u32>, max_len: usize) -> Vec<u32> {
        text.truncate(max_len - 2);
        text.insert(0, self.open.id(specials));
        text.push(self.close.id(specials));
        text
    }
}

/// A special token by its role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    /// `[CLS]`.
    Cls,
    /// `[SEP]`.
    Sep,
    /// `[EOS]`, which precedes every document in pre-training.
    Eos,
}

impl Special {
    /// The token's id.
    pub fn id(self, specials: &SpecialTokens) -> u32 {
        match self {
            Self::Cls => specials.cls,
            Self::Sep => specials.sep,
            Self::Eos => specials.eos,
        }
    }
}

/// How a model scores a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scoring {
    /// Log-likelihood, left to right: perplexity.
    LogLikelihood,
    /// Pseudo-log-likelihood, each token masked in turn (Salazar et al. 2020).
    PseudoLogLikelihood,
    /// The discriminator's log-probability that every token is original (ELECTRA), read both
    /// ways after `[EOS]`.
    ReplacedTokenDetection,
}

impl Scoring {
    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::LogLikelihood => "log-likelihood",
            Self::PseudoLogLikelihood => "pseudo-log-likelihood",
            Self::ReplacedTokenDetection => "log-probability of no replaced token",
        }
    }

    /// What `exp` of the mean negative score is called.
    pub fn perplexity_name(self) -> &'static str {
        match self {
            Self::LogLikelihood => "perplexity",
            Self::PseudoLogLikelihood => "pseudo-perplexity",
            Self::ReplacedTokenDetection => "replaced-token perplexity",
        }
    }

    /// The negative score of `tokens` (a document: `[EOS]` precedes it in training),
    /// `batch_rows` rows at a time; `companion` is the run's, for scorings that read it.
    pub fn nll(
        self,
        (model, companion): (&Transformer, Option<&Companion>),
        specials: &SpecialTokens,
        tokens: &[u32],
        batch_rows: usize,
        device: &Device,
    ) -> Nll {
        match self {
            Self::LogLikelihood => causal_nll(model, specials.eos, tokens, device),
            Self::PseudoLogLikelihood => pseudo_nll(model, specials, tokens, usize::MAX, batch_rows, device),
            Self::ReplacedTokenDetection => Nll {
                sum: -self.log_probs((model, companion), specials, &[tokens.to_vec()], batch_rows, device)[0],
                tokens: tokens.len(),
            },
        }
    }

    /// The score of each of `texts` (documents, as [`Self::nll`] reads one), many texts per
    /// forward pass: `batch_rows` rows at a time.
    pub fn log_probs(
        self,
        (model, companion): (&Transformer, Option<&Companion>),
        specials: &SpecialTokens,
        texts: &[Vec<u32>],
        batch_rows: usize,
        device: &Device,
    ) -> Vec<f64> {
        match self {
            Self::LogLikelihood => causal_log_probs(model, specials.eos, texts, batch_rows, device),
            Self::PseudoLogLikelihood => pseudo_log_probs(model, specials, texts, batch_rows, device),
            Self::ReplacedTokenDetection => {
                let companion = companion.expect("replaced-token detection reads the discriminator's head");
                detection_log_probs(model, companion, specials.eos, texts, batch_rows, device)
            }
        }
    }

    /// For each pair of texts, whether the first scores above the second (a minimal pair
    /// right), `batch_rows` rows per forward pass.
    pub fn prefers_first(
        self,
        model: (&Transformer, Option<&Companion>),
        specials: &SpecialTokens,
        pairs: &[[Vec<u32>; 2]],
        batch_rows: usize,
        device: &Device,
    ) -> Vec<bool> {
        let texts: Vec<Vec<u32>> = pairs.iter().flatten().cloned().collect();
        let scores = self.log_probs(model, specials, &texts, batch_rows, device);
        scores.chunks(2).map(|pair| pair[0] > pair[1]).collect()
    }

    /// How a text is framed for scoring, as the output states it.
    pub fn framing(self) -> &'static str {
        match self {
            Self::LogLikelihood => "[EOS] text, each token predicted from the ones before it",
            Self::PseudoLogLikelihood => "text alone, each ordinary token masked in turn and predicted from both sides",
            Self::ReplacedTokenDetection => {
                "[EOS] text read both ways, each token judged original by the discriminator"
            }
        }
    }
}

/// How the label word of a prompt is predicted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelSlot {
    /// From the position before it, reading left to right.
    NextToken,
    /// From the position before it, the text before the label read both ways as a prefix.
    AfterPrefix,
    /// At its own position, hidden behind `[MASK]`.
    Masked,
    /// At its own position, shown, judged original by a discriminator (ELECTRA as a zero-shot
    /// learner, Xia et al. 2022): its score is the log-probability it is not replaced.
    Judged,
}

impl LabelSlot {
    /// Whether labelled demonstrations may precede the prompt (k-shot prompting): a slot whose
    /// word is predicted reads them as context, left to right, after a prefix or around a
    /// `[MASK]` (LM-BFF, Gao et al. 2021). A judged slot predicts nothing: the discriminator
    /// judges a word it is shown, and replaced-token detection never asks it to carry a word
    /// over from earlier text (Xia et al. 2022 prompt ELECTRA without demonstrations).
    pub fn reads_demonstrations(self) -> bool {
        !matches!(self, Self::Judged)
    }

    /// Prepares the label token at `at` of `ids` and returns the position that predicts it.
    pub fn place(self, ids: &mut [u32], at: usize, specials: &SpecialTokens) -> usize {
        match self {
            Self::NextToken | Self::AfterPrefix => at - 1,
            Self::Masked => {
                ids[at] = specials.mask;
                at
            }
            Self::Judged => at,
        }
    }

    /// The attention filled prompts are read with, given where each row's label word starts.
    pub fn attention(self, label_starts: Vec<usize>) -> AttentionMode {
        match self {
            Self::NextToken => AttentionMode::Causal,
            Self::AfterPrefix => AttentionMode::Prefix(label_starts),
            Self::Masked | Self::Judged => AttentionMode::Bidirectional,
        }
    }

    /// The score of each label token `targets` at flat positions `predict_at` of the prepared
    /// `rows`, read with `mode`: its log-probability, or for a judged slot the log-probability
    /// the discriminator gives it of being original.
    pub fn log_probs(
        self,
        (model, companion): (&Transformer, Option<&Companion>),
        rows: &[Vec<u32>],
        (predict_at, targets): (&[u32], &[u32]),
        mode: AttentionMode,
        device: &Device,
    ) -> Vec<f32> {
        match self {
            Self::Judged => {
                let companion = companion.expect("a judged label slot reads the discriminator's head");
                judged_log_probs(model, companion, rows, predict_at, device)
            }
            _ => target_log_probs(model, rows, predict_at, targets, mode, device),
        }
    }
}

/// What the samples of a pre-training run show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleKind {
    /// A continuation of a validation excerpt.
    Continuation,
    /// The best guesses at masked tokens of an excerpt.
    Fills,
    /// Which tokens of an excerpt, some replaced by the generator's guesses, the discriminator
    /// judges replaced.
    Detections,
}

/// A validation metric of a pre-trained model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// Next-token loss spread over the UTF-8 bytes of the text.
    BitsPerByte,
    /// Share of targets that are the model's top prediction.
    Accuracy,
    /// Pseudo-perplexity of validation text.
    PseudoPerplexity,
    /// One of the objective's own metrics (see `Objective::own_metrics`), higher better.
    Own {
        /// Its key in the metrics.
        key: &'static str,
        /// Its name in reports.
        name: &'static str,
        /// Its value for a model that guesses, where there is one.
        chance: Option<f64>,
    },
}

impl Metric {
    /// Its name in reports and on chart axes.
    pub fn name(self, info: &ObjectiveInfo) -> &'static str {
        match self {
            Self::BitsPerByte => "bits per byte",
            Self::Accuracy => info.accuracy,
            Self::PseudoPerplexity => "pseudo-perplexity",
            Self::Own { name, .. } => name,
        }
    }

    /// Whether a lower value is better.
    pub fn lower_is_better(self) -> bool {
        matches!(self, Self::BitsPerByte | Self::PseudoPerplexity)
    }

    /// What [`Self::baseline_value`] is called in reports.
    pub fn baseline_name(self) -> &'static str {
        match self {
            Self::Own { .. } => "chance",
            _ => "unigram",
        }
    }

    /// What the metric is read against: its value for a model that knows only the train
    /// split's token frequencies, from their cross-entropy (nats per token) and accuracy on the
    /// validation tokens, and the validation text's bits per nat of per-token loss; for an own
    /// metric, its chance value, where it has one.
    pub fn baseline_value(self, unigram_loss: f64, unigram_accuracy: f64, bits_per_nat: f64) -> Option<f64> {
        Some(match self {
            Self::BitsPerByte => unigram_loss * bits_per_nat,
            Self::Accuracy => unigram_accuracy,
            // Context does not change a unigram model's guess: its pseudo-perplexity is its
            // perplexity.
            Self::PseudoPerplexity => unigram_loss.exp(),
            Self::Own { chance, .. } => return chance,
        })
    }
}
