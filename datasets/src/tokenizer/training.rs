//! Training a tokenizer on a corpus: byte-level BPE, WordPiece or characters, the corpus
//! streamed to the trainer with its runs too long to be words cut.

use std::collections::BTreeSet;
use std::path::Path;

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::TrainerWrapper;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::models::wordpiece::{WordPiece, WordPieceTrainerBuilder};
use tokenizers::normalizers::bert::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, DecoderWrapper, ModelWrapper, PreTokenizerWrapper, Tokenizer};

use super::{MAX_VOCAB, PrimerTokenizer, SPECIAL_TOKENS, TokenizerKind};
use crate::corpus::Corpus;
use crate::error::{DataError, Result};

impl PrimerTokenizer {
    /// Fails unless a tokenizer of `kind` with `vocab_size` tokens can be trained: more than the
    /// special tokens, at most [`MAX_VOCAB`] (`char` takes its size from the corpus).
    pub fn check_trainable(kind: TokenizerKind, vocab_size: usize) -> Result<()> {
        if kind != TokenizerKind::Char && vocab_size <= SPECIAL_TOKENS.len() + 1 {
            return Err(DataError::InvalidOption(format!(
                "--vocab-size {vocab_size} is too small: give more than {} (the special tokens)",
                SPECIAL_TOKENS.len() + 1
            )));
        }
        if kind != TokenizerKind::Char && vocab_size > MAX_VOCAB {
            return Err(DataError::InvalidOption(format!(
                "--vocab-size {vocab_size} is out of range: give at most {MAX_VOCAB} (the largest public vocabularies hold about 256k)"
            )));
        }
        Ok(())
    }

    /// Trains a tokenizer on a corpus, streaming its documents.
    ///
    /// `vocab_size` counts the special tokens; it is ignored for [`TokenizerKind::Char`], whose
    /// vocabulary is the special tokens plus every character of the corpus.
    pub fn train(corpus: &Corpus, kind: TokenizerKind, vocab_size: usize, progress: bool) -> Result<Self> {
        Self::check_trainable(kind, vocab_size)?;
        corpus.check_not_empty()?;
        // `[MASK]` takes the space before it in byte-level BPE, where words carry their leading
        // space: "the [MASK] sat" then masks the token " cat" stands in, as in RoBERTa.
        let specials: Vec<AddedToken> = SPECIAL_TOKENS
            .iter()
            .map(|t| AddedToken::from(t.to_string(), true).lstrip(*t == "[MASK]" && kind == TokenizerKind::Bpe))
            .collect();
        let mut inner = match kind {
            TokenizerKind::Char => char_tokenizer(corpus)?,
            TokenizerKind::Bpe => {
                let mut tokenizer = Tokenizer::new(ModelWrapper::BPE(BPE::default()));
                tokenizer.with_pre_tokenizer(Some(PreTokenizerWrapper::ByteLevel(
                    ByteLevel::default().add_prefix_space(false),
                )));
                tokenizer.with_decoder(Some(DecoderWrapper::ByteLevel(ByteLevelDecoder::default())));
                let mut trainer = TrainerWrapper::BpeTrainer(
                    BpeTrainerBuilder::new()
                        .vocab_size(vocab_size)
                        .min_frequency(2)
                        .show_progress(progress)
                        .special_tokens(specials.clone())
                        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
                        .build(),
                );
                train_streaming(&mut tokenizer, &mut trainer, corpus)?;
                tokenizer
            }
            TokenizerKind::Wordpiece => {
                let mut tokenizer = Tokenizer::new(ModelWrapper::WordPiece(WordPiece::default()));
                tokenizer.with_normalizer(Some(BertNormalizer::new(true, true, None, false)));
                tokenizer.with_pre_tokenizer(Some(PreTokenizerWrapper::BertPreTokenizer(BertPreTokenizer)));
                tokenizer.with_decoder(Some(DecoderWrapper::WordPiece(WordPieceDecoder::default())));
                let mut trainer = TrainerWrapper::WordPieceTrainer(
                    WordPieceTrainerBuilder::new()
                        .vocab_size(vocab_size)
                        .min_frequency(2)
                        .show_progress(progress)
                        .special_tokens(specials.clone())
                        .build(),
                );
                train_streaming(&mut tokenizer, &mut trainer, corpus)?;
                tokenizer
            }
        };
        inner.add_special_tokens(&specials);
        Self::from_tokenizer(inner, Path::new(corpus.label()), None)
    }
}

/// The longest run of letters, of digits or of other non-space characters that tokenizer
/// training sees as one word, bytes. A BPE trainer's merges scan every word holding a pair, so
/// words of megabytes (text without spaces) take hours; real text has no run this long (the
/// longest in the shared corpora, Chinese included, is 192 bytes).
const MAX_TRAINING_WORD_BYTES: usize = 256;

/// How much of a corpus may lie in runs longer than [`MAX_TRAINING_WORD_BYTES`] before tokenizer
/// training refuses it, bytes: a trainer holds every distinct word, so megabytes of text not
/// split into words (random letters, encoded data) would take gigabytes.
const MAX_LONG_RUN_BYTES: usize = 1 << 20;

