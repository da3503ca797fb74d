//! Training and loading tokenizers as standard Hugging Face `tokenizer.json` files; the
//! training itself is in the `training` module.

mod training;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokenizers::{ModelWrapper, Tokenizer};

use crate::error::{DataError, Result};

/// The special tokens every primer tokenizer has, in id order: a tokenizer trained by primer
/// gives `[PAD]` id 0, `[UNK]` 1, `[CLS]` 2, `[SEP]` 3, `[MASK]` 4, `[BOS]` 5, `[EOS]` 6.
pub const SPECIAL_TOKENS: [&str; 7] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[BOS]", "[EOS]"];

/// Which tokenizer model to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TokenizerKind {
    /// Byte-level BPE (GPT-2 style): any text round-trips, no unknown tokens.
    #[default]
    Bpe,
    /// WordPiece with BERT's normaliser (cased) and pre-tokeniser.
    Wordpiece,
    /// One token per character seen in the corpus (nanoGPT's character models).
    Char,
}

/// Ids of the special tokens of a tokenizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecialTokens {
    /// Padding; never a training target.
    pub pad: u32,
    /// Unknown token.
    pub unk: u32,
    /// Classification token.
    pub cls: u32,
    /// Separator.
    pub sep: u32,
    /// The MLM mask token.
    pub mask: u32,
    /// Beginning of sequence.
    pub bos: u32,
    /// End of document; placed between documents in token shards.
    pub eos: u32,
}

impl SpecialTokens {
    /// The ids of every tokenizer primer trains.
    pub const PRIMER: SpecialTokens = SpecialTokens {
        pad: 0,
        unk: 1,
        cls: 2,
        sep: 3,
        mask: 4,
        bos: 5,
        eos: 6,
    };

    /// All seven ids.
    pub fn all(&self) -> [u32; 7] {
        [self.pad, self.unk, self.cls, self.sep, self.mask, self.bos, self.eos]
    }

    /// Each id with the role a [`ROLES_FILE`] names it by (`pad_token`, ...).
    pub fn by_role(&self) -> [(&'static str, u32); 7] {
        let ids = self.all();
        std::array::from_fn(|i| (ROLES[i], ids[i]))
    }
}

/// The bytes `start..end` of a text that a token covers.
pub type ByteSpan = (usize, usize);

/// A Hugging Face tokenizer with primer's special tokens.
#[derive(Clone)]
pub struct PrimerTokenizer {
    inner: Tokenizer,
    specials: SpecialTokens,
    /// The role map read from [`ROLES_FILE`] beside the `tokenizer.json`, if any.
    roles: Option<Roles>,
}

/// The file beside a `tokenizer.json` that names the token playing each special role, as
/// transformers writes it (`{"eos_token": "<|endoftext|>", ...}`). With it primer reads
/// tokenizers whose vocabulary lacks its own `[PAD]`...`[EOS]`, such as GPT-2's.
pub const ROLES_FILE: &str = "special_tokens_map.json";

/// The roles a [`ROLES_FILE`] names, in the order of [`SpecialTokens::all`].
const ROLES: [&str; 7] = [
    "pad_token",
    "unk_token",
    "cls_token",
    "sep_token",
    "mask_token",
    "bos_token",
    "eos_token",
];

/// A role map: role → token text.
type Roles = std::collections::BTreeMap<String, String>;

/// The roles of the [`ROLES_FILE`] beside `tokenizer`, if there is one.
fn read_roles(tokenizer: &Path) -> Result<Option<Roles>> {
    let path = tokenizer.with_file_name(ROLES_FILE);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text)
        .map_err(|e| tokenizer_error(&path, format!("not a JSON object ({e}): fix or delete it")))?;
    let roles = ROLES
        .iter()
        .filter_map(|role| {
            let value = map.get(*role)?;
            let text = value.as_str().or_else(|| value.get("content")?.as_str())?;
            Some((role.to_string(), text.to_string()))
        })
        .collect();
    Ok(Some(roles))
}

