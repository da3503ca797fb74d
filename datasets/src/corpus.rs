//! Reading a text corpus as a stream of documents.
//!
//! A corpus is a list of files, each with a [`FileFormat`]. Files are read line by line, never
//! whole (except in [`DocSplit::File`] mode, where a file *is* the document), so corpora larger
//! than memory stream through.

mod reader;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{DataError, Result};
use reader::FileReader;

/// The longest document handed to the tokenizer: a longer one is cut into documents of at most
/// this size, at a space where one is near; tokenizing costs about 200 bytes of memory per
/// byte of text.
pub const MAX_DOC_BYTES: usize = 1 << 20;

/// How a plain-text file is cut into documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DocSplit {
    /// A blank line ends a document (paragraphs, speeches, stories).
    #[default]
    Paragraph,
    /// Every non-blank line is a document.
    Line,
    /// The whole file is one document.
    File,
}

/// How one corpus file is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum FileFormat {
    /// Plain UTF-8 text.
    Text {
        /// How documents are delimited.
        split: DocSplit,
    },
    /// JSON Lines: one object per line, its text in a string field.
    Jsonl {
        /// The field holding the text.
        field: String,
    },
    /// Delimited rows with a header (TSV or CSV), the text in a named column.
    Delimited {
        /// `b'\t'` or `b','`.
        delimiter: u8,
        /// The header name of the text column.
        column: String,
    },
}

/// Options that decide how user-given files are read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CorpusOptions {
    /// Document split for `.txt` files.
    pub split: DocSplit,
    /// Text field of `.jsonl` records.
    pub text_field: String,
    /// Text column of `.tsv`/`.csv` files.
    pub column: String,
    /// Replace invalid UTF-8 with U+FFFD instead of failing.
    pub lossy: bool,
}

impl Default for CorpusOptions {
    fn default() -> Self {
        Self {
            split: DocSplit::Paragraph,
            text_field: "text".into(),
            column: "text".into(),
            lossy: false,
        }
    }
}

impl CorpusOptions {
    /// The format of a user-given file, from its extension.
    pub fn format_for(&self, path: &Path) -> Result<FileFormat> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        match ext.to_ascii_lowercase().as_str() {
            "txt" | "raw" | "text" | "md" => Ok(FileFormat::Text { split: self.split }),
            "jsonl" => Ok(FileFormat::Jsonl {
                field: self.text_field.clone(),
            }),
            "tsv" => Ok(FileFormat::Delimited {
                delimiter: b'\t',
                column: self.column.clone(),
            }),
            "csv" => Ok(FileFormat::Delimited {
                delimiter: b',',
                column: self.column.clone(),
            }),
            _ => Err(DataError::UnsupportedFormat(path.to_path_buf())),
        }
    }
}

/// One file of a corpus and how to read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorpusFile {
    /// Where it is.
    pub path: PathBuf,
    /// How to read it.
    pub format: FileFormat,
}

/// A resolved corpus: files in a fixed order, read as one stream of documents.
#[derive(Debug, Clone)]
pub struct Corpus {
    files: Vec<CorpusFile>,
    lossy: bool,
    label: String,
}

impl Corpus {
    /// A corpus of the given files.
    pub fn new(files: Vec<CorpusFile>, lossy: bool, label: impl Into<String>) -> Self {
        Self {
            files,
            lossy,
            label: label.into(),
        }
    }

    /// Expands files, folders (recursively, sorted) and globs into corpus files.
    pub fn expand_paths(spec: &str, options: &CorpusOptions) -> Result<Vec<CorpusFile>> {
        let mut paths = Vec::new();
        if spec.contains(['*', '?', '[']) {
            let entries = glob::glob(spec).map_err(|e| DataError::InvalidOption(format!("glob `{spec}`: {e}")))?;
            paths.extend(entries.filter_map(|e| e.ok()).filter(|p| p.is_file()));
            paths.sort();
        } else {
            let path = PathBuf::from(spec);
            if path.is_dir() {
                let mut found: Vec<PathBuf> = walkdir::WalkDir::new(&path)
                    .into_iter()
                    .filter_map(|e| e.ok())
                    .filter(|e| e.file_type().is_file())
                    .map(|e| e.into_path())
                    .filter(|p| options.format_for(p).is_ok())
                    .collect();
                found.sort();
                paths.extend(found);
            } else if path.is_file() {
                paths.push(path);
            }
        }
        if paths.is_empty() {
            return Err(DataError::NoMatch(spec.to_string()));
        }
        paths
            .into_iter()
            .map(|path| {
                let format = options.format_for(&path)?;
                Ok(CorpusFile { path, format })
            })
            .collect()
    }

