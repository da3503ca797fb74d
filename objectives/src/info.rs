//! What an objective is, known without a tokenizer or a model: the facts every command reads
//! instead of matching on an objective's name.

use burn::tensor::Device;
use primer_datasets::tokenizer::SpecialTokens;
use primer_model::{AttentionMode, LmHead, Pooling, Transformer};

use crate::Companion;
use crate::electra::{detection_log_probs, judged_log_probs};
use crate::scoring::{
    Nll, Pll, PllSlot, Text, causal_log_probs, causal_nll, pseudo_log_probs, pseudo_nll, target_log_probs,
};

/// Every per-objective fact the rest of primer needs.
#[derive(Debug)]
pub struct ObjectiveInfo {
    /// Short name, as in configs, specs and metrics (`mlm`).
    pub name: &'static str,
    /// One line: what it trains, and after whom.
    pub description: &'static str,
    /// The setting a bare value after `NAME:` sets (`mlm:span` sets `masking`), if any.
    pub bare_value_setting: Option<&'static str>,
    /// How a trained model reads a whole text: fine-tuning, classification and prompting.
    pub attention: AttentionMode,
    /// How a text is framed for classification.
    pub framing: Framing,
    /// How a text is scored (`score`, `eval`, `minimal-pairs`).
    pub scoring: Scoring,
    /// How a text is scored read both ways with masks (`--pll`), where the objective trained
    /// for it besides [`Self::scoring`]: GPT-BERT's masked rows; `None` for the others.
    pub masked_scoring: Option<Scoring>,
    /// How a prompt's label word is predicted; what the model can be asked follows from it
    /// ([`Self::generates`], [`Self::fills_masks`], [`Self::samples`], [`Self::lm_head`]).
    pub label_slot: LabelSlot,
    /// Tokens a training block holds beyond the model's positions: 1 where each position's
    /// target is the token after it, 0 where targets sit at their own positions.
    pub shifted_targets: usize,
    /// What its validation accuracy counts (`masked-token accuracy`).
    pub accuracy: &'static str,
    /// The validation metrics a comparison reports, main one first (and charted).
    pub metrics: [Metric; 2],
}

impl ObjectiveInfo {
    /// Tokens one training block takes from the token stream for `seq_len` model positions.
    pub fn block_len(&self, seq_len: usize) -> usize {
        seq_len + self.shifted_targets
    }

    /// Whether `generate` works: the model predicts the next token.
    pub fn generates(&self) -> bool {
        matches!(self.label_slot, LabelSlot::NextToken | LabelSlot::AfterPrefix)
    }

    /// Whether a prompt may carry demonstrations before the query (see
    /// [`LabelSlot::reads_demonstrations`]).
    pub fn reads_demonstrations(&self) -> bool {
        self.label_slot.reads_demonstrations()
    }

    /// Whether generation reads the prompt both ways, as a prefix.
    pub fn prefix_prompt(&self) -> bool {
        self.label_slot == LabelSlot::AfterPrefix
    }

    /// Whether `fill-mask` works: the model predicts `[MASK]` tokens.
    pub fn fills_masks(&self) -> bool {
        self.label_slot == LabelSlot::Masked
    }

    /// The LM head a language model exported from this objective's runs uses, or `None` where
    /// the LM head is not what was trained (a discriminator's).
    pub fn lm_head(&self) -> Option<LmHead> {
        match self.label_slot {
            LabelSlot::NextToken | LabelSlot::AfterPrefix => Some(LmHead::NextToken),
            LabelSlot::Masked => Some(LmHead::MaskedToken),
            LabelSlot::Judged => None,
        }
    }

    /// How texts are scored: the objective's way, or read both ways with masks as `pll` says
    /// when given (a masked objective's own scoring, or GPT-BERT's [`Self::masked_scoring`]);
    /// an error names the scoring of an objective that does not mask.
    pub fn scoring_with(&self, pll: Option<Pll>) -> Result<Scoring, String> {
        match pll {
            None => Ok(self.scoring),
            Some(pll) => self.masked_scoring.unwrap_or(self.scoring).with_pll(pll),
        }
    }

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
    /// Pseudo-log-likelihood, each token masked in turn (Salazar et al. 2020), with what the
    /// [`Pll`] hides beside it.
    PseudoLogLikelihood(Pll),
    /// Pseudo-log-likelihood of a model trained by masked next-token prediction (GPT-BERT):
    /// each token masked in turn, with what the [`Pll`] hides beside it, the text read both
    /// ways after `[EOS]`, and the hidden token predicted from the position before it.
    NextTokenPseudoLogLikelihood(Pll),
    /// The discriminator's log-probability that every token is original (ELECTRA), read both
    /// ways after `[EOS]`.
    ReplacedTokenDetection,
}

