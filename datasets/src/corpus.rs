//! Reading a text corpus as a stream of documents.
//!
//! A corpus is a list of files, each with a [`FileFormat`]. Files are read line by line, never
//! whole (except in [`DocSplit::File`] mode, where a file *is* the document), so corpora larger
//! than memory stream through.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{DataError, Result};
// The longest line read in one piece: a longer one is read in pieces (plain text) or refused
// (a record format), so a file without line breaks is read in bounded memory.
use primer_files::lines::MAX_LINE_BYTES;
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

/// Reads one file's documents.
struct FileReader {
    path: PathBuf,
    format: FileFormat,
    reader: BufReader<File>,
    lossy: bool,
    offset: u64,
    line_number: u64,
    column_index: Option<usize>,
    done: bool,
    /// The bytes of a character cut at the end of the last chunk of a long line.
    carry: Vec<u8>,
    /// Whether the last piece read ended its line.
    line_ended: bool,
}

impl FileReader {
    fn open(file: CorpusFile, lossy: bool) -> Result<Self> {
        let handle = File::open(&file.path).map_err(DataError::io(&file.path))?;
        let mut reader = Self {
            path: file.path,
            format: file.format,
            reader: BufReader::with_capacity(1 << 20, handle),
            lossy,
            offset: 0,
            line_number: 0,
            column_index: None,
            done: false,
            carry: Vec::new(),
            line_ended: true,
        };
        if let FileFormat::Delimited { delimiter, column } = &reader.format {
            let (delimiter, column) = (*delimiter, column.clone());
            let header = reader.read_record()?.unwrap_or_default();
            let names = split_row(&header, delimiter);
            let index = names
                .iter()
                .position(|name| name == &column)
                .ok_or_else(|| DataError::BadRecord {
                    path: reader.path.clone(),
                    line: 1,
                    message: format!(
                        "no column `{column}` in the header (columns: {}): pass --column NAME",
                        names.join(", ")
                    ),
                })?;
            reader.column_index = Some(index);
        }
        Ok(reader)
    }

    /// The next line without its line ending, checked for NUL bytes and UTF-8. A line longer
    /// than [`MAX_LINE_BYTES`] comes in pieces of at most that size, cut between characters;
    /// [`Self::line_ended`] says whether a piece ended its line.
    fn read_line(&mut self) -> Result<Option<String>> {
        let mut bytes = std::mem::take(&mut self.carry);
        let start = self.offset - bytes.len() as u64;
        let room = (MAX_LINE_BYTES - bytes.len()) as u64;
        let n = (&mut self.reader)
            .take(room)
            .read_until(b'\n', &mut bytes)
            .map_err(DataError::io(&self.path))?;
        if bytes.is_empty() {
            return Ok(None);
        }
        self.offset += n as u64;
        self.line_ended = bytes.last() == Some(&b'\n') || (n as u64) < room;
        if self.line_ended {
            self.line_number += 1;
        } else if let Err(e) = std::str::from_utf8(&bytes)
            && e.error_len().is_none()
        {
            // The chunk ends inside a character: its first bytes start the next piece.
            self.carry = bytes.split_off(e.valid_up_to());
        }
        if let Some(pos) = bytes.iter().position(|&b| b == 0) {
            return Err(DataError::Binary {
                path: self.path.clone(),
                offset: start + pos as u64,
            });
        }
        while self.line_ended && matches!(bytes.last(), Some(b'\n' | b'\r')) {
            bytes.pop();
        }
        match String::from_utf8(bytes) {
            Ok(line) => Ok(Some(line)),
            Err(e) if self.lossy => Ok(Some(String::from_utf8_lossy(e.as_bytes()).into_owned())),
            Err(e) => Err(DataError::InvalidUtf8 {
                path: self.path.clone(),
                offset: start + e.utf8_error().valid_up_to() as u64,
            }),
        }
    }

    /// The next whole line of a record format (JSON Lines, TSV, CSV), which cannot be read in
    /// pieces: one longer than [`MAX_LINE_BYTES`] is refused.
    fn read_record(&mut self) -> Result<Option<String>> {
        let line = self.read_line()?;
        if !self.line_ended {
            return Err(DataError::BadRecord {
                path: self.path.clone(),
                line: self.line_number + 1,
                message: format!(
                    "a record longer than {} MiB: split it into several records",
                    MAX_LINE_BYTES >> 20
                ),
            });
        }
        Ok(line)
    }

    fn next_document(&mut self) -> Result<Option<String>> {
        if self.done {
            return Ok(None);
        }
        match self.format.clone() {
            FileFormat::Text { split } => self.next_text_document(split),
            FileFormat::Jsonl { field } => loop {
                let Some(line) = self.read_record()? else {
                    return Ok(None);
                };
                if line.trim().is_empty() {
                    continue;
                }
                let text = self.jsonl_text(&line, &field)?;
                if !text.trim().is_empty() {
                    return Ok(Some(text));
                }
            },
            FileFormat::Delimited { delimiter, .. } => loop {
                let Some(line) = self.read_record()? else {
                    return Ok(None);
                };
                let index = self.column_index.expect("set at open");
                let text = split_row(&line, delimiter).into_iter().nth(index).unwrap_or_default();
                let text = text.trim_end().to_string();
                if !text.trim().is_empty() {
                    return Ok(Some(text));
                }
            },
        }
    }

    fn next_text_document(&mut self, split: DocSplit) -> Result<Option<String>> {
        let mut doc = String::new();
        loop {
            let continues_line = !self.line_ended;
            let Some(line) = self.read_line()? else {
                break;
            };
            // A blank line is a whole one; a piece of a long line never is.
            let blank = !continues_line && self.line_ended && line.trim().is_empty();
            match split {
                DocSplit::Line if blank => continue,
                DocSplit::Line => return Ok(Some(line)),
                DocSplit::Paragraph if blank && doc.is_empty() => continue,
                DocSplit::Paragraph if blank => return Ok(Some(doc)),
                DocSplit::Paragraph | DocSplit::File => {
                    if !doc.is_empty() && !continues_line {
                        doc.push('\n');
                    }
                    doc.push_str(&line);
                    if doc.len() >= MAX_DOC_BYTES {
                        // Long enough: the rest of the paragraph or file is the next document.
                        return Ok(Some(doc));
                    }
                }
            }
        }
        self.done = true;
        if doc.trim().is_empty() { Ok(None) } else { Ok(Some(doc)) }
    }

    fn jsonl_text(&self, line: &str, field: &str) -> Result<String> {
        let bad = |message: String| DataError::BadRecord {
            path: self.path.clone(),
            line: self.line_number,
            message,
        };
        let value: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| bad(format!("not a JSON object ({e}): fix the line or remove it")))?;
        match value.get(field) {
            Some(serde_json::Value::String(text)) => Ok(text.clone()),
            _ => Err(bad(format!(
                "no string field `{field}`: pass --text-field NAME with the field that holds the text"
            ))),
        }
    }
}

/// Splits one delimited row. CSV fields may be double-quoted; TSV fields are taken as they are
/// (SST-2 and most TSV corpora do not quote).
fn split_row(line: &str, delimiter: u8) -> Vec<String> {
    if delimiter == b'\t' {
        return line.split('\t').map(str::to_string).collect();
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(delimiter)
        .from_reader(line.as_bytes());
    match reader.records().next() {
        Some(Ok(record)) => record.iter().map(str::to_string).collect(),
        _ => vec![line.to_string()],
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
    use super::*;
    use std::io::Write;

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