fn tokenizer_error(path: &Path, message: impl Into<String>) -> DataError {
    DataError::Tokenizer {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// The largest vocabulary a tokenizer is trained to: its trainer allocates by the size asked
/// for, and an embedding of that many rows must fit besides.
pub const MAX_VOCAB: usize = 1 << 22;

impl PrimerTokenizer {
    /// Loads a `tokenizer.json`; fails unless all of [`SPECIAL_TOKENS`] are in its vocabulary.
    pub fn from_file(path: &Path) -> Result<Self> {
        primer_files::roots::check_input("tokenizer", path)?;
        Self::read(path)
    }

    /// [`PrimerTokenizer::from_file`] of a file primer wrote itself (the one saved with
    /// prepared data), which no confinement of inputs applies to.
    pub(crate) fn read(path: &Path) -> Result<Self> {
        crate::corpus::check_file(path, "tokenizer file")?;
        let inner = Tokenizer::from_file(path).map_err(|e| {
            tokenizer_error(
                path,
                format!("not a valid tokenizer.json ({e}): train one with `primer tokenizer train`"),
            )
        })?;
        Self::from_tokenizer(inner, path, read_roles(path)?)
    }

    /// Parses a `tokenizer.json` held in memory (`origin` names it in errors).
    pub fn from_json(json: &str, origin: &Path) -> Result<Self> {
        let inner: Tokenizer = json
            .parse()
            .map_err(|e| tokenizer_error(origin, format!("not a valid tokenizer.json ({e})")))?;
        Self::from_tokenizer(inner, origin, None)
    }

    /// Finds the special tokens: each role's token in `roles`, else primer's own name, else
    /// (with a role map) the end-of-text token, which GPT-2 and Pythia use for every role.
    fn from_tokenizer(inner: Tokenizer, origin: &Path, roles: Option<Roles>) -> Result<Self> {
        let known = |token: &&String| inner.token_to_id(token).is_some();
        let id = |role: &str, name: &str| {
            let mapped = roles.as_ref().and_then(|roles| {
                let end_of_text = || roles.get("eos_token").filter(|_| inner.token_to_id(name).is_none());
                roles.get(role).filter(known).or_else(end_of_text)
            });
            let token = mapped.map_or(name, String::as_str);
            inner.token_to_id(token).ok_or_else(|| {
                tokenizer_error(
                    origin,
                    format!(
                        "has no `{token}` token: primer needs {}; train one with `primer tokenizer train`, add them as special tokens, or name the tokens that play each role in a special_tokens_map.json beside it",
                        SPECIAL_TOKENS.join(" ")
                    ),
                )
            })
        };
        let ids = ROLES
            .iter()
            .zip(SPECIAL_TOKENS)
            .map(|(role, name)| id(role, name))
            .collect::<Result<Vec<u32>>>()?;
        let [pad, unk, cls, sep, mask, bos, eos] = ids[..] else {
            unreachable!("seven roles, seven tokens")
        };
        let specials = SpecialTokens {
            pad,
            unk,
            cls,
            sep,
            mask,
            bos,
            eos,
        };
        Ok(Self { inner, specials, roles })
    }

    /// Writes the standard `tokenizer.json` atomically (temporary file, then rename), and its
    /// role map beside it when it has one.
    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(roles) = &self.roles {
            let text = serde_json::to_string_pretty(roles).expect("role maps serialize");
            primer_files::atomic_write(&path.with_file_name(ROLES_FILE), text.as_bytes())?;
        }
        Ok(primer_files::atomic_write(path, self.to_json().as_bytes())?)
    }

    /// The `tokenizer.json` text.
    pub fn to_json(&self) -> String {
        self.inner.to_string(true).expect("a loaded tokenizer serializes")
    }

    /// sha256 of the `tokenizer.json` text (and of its role map, when it has one): identifies
    /// the tokenizer in cache keys and configs.
    pub fn fingerprint(&self) -> String {
        let mut hash = Sha256::new();
        hash.update(self.to_json().as_bytes());
        if let Some(roles) = &self.roles {
            hash.update(serde_json::to_string(roles).expect("role maps serialize").as_bytes());
        }
        hex::encode(hash.finalize())
    }

    /// Token ids of a text, without special tokens added.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.inner
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| DataError::InvalidOption(format!("cannot tokenize text: {e}")))
    }

    /// Token ids of a text with the byte range of the text each token covers.
    pub fn encode_with_offsets(&self, text: &str) -> Result<(Vec<u32>, Vec<ByteSpan>)> {
        self.inner
            .encode(text, false)
            .map(|e| (e.get_ids().to_vec(), e.get_offsets().to_vec()))
            .map_err(|e| DataError::InvalidOption(format!("cannot tokenize text: {e}")))
    }

    /// Token ids of a text with, per token, the index of the word it belongs to: the words its
    /// pre-tokenizer splits the text into, as transformers' `word_ids()` numbers them (a token
    /// outside every word gets an index of its own).
    pub fn encode_with_words(&self, text: &str) -> Result<(Vec<u32>, Vec<u32>)> {
        let encoding = self
            .inner
            .encode(text, false)
            .map_err(|e| DataError::InvalidOption(format!("cannot tokenize text: {e}")))?;
        let words = encoding
            .get_word_ids()
            .iter()
            .enumerate()
            .map(|(at, word)| word.unwrap_or(u32::MAX - at as u32))
            .collect();
        Ok((encoding.get_ids().to_vec(), words))
    }

    /// Token ids of many texts, in parallel.
    pub fn encode_batch(&self, texts: Vec<String>) -> Result<Vec<Vec<u32>>> {
        self.inner
            .encode_batch(texts, false)
            .map(|encodings| encodings.iter().map(|e| e.get_ids().to_vec()).collect())
            .map_err(|e| DataError::InvalidOption(format!("cannot tokenize text: {e}")))
    }

    /// Text of token ids; special tokens are dropped.
    pub fn decode(&self, ids: &[u32]) -> String {
        self.inner.decode(ids, true).unwrap_or_default()
    }

    /// Vocabulary size including added tokens: the model's embedding size.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Ids of the special tokens.
    pub fn specials(&self) -> &SpecialTokens {
        &self.specials
    }

    /// The token string of an id.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Where words begin in this tokenizer's ids, for whole-word and span masking: a
    /// WordPiece piece without `##`, a byte-level BPE token with its leading space, anything
    /// after a token that ends in white space, and every special token.
    pub fn word_boundaries(&self) -> WordBoundaries {
        let wordpiece = matches!(self.inner.get_model(), ModelWrapper::WordPiece(_));
        let (mut opens, mut closes) = (Vec::new(), Vec::new());
        for id in 0..self.vocab_size() as u32 {
            let special = self.specials.all().contains(&id);
            let text = self.inner.decode(&[id], false).unwrap_or_default();
            let opens_word = if wordpiece {
                !self.id_to_token(id).is_some_and(|token| token.starts_with("##"))
            } else {
                text.starts_with(char::is_whitespace)
            };
            opens.push(special || opens_word);
            closes.push(special || text.ends_with(char::is_whitespace));
        }
        WordBoundaries::from_tables(opens, closes)
    }
}

