//! Fitting a prompt into a model's context: labelled demonstrations (k-shot prompting, Brown et
//! al. 2020) joined before a query whose candidates are scored. Demonstrations go first when
//! the whole does not fit, the farthest from the query first; only then does the query lose
//! characters, and never its scored part. Both cuts are counted.

use std::ops::Range;

use primer_datasets::DataError;
use primer_datasets::tokenizer::ByteSpan;
use primer_objectives::{ObjectiveInfo, registry};

/// What joins two demonstrations, and the last demonstration to the query (GPT-3's and
/// lm-evaluation-harness's few-shot delimiter).
pub const SEPARATOR: &str = "\n\n";

/// One candidate of a query: the whole text, and the bytes of it that are scored (a label word,
/// a continuation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The query with this candidate in place.
    pub text: String,
    /// The scored bytes of `text`.
    pub scored: Range<usize>,
}

/// A query whose candidates are scored against each other.
pub trait Query {
    /// Every candidate, the query having lost `cut` of its [`Self::cuttable`] characters.
    fn candidates(&self, cut: usize) -> Vec<Candidate>;

    /// How many characters the query can lose (none of them scored).
    fn cuttable(&self) -> usize;
}

/// A candidate tokenised after the start token: its ids, and the positions of the tokens that
/// overlap its scored bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filled {
    /// Ids, the start token first.
    pub ids: Vec<u32>,
    /// Positions in `ids` of the scored tokens.
    pub scored: Vec<usize>,
}

/// A prompt that fits: one row per candidate, and what was cut to fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fitted {
    /// One row per candidate, in the query's order.
    pub rows: Vec<Filled>,
    /// Demonstrations left out, the first ones.
    pub dropped: usize,
    /// Whether the query lost characters.
    pub cut: bool,
}

/// Why a prompt could not be fitted.
#[derive(Debug, Clone, PartialEq)]
pub enum PromptError {
    /// Longer than the model's context, in tokens: the whole prompt when cutting is not
    /// allowed, else the query's fixed part and a candidate alone.
    TooLong(usize),
}

/// Why a run of `objective` cannot be prompted with demonstrations (see
/// [`ObjectiveInfo::reads_demonstrations`]), naming the objectives that cannot and those that
/// can; `None` when it can.
pub fn demonstrations_refused(objective: &ObjectiveInfo) -> Option<String> {
    if objective.reads_demonstrations() {
        return None;
    }
    let cannot = registry::names_where(|info| !info.reads_demonstrations());
    let can = registry::names_where(|info| info.reads_demonstrations());
    Some(format!(
        "{} runs cannot be prompted with demonstrations (objectives that cannot: {}; that can: {})",
        objective.describe(),
        cannot.join(", "),
        can.join(", ")
    ))
}

/// Tokenises text into ids and the byte span of each token.
pub type Encode<'a> = &'a dyn Fn(&str) -> Result<(Vec<u32>, Vec<ByteSpan>), DataError>;

/// The demonstrations joined, each followed by the separator.
fn prefix(demonstrations: &[String]) -> String {
    demonstrations.iter().map(|d| format!("{d}{SEPARATOR}")).collect()
}

/// `candidate` after `prefix`, tokenised after `start`.
fn fill(encode: Encode, start: u32, prefix: &str, candidate: &Candidate) -> Result<Filled, DataError> {
    let (ids, offsets) = encode(&format!("{prefix}{}", candidate.text))?;
    let span = prefix.len() + candidate.scored.start..prefix.len() + candidate.scored.end;
    let scored = offsets
        .iter()
        .enumerate()
        .filter(|&(_, &(from, to))| from < span.end && to > span.start)
        .map(|(i, _)| i + 1)
        .collect();
    let ids = std::iter::once(start).chain(ids).collect();
    Ok(Filled { ids, scored })
}

/// Every candidate of `query` (having lost `cut` characters) after `demonstrations`.
fn rows(
    encode: Encode,
    start: u32,
    demonstrations: &[String],
    query: &dyn Query,
    cut: usize,
) -> Result<Vec<Filled>, DataError> {
    let prefix = prefix(demonstrations);
    query
        .candidates(cut)
        .iter()
        .map(|candidate| fill(encode, start, &prefix, candidate))
        .collect()
}

fn longest(rows: &[Filled]) -> usize {
    rows.iter().map(|row| row.ids.len()).max().unwrap_or(0)
}

/// The tokens of the longest candidate with every demonstration and the query emptied of what
/// it can lose: more than the context means the demonstrations are too many for it.
pub fn fixed_len(encode: Encode, start: u32, demonstrations: &[String], query: &dyn Query) -> Result<usize, DataError> {
    Ok(longest(&rows(encode, start, demonstrations, query, query.cuttable())?))
}

