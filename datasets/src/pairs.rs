//! Minimal pairs: an acceptable and an unacceptable sentence that differ in one grammatical
//! point (BLiMP, Warstadt et al. 2020), read as JSON Lines with BLiMP's fields from the named
//! set `blimp`, a file or a folder of files.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{DataError, Result};
use crate::named::{NamedFile, ReadAs, checked_path};

/// One minimal pair and where it belongs.
#[derive(Debug, Clone, PartialEq)]
pub struct MinimalPair {
    /// The acceptable sentence.
    pub good: String,
    /// The unacceptable one.
    pub bad: String,
    /// Broad field (BLiMP: morphology, syntax, syntax-semantics, semantics).
    pub field: String,
    /// Phenomenon (BLiMP's `linguistics_term`).
    pub phenomenon: String,
    /// Paradigm (BLiMP's `UID`; a user file's name when absent).
    pub paradigm: String,
}

/// BLiMP's paradigm files, 1,000 pairs each: its repository and commit, and each paradigm's
/// name (`UID`) with the sha256 of its file, `data/NAME.jsonl` there.
const BLIMP: &str = include_str!("../data/blimp.json");

/// The list of [`BLIMP`].
#[derive(Deserialize)]
struct BlimpList {
    /// The GitHub repository, `owner/name`.
    repository: String,
    /// The commit its files are fetched at.
    commit: String,
    /// Its paradigms, in name order.
    paradigms: Vec<Paradigm>,
}

/// One paradigm of [`BLIMP`].
#[derive(Deserialize)]
struct Paradigm {
    /// BLiMP's `UID`, the file's stem.
    name: String,
    /// The sha256 of its file.
    sha256: String,
}

impl BlimpList {
    /// The list embedded in primer.
    fn embedded() -> Self {
        serde_json::from_str(BLIMP).expect("the embedded BLiMP list is valid")
    }

    /// The public URL of a paradigm's file.
    fn url(&self, paradigm: &Paradigm) -> String {
        format!(
            "https://raw.githubusercontent.com/{}/{}/data/{}.jsonl",
            self.repository, self.commit, paradigm.name
        )
    }

    /// The checked paths of its files under `home`, each fetched as [`checked_path`] does.
    fn checked_paths(&self, home: &Path, mirror: Option<&str>, progress: bool) -> Result<Vec<PathBuf>> {
        self.paradigms
            .iter()
            .map(|paradigm| {
                let (path, url) = (format!("blimp/{}.jsonl", paradigm.name), self.url(paradigm));
                let file = NamedFile {
                    path: &path,
                    sha256: &paradigm.sha256,
                    url: Some(&url),
                    read_as: ReadAs::MinimalPairs,
                };
                checked_path("blimp", &file, home, mirror, progress)
            })
            .collect()
    }
}

/// The fields of one line; grouping fields are optional in user files.
#[derive(Deserialize)]
struct Line {
    sentence_good: Option<String>,
    sentence_bad: Option<String>,
    field: Option<String>,
    linguistics_term: Option<String>,
    #[serde(rename = "UID")]
    uid: Option<String>,
}

/// Reads the pairs of `source`: `blimp` (each file checked by sha256 under `home`, fetched from
/// `mirror` or its public URL when missing), a `.jsonl` file, or a folder of them (in name
/// order), with download progress shown when `progress`. With `limit`, only the first `limit`
/// pairs of each paradigm are kept.
pub fn read_pairs(
    source: &str,
    home: &Path,
    mirror: Option<&str>,
    progress: bool,
    limit: Option<usize>,
) -> Result<Vec<MinimalPair>> {
    let files = if source == "blimp" {
        BlimpList::embedded().checked_paths(home, mirror, progress)?
    } else {
        primer_files::roots::check_input("minimal pairs", Path::new(source))?;
        pair_files(Path::new(source))?
    };
    let mut pairs = Vec::new();
    for path in &files {
        pairs.extend(read_file(path)?);
    }
    if let Some(limit) = limit {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        pairs.retain(|pair| {
            let count = seen.entry(pair.paradigm.clone()).or_default();
            *count += 1;
            *count <= limit
        });
    }
    if pairs.is_empty() {
        return Err(DataError::Empty(source.to_string()));
    }
    Ok(pairs)
}