/// Where words begin, token by token (see [`PrimerTokenizer::word_boundaries`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WordBoundaries {
    /// Per id: the token opens a word by itself.
    opens: Vec<bool>,
    /// Per id: the token ends in white space (or is special), so the next one opens a word.
    closes: Vec<bool>,
}

impl WordBoundaries {
    /// Boundaries where every token is a word of its own.
    pub fn every_token() -> Self {
        Self::default()
    }

    /// Boundaries from per-id tables: whether each id opens a word by itself, and whether
    /// each ends in white space (so the next token opens one).
    pub fn from_tables(opens: Vec<bool>, closes: Vec<bool>) -> Self {
        Self { opens, closes }
    }

    /// Whether `token`, after `previous` (none at the start of a sequence), begins a word.
    pub fn starts_word(&self, previous: Option<u32>, token: u32) -> bool {
        let flag = |table: &[bool], id: u32| table.get(id as usize).copied().unwrap_or(true);
        match previous {
            None => true,
            Some(previous) => flag(&self.opens, token) || flag(&self.closes, previous),
        }
    }
}

/// Where a tokenizer comes from when a run starts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum TokenizerSource {
    /// An existing `tokenizer.json`.
    File(PathBuf),
    /// Train one on the corpus.
    Train {
        /// Model kind.
        kind: TokenizerKind,
        /// Vocabulary size.
        vocab_size: usize,
    },
}

#[cfg(test)]
mod tests {
    use tokenizers::DecoderWrapper;
    use tokenizers::decoders::fuse::Fuse;
    use tokenizers::models::bpe::BPE;

    use super::*;
    use crate::corpus::{Corpus, CorpusOptions, DocSplit};

    const CMRC: &str = "../../shared/data/cmrc2018/cmrc2018_trial.contexts.txt";

    fn corpus(spec: &str, split: DocSplit) -> Corpus {
        let options = CorpusOptions {
            split,
            ..Default::default()
        };
        Corpus::new(Corpus::expand_paths(spec, &options).unwrap(), false, spec)
    }

    fn shakespeare() -> Corpus {
        corpus("../../shared/data/tinyshakespeare/input.txt", DocSplit::Paragraph)
    }