/// Fits `demonstrations` and `query` into `max_len` tokens. With `cut`, demonstrations are left
/// out from the first on until the prompt fits, and only when none is left does the query lose
/// characters from its cuttable part; without it, a prompt that does not fit whole is an error.
pub fn fit(
    encode: Encode,
    start: u32,
    demonstrations: &[String],
    query: &dyn Query,
    max_len: usize,
    cut: bool,
) -> Result<Result<Fitted, PromptError>, DataError> {
    let (mut dropped, mut cut_chars) = (0, 0);
    loop {
        let rows = rows(encode, start, &demonstrations[dropped..], query, cut_chars)?;
        let tokens = longest(&rows);
        if tokens <= max_len {
            return Ok(Ok(Fitted {
                rows,
                dropped,
                cut: cut_chars > 0,
            }));
        }
        if !cut || cut_chars >= query.cuttable() {
            return Ok(Err(PromptError::TooLong(tokens)));
        }
        if dropped < demonstrations.len() {
            dropped += 1;
        } else {
            // About as many characters as there are surplus tokens, at least one.
            cut_chars = (cut_chars + (tokens - max_len).max(1)).min(query.cuttable());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One token per byte, ids the bytes.
    fn bytes(text: &str) -> Result<(Vec<u32>, Vec<ByteSpan>), DataError> {
        Ok((
            text.bytes().map(u32::from).collect(),
            (0..text.len()).map(|i| (i, i + 1)).collect(),
        ))
    }

    /// `TEXT=` followed by a one-letter candidate, the text losing its end.
    struct Letters(&'static str);

    impl Query for Letters {
        fn candidates(&self, cut: usize) -> Vec<Candidate> {
            let text = &self.0[..self.0.len() - cut];
            ["a", "bb"]
                .iter()
                .map(|word| Candidate {
                    text: format!("{text}={word}"),
                    scored: text.len() + 1..text.len() + 1 + word.len(),
                })
                .collect()
        }

        fn cuttable(&self) -> usize {
            self.0.len()
        }
    }

    fn demonstrations() -> Vec<String> {
        ["x=a", "y=bb", "z=a"].map(String::from).to_vec()
    }

    #[test]
    fn everything_that_fits_is_kept_and_the_scored_tokens_found() {
        let fitted = fit(&bytes, 0, &demonstrations(), &Letters("qq"), 100, true)
            .unwrap()
            .unwrap();
        assert_eq!((fitted.dropped, fitted.cut), (0, false));
        // Start + "x=a\n\ny=bb\n\nz=a\n\n" (16 bytes) + "qq=" + the word.
        assert_eq!(fitted.rows[0].ids.len(), 1 + 16 + 3 + 1);
        assert_eq!(fitted.rows[0].scored, [20]);
        assert_eq!(fitted.rows[1].scored, [20, 21]);
        assert_eq!(fitted.rows[1].ids[20..], [u32::from(b'b'); 2]);
    }

    #[test]
    fn demonstrations_go_first_the_farthest_first_then_the_query_loses_its_end() {
        // "x=a\n\n" is 5 bytes, "y=bb\n\n" 6, "z=a\n\n" 5; the query "qqqq=bb" 7, start 1.
        let fit_in = |max_len| {
            fit(&bytes, 0, &demonstrations(), &Letters("qqqq"), max_len, true)
                .unwrap()
                .unwrap()
        };
        let one_dropped = fit_in(1 + 11 + 7);
        assert_eq!((one_dropped.dropped, one_dropped.cut), (1, false));
        assert_eq!(one_dropped.rows[1].ids[1], u32::from(b'y'), "the first one went");
        let all_dropped = fit_in(8);
        assert_eq!((all_dropped.dropped, all_dropped.cut), (3, false));
        let cut = fit_in(6);
        assert_eq!((cut.dropped, cut.cut), (3, true));
        assert_eq!(cut.rows[1].ids.len(), 6, "the query kept all it could");
        assert_eq!(cut.rows[1].scored, [4, 5], "never the scored word");
    }

    #[test]
    fn a_prompt_that_cannot_fit_says_how_long_it_is() {
        let too_long = |max_len, cut| fit(&bytes, 0, &demonstrations(), &Letters("qqqq"), max_len, cut).unwrap();
        // Without cutting, the whole prompt counts: 1 + 16 + 7.
        assert_eq!(too_long(20, false), Err(PromptError::TooLong(24)));
        // With it, the candidate alone ("=bb" after the start) must fit.
        assert_eq!(too_long(3, true), Err(PromptError::TooLong(4)));
        assert_eq!(
            fixed_len(&bytes, 0, &demonstrations(), &Letters("qqqq")).unwrap(),
            1 + 16 + 3
        );
    }

    #[test]
    fn objectives_that_cannot_read_demonstrations_are_named() {
        let info = |name| registry::lookup(name).unwrap().info;
        let reason = demonstrations_refused(info("electra")).unwrap();
        assert!(
            reason.contains("(electra) runs cannot")
                && reason.contains("that cannot: electra;")
                && reason.contains("that can: mlm, clm, prefix"),
            "{reason}"
        );
        for name in ["mlm", "clm", "prefix"] {
            assert_eq!(demonstrations_refused(info(name)), None, "{name}");
        }
    }
}
