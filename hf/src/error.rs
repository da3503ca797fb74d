//! Errors of the Hugging Face interop.

use std::path::PathBuf;

/// What can stop an export or an import. Every message is one line naming the input and the
/// fix.
#[derive(Debug, thiserror::Error)]
pub enum HfError {
    /// The model has something the target architecture cannot hold.
    #[error("{0}")]
    Unsupported(String),
    /// A checkpoint file cannot be read as one: not a regular file, too large, or malformed.
    #[error("{path}: {message}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What is wrong and the fix.
        message: String,
    },
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
    /// A read failure at `path`.
    pub fn read(path: &std::path::Path, message: impl std::fmt::Display) -> Self {
        Self::Read {
            path: path.to_path_buf(),
            message: message.to_string(),
        }
    }

    /// A write failure at `path`.
    pub fn write(path: &std::path::Path, message: impl std::fmt::Display) -> Self {
        Self::Write {
            path: path.to_path_buf(),
            message: message.to_string(),
        }
    }
}