    #[test]
    fn word_boundaries_group_tokens_into_the_words_of_the_text() {
        let text = "Now is the winter of our discontent\nMade glorious summer by this sun of York;";
        for kind in [TokenizerKind::Bpe, TokenizerKind::Wordpiece, TokenizerKind::Char] {
            let tokenizer = PrimerTokenizer::train(&shakespeare(), kind, 1000, false).unwrap();
            let boundaries = tokenizer.word_boundaries();
            let ids = tokenizer.encode(text).unwrap();
            let mut words: Vec<Vec<u32>> = Vec::new();
            for (i, &id) in ids.iter().enumerate() {
                match words.last_mut() {
                    Some(word) if !boundaries.starts_word(i.checked_sub(1).map(|p| ids[p]), id) => word.push(id),
                    _ => words.push(vec![id]),
                }
            }
            let decoded: Vec<String> = words
                .iter()
                .map(|word| tokenizer.decode(word).trim().to_string())
                .filter(|word| !word.is_empty())
                .collect();
            let mut expected: Vec<&str> = text.split_whitespace().collect();
            if kind == TokenizerKind::Wordpiece {
                // BERT's pre-tokeniser makes punctuation a word of its own.
                expected.pop();
                expected.extend(["York", ";"]);
            }
            assert_eq!(decoded, expected, "{kind:?}");
        }
        let every = WordBoundaries::every_token();
        assert!(every.starts_word(Some(10), 11));
    }

    fn assert_round_trip(tokenizer: &PrimerTokenizer, corpus: &Corpus, docs: usize) {
        for doc in corpus.documents().take(docs) {
            let text = doc.unwrap().text;
            let ids = tokenizer.encode(&text).unwrap();
            assert!(!ids.contains(&tokenizer.specials().unk), "unknown token in {text:?}");
            assert_eq!(tokenizer.decode(&ids), text);
        }
    }

    #[test]
    fn bpe_round_trips_english_and_chinese_with_fixed_special_ids() {
        let dir = tempfile::tempdir().unwrap();
        let english = PrimerTokenizer::train(&shakespeare(), TokenizerKind::Bpe, 600, false).unwrap();
        assert_eq!(english.vocab_size(), 600);
        assert_eq!(english.specials().all(), [0, 1, 2, 3, 4, 5, 6]);
        assert_round_trip(&english, &shakespeare(), 200);

        let chinese_corpus = corpus(CMRC, DocSplit::Line);
        let chinese = PrimerTokenizer::train(&chinese_corpus, TokenizerKind::Bpe, 2000, false).unwrap();
        assert_round_trip(&chinese, &chinese_corpus, 100);
        // Byte-level BPE covers text it never saw.
        let unseen = "机器学习 naïve café";
        assert_eq!(english.decode(&english.encode(unseen).unwrap()), unseen);

        // The saved file is a standard tokenizer.json that reloads to the same ids.
        let path = dir.path().join("tokenizer.json");
        chinese.save(&path).unwrap();
        let reloaded = PrimerTokenizer::from_file(&path).unwrap();
        let text = "《战国无双3》是由光荣开发的";
        assert_eq!(reloaded.encode(text).unwrap(), chinese.encode(text).unwrap());
        let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(json["model"]["type"], "BPE");
        assert_eq!(json["added_tokens"][4]["content"], "[MASK]");
    }

    #[test]
    fn char_tokenizer_round_trips_and_has_one_token_per_character() {
        let tokenizer = PrimerTokenizer::train(&shakespeare(), TokenizerKind::Char, 0, false).unwrap();
        // 65 distinct characters in Tiny Shakespeare, newline among them, plus 7 specials.
        assert_eq!(tokenizer.vocab_size(), 65 + 7);
        assert_eq!(tokenizer.encode("First").unwrap().len(), 5);
        assert_round_trip(&tokenizer, &shakespeare(), 200);
        let chinese_corpus = corpus(CMRC, DocSplit::Line);
        let chinese = PrimerTokenizer::train(&chinese_corpus, TokenizerKind::Char, 0, false).unwrap();
        assert_round_trip(&chinese, &chinese_corpus, 100);
    }

    #[test]
    fn wordpiece_keeps_words() {
        let tokenizer = PrimerTokenizer::train(&shakespeare(), TokenizerKind::Wordpiece, 1000, false).unwrap();
        assert_eq!(tokenizer.specials().mask, 4);
        let ids = tokenizer.encode("First Citizen: speak, speak.").unwrap();
        assert_eq!(tokenizer.decode(&ids), "First Citizen : speak, speak.");
    }

    #[test]
    fn tokenizer_without_special_tokens_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plain.json");
        let mut plain = Tokenizer::new(ModelWrapper::BPE(BPE::default()));
        plain.with_decoder(Some(DecoderWrapper::Fuse(Fuse::new())));
        plain.save(&path, false).unwrap();
        let err = PrimerTokenizer::from_file(&path).err().unwrap().to_string();
        assert!(
            err.contains("plain.json") && err.contains("[PAD]") && err.contains("primer tokenizer train"),
            "{err}"
        );
        let err = PrimerTokenizer::from_file(&dir.path().join("missing.json"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("missing.json") && err.contains("not found"), "{err}");
    }
}