/// A `.jsonl` file, or the `.jsonl` files of a folder in name order.
fn pair_files(path: &Path) -> Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path).map_err(|_| DataError::NoMatch(path.display().to_string()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "jsonl"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(DataError::NoMatch(path.display().to_string()));
    }
    Ok(files)
}

/// The pairs of one file; a line that is not a pair stops with its number.
fn read_file(path: &Path) -> Result<Vec<MinimalPair>> {
    let file = std::fs::File::open(path).map_err(DataError::io(path))?;
    let stem = path
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let mut pairs = Vec::new();
    let lines = std::io::BufReader::new(primer_files::lines::LineBounded::new(file)).lines();
    for (index, line) in lines.enumerate() {
        let bad = |message: String| DataError::BadRecord {
            path: path.to_path_buf(),
            line: index as u64 + 1,
            message,
        };
        let line = line.map_err(|e| bad(primer_files::lines::line_error(&e)))?;
        if line.trim().is_empty() {
            continue;
        }
        let record: Line = serde_json::from_str(&line)
            .map_err(|e| bad(format!("invalid JSON ({e}): each line must be one JSON object")))?;
        let sentence = |value: Option<String>, name: &str| match value {
            Some(text) if !text.trim().is_empty() => Ok(text),
            Some(_) => Err(bad(format!("`{name}` is empty: give both sentences of the pair"))),
            None => Err(bad(format!(
                "no `{name}`: each line needs `sentence_good` and `sentence_bad`"
            ))),
        };
        pairs.push(MinimalPair {
            good: sentence(record.sentence_good, "sentence_good")?,
            bad: sentence(record.sentence_bad, "sentence_bad")?,
            field: record.field.unwrap_or_else(|| "-".into()),
            phenomenon: record.linguistics_term.unwrap_or_else(|| "-".into()),
            paradigm: record.uid.unwrap_or_else(|| stem.clone()),
        });
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_blimp_list_names_67_distinct_paradigms_at_one_commit() {
        let list = BlimpList::embedded();
        assert_eq!(list.paradigms.len(), 67);
        let names: std::collections::BTreeSet<&str> = list.paradigms.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names.len(), 67);
        assert!(
            list.paradigms
                .iter()
                .all(|p| p.sha256.len() == 64 && p.sha256.bytes().all(|b| b.is_ascii_hexdigit()))
        );
        assert_eq!(
            list.url(&list.paradigms[0]),
            "https://raw.githubusercontent.com/alexwarstadt/blimp/3e56b06fcabca9b30822fc66435fca6b1aa40bb1/data/adjunct_island.jsonl"
        );
    }

    #[test]
    fn blimp_reads_from_the_shared_data_with_its_groups() {
        let home = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data");
        let pairs = read_pairs("blimp", &home, None, false, Some(3)).unwrap();
        assert_eq!(pairs.len(), 67 * 3);
        // BLiMP's own labels: one paradigm spells its field `syntax/semantics`.
        let fields: std::collections::BTreeSet<&str> = pairs.iter().map(|p| p.field.as_str()).collect();
        let expected = [
            "morphology",
            "semantics",
            "syntax",
            "syntax/semantics",
            "syntax_semantics",
        ];
        assert_eq!(fields.into_iter().collect::<Vec<_>>(), expected);
        assert_eq!(pairs[0].paradigm, "adjunct_island");
        assert_eq!(pairs[0].good, "Who should Derek hug after shocking Richard?");
    }

    #[test]
    fn bad_lines_are_named_by_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let write = |text: &str| {
            let path = dir.path().join("pairs.jsonl");
            std::fs::write(&path, text).unwrap();
            path.display().to_string()
        };
        let good = r#"{"sentence_good": "a b", "sentence_bad": "b a"}"#;
        let err = |text: &str| {
            read_pairs(&write(text), dir.path(), None, false, None)
                .unwrap_err()
                .to_string()
        };
        assert!(err(&format!("{good}\n{{oops")).contains("pairs.jsonl:2: invalid JSON"));
        assert!(err(r#"{"sentence_good": "a b"}"#).contains(":1: no `sentence_bad`"));
        assert!(err(r#"{"sentence_good": " ", "sentence_bad": "b"}"#).contains("`sentence_good` is empty"));
        assert!(err("").contains("is empty"));
        let pairs = read_pairs(&write(good), dir.path(), None, false, None).unwrap();
        assert_eq!(pairs[0].paradigm, "pairs");
    }
}
