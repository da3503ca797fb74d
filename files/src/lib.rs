//! The file utilities every primer crate writes and reads with: atomic writes
//! ([`atomic_write`]), record files read one bounded line at a time ([`lines`]), inputs
//! confined to the directories a job may read ([`roots`]), folder locks ([`lock`]) and
//! `SHA256SUMS` ([`checksums`]).

pub mod checksums;
pub mod lines;
pub mod lock;
pub mod roots;

use std::io::Write;
use std::path::{Path, PathBuf};

/// What can go wrong while writing, locking, checking or confining a file. Each message is one
/// line naming the file or folder at fault and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// An input outside the directories of [`roots::ALLOWED_ROOTS_VAR`].
    #[error(
        "{what} {:?} is outside the dashboard's allowed roots (--runs and --allow): move it under one, or start the dashboard with --allow DIR",
        .path.display().to_string()
    )]
    Outside {
        /// The kind of input (`--corpus`, `tokenizer`).
        what: String,
        /// The input, or the entry of its folder, that lies outside.
        path: PathBuf,
    },
    /// A folder whose lock another process holds.
    #[error(
        "{what} {} is in use by {}: wait for it to end, or stop it first",
        .folder.display(),
        .holder.map_or("another process".to_string(), |pid| format!("process {pid}"))
    )]
    InUse {
        /// The folder's kind ("run", "report").
        what: String,
        /// The folder.
        folder: PathBuf,
        /// The process holding the lock, when the kernel names it.
        holder: Option<u32>,
    },
    /// An I/O failure on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl FileError {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}

/// Result of the file utilities.
pub type Result<T, E = FileError> = std::result::Result<T, E>;

/// Writes a file atomically: a temporary file in the same folder, synced, then renamed over
/// the target. A reader never sees a half-written file.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(parent).map_err(FileError::io(parent))?;
    tmp.write_all(bytes).map_err(FileError::io(path))?;
    tmp.as_file().sync_all().map_err(FileError::io(path))?;
    tmp.persist(path).map_err(|e| FileError::io(path)(e.error))?;
    Ok(())
}
