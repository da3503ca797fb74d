//! Errors of the trainer.

use std::path::{Path, PathBuf};

use primer_datasets::DataError;
use primer_files::FileError;

/// What can stop a run. Every message is one line naming the input and the fix.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Bad data, tokenizer or corpus.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A file that cannot be written, locked or checked, or an input outside the allowed roots.
    #[error(transparent)]
    Files(#[from] FileError),
    /// A bad option, run directory or checkpoint.
    #[error("{0}")]
    Invalid(String),
    /// An I/O failure on a named path.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl TrainError {
    /// Wraps an I/O error with its path.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
