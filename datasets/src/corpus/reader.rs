//! Reading one corpus file: lines checked for NUL bytes and UTF-8 and read in pieces of at most
//! [`MAX_LINE_BYTES`], and the documents its [`FileFormat`] makes of them.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;

// The longest line read in one piece: a longer one is read in pieces (plain text) or refused
// (a record format), so a file without line breaks is read in bounded memory.
use primer_files::lines::MAX_LINE_BYTES;

use super::{CorpusFile, DocSplit, FileFormat, MAX_DOC_BYTES};
use crate::error::{DataError, Result};

/// Reads one file's documents.
pub(super) struct FileReader {
    path: PathBuf,
    format: FileFormat,
    reader: BufReader<File>,
    lossy: bool,
    /// Bytes of the file read so far.
    pub(super) offset: u64,
    line_number: u64,
    column_index: Option<usize>,
    done: bool,
    /// The bytes of a character cut at the end of the last chunk of a long line.
    carry: Vec<u8>,
    /// Whether the last piece read ended its line.
    line_ended: bool,
}

impl FileReader {
    /// Opens `file`, reading the header of a delimited one; `lossy` replaces bad UTF-8.
    pub(super) fn open(file: CorpusFile, lossy: bool) -> Result<Self> {
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

    /// The next document of the file in its format; `None` at its end.
    pub(super) fn next_document(&mut self) -> Result<Option<String>> {
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
