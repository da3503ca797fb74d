//! Turning corpus arguments into corpora, tokenizers and prepared data.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::bail;
use primer_datasets::corpus::{Corpus, CorpusOptions};
use primer_datasets::named;
use primer_datasets::prepare::{PreparedData, SplitOptions, prepare_cached};
use primer_datasets::tokenizer::{PrimerTokenizer, TokenizerKind};

use crate::options::CorpusArgs;

/// Whether progress bars are drawn (stderr is a terminal).
pub fn show_progress() -> bool {
    std::io::stderr().is_terminal()
}

/// The cache of prepared data: `$PRIMER_CACHE`, or `~/.cache/primer/prepared`.
pub fn cache_root() -> PathBuf {
    std::env::var_os("PRIMER_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| named::home_dir().join(".cache/primer/prepared"))
}

/// Resolves corpus specs: existing paths and globs as they are, otherwise named data sets
/// (fetched into `$PRIMER_DATA` when missing; `$PRIMER_DATA_URL` names a mirror).
pub fn corpus(specs: &[String], args: &CorpusArgs) -> anyhow::Result<Corpus> {
    if specs.is_empty() {
        bail!(
            "no --corpus given: give files, folders, globs or a named data set, or --data PREPARED_DIR"
        );
    }
    let options = CorpusOptions {
        split: args.doc_split.unwrap_or_default(),
        text_field: args.text_field.clone().unwrap_or_else(|| "text".into()),
        column: args.column.clone().unwrap_or_else(|| "text".into()),
        lossy: args.lossy,
    };
    let mut files = Vec::new();
    for spec in specs {
        let is_path =
            std::path::Path::new(spec).exists() || spec.contains(['*', '?', '[', '/', '.']);
        match named::lookup(spec) {
            Some(dataset) if !is_path => {
                let mirror = std::env::var("PRIMER_DATA_URL").ok();
                files.extend(named::resolve(
                    dataset,
                    &named::data_home(),
                    mirror.as_deref(),
                    show_progress(),
                )?);
            }
            _ => files.extend(Corpus::expand_paths(spec, &options)?),
        }
    }
    Ok(Corpus::new(files, args.lossy, specs.join(" ")))
}

/// Loads `--tokenizer`, or trains one of `kind` on the corpus.
pub fn tokenizer(
    path: Option<&PathBuf>,
    corpus: &Corpus,
    kind: TokenizerKind,
    vocab_size: usize,
) -> anyhow::Result<PrimerTokenizer> {
    Ok(match path {
        Some(path) => PrimerTokenizer::from_file(path)?,
        None => {
            let size = if kind == TokenizerKind::Char {
                "one token per character".to_string()
            } else {
                format!("vocabulary {vocab_size}")
            };
            eprintln!(
                "training a {kind:?} tokenizer ({size}) on {}",
                corpus.label()
            );
            PrimerTokenizer::train(corpus, kind, vocab_size, show_progress())?
        }
    })
}

/// Prepares (or reuses) token shards of a corpus.
pub fn prepare(
    corpus: &Corpus,
    valid: Option<&Corpus>,
    tokenizer: &PrimerTokenizer,
    split: &SplitOptions,
) -> anyhow::Result<PreparedData> {
    let (data, reused) = prepare_cached(
        corpus,
        valid,
        tokenizer,
        split,
        &cache_root(),
        show_progress(),
    )?;
    let (train, valid) = (data.meta.train, data.meta.valid);
    eprintln!(
        "{} data {}: train {} tokens / {} docs, valid {} tokens / {} docs",
        if reused {
            "reusing prepared"
        } else {
            "prepared"
        },
        data.dir.display(),
        train.tokens,
        train.documents,
        valid.tokens,
        valid.documents
    );
    Ok(data)
}
