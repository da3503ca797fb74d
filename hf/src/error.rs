//! Errors of the Hugging Face interop.

use std::path::PathBuf;

/// What can stop an export. Every message is one line naming the input and the fix.
#[derive(Debug, thiserror::Error)]
pub enum HfError {
    /// The model has something the target architecture cannot hold.
    #[error("{0}")]
    Unsupported(String),
    /// Writing the directory failed.
    #[error("{path}: {message}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

impl HfError {
    /// A write failure at `path`.
    pub fn write(path: &std::path::Path, message: impl std::fmt::Display) -> Self {
        Self::Write {
            path: path.to_path_buf(),
            message: message.to_string(),
        }
    }
}
