//! Classification by prompting: ask the pre-trained model which label word fits a template
//! best, with no training, after labelled demonstrations or none. Causal models score the label
//! word's tokens as a continuation; masked models score them at `[MASK]`s in the label slot, as
//! in PET (Schick and Schütze 2021), each token independently.

use primer_datasets::DataError;
use primer_model::FieldError;

use crate::context::{Candidate, PromptError, Query};
use crate::scorer::{Scored, Scorer};

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

    /// The template.
    pub fn template(&self) -> &str {
        &self.template
    }

    /// A demonstration: the template filled with `text` and the word of `label`.
    pub fn demonstration(&self, text: &str, label: usize) -> String {
        self.template
            .replace(TEXT_SLOT, text)
            .replacen(LABEL_SLOT, &self.words[label], 1)
    }

    /// The query of `text`: the template filled with it, once per label word.
    pub fn query<'a>(&'a self, text: &'a str) -> LabelQuery<'a> {
        LabelQuery { prompt: self, text }
    }
}

/// A text to classify: its candidates are the template filled with it and each label word; it
/// loses characters from its end.
pub struct LabelQuery<'a> {
    prompt: &'a Prompt,
    text: &'a str,
}

impl Query for LabelQuery<'_> {
    fn candidates(&self, cut: usize) -> Vec<Candidate> {
        let keep = self.text.chars().count().saturating_sub(cut);
        let text: String = self.text.chars().take(keep).collect();
        let with_text = self.prompt.template.replace(TEXT_SLOT, &text);
        let label_at = with_text.find(LABEL_SLOT).expect("checked in new");
        self.prompt
            .words
            .iter()
            .map(|word| Candidate {
                text: with_text.replacen(LABEL_SLOT, word, 1),
                scored: label_at..label_at + word.len(),
            })
            .collect()
    }

    fn cuttable(&self) -> usize {
        self.text.chars().count()
    }
}

/// The label scores of one text.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelScores {
    /// The mean log-probability per token of each label word (higher fits better).
    pub scores: Vec<f64>,
    /// Demonstrations left out to fit the context.
    pub dropped: usize,
    /// Whether the text lost its end to fit the context.
    pub truncated: bool,
}

impl Scorer<'_> {
    /// The mean log-probability per token of each label word for `text` after
    /// `demonstrations`. With `cut`, a prompt that would overflow the context loses
    /// demonstrations first, then the end of the text (never the template or the label slot).
    pub fn label_scores(
        &self,
        prompt: &Prompt,
        demonstrations: &[String],
        text: &str,
        cut: bool,
    ) -> Result<Result<LabelScores, PromptError>, DataError> {
        let fitted = match self.fit(demonstrations, &prompt.query(text), cut)? {
            Ok(fitted) => fitted,
            Err(error) => return Ok(Err(error)),
        };
        Ok(Ok(LabelScores {
            scores: self.log_probs(&fitted.rows).iter().map(Scored::mean).collect(),
            dropped: fitted.dropped,
            truncated: fitted.cut,
        }))
    }
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

    #[test]
    fn demonstrations_and_queries_fill_the_template() {
        let labels = ["0".to_string(), "1".to_string()];
        let prompt = Prompt::new("{text} It was [LABEL].", &pairs("0=bad,1=great"), &labels).unwrap();
        assert_eq!(prompt.demonstration("Dull.", 0), "Dull. It was bad.");
        let query = prompt.query("A gem.");
        let candidates = query.candidates(0);
        assert_eq!(candidates[1].text, "A gem. It was great.");
        assert_eq!(&candidates[1].text[candidates[1].scored.clone()], "great");
        // The text loses its end, never the template or the word.
        assert_eq!(query.candidates(4)[0].text, "A  It was bad.");
        assert_eq!(query.cuttable(), 6);
    }
}
