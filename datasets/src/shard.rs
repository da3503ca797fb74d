//! Memory-mapped binary token shards.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};

/// Width of the stored token ids: `u16` whenever the vocabulary fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenDtype {
    /// 2 bytes per token, little-endian.
    U16,
    /// 4 bytes per token, little-endian.
    U32,
}

impl TokenDtype {
    /// The narrowest width that holds every id of a vocabulary.
    pub fn for_vocab(vocab_size: usize) -> Self {
        if vocab_size <= u16::MAX as usize + 1 {
            Self::U16
        } else {
            Self::U32
        }
    }

    /// The id stored little-endian in `bytes` (one token's width).
    fn id(self, bytes: &[u8]) -> u32 {
        match self {
            Self::U16 => u16::from_le_bytes([bytes[0], bytes[1]]) as u32,
            Self::U32 => u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
        }
    }

    /// Bytes per token.
    pub fn width(self) -> usize {
        match self {
            Self::U16 => 2,
            Self::U32 => 4,
        }
    }
}

/// Appends token ids to a shard file.
pub struct ShardWriter {
    out: BufWriter<File>,
    dtype: TokenDtype,
    path: PathBuf,
    len: u64,
}

impl ShardWriter {
    /// Creates (truncates) the file.
    pub fn create(path: &Path, dtype: TokenDtype) -> Result<Self> {
        let file = File::create(path).map_err(DataError::io(path))?;
        Ok(Self {
            out: BufWriter::with_capacity(1 << 20, file),
            dtype,
            path: path.to_path_buf(),
            len: 0,
        })
    }

    /// Appends ids.
    pub fn write(&mut self, ids: &[u32]) -> Result<()> {
        for &id in ids {
            let result = match self.dtype {
                TokenDtype::U16 => self.out.write_all(&(id as u16).to_le_bytes()),
                TokenDtype::U32 => self.out.write_all(&id.to_le_bytes()),
            };
            result.map_err(DataError::io(&self.path))?;
        }
        self.len += ids.len() as u64;
        Ok(())
    }

    /// Tokens written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Flushes and syncs the file.
    pub fn finish(mut self) -> Result<u64> {
        self.out.flush().map_err(DataError::io(&self.path))?;
        self.out.get_ref().sync_all().map_err(DataError::io(&self.path))?;
        Ok(self.len)
    }
}

/// A read-only, memory-mapped token shard.
pub struct TokenShard {
    map: Mmap,
    dtype: TokenDtype,
}

impl TokenShard {
    /// Maps a shard file; its size must be a whole number of tokens.
    pub fn open(path: &Path, dtype: TokenDtype) -> Result<Self> {
        let file = File::open(path).map_err(DataError::io(path))?;
        // SAFETY: shards are written once, atomically, and never modified afterwards.
        let map = unsafe { Mmap::map(&file) }.map_err(DataError::io(path))?;
        if map.len() % dtype.width() != 0 {
            return Err(DataError::Prepared {
                path: path.to_path_buf(),
                message: "shard size is not a whole number of tokens: delete it and prepare again".into(),
            });
        }
        Ok(Self { map, dtype })
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.map.len() / self.dtype.width()
    }

    /// Whether the shard is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The position and value of the first id at or above `vocab_size`, if any: a shard that
    /// would index past the embedding table.
    pub fn first_out_of_range(&self, vocab_size: usize) -> Option<(usize, u32)> {
        self.map
            .chunks_exact(self.dtype.width())
            .map(|bytes| self.dtype.id(bytes))
            .enumerate()
            .find(|&(_, id)| id as usize >= vocab_size)
    }

    /// Copies `len` tokens starting at `start` into `out`.
    ///
    /// # Panics
    /// If the range is outside the shard.
    pub fn read_into(&self, start: usize, len: usize, out: &mut Vec<u32>) {
        let width = self.dtype.width();
        let bytes = &self.map[start * width..(start + len) * width];
        out.extend(bytes.chunks_exact(width).map(|b| self.dtype.id(b)));
    }
}
