//! Tokenizing a corpus once into token shards, split into train and valid by document.

use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::corpus::Corpus;
use crate::error::{DataError, Result};
use crate::shard::{ShardWriter, TokenDtype, TokenShard};
use crate::tokenizer::PrimerTokenizer;
use primer_files::lock::FolderLock;

/// Version of the prepared-data layout; part of the cache key.
const FORMAT_VERSION: u32 = 1;
/// The name prefix of the temporary folder a preparation writes before renaming it.
const TMP_PREFIX: &str = ".prepare-";
/// Documents tokenized per parallel batch.
const ENCODE_CHUNK: usize = 1024;
/// Text bytes tokenized per parallel batch at most: the encodings of a batch are all held at
/// once, about 200 bytes per byte of text.
const ENCODE_CHUNK_BYTES: usize = 1 << 20;

/// How the corpus is split into train and valid.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SplitOptions {
    /// Fraction of documents that go to valid (ignored when `valid` is given).
    pub valid_fraction: f64,
    /// Seed of the document split.
    pub seed: u64,
}

impl Default for SplitOptions {
    fn default() -> Self {
        Self {
            valid_fraction: 0.05,
            seed: 1337,
        }
    }
}

/// Counts of one split.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct SplitStats {
    /// Token ids in the shard, one `[EOS]` per document included.
    pub tokens: u64,
    /// Documents.
    pub documents: u64,
    /// UTF-8 bytes of the text, one per document separator included: the denominator of
    /// bits per byte.
    pub bytes: u64,
}

/// `meta.json` of a prepared-data folder.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreparedMeta {
    /// Layout version.
    pub format_version: u32,
    /// Hash of inputs, tokenizer and options: the cache key.
    pub key: String,
    /// sha256 of the tokenizer.json used.
    pub tokenizer_sha256: String,
    /// Vocabulary size of that tokenizer.
    pub vocab_size: usize,
    /// Width of stored ids.
    pub dtype: TokenDtype,
    /// The `[EOS]` id placed after each document.
    pub eos: u32,
    /// What the corpus was.
    pub corpus: String,
    /// What the validation corpus was, when one was given (else valid is held out of `corpus`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_corpus: Option<String>,
    /// Train split counts.
    pub train: SplitStats,
    /// Valid split counts.
    pub valid: SplitStats,
}

/// A prepared-data folder, opened: `meta.json`, `tokenizer.json`, `train.bin`, `valid.bin`.
pub struct PreparedData {
    /// The folder.
    pub dir: PathBuf,
    /// Its metadata.
    pub meta: PreparedMeta,
    /// Train tokens.
    pub train: TokenShard,
    /// Valid tokens.
    pub valid: TokenShard,
}

impl PreparedData {
    /// Opens and checks a prepared-data folder.
    pub fn open(dir: &Path) -> Result<Self> {
        let bad = |message: String| DataError::Prepared {
            path: dir.to_path_buf(),
            message,
        };
        let meta_path = dir.join("meta.json");
        let text = std::fs::read_to_string(&meta_path)
            .map_err(|_| bad("no meta.json: give a folder made by `primer prepare`".into()))?;
        let meta: PreparedMeta = serde_json::from_str(&text)
            .map_err(|e| bad(format!("meta.json is corrupt ({e}): prepare the data again")))?;
        if meta.format_version != FORMAT_VERSION {
            return Err(bad(format!(
                "made by layout version {}, this primer reads {FORMAT_VERSION}: prepare the data again",
                meta.format_version
            )));
        }
        let train = TokenShard::open(&dir.join("train.bin"), meta.dtype)?;
        let valid = TokenShard::open(&dir.join("valid.bin"), meta.dtype)?;
        if train.len() as u64 != meta.train.tokens || valid.len() as u64 != meta.valid.tokens {
            return Err(bad("shard sizes do not match meta.json: prepare the data again".into()));
        }
        // The ids are checked against the tokenizer itself: meta.json's word is not enough.
        let tokenizer = PrimerTokenizer::read(&dir.join("tokenizer.json"))
            .map_err(|e| bad(format!("its tokenizer is unusable ({e}): prepare the data again")))?;
        if tokenizer.fingerprint() != meta.tokenizer_sha256 || tokenizer.vocab_size() != meta.vocab_size {
            return Err(bad(
                "meta.json does not describe its tokenizer.json (edited): delete the folder and prepare the data again"
                    .into(),
            ));
        }
        for (name, shard) in [("train.bin", &train), ("valid.bin", &valid)] {
            if let Some((position, id)) = shard.first_out_of_range(tokenizer.vocab_size()) {
                return Err(bad(format!(
                    "{name} holds token id {id} at position {position}, outside the vocabulary of {} (corrupt): delete the folder and prepare the data again",
                    tokenizer.vocab_size()
                )));
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            meta,
            train,
            valid,
        })
    }

