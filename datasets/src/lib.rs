//! primer's data layer: corpora, tokenizers, token shards, packing into blocks and named data
//! sets.
//!
//! The flow is: a [`corpus::Corpus`] (files, folders, globs or a named data set) streams
//! documents; a [`tokenizer::PrimerTokenizer`] turns them into ids; [`prepare`] writes them once
//! into memory-mapped [`shard`]s split train/valid by document; [`blocks`] cuts the shards into
//! fixed-length blocks in a seeded, resumable order. Files are written, locked and checked with
//! `primer_files`.

pub mod blocks;
pub mod choices;
pub mod corpus;
pub mod error;
pub mod named;
pub mod pairs;
pub mod prepare;
pub mod shard;
pub mod shots;
pub mod task;
pub mod tokenizer;

pub use error::{DataError, Result};
