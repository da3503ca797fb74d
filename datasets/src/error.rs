//! The one error type of the data layer.

use std::path::PathBuf;

use primer_files::FileError;

/// Everything that can go wrong while reading a corpus, training or loading a tokenizer,
/// preparing token shards or fetching a named data set.
///
/// Each message names the input at fault and says how to fix it, on one line: the CLI prints
/// it as it is and exits with code 2.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A corpus path, folder or glob that matched no readable file.
    #[error("corpus `{0}` matched no file: check the path, or give a folder, glob or named data set")]
    NoMatch(String),
    /// The corpus had files, but no text in them.
    #[error("corpus {0} is empty: give files that contain text")]
    Empty(String),
    /// A file that is not valid UTF-8.
    #[error("{path}: invalid UTF-8 at byte {offset}: convert the file to UTF-8, or pass --lossy to replace bad bytes")]
    InvalidUtf8 {
        /// The file.
        path: PathBuf,
        /// Byte offset of the first bad byte.
        offset: u64,
    },
    /// A file that looks binary (has NUL bytes).
    #[error("{path}: looks like a binary file (NUL byte at {offset}): give text files only")]
    Binary {
        /// The file.
        path: PathBuf,
        /// Byte offset of the NUL byte.
        offset: u64,
    },
    /// A file with an extension primer does not read as a corpus.
    #[error("{0}: unsupported corpus file type: use .txt, .jsonl, .tsv or .csv")]
    UnsupportedFormat(PathBuf),
    /// A JSON Lines record that cannot be read.
    #[error("{path}:{line}: {message}")]
    BadRecord {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A tokenizer file that cannot be used.
    #[error("tokenizer {path}: {message}")]
    Tokenizer {
        /// The tokenizer file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A corpus too small for the requested block length.
    #[error("{what} has {tokens} tokens, fewer than one block of {block}: give more text or a smaller --seq-len")]
    TooFewTokens {
        /// Which split or corpus.
        what: String,
        /// Tokens it has.
        tokens: u64,
        /// Tokens one block needs.
        block: usize,
    },
    /// A prepared data folder that is missing files or does not match.
    #[error("prepared data {path}: {message}")]
    Prepared {
        /// The folder.
        path: PathBuf,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A named data set that cannot be resolved or fetched.
    #[error("data set `{name}`: {message}")]
    Named {
        /// The data set's name.
        name: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// An option outside its range.
    #[error("{0}")]
    InvalidOption(String),
    /// A file that cannot be written, locked or checked, or an input outside the allowed roots.
    #[error(transparent)]
    Files(#[from] FileError),
    /// An I/O failure on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl DataError {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}

/// Result of the data layer.
pub type Result<T, E = DataError> = std::result::Result<T, E>;
