//! Zero-shot prompting: classify by asking the pre-trained model which label word fits a
//! template best, with no training. Causal models score the label word's tokens as a
//! continuation; masked models score them at `[MASK]`s in the label slot, as in PET (Schick and
//! Schütze 2021), each token independently.

use burn::tensor::Device;
use primer_datasets::tokenizer::PrimerTokenizer;
use primer_model::Transformer;
use primer_objectives::{Companion, ObjectiveInfo};

use primer_datasets::DataError;
use primer_model::FieldError;

/// Where the example's text goes in a template.
pub const TEXT_SLOT: &str = "{text}";
/// Where the label word goes in a template.
pub const LABEL_SLOT: &str = "[LABEL]";

/// A template such as `{text} It was [LABEL].` and a word per label.
#[derive(Debug, Clone)]
pub struct Prompt {
    template: String,
    /// The word of each label, in the task's label order.
    pub words: Vec<String>,
}

impl Prompt {
    /// Checks the template (one `{text}`, one `[LABEL]`) and builds the prompt from
    /// `label=word` pairs that must name every label of the task exactly once.
    pub fn new(template: &str, verbalizer: &[(String, String)], labels: &[String]) -> Result<Self, FieldError> {
        for slot in [TEXT_SLOT, LABEL_SLOT] {
            if template.matches(slot).count() != 1 {
                return Err(FieldError::new(
                    "template",
                    format!("`template` {template:?} must hold {slot} exactly once, e.g. \"{{text}} It was [LABEL].\""),
                ));
            }
        }
        let mut words = vec![None; labels.len()];
        for (label, word) in verbalizer {
            let index = labels.iter().position(|l| l == label).ok_or_else(|| {
                FieldError::new(
                    "verbalizer",
                    format!(
                        "`verbalizer` names label {label:?}, which the task does not have (labels: {})",
                        labels.join(", ")
                    ),
                )
            })?;
            if word.trim().is_empty() {
                return Err(FieldError::new(
                    "verbalizer",
                    format!("`verbalizer` gives label {label:?} an empty word"),
                ));
            }
            words[index] = Some(word.clone());
        }
        let words = words
            .into_iter()
            .zip(labels)
            .map(|(word, label)| {
                word.ok_or_else(|| {
                    FieldError::new(
                        "verbalizer",
                        format!(
                            "`verbalizer` has no word for label {label:?}: give one per label, e.g. 0=terrible,1=great"
                        ),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            template: template.into(),
            words,
        })
    }

    /// The template filled with `text` and each label word, tokenised: the ids (after a start
    /// token) and the positions of the label word's tokens.
    fn fill(&self, tokenizer: &PrimerTokenizer, text: &str, start: u32) -> Result<Vec<Filled>, DataError> {
        let with_text = self.template.replace(TEXT_SLOT, text);
        let label_at = with_text.find(LABEL_SLOT).expect("checked in new");
        self.words
            .iter()
            .map(|word| {
                let filled = with_text.replacen(LABEL_SLOT, word, 1);
                let (ids, offsets) = tokenizer.encode_with_offsets(&filled)?;
                let span = label_at..label_at + word.len();
                let label: Vec<usize> = offsets
                    .iter()
                    .enumerate()
                    .filter(|&(_, &(from, to))| from < span.end && to > span.start)
                    .map(|(i, _)| i + 1)
                    .collect();
                let ids: Vec<u32> = std::iter::once(start).chain(ids).collect();
                Ok(Filled { ids, label })
            })
            .collect()
    }
}

/// A filled template: ids and the positions of the label word's tokens.
struct Filled {
    ids: Vec<u32>,
    label: Vec<usize>,
}

/// Why a filled template could not be scored.
#[derive(Debug, Clone, PartialEq)]
pub enum PromptError {
    /// Longer than the model's context, in tokens: the text (with `truncate`, the template
    /// and a label word alone).
    TooLong(usize),
}

/// The label scores of one text.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelScores {
    /// The mean log-probability per token of each label word (higher fits better).
    pub scores: Vec<f64>,
    /// Whether the text lost its end to fit the context.
    pub truncated: bool,
}

/// The mean log-probability per token of each label word for `text`. With `truncate`, text
/// that would overflow the context loses its end first (never the template or the label slot).
pub fn label_scores(
    (model, companion): (&Transformer, Option<&Companion>),
    objective: &ObjectiveInfo,
    tokenizer: &PrimerTokenizer,
    prompt: &Prompt,
    text: &str,
    truncate: bool,
    device: &Device,
) -> Result<Result<LabelScores, PromptError>, DataError> {
    let specials = tokenizer.specials();
    let start = objective.framing.open.id(specials);
    let mut text = text.to_string();
    let mut truncated = false;
    let filled = loop {
        let filled = prompt.fill(tokenizer, &text, start)?;
        let longest = filled.iter().map(|f| f.ids.len()).max().unwrap_or(0);
        if longest <= model.max_seq_len() {
            break filled;
        }
        if !truncate || text.is_empty() {
            return Ok(Err(PromptError::TooLong(longest)));
        }
        // Drop about as many characters as there are surplus tokens, at least one.
        let surplus = (longest - model.max_seq_len()).max(1);
        let keep = text.chars().count().saturating_sub(surplus);
        text = text.chars().take(keep).collect();
        truncated = true;
    };
    let mut rows = Vec::new();
    let (mut positions, mut targets, mut counts) = (Vec::new(), Vec::new(), Vec::new());
    let seq = filled.iter().map(|f| f.ids.len()).max().unwrap_or(0);
    // Where each row's label word starts: the end of a prefix read both ways.
    let starts = filled.iter().map(|f| f.label.first().copied().unwrap_or(0)).collect();
    for (row, option) in filled.iter().enumerate() {
        let mut ids = option.ids.clone();
        for &at in &option.label {
            targets.push(option.ids[at]);
            let predicted_from = objective.label_slot.place(&mut ids, at, specials);
            positions.push((row * seq + predicted_from) as u32);
        }
        counts.push(option.label.len());
        rows.push(ids);
    }
    let attention = objective.label_slot.attention(starts);
    let log_probs =
        objective
            .label_slot
            .log_probs((model, companion), &rows, (&positions, &targets), attention, device);
    let mut scores = Vec::with_capacity(counts.len());
    let mut at = 0;
    for count in counts {
        let sum: f64 = log_probs[at..at + count].iter().map(|&lp| lp as f64).sum();
        scores.push(sum / count.max(1) as f64);
        at += count;
    }
    Ok(Ok(LabelScores { scores, truncated }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        text.split(',')
            .map(|pair| {
                let (label, word) = pair.split_once('=').unwrap();
                (label.into(), word.into())
            })
            .collect()
    }

    #[test]
    fn templates_and_verbalizers_are_checked() {
        let labels = ["0".to_string(), "1".to_string()];
        let ok = Prompt::new("{text} It was [LABEL].", &pairs("1=great,0=terrible"), &labels).unwrap();
        assert_eq!(ok.words, ["terrible", "great"]);
        let err = |template: &str, verbalizer: &str| {
            Prompt::new(template, &pairs(verbalizer), &labels)
                .unwrap_err()
                .to_string()
        };
        assert!(err("It was [LABEL].", "0=bad,1=good").contains("{text}"));
        assert!(err("{text} [LABEL] [LABEL]", "0=bad,1=good").contains("[LABEL] exactly once"));
        assert!(err("{text} [LABEL]", "0=bad,2=good").contains("label \"2\""));
        assert!(err("{text} [LABEL]", "0=bad").contains("no word for label \"1\""));
    }
}