    /// The tokenizer saved with the data.
    pub fn tokenizer(&self) -> Result<PrimerTokenizer> {
        PrimerTokenizer::from_file(&self.dir.join("tokenizer.json"))
    }
}

/// The cache key of a preparation: corpus fingerprint, tokenizer, split options, layout.
pub fn cache_key(
    train: &Corpus,
    valid: Option<&Corpus>,
    tokenizer: &PrimerTokenizer,
    split: &SplitOptions,
) -> Result<String> {
    let mut hasher = Sha256::new();
    hasher.update(FORMAT_VERSION.to_le_bytes());
    hasher.update(train.fingerprint()?);
    if let Some(valid) = valid {
        hasher.update(b"valid");
        hasher.update(valid.fingerprint()?);
    } else {
        hasher.update(split.valid_fraction.to_le_bytes());
        hasher.update(split.seed.to_le_bytes());
    }
    hasher.update(tokenizer.fingerprint());
    Ok(hex::encode(hasher.finalize()))
}

/// Prepares into `cache_root/<key>`, or reuses what is there. Returns the data and whether it
/// was reused.
pub fn prepare_cached(
    train: &Corpus,
    valid: Option<&Corpus>,
    tokenizer: &PrimerTokenizer,
    split: &SplitOptions,
    cache_root: &Path,
    progress: bool,
) -> Result<(PreparedData, bool)> {
    let key = cache_key(train, valid, tokenizer, split)?;
    let entry = &key[..16];
    let dir = cache_root.join(entry);
    std::fs::create_dir_all(cache_root).map_err(DataError::io(cache_root))?;
    // One process prepares an entry; another wanting the same data waits, then reuses it.
    let _lock = FolderLock::wait_for(&cache_root.join(format!("{entry}.lock")))?;
    remove_leftovers(cache_root, entry)?;
    match PreparedData::open(&dir) {
        Ok(data) if data.meta.key == key => return Ok((data, true)),
        Err(error) if dir.exists() => eprintln!("note: the cached data is unusable, preparing it again ({error})"),
        _ => {}
    }
    prepare(train, valid, tokenizer, split, &dir, progress).map(|d| (d, false))
}

/// Deletes the temporary folders of killed preparations: those of `held` (whose lock this
/// process holds), those of entries whose lock nobody holds, and those named before entries
/// had locks.
fn remove_leftovers(cache_root: &Path, held: &str) -> Result<()> {
    let entries = std::fs::read_dir(cache_root).map_err(DataError::io(cache_root))?;
    for path in entries.filter_map(|e| e.ok()).map(|e| e.path()) {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let Some(rest) = name.strip_prefix(TMP_PREFIX) else {
            continue;
        };
        let owner = rest.split_once('-').map(|(owner, _)| owner).filter(|o| o.len() == 16);
        let abandoned = match owner {
            Some(owner) if owner == held => true,
            Some(owner) => {
                let lock = cache_root.join(format!("{owner}.lock"));
                FolderLock::acquire_file(&lock, &path, "prepared data").is_ok()
            }
            None => true,
        };
        if abandoned && path.is_dir() {
            std::fs::remove_dir_all(&path).map_err(DataError::io(&path))?;
        }
    }
    Ok(())
}

/// The train and valid shards being written, and what each holds so far.
struct Splits {
    writers: [ShardWriter; 2],
    stats: [SplitStats; 2],
}