impl Scoring {
    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::LogLikelihood => "log-likelihood",
            Self::PseudoLogLikelihood(Pll::Original) => "pseudo-log-likelihood",
            Self::PseudoLogLikelihood(Pll::WordL2r) => "pseudo-log-likelihood (word-l2r)",
            Self::NextTokenPseudoLogLikelihood(Pll::Original) => "next-token pseudo-log-likelihood",
            Self::NextTokenPseudoLogLikelihood(Pll::WordL2r) => "next-token pseudo-log-likelihood (word-l2r)",
            Self::ReplacedTokenDetection => "log-probability of no replaced token",
        }
    }

    /// What `exp` of the mean negative score is called.
    pub fn perplexity_name(self) -> &'static str {
        match self {
            Self::LogLikelihood => "perplexity",
            Self::PseudoLogLikelihood(_) | Self::NextTokenPseudoLogLikelihood(_) => "pseudo-perplexity",
            Self::ReplacedTokenDetection => "replaced-token perplexity",
        }
    }

    /// Model rows a text of `tokens` tokens takes to score: one read, or one per token masked
    /// in turn.
    pub fn rows(self, tokens: usize) -> usize {
        match self {
            Self::LogLikelihood | Self::ReplacedTokenDetection => 1,
            Self::PseudoLogLikelihood(_) | Self::NextTokenPseudoLogLikelihood(_) => tokens,
        }
    }

    /// Its masking, where it masks.
    pub fn pll(self) -> Option<Pll> {
        match self {
            Self::PseudoLogLikelihood(pll) | Self::NextTokenPseudoLogLikelihood(pll) => Some(pll),
            _ => None,
        }
    }

    /// Which position predicts each masked token, where it masks: the token's own, or for
    /// next-token pseudo-log-likelihood the one before it.
    fn pll_slot(self) -> PllSlot {
        match self {
            Self::NextTokenPseudoLogLikelihood(_) => PllSlot::Previous,
            _ => PllSlot::Own,
        }
    }

    /// The same scoring masking as `pll` says; an error names the scoring that does not mask.
    pub fn with_pll(self, pll: Pll) -> Result<Self, String> {
        match self {
            Self::PseudoLogLikelihood(_) => Ok(Self::PseudoLogLikelihood(pll)),
            Self::NextTokenPseudoLogLikelihood(_) => Ok(Self::NextTokenPseudoLogLikelihood(pll)),
            other => Err(format!(
                "--pll chooses how masked runs are scored; this run is scored by {}: drop --pll",
                other.name()
            )),
        }
    }

    /// The negative score of `text` (a document: `[EOS]` precedes it in training),
    /// `batch_rows` rows at a time; `companion` is the run's, for scorings that read it.
    pub fn nll(
        self,
        (model, companion): (&Transformer, Option<&Companion>),
        specials: &SpecialTokens,
        text: &Text,
        batch_rows: usize,
        device: &Device,
    ) -> Nll {
        match self {
            Self::LogLikelihood => causal_nll(model, specials.eos, &text.tokens, device),
            Self::PseudoLogLikelihood(pll) | Self::NextTokenPseudoLogLikelihood(pll) => pseudo_nll(
                model,
                specials,
                (text, pll, self.pll_slot()),
                usize::MAX,
                batch_rows,
                device,
            ),
            Self::ReplacedTokenDetection => Nll {
                sum: -self.log_probs(
                    (model, companion),
                    specials,
                    std::slice::from_ref(text),
                    batch_rows,
                    device,
                )[0],
                tokens: text.tokens.len(),
            },
        }
    }

    /// The score of each of `texts` (documents, as [`Self::nll`] reads one), many texts per
    /// forward pass: `batch_rows` rows at a time.
    pub fn log_probs(
        self,
        (model, companion): (&Transformer, Option<&Companion>),
        specials: &SpecialTokens,
        texts: &[Text],
        batch_rows: usize,
        device: &Device,
    ) -> Vec<f64> {
        match self {
            Self::LogLikelihood => causal_log_probs(model, specials.eos, texts, batch_rows, device),
            Self::PseudoLogLikelihood(pll) | Self::NextTokenPseudoLogLikelihood(pll) => {
                pseudo_log_probs(model, specials, (texts, pll, self.pll_slot()), batch_rows, device)
            }
            Self::ReplacedTokenDetection => {
                let companion = companion.expect("replaced-token detection reads the discriminator's head");
                detection_log_probs(model, companion, specials.eos, texts, batch_rows, device)
            }
        }
    }

    /// For each pair of texts, whether the first scores at least as high as the second (a
    /// minimal pair right: see [`prefers_first`]), `batch_rows` rows per forward pass.
    pub fn prefers_first(
        self,
        model: (&Transformer, Option<&Companion>),
        specials: &SpecialTokens,
        pairs: &[[Text; 2]],
        batch_rows: usize,
        device: &Device,
    ) -> Vec<bool> {
        let texts: Vec<Text> = pairs.iter().flatten().cloned().collect();
        let scores = self.log_probs(model, specials, &texts, batch_rows, device);
        scores.chunks(2).map(|pair| prefers_first(pair[0], pair[1])).collect()
    }

    /// How a text is framed for scoring, as the output states it.
    pub fn framing(self) -> &'static str {
        match self {
            Self::LogLikelihood => "[EOS] text, each token predicted from the ones before it",
            Self::PseudoLogLikelihood(Pll::Original) => {
                "text alone, each ordinary token masked in turn and predicted from both sides"
            }
            Self::PseudoLogLikelihood(Pll::WordL2r) => {
                "text alone, each ordinary token masked in turn with the rest of its word to its right, and predicted from both sides"
            }
            Self::NextTokenPseudoLogLikelihood(Pll::Original) => {
                "[EOS] text, each ordinary token masked in turn and predicted from the position before it, read both ways"
            }
            Self::NextTokenPseudoLogLikelihood(Pll::WordL2r) => {
                "[EOS] text, each ordinary token masked in turn with the rest of its word to its right, and predicted from the position before it, read both ways"
            }
            Self::ReplacedTokenDetection => {
                "[EOS] text read both ways, each token judged original by the discriminator"
            }
        }
    }
}

