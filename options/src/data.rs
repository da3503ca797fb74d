//! Turning corpus arguments into corpora, tokenizers and prepared data.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::bail;
use primer_datasets::corpus::Corpus;
use primer_datasets::named;
use primer_datasets::pairs::{MinimalPair, read_pairs};
use primer_datasets::prepare::{PreparedData, SplitOptions, prepare_cached};
use primer_datasets::tokenizer::{PrimerTokenizer, TokenizerKind};

use crate::check::check_only;
use crate::corpus::CorpusArgs;
use crate::pretrain::PretrainOptions;

/// Whether progress bars are drawn (stderr is a terminal).
pub fn show_progress() -> bool {
    std::io::stderr().is_terminal()
}

/// The minimal pairs of `source` (`blimp`, fetched into `$PRIMER_DATA` when missing and
/// checked; a `.jsonl` file; a folder), at most `limit` of each paradigm.
pub fn minimal_pairs(source: &str, limit: Option<usize>) -> anyhow::Result<Vec<MinimalPair>> {
    if source == "blimp" && check_only() {
        // A name: fetched and checked when the job runs.
        return Ok(Vec::new());
    }
    let mirror = std::env::var("PRIMER_DATA_URL").ok();
    Ok(read_pairs(
        source,
        &named::data_home(),
        mirror.as_deref(),
        show_progress(),
        limit,
    )?)
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
        bail!("no --corpus given: give files, folders, globs or a named data set, or --data PREPARED_DIR");
    }
    let options = args.read_options();
    let mut files = Vec::new();
    for spec in specs {
        let is_path = std::path::Path::new(spec).exists() || spec.contains(['*', '?', '[', '/', '.']);
        match named::lookup(spec) {
            // A name: fetched and checked when the job runs.
            Some(_) if !is_path && check_only() => {}
            Some(dataset) if !is_path => {
                let mirror = std::env::var("PRIMER_DATA_URL").ok();
                files.extend(named::resolve(
                    dataset,
                    &named::data_home(),
                    mirror.as_deref(),
                    show_progress(),
                )?);
            }
            _ => {
                let found = Corpus::expand_paths(spec, &options)?;
                for file in &found {
                    primer_files::roots::check_input("corpus", &file.path)?;
                }
                files.extend(found);
            }
        }
    }
    Ok(Corpus::new(files, args.lossy(), specs.join(" ")))
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
            eprintln!("training a {kind:?} tokenizer ({size}) on {}", corpus.label());
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
    let (data, reused) = prepare_cached(corpus, valid, tokenizer, split, &cache_root(), show_progress())?;
    let (train, valid) = (data.meta.train, data.meta.valid);
    eprintln!(
        "{} data {}: train {} tokens / {} docs, valid {} tokens / {} docs",
        if reused { "reusing prepared" } else { "prepared" },
        data.dir.display(),
        train.tokens,
        train.documents,
        valid.tokens,
        valid.documents
    );
    Ok(data)
}

/// The prepared data and tokenizer a run trains on.
pub fn run_data(options: &PretrainOptions) -> anyhow::Result<(PreparedData, PrimerTokenizer)> {
    let (data, tokenizer) = match &options.data {
        Some(dir) => prepared(dir, options.tokenizer.as_ref())?,
        None => {
            let specs = options.corpus.corpus.clone().unwrap_or_default();
            let train = corpus(&specs, &options.corpus)?;
            let valid = options
                .valid
                .as_ref()
                .map(|v| corpus(std::slice::from_ref(v), &options.corpus))
                .transpose()?;
            let trained = tokenizer(
                options.tokenizer.as_ref(),
                &train,
                options.tokenizer_kind(),
                options.resolved().vocab_size(),
            )?;
            let split = SplitOptions {
                valid_fraction: options.valid_fraction(),
                seed: options.seed(),
            };
            (prepare(&train, valid.as_ref(), &trained, &split)?, trained)
        }
    };
    check_made_with(&data, &tokenizer)?;
    Ok((data, tokenizer))
}

/// What [`run_data`] checks before its slow work, for check mode: the prepared folder and its
/// tokenizer, or the corpora and the tokenizer given; the tokenizer, unless one would be trained.
pub fn check_run_data(options: &PretrainOptions) -> anyhow::Result<Option<PrimerTokenizer>> {
    if let Some(dir) = &options.data {
        let (data, tokenizer) = prepared(dir, options.tokenizer.as_ref())?;
        check_made_with(&data, &tokenizer)?;
        return Ok(Some(tokenizer));
    }
    let specs = options.corpus.corpus.clone().unwrap_or_default();
    corpus(&specs, &options.corpus)?;
    if let Some(valid) = &options.valid {
        corpus(std::slice::from_ref(valid), &options.corpus)?;
    }
    Ok(options
        .tokenizer
        .as_deref()
        .map(PrimerTokenizer::from_file)
        .transpose()?)
}

/// The prepared folder `--data`, with `--tokenizer` or else the tokenizer saved beside it.
fn prepared(dir: &Path, tokenizer: Option<&PathBuf>) -> anyhow::Result<(PreparedData, PrimerTokenizer)> {
    primer_files::roots::check_input("--data", dir)?;
    let data = PreparedData::open(dir)?;
    let tokenizer = match tokenizer {
        Some(path) => PrimerTokenizer::from_file(path)?,
        None => data.tokenizer()?,
    };
    Ok((data, tokenizer))
}

/// Fails unless `data` was prepared with `tokenizer`.
fn check_made_with(data: &PreparedData, tokenizer: &PrimerTokenizer) -> anyhow::Result<()> {
    if data.meta.tokenizer_sha256 != tokenizer.fingerprint() {
        bail!(
            "prepared data {} was made with another tokenizer (vocabulary {}) than the one given (vocabulary {}): drop --tokenizer, or prepare the data with it",
            data.dir.display(),
            data.meta.vocab_size,
            tokenizer.vocab_size()
        );
    }
    Ok(())
}
