//! Writing files so that a reader never sees half of one, reading record files one bounded
//! line at a time, and confining what a job reads to the directories it is allowed.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};

/// Writes a file atomically: a temporary file in the same folder, synced, then renamed over
/// the target. A reader never sees a half-written file.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(parent).map_err(DataError::io(parent))?;
    tmp.write_all(bytes).map_err(DataError::io(path))?;
    tmp.as_file().sync_all().map_err(DataError::io(path))?;
    tmp.persist(path).map_err(|e| DataError::io(path)(e.error))?;
    Ok(())
}

/// The longest line of a record file (JSON Lines, TSV, CSV: task, pair and corpus files) that
/// is read, 1 MiB: a longer one is refused instead of held whole in memory.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// A reader that fails, with an [`std::io::ErrorKind::InvalidData`] error, at the first line
/// longer than [`MAX_LINE_BYTES`], so that a line reader or CSV parser over it holds at most
/// that much of one line.
pub struct LineBounded<R> {
    inner: R,
    /// Bytes since the last line break.
    line_bytes: usize,
}

impl<R: Read> LineBounded<R> {
    /// Bounds the lines of `inner`.
    pub fn new(inner: R) -> Self {
        Self { inner, line_bytes: 0 }
    }
}

impl<R: Read> Read for LineBounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // Never read past the point where the current line would overflow.
        let room = MAX_LINE_BYTES + 1 - self.line_bytes;
        let len = buf.len().min(room);
        let n = self.inner.read(&mut buf[..len])?;
        for &byte in &buf[..n] {
            self.line_bytes = if byte == b'\n' { 0 } else { self.line_bytes + 1 };
            if self.line_bytes > MAX_LINE_BYTES {
                return Err(line_too_long());
            }
        }
        Ok(n)
    }
}

/// The error of a line over [`MAX_LINE_BYTES`].
#[derive(Debug)]
pub struct LineTooLong;

impl std::fmt::Display for LineTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a line longer than {} MiB: split it into several records",
            MAX_LINE_BYTES >> 20
        )
    }
}

impl std::error::Error for LineTooLong {}

impl LineTooLong {
    /// Whether `error` is a [`LineTooLong`] (from [`LineBounded`]).
    pub fn is(error: &std::io::Error) -> bool {
        error.get_ref().is_some_and(|inner| inner.is::<Self>())
    }
}

/// What a failed read of a record file's line says: the bound it passed, or that the file is
/// not UTF-8 text.
pub fn line_error(error: &std::io::Error) -> String {
    match LineTooLong::is(error) {
        true => error.to_string(),
        false => format!("{error}: give a UTF-8 text file"),
    }
}

fn line_too_long() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, LineTooLong)
}

/// The environment variable that confines what a process reads: the directories (joined as
/// `PATH` joins them) under which every input it is given must lie. `primer dashboard` sets it
/// on each job it runs; unset, inputs are read wherever they are.
pub const ALLOWED_ROOTS_VAR: &str = "PRIMER_ALLOWED_ROOTS";

/// The directories of [`ALLOWED_ROOTS_VAR`], resolved, when it is set (one that does not exist
/// allows nothing).
pub fn allowed_roots() -> Option<Vec<PathBuf>> {
    let value = std::env::var_os(ALLOWED_ROOTS_VAR)?;
    Some(
        std::env::split_paths(&value)
            .filter_map(|root| root.canonicalize().ok())
            .collect(),
    )
}

/// Checks an input before it is read: under [`ALLOWED_ROOTS_VAR`], a file or folder named by an
/// option, a config file, a stored run config or a task table must resolve, through every link,
/// to a place under one of its directories, and so must each entry of a folder. `what` names
/// the input in the refusal (`--corpus`, `tokenizer`). A path that does not exist passes:
/// reading it fails with its own error. Named data sets never come here: they are names.
pub fn check_input(what: &str, path: &Path) -> Result<()> {
    match allowed_roots() {
        Some(roots) => confine(&roots, what, path).map(|_| ()),
        None => Ok(()),
    }
}

/// The check of [`check_input`] against `roots` (resolved): the resolved path of an input
/// inside them, `None` when it does not exist, or the refusal naming it.
pub fn confine(roots: &[PathBuf], what: &str, path: &Path) -> Result<Option<PathBuf>> {
    let Ok(resolved) = path.canonicalize() else {
        return Ok(None);
    };
    let outside = |place: &Path| !roots.iter().any(|root| place.starts_with(root));
    if outside(&resolved) {
        return Err(refusal(what, path));
    }
    if resolved.is_dir() {
        let entries = std::fs::read_dir(&resolved).map_err(DataError::io(path))?;
        for entry in entries.filter_map(|entry| entry.ok()) {
            if entry.path().canonicalize().is_ok_and(|place| outside(&place)) {
                return Err(refusal(what, &entry.path()));
            }
        }
    }
    Ok(Some(resolved))
}

fn refusal(what: &str, path: &Path) -> DataError {
    DataError::InvalidOption(format!(
        "{what} {:?} is outside the dashboard's allowed roots (--runs and --allow): move it under one, or start the dashboard with --allow DIR",
        path.display().to_string()
    ))
}

#[cfg(test)]
mod tests {
    use std::io::BufRead;

    use super::*;

    #[test]
    fn lines_up_to_the_bound_pass_and_a_longer_one_fails_without_being_held() {
        let fits = format!("{}\nshort\n", "a".repeat(MAX_LINE_BYTES));
        let lines: Vec<String> = std::io::BufReader::new(LineBounded::new(fits.as_bytes()))
            .lines()
            .collect::<std::io::Result<_>>()
            .unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].len(), MAX_LINE_BYTES);

        let long = format!("ok\n{}\n", "b".repeat(MAX_LINE_BYTES + 1));
        let mut reader = std::io::BufReader::new(LineBounded::new(long.as_bytes())).lines();
        assert_eq!(reader.next().unwrap().unwrap(), "ok");
        let error = reader.next().unwrap().unwrap_err();
        assert!(LineTooLong::is(&error));
        assert!(error.to_string().contains("longer than 1 MiB"), "{error}");
    }

    #[test]
    fn inputs_are_confined_through_links_and_folder_entries() {
        let dir = tempfile::tempdir().unwrap();
        let (inside, outside) = (dir.path().join("inside"), dir.path().join("outside"));
        std::fs::create_dir_all(&inside).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(inside.join("a.txt"), "a").unwrap();
        std::fs::write(outside.join("secret.txt"), "s").unwrap();
        let roots = [inside.canonicalize().unwrap()];
        let file = inside.join("a.txt");
        assert_eq!(
            confine(&roots, "--corpus", &file).unwrap(),
            Some(file.canonicalize().unwrap())
        );
        assert_eq!(confine(&roots, "--corpus", &inside.join("missing")).unwrap(), None);
        let refused = confine(&roots, "--corpus", &outside.join("secret.txt"))
            .unwrap_err()
            .to_string();
        assert!(
            refused.starts_with("--corpus ") && refused.contains("allowed roots"),
            "{refused}"
        );
        // A link inside that leads out, named itself or met as a folder's entry.
        std::os::unix::fs::symlink(outside.join("secret.txt"), inside.join("link.txt")).unwrap();
        assert!(confine(&roots, "tokenizer", &inside.join("link.txt")).is_err());
        let refused = confine(&roots, "--data", &inside).unwrap_err().to_string();
        assert!(refused.contains("link.txt"), "{refused}");
    }
}