impl Splits {
    /// Tokenizes `corpus` in chunks, each document followed by `[EOS]`, into the valid split when
    /// `fixed_split` says so or, without one, when the seeded hash of its index falls under the
    /// valid fraction. `progress` is told the tokens and bytes written so far after each chunk.
    fn tokenize(
        &mut self,
        corpus: &Corpus,
        fixed_split: Option<bool>,
        tokenizer: &PrimerTokenizer,
        split: &SplitOptions,
        progress: &dyn Fn(u64, u64),
    ) -> Result<()> {
        let eos = tokenizer.specials().eos;
        let mut index = 0u64;
        let mut chunk = Vec::with_capacity(ENCODE_CHUNK);
        let mut docs = corpus.documents().peekable();
        while docs.peek().is_some() {
            let mut chunk_bytes = 0;
            while chunk.len() < ENCODE_CHUNK
                && chunk_bytes < ENCODE_CHUNK_BYTES
                && let Some(doc) = docs.next()
            {
                let text = doc?.text;
                chunk_bytes += text.len();
                chunk.push(text);
            }
            let lengths: Vec<u64> = chunk.iter().map(|text| text.len() as u64).collect();
            let encoded = tokenizer.encode_batch(std::mem::take(&mut chunk))?;
            for (length, mut ids) in lengths.into_iter().zip(encoded) {
                let is_valid = fixed_split.unwrap_or_else(|| unit_hash(split.seed, index) < split.valid_fraction);
                index += 1;
                ids.push(eos);
                let side = usize::from(is_valid);
                self.writers[side].write(&ids)?;
                let stat = &mut self.stats[side];
                stat.tokens += ids.len() as u64;
                stat.documents += 1;
                stat.bytes += length + 1;
            }
            let tokens = self.stats[0].tokens + self.stats[1].tokens;
            progress(tokens, self.stats[0].bytes + self.stats[1].bytes);
        }
        Ok(())
    }
}

/// A temporary folder in the folder of `out` (made if missing), to be renamed to `out` once
/// complete; it is removed if dropped before.
fn temporary_folder_beside(out: &Path) -> Result<tempfile::TempDir> {
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(DataError::io(parent))?;
    let entry = out.file_name().and_then(|n| n.to_str()).unwrap_or("data");
    tempfile::Builder::new()
        .prefix(&format!("{TMP_PREFIX}{entry}-"))
        .tempdir_in(parent)
        .map_err(DataError::io(parent))
}

/// Tokenizes the corpus into `out` (replacing it), written to a temporary folder first and
/// renamed into place, so an interrupted run leaves nothing half-made.
pub fn prepare(
    train: &Corpus,
    valid: Option<&Corpus>,
    tokenizer: &PrimerTokenizer,
    split: &SplitOptions,
    out: &Path,
    progress: bool,
) -> Result<PreparedData> {
    if valid.is_none() && !(split.valid_fraction > 0.0 && split.valid_fraction < 1.0) {
        return Err(DataError::InvalidOption(format!(
            "--valid-fraction {} is out of range: give a value in (0, 1), or a --valid corpus",
            split.valid_fraction
        )));
    }
    let key = cache_key(train, valid, tokenizer, split)?;
    let tmp = temporary_folder_beside(out)?;
    let dtype = TokenDtype::for_vocab(tokenizer.vocab_size());
    let mut splits = Splits {
        writers: [
            ShardWriter::create(&tmp.path().join("train.bin"), dtype)?,
            ShardWriter::create(&tmp.path().join("valid.bin"), dtype)?,
        ],
        stats: [SplitStats::default(), SplitStats::default()],
    };
    let eos = tokenizer.specials().eos;
    let total_bytes = train.total_bytes() + valid.map_or(0, |v| v.total_bytes());
    let bar = match progress {
        true => ProgressBar::new(total_bytes).with_style(
            ProgressStyle::with_template("tokenizing {bar:30} {bytes}/{total_bytes} {msg} ({eta})")
                .expect("valid template"),
        ),
        false => ProgressBar::hidden(),
    };
    let sources: Vec<(&Corpus, Option<bool>)> = match valid {
        Some(valid) => vec![(train, Some(false)), (valid, Some(true))],
        None => vec![(train, None)],
    };
    let started = Instant::now();
    for (corpus, fixed_split) in sources {
        splits.tokenize(corpus, fixed_split, tokenizer, split, &|tokens, done| {
            let rate = tokens as f64 / started.elapsed().as_secs_f64().max(1e-9);
            bar.set_position(done.min(total_bytes));
            bar.set_message(format!("{tokens} tokens, {rate:.0} tokens/s"));
        })?;
    }
    bar.finish_and_clear();
    let Splits {
        writers: [train_out, valid_out],
        stats,
    } = splits;
    train_out.finish()?;
    valid_out.finish()?;
    if stats[0].tokens == 0 {
        return Err(DataError::Empty(train.label().to_string()));
    }
    if stats[1].documents == 0 {
        return Err(DataError::InvalidOption(format!(
            "corpus {} has too few documents ({}) for a validation split of {}: pass --valid CORPUS, raise --valid-fraction, or split documents by line",
            train.label(),
            stats[0].documents,
            split.valid_fraction
        )));
    }
    let meta = PreparedMeta {
        format_version: FORMAT_VERSION,
        key,
        tokenizer_sha256: tokenizer.fingerprint(),
        vocab_size: tokenizer.vocab_size(),
        dtype,
        eos,
        corpus: train.label().to_string(),
        valid_corpus: valid.map(|v| v.label().to_string()),
        train: stats[0],
        valid: stats[1],
    };
    tokenizer.save(&tmp.path().join("tokenizer.json"))?;
    let meta_json = serde_json::to_vec_pretty(&meta).expect("meta serializes");
    primer_files::atomic_write(&tmp.path().join("meta.json"), &meta_json)?;
    if out.exists() {
        std::fs::remove_dir_all(out).map_err(DataError::io(out))?;
    }
    let tmp = tmp.keep();
    std::fs::rename(&tmp, out).map_err(DataError::io(out))?;
    PreparedData::open(out)
}

