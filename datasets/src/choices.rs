//! Multiple-choice questions in JSON Lines: a context, candidate continuations and the index of
//! the right one, one object per line,
//!
//! ```json
//! {"context": "A man is sitting on a roof. He", "choices": ["starts pulling up roofing.", "is ..."], "label": 0}
//! ```
//!
//! HellaSwag's own field names (`ctx`, `endings`, and `label` as a string) are read too, so its
//! files need no conversion.

use std::io::BufRead;
use std::path::Path;

use rand::SeedableRng;
use rand::seq::index;
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

use crate::error::{DataError, Result};

/// One question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChoiceItem {
    /// What the continuations continue.
    pub context: String,
    /// The candidate continuations, at least two.
    pub choices: Vec<String>,
    /// The index of the right one.
    pub label: usize,
}

/// A line as written: the label a number or a string of one.
#[derive(Deserialize)]
struct Line {
    #[serde(alias = "ctx")]
    context: Option<String>,
    #[serde(alias = "endings")]
    choices: Option<Vec<String>>,
    label: Option<serde_json::Value>,
}

/// Reads the questions of a JSON Lines file; a bad line is an error naming the file and line.
pub fn read_choices(path: &Path) -> Result<Vec<ChoiceItem>> {
    crate::corpus::check_file(path, "multiple-choice file")?;
    let file = std::fs::File::open(path).map_err(DataError::io(path))?;
    let mut items = Vec::new();
    for (index, line) in std::io::BufReader::new(file).lines().enumerate() {
        let bad = |message: String| DataError::BadRecord {
            path: path.to_path_buf(),
            line: index as u64 + 1,
            message,
        };
        let line = line.map_err(|e| bad(format!("{e}: give a UTF-8 text file")))?;
        if line.trim().is_empty() {
            continue;
        }
        let record: Line = serde_json::from_str(&line)
            .map_err(|e| bad(format!("invalid JSON ({e}): each line must be one JSON object")))?;
        items.push(item(record).map_err(bad)?);
    }
    if items.is_empty() {
        return Err(DataError::InvalidOption(format!(
            "{}: no questions: give one JSON object per line",
            path.display()
        )));
    }
    Ok(items)
}

/// The indices of `k` of `items` drawn at random with `seed`, in random order: demonstrations
/// for k-shot prompting. The error names `--shots` and `source`.
pub fn draw(items: &[ChoiceItem], k: usize, seed: u64, source: &Path) -> Result<Vec<usize>> {
    if k > items.len() {
        return Err(DataError::InvalidOption(format!(
            "--shots {k} is more than the {} questions of {}: give at most {}",
            items.len(),
            source.display(),
            items.len()
        )));
    }
    Ok(index::sample(&mut ChaCha8Rng::seed_from_u64(seed), items.len(), k).into_vec())
}

/// A line's question, checked.
fn item(record: Line) -> std::result::Result<ChoiceItem, String> {
    let needs = "each line needs `context`, `choices` and `label` (HellaSwag's `ctx`, `endings`, `label` too)";
    let context = record.context.ok_or_else(|| format!("no `context`: {needs}"))?;
    let choices = record.choices.ok_or_else(|| format!("no `choices`: {needs}"))?;
    if choices.len() < 2 {
        return Err(format!(
            "{} choice(s): give at least two continuations to choose from",
            choices.len()
        ));
    }
    if let Some(at) = choices.iter().position(|c| c.trim().is_empty()) {
        return Err(format!("choice {at} is empty: give every continuation some text"));
    }
    let label = match record.label {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        Some(_) => None,
        None => return Err(format!("no `label`: {needs}")),
    };
    match label.map(|l| l as usize) {
        Some(label) if label < choices.len() => Ok(ChoiceItem {
            context,
            choices,
            label,
        }),
        _ => Err(format!(
            "`label` must be the index of the right choice, 0 to {}",
            choices.len() - 1
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Vec<ChoiceItem>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mc.jsonl");
        std::fs::write(&path, text).unwrap();
        read_choices(&path)
    }

    #[test]
    fn our_fields_and_hellaswags_are_read() {
        let items = read(concat!(
            r#"{"context": "The cat", "choices": ["sat.", "flew."], "label": 0}"#,
            "\n\n",
            r#"{"ind": 4, "ctx": "He", "ctx_a": "x", "endings": ["a", "b", "c", "d"], "label": "3"}"#,
            "\n"
        ))
        .unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].choices, ["sat.", "flew."]);
        assert_eq!((items[1].context.as_str(), items[1].label), ("He", 3));
    }

    #[test]
    fn demonstrations_are_drawn_with_the_seed() {
        let items = vec![
            ChoiceItem {
                context: "a".into(),
                choices: vec!["b".into(), "c".into()],
                label: 0,
            };
            10
        ];
        let drawn = draw(&items, 4, 7, Path::new("t.jsonl")).unwrap();
        assert_eq!(drawn, draw(&items, 4, 7, Path::new("t.jsonl")).unwrap());
        assert_ne!(drawn, draw(&items, 4, 8, Path::new("t.jsonl")).unwrap());
        let error = draw(&items, 11, 7, Path::new("t.jsonl")).unwrap_err().to_string();
        assert!(
            error.contains("--shots 11") && error.contains("10 questions of t.jsonl"),
            "{error}"
        );
    }

    #[test]
    fn bad_lines_name_the_line_and_the_fix() {
        let error = |text: &str| read(text).unwrap_err().to_string();
        let good = r#"{"context": "a", "choices": ["b", "c"], "label": 1}"#;
        let out_of_range = format!("{good}\n{}", r#"{"context": "a", "choices": ["b", "c"], "label": 2}"#);
        assert!(error(&out_of_range).contains("mc.jsonl:2") && error(&out_of_range).contains("0 to 1"));
        assert!(error(r#"{"context": "a", "choices": ["b"], "label": 0}"#).contains("at least two"));
        assert!(error(r#"{"choices": ["b", "c"], "label": 0}"#).contains("no `context`"));
        assert!(error("{oops").contains("invalid JSON"));
        assert!(error("\n").contains("mc.jsonl: no questions"));
    }
}
