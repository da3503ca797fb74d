//! primer's data layer: corpora, tokenizers, token shards, packing into blocks and named data
//! sets.
//!
//! The flow is: a [`corpus::Corpus`] (files, folders, globs or a named data set) streams
//! documents; a [`tokenizer::PrimerTokenizer`] turns them into ids; [`prepare`] writes them once
//! into memory-mapped [`shard`]s split train/valid by document; [`blocks`] cuts the shards into
//! fixed-length blocks in a seeded, resumable order. Beside them, the file utilities every
//! crate writes with: atomic writes ([`files`]), `SHA256SUMS` ([`checksums`]) and folder locks
//! ([`lock`]).

pub mod blocks;
pub mod checksums;
pub mod choices;
pub mod corpus;
pub mod error;
pub mod files;
pub mod lock;
pub mod named;
pub mod pairs;
pub mod prepare;
pub mod shard;
pub mod shots;
pub mod task;
pub mod tokenizer;

pub use error::{DataError, Result};