/// A uniform number in [0, 1) from a seed and an index (splitmix64).
pub fn unit_hash(seed: u64, index: u64) -> f64 {
    let mut z = seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::{CorpusOptions, DocSplit};
    use crate::tokenizer::TokenizerKind;

    fn corpus(path: &Path) -> Corpus {
        let options = CorpusOptions {
            split: DocSplit::Line,
            ..Default::default()
        };
        Corpus::new(
            Corpus::expand_paths(path.to_str().unwrap(), &options).unwrap(),
            false,
            "test",
        )
    }

    #[test]
    fn prepares_every_token_once_and_reuses_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let text: String = (0..400).map(|i| format!("line number {i} of the corpus\n")).collect();
        let path = dir.path().join("c.txt");
        std::fs::write(&path, &text).unwrap();
        let corpus = corpus(&path);
        let tokenizer = PrimerTokenizer::train(&corpus, TokenizerKind::Char, 0, false).unwrap();
        let split = SplitOptions::default();
        let cache = dir.path().join("cache");
        let (data, reused) = prepare_cached(&corpus, None, &tokenizer, &split, &cache, false).unwrap();
        assert!(!reused);
        assert_eq!(data.meta.dtype, TokenDtype::U16);
        let (train, valid) = (data.meta.train, data.meta.valid);
        assert_eq!(train.documents + valid.documents, 400);
        assert!(valid.documents > 5 && valid.documents < 45, "{valid:?}");
        // Every character of every line is a token, plus one [EOS] per line.
        assert_eq!(train.tokens + valid.tokens, text.len() as u64);
        assert_eq!(train.bytes + valid.bytes, text.len() as u64);
        let mut ids = Vec::new();
        data.train.read_into(0, data.train.len(), &mut ids);
        let eos = tokenizer.specials().eos;
        assert_eq!(ids.iter().filter(|&&id| id == eos).count() as u64, train.documents);
        assert_eq!(*ids.last().unwrap(), eos);
        let first_doc: Vec<u32> = ids.iter().copied().take_while(|&id| id != eos).collect();
        assert!(tokenizer.decode(&first_doc).starts_with("line number "));

        let (again, reused) = prepare_cached(&corpus, None, &tokenizer, &split, &cache, false).unwrap();
        assert!(reused);
        assert_eq!(again.dir, data.dir);
        let other_seed = SplitOptions { seed: 7, ..split };
        let (_, reused) = prepare_cached(&corpus, None, &tokenizer, &other_seed, &cache, false).unwrap();
        assert!(!reused);
    }

    #[test]
    fn killed_preparations_are_removed_unless_their_entry_is_locked() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path();
        let (held, other, busy) = ("aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb", "cccccccccccccccc");
        let leftovers = [
            format!(".prepare-{held}-x1"),
            format!(".prepare-{other}-x2"),
            format!(".prepare-{busy}-x3"),
            ".prepare-Ab12Cd".to_string(),
        ];
        for name in &leftovers {
            std::fs::create_dir_all(cache.join(name)).unwrap();
        }
        // Another process (here: another open file) is preparing `busy`.
        let _busy = FolderLock::wait_for(&cache.join(format!("{busy}.lock"))).unwrap();
        remove_leftovers(cache, held).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(cache)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(TMP_PREFIX))
            .collect();
        left.sort();
        assert_eq!(left, [format!(".prepare-{busy}-x3")]);
    }

    #[test]
    fn a_corpus_too_small_to_split_is_refused_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("one.txt");
        std::fs::write(&path, "just one line\n").unwrap();
        let corpus = corpus(&path);
        let tokenizer = PrimerTokenizer::train(&corpus, TokenizerKind::Char, 0, false).unwrap();
        let out = dir.path().join("out");
        let err = prepare(&corpus, None, &tokenizer, &SplitOptions::default(), &out, false)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("--valid"), "{err}");
        assert!(!out.exists());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temporary folder left behind");
    }
}
