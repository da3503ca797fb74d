//! Multiple-choice questions (HellaSwag-style): each continuation is scored after the context as
//! lm-evaluation-harness 0.4 scores it, the log-probability of `" " + continuation`; `acc`
//! picks the highest sum, `acc_norm` the highest sum divided by the continuation's length in
//! characters (its `len(choice)`), which takes away the edge short continuations have.

use primer_datasets::DataError;
use primer_datasets::choices::ChoiceItem;

use crate::context::{Candidate, PromptError, Query};
use crate::scorer::{Scored, Scorer};

/// What joins a context and a continuation (lm-evaluation-harness's target delimiter).
pub const TARGET_DELIMITER: &str = " ";

/// A demonstration: the context and its right continuation.
pub fn demonstration(item: &ChoiceItem) -> String {
    format!("{}{TARGET_DELIMITER}{}", item.context, item.choices[item.label])
}

/// A question as a query: each continuation after the context; the context loses its start
/// (the end leads into the continuations).
pub struct ChoiceQuery<'a>(pub &'a ChoiceItem);

impl Query for ChoiceQuery<'_> {
    fn candidates(&self, cut: usize) -> Vec<Candidate> {
        let context: String = self.0.context.chars().skip(cut).collect();
        self.0
            .choices
            .iter()
            .map(|choice| {
                let text = format!("{context}{TARGET_DELIMITER}{choice}");
                Candidate {
                    scored: context.len()..text.len(),
                    text,
                }
            })
            .collect()
    }

    fn cuttable(&self) -> usize {
        self.0.context.chars().count()
    }
}

/// The index of the largest value, the first of equals (numpy's `argmax`).
fn argmax(values: impl Iterator<Item = f64>) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (i, v) in values.enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0
}

/// The continuations `acc` and `acc_norm` pick from their summed log-probabilities.
pub fn picks(scores: &[Scored], choices: &[String]) -> (usize, usize) {
    let acc = argmax(scores.iter().map(|s| s.sum));
    let norm = argmax(
        scores
            .iter()
            .zip(choices)
            .map(|(s, c)| s.sum / c.chars().count().max(1) as f64),
    );
    (acc, norm)
}

/// How one question was answered.
#[derive(Debug, Clone, PartialEq)]
pub struct ChoiceScores {
    /// The summed log-probability of each continuation.
    pub sums: Vec<f64>,
    /// `acc`'s pick.
    pub pick: usize,
    /// `acc_norm`'s pick.
    pub pick_norm: usize,
    /// Demonstrations left out to fit the context.
    pub dropped: usize,
    /// Whether the context lost its start to fit.
    pub truncated: bool,
}

impl Scorer<'_> {
    /// Scores every continuation of `item` after `demonstrations`; with `cut`, a prompt that
    /// would overflow the context loses demonstrations first, then the start of the context.
    pub fn choice_scores(
        &self,
        item: &ChoiceItem,
        demonstrations: &[String],
        cut: bool,
    ) -> Result<Result<ChoiceScores, PromptError>, DataError> {
        let fitted = match self.fit(demonstrations, &ChoiceQuery(item), cut)? {
            Ok(fitted) => fitted,
            Err(error) => return Ok(Err(error)),
        };
        let scores = self.log_probs(&fitted.rows);
        let (pick, pick_norm) = picks(&scores, &item.choices);
        Ok(Ok(ChoiceScores {
            sums: scores.iter().map(|s| s.sum).collect(),
            pick,
            pick_norm,
            dropped: fitted.dropped,
            truncated: fitted.cut,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item() -> ChoiceItem {
        ChoiceItem {
            context: "The cat".into(),
            choices: vec!["sat.".into(), "sat on the mat.".into()],
            label: 1,
        }
    }

    #[test]
    fn continuations_follow_the_context_after_a_space_and_the_context_loses_its_start() {
        let item = item();
        let candidates = ChoiceQuery(&item).candidates(0);
        assert_eq!(candidates[0].text, "The cat sat.");
        assert_eq!(&candidates[1].text[candidates[1].scored.clone()], " sat on the mat.");
        let cut = ChoiceQuery(&item).candidates(4);
        assert_eq!(cut[0].text, "cat sat.");
        assert_eq!(ChoiceQuery(&item).cuttable(), 7);
        assert_eq!(demonstration(&item), "The cat sat on the mat.");
    }

    #[test]
    fn acc_sums_and_acc_norm_divides_by_characters() {
        let item = item();
        // The short ending is likelier in total; per character (4 and 15) the long one wins.
        let scores = [Scored { sum: -4.0, tokens: 2 }, Scored { sum: -6.0, tokens: 5 }];
        assert_eq!(picks(&scores, &item.choices), (0, 1));
        // Ties go to the first, as numpy's argmax does.
        let tied = [Scored { sum: -1.0, tokens: 1 }; 2];
        assert_eq!(picks(&tied, &["ab".into(), "cd".into()]), (0, 0));
    }
}