/// Feeds the corpus to a trainer as a stream, stopping at the first read error; runs longer
/// than [`MAX_TRAINING_WORD_BYTES`] are cut into separate sequences, and more than
/// [`MAX_LONG_RUN_BYTES`] of them stop training with an error.
fn train_streaming(tokenizer: &mut Tokenizer, trainer: &mut TrainerWrapper, corpus: &Corpus) -> Result<()> {
    let failure = std::sync::Mutex::new(None);
    let fail = |error: DataError| *failure.lock().expect("not poisoned") = Some(error);
    let mut long_run_bytes = 0;
    let docs = corpus
        .documents()
        .map_while(|doc| doc.map_err(fail).ok())
        .map_while(|doc| {
            let (pieces, cut_bytes) = cut_long_runs(doc.text);
            long_run_bytes += cut_bytes;
            if long_run_bytes > MAX_LONG_RUN_BYTES {
                fail(DataError::InvalidOption(format!(
                    "corpus {} holds over {} MiB in runs of more than {MAX_TRAINING_WORD_BYTES} bytes without a space (text not split into words; the last in the document at byte {} of its file): BPE and WordPiece training need words; use --tokenizer-kind char, or give text with spaces",
                    corpus.label(),
                    MAX_LONG_RUN_BYTES >> 20,
                    doc.file_offset
                )));
                return None;
            }
            Some(pieces)
        })
        .flatten();
    let result = tokenizer.train(trainer, docs).map(|_| ());
    if let Some(e) = failure.into_inner().expect("not poisoned") {
        return Err(e);
    }
    result.map_err(|e| DataError::InvalidOption(format!("tokenizer training failed: {e}")))
}

/// `text` cut inside every run of one class of characters (letters, digits, other non-space)
/// longer than [`MAX_TRAINING_WORD_BYTES`], so that no pre-tokenized word is longer, and the
/// bytes of the runs cut; text without such a run comes back whole, so training on it is
/// unchanged.
fn cut_long_runs(text: String) -> (Vec<String>, usize) {
    let class = |c: char| match c {
        c if c.is_whitespace() => 0,
        c if c.is_alphabetic() => 1,
        c if c.is_numeric() => 2,
        _ => 3,
    };
    let mut cuts = Vec::new();
    let (mut run_class, mut run_start, mut cut_bytes) = (0, 0, 0);
    for (at, c) in text.char_indices() {
        let this = class(c);
        if this != run_class {
            (run_class, run_start) = (this, at);
        } else if this != 0 && at + c.len_utf8() - run_start > MAX_TRAINING_WORD_BYTES {
            cuts.push(at);
            cut_bytes += at - run_start;
            run_start = at;
        }
    }
    if cuts.is_empty() {
        return (vec![text], 0);
    }
    let bounds: Vec<usize> = std::iter::once(0)
        .chain(cuts)
        .chain(std::iter::once(text.len()))
        .collect();
    let pieces = bounds
        .windows(2)
        .map(|pair| text[pair[0]..pair[1]].to_string())
        .collect();
    (pieces, cut_bytes)
}

/// A character-level tokenizer: special tokens, then every character of the corpus in
/// code-point order, no merges.
fn char_tokenizer(corpus: &Corpus) -> Result<Tokenizer> {
    let mut chars = BTreeSet::new();
    for doc in corpus.documents() {
        chars.extend(doc?.text.chars());
    }
    // Documents are joined by [EOS], but the text inside them keeps its newlines.
    chars.insert('\n');
    let vocab: tokenizers::models::bpe::Vocab = SPECIAL_TOKENS
        .iter()
        .map(|t| t.to_string())
        .chain(chars.into_iter().map(String::from))
        .enumerate()
        .map(|(id, token)| (token, id as u32))
        .collect();
    let model = BPE::builder()
        .vocab_and_merges(vocab, Vec::new())
        .unk_token("[UNK]".into())
        .build()
        .map_err(|e| DataError::InvalidOption(format!("char tokenizer: {e}")))?;
    let mut tokenizer = Tokenizer::new(ModelWrapper::BPE(model));
    tokenizer.with_decoder(Some(DecoderWrapper::Fuse(Fuse::new())));
    Ok(tokenizer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_cuts_only_runs_too_long_to_be_words() {
        let prose = "The cat sat. 猫坐在垫子上，很舒服。 12345 ----".to_string();
        assert_eq!(cut_long_runs(prose.clone()), (vec![prose], 0));
        let (pieces, cut_bytes) = cut_long_runs(format!("ab {}é{} 42", "x".repeat(600), "y".repeat(10)));
        assert_eq!(cut_bytes, 2 * MAX_TRAINING_WORD_BYTES);
        assert_eq!(pieces.concat(), format!("ab {}é{} 42", "x".repeat(600), "y".repeat(10)));
        assert_eq!(pieces.len(), 3, "{pieces:?}");
        let longest_run = |piece: &String| piece.split_whitespace().map(str::len).max().unwrap_or(0);
        assert!(
            pieces.iter().all(|p| longest_run(p) <= MAX_TRAINING_WORD_BYTES),
            "{pieces:?}"
        );
    }
}