    /// The files, in reading order.
    pub fn files(&self) -> &[CorpusFile] {
        &self.files
    }

    /// A short name for messages: the specs the user gave.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// A hash of what the corpus is: paths, sizes, modification times and formats.
    ///
    /// Cheap (no file is read) and changes whenever a file is edited.
    pub fn fingerprint(&self) -> Result<String> {
        let mut hasher = Sha256::new();
        hasher.update([self.lossy as u8]);
        for file in &self.files {
            let meta = std::fs::metadata(&file.path).map_err(DataError::io(&file.path))?;
            let canonical = file.path.canonicalize().map_err(DataError::io(&file.path))?;
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            hasher.update(canonical.to_string_lossy().as_bytes());
            hasher.update(meta.len().to_le_bytes());
            hasher.update(modified.to_le_bytes());
            hasher.update(serde_json::to_vec(&file.format).expect("formats serialize"));
        }
        Ok(hex::encode(hasher.finalize()))
    }

    /// Total size of the files in bytes (for progress bars).
    pub fn total_bytes(&self) -> u64 {
        self.files
            .iter()
            .filter_map(|f| std::fs::metadata(&f.path).ok())
            .map(|m| m.len())
            .sum()
    }

    /// Streams the documents of every file in order. Blank documents are skipped.
    pub fn documents(&self) -> Documents {
        Documents {
            files: self.files.clone().into_iter(),
            current: None,
            lossy: self.lossy,
            failed: false,
            rest: None,
        }
    }

    /// Checks that the corpus holds some text: reads up to its first document.
    pub fn check_not_empty(&self) -> Result<()> {
        match self.documents().next() {
            Some(doc) => doc.map(|_| ()),
            None => Err(DataError::Empty(self.label.clone())),
        }
    }
}

/// A document and how many bytes of the input it consumed so far (for progress).
#[derive(Debug, Clone)]
pub struct Document {
    /// The text.
    pub text: String,
    /// Bytes of the current file read so far.
    pub file_offset: u64,
}

/// Iterator over the documents of a [`Corpus`]; stops after the first error.
pub struct Documents {
    files: std::vec::IntoIter<CorpusFile>,
    current: Option<FileReader>,
    lossy: bool,
    failed: bool,
    /// The rest of a document longer than [`MAX_DOC_BYTES`], returned piece by piece.
    rest: Option<Document>,
}