/// Whether a minimal pair whose acceptable sentence scores `good` and unacceptable one `bad`
/// counts right: a tie does, as in lm-evaluation-harness, whose accuracy takes the first of
/// equal scores (`argmax`), the acceptable sentence.
pub fn prefers_first(good: f64, bad: f64) -> bool {
    good >= bad
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
    FromObjective {
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
            Self::FromObjective { name, .. } => name,
        }
    }

    /// Whether a lower value is better.
    pub fn lower_is_better(self) -> bool {
        matches!(self, Self::BitsPerByte | Self::PseudoPerplexity)
    }

    /// What [`Self::baseline_value`] is called in reports.
    pub fn baseline_name(self) -> &'static str {
        match self {
            Self::FromObjective { .. } => "chance",
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
            Self::FromObjective { chance, .. } => return chance,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tie_counts_right_as_lm_eval_counts_it() {
        assert!(prefers_first(-3.0, -3.0), "argmax takes the first of equal scores");
        assert!(prefers_first(-2.0, -3.0));
        assert!(!prefers_first(-3.0, -2.0));
    }

    #[test]
    fn only_a_masked_scoring_takes_a_pll() {
        let masked = Scoring::PseudoLogLikelihood(Pll::Original);
        assert_eq!(
            masked.with_pll(Pll::WordL2r),
            Ok(Scoring::PseudoLogLikelihood(Pll::WordL2r))
        );
        assert_eq!(masked.with_pll(Pll::WordL2r).unwrap().pll(), Some(Pll::WordL2r));
        let error = Scoring::LogLikelihood.with_pll(Pll::WordL2r).unwrap_err();
        assert!(error.contains("--pll") && error.contains("log-likelihood"), "{error}");
        assert_eq!(Scoring::LogLikelihood.pll(), None);
    }
}
