//! primer's data layer: corpora, tokenizers, token shards, packing into blocks and named data
//! sets.
//!
//! The flow is: a [`corpus::Corpus`] (files, folders, globs or a named data set) streams
//! documents; a [`tokenizer::PrimerTokenizer`] turns them into ids; [`prepare`] writes them once
//! into memory-mapped [`shard`]s split train/valid by document; [`blocks`] cuts the shards into
//! fixed-length blocks in a seeded, resumable order.

pub mod blocks;
pub mod checksums;
pub mod corpus;
pub mod error;
pub mod lock;
pub mod named;
pub mod pairs;
pub mod prepare;
pub mod shard;
pub mod task;
pub mod tokenizer;

pub use error::{DataError, Result};

use std::io::Write;
use std::path::Path;

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