impl Iterator for Documents {
    type Item = Result<Document>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if let Some(long) = self.rest.take() {
            return Some(Ok(self.bounded(long)));
        }
        loop {
            if self.current.is_none() {
                let file = self.files.next()?;
                match FileReader::open(file, self.lossy) {
                    Ok(reader) => self.current = Some(reader),
                    Err(e) => {
                        self.failed = true;
                        return Some(Err(e));
                    }
                }
            }
            let reader = self.current.as_mut().expect("opened above");
            match reader.next_document() {
                Ok(Some(text)) => {
                    let document = Document {
                        text,
                        file_offset: reader.offset,
                    };
                    return Some(Ok(self.bounded(document)));
                }
                Ok(None) => self.current = None,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

impl Documents {
    /// The first [`MAX_DOC_BYTES`] (or fewer, at a space) of `document`, keeping the rest for
    /// the next call: a document of any length is tokenized in bounded memory.
    fn bounded(&mut self, mut document: Document) -> Document {
        if document.text.len() <= MAX_DOC_BYTES {
            return document;
        }
        let text = &document.text;
        let mut cut = text.floor_char_boundary(MAX_DOC_BYTES);
        let near = text.ceil_char_boundary(cut - 1024);
        if let Some((at, space)) = text[near..cut].char_indices().rev().find(|(_, c)| c.is_whitespace()) {
            cut = near + at + space.len_utf8();
        }
        let rest = document.text.split_off(cut);
        self.rest = Some(Document {
            text: rest,
            file_offset: document.file_offset,
        });
        document
    }
}

/// Checks that a path is a readable, non-empty file; the message names it and the fix.
pub fn check_file(path: &Path, what: &str) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|_| DataError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{what} not found: check the path"),
        ),
    })?;
    if meta.len() == 0 {
        return Err(DataError::Empty(format!("{} ({what})", path.display())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::io::Write;

    use primer_files::lines::MAX_LINE_BYTES;

    use super::*;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        File::create(&path).unwrap().write_all(bytes).unwrap();
        path
    }

    fn docs(spec: &str, options: &CorpusOptions) -> Result<Vec<String>> {
        let files = Corpus::expand_paths(spec, options)?;
        Corpus::new(files, options.lossy, spec)
            .documents()
            .map(|d| d.map(|d| d.text))
            .collect()
    }

    #[test]
    fn paragraphs_lines_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "a.txt", b"A:\nhello\n\n\nB:\nhi\n");
        let spec = path.to_str().unwrap();
        let mut options = CorpusOptions::default();
        assert_eq!(docs(spec, &options).unwrap(), ["A:\nhello", "B:\nhi"]);
        options.split = DocSplit::Line;
        assert_eq!(docs(spec, &options).unwrap(), ["A:", "hello", "B:", "hi"]);
        options.split = DocSplit::File;
        assert_eq!(docs(spec, &options).unwrap(), ["A:\nhello\n\n\nB:\nhi"]);
    }

    #[test]
    fn a_line_of_any_length_comes_in_bounded_documents_losing_nothing() {
        let dir = tempfile::tempdir().unwrap();
        // 3.5 MiB without a newline: words of two-byte characters, then one long word, so cuts
        // fall inside characters and away from spaces.
        let mut text = "é ".repeat(MAX_DOC_BYTES / 2);
        text += &"ü".repeat(MAX_DOC_BYTES);
        text += &" word".repeat(MAX_DOC_BYTES / 10);
        let path = write(dir.path(), "long.txt", text.as_bytes());
        for split in [DocSplit::Paragraph, DocSplit::Line, DocSplit::File] {
            let options = CorpusOptions {
                split,
                ..Default::default()
            };
            let found = docs(path.to_str().unwrap(), &options).unwrap();
            assert!(found.len() >= 4, "{split:?}: {} documents", found.len());
            assert!(found.iter().all(|d| d.len() <= MAX_DOC_BYTES), "{split:?}");
            assert_eq!(found.concat(), text, "{split:?}");
        }
        let record = format!("{{\"text\": \"{}\"}}\n", "a".repeat(MAX_LINE_BYTES));
        let path = write(dir.path(), "long.jsonl", record.as_bytes());
        let err = docs(path.to_str().unwrap(), &CorpusOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("long.jsonl:1") && err.contains("longer than 1 MiB"),
            "{err}"
        );
    }

    #[test]
    fn jsonl_tsv_csv_folders_and_globs() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.jsonl", b"{\"text\": \"one\"}\n\n{\"text\": \"two\"}\n");
        write(dir.path(), "b.tsv", b"sentence\tlabel\nthree \t1\nfour\t0\n");
        write(dir.path(), "c.csv", b"label,review\n1,\"five, six\"\n");
        write(dir.path(), "skip.bin", b"\0\0");
        let options = CorpusOptions {
            column: "sentence".into(),
            ..Default::default()
        };
        let folder = dir.path().to_str().unwrap();
        let err = docs(folder, &options).unwrap_err().to_string();
        assert!(err.contains("c.csv") && err.contains("--column"), "{err}");
        let tsv = docs(&format!("{folder}/*.tsv"), &options).unwrap();
        assert_eq!(tsv, ["three", "four"]);
        let jsonl = docs(&format!("{folder}/*.jsonl"), &options).unwrap();
        assert_eq!(jsonl, ["one", "two"]);
        let csv_options = CorpusOptions {
            column: "review".into(),
            ..Default::default()
        };
        assert_eq!(docs(&format!("{folder}/c.csv"), &csv_options).unwrap(), ["five, six"]);
    }

    #[test]
    fn invalid_utf8_names_file_and_offset_unless_lossy() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "bad.txt", b"good line\nbad \xff byte\n");
        let spec = path.to_str().unwrap();
        let mut options = CorpusOptions::default();
        let err = docs(spec, &options).unwrap_err().to_string();
        assert!(
            err.contains("bad.txt") && err.contains("byte 14") && err.contains("--lossy"),
            "{err}"
        );
        options.lossy = true;
        assert_eq!(docs(spec, &options).unwrap(), ["good line\nbad \u{fffd} byte"]);
    }

    #[test]
    fn binary_missing_and_jsonl_field_errors() {
        let dir = tempfile::tempdir().unwrap();
        let bin = write(dir.path(), "x.txt", b"ab\0cd");
        let options = CorpusOptions::default();
        let err = docs(bin.to_str().unwrap(), &options).unwrap_err().to_string();
        assert!(err.contains("binary") && err.contains("x.txt"), "{err}");
        let err = docs("/no/such/file.txt", &options).unwrap_err().to_string();
        assert!(
            err.contains("/no/such/file.txt") && err.contains("matched no file"),
            "{err}"
        );
        let jsonl = write(dir.path(), "y.jsonl", b"{\"body\": \"x\"}\n");
        let err = docs(jsonl.to_str().unwrap(), &options).unwrap_err().to_string();
        assert!(err.contains("y.jsonl:1") && err.contains("--text-field"), "{err}");
    }
}
