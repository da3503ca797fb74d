//! `primer tokenizer`: train a tokenizer on a corpus.

use std::path::PathBuf;

use clap::Subcommand;
use primer_datasets::tokenizer::TokenizerKind;
use primer_options::{CorpusArgs, data, parser};

/// The subcommands of `primer tokenizer`.
#[derive(Subcommand, Debug)]
pub enum TokenizerCommand {
    /// Train a tokenizer and save it as a Hugging Face tokenizer.json.
    Train {
        #[command(flatten)]
        corpus: CorpusArgs,
        /// Vocabulary size, special tokens included (ignored by `char`).
        #[arg(long, default_value_t = 8192)]
        vocab_size: usize,
        /// bpe (byte-level), wordpiece or char.
        #[arg(long, default_value = "bpe", value_parser = parser::<TokenizerKind>())]
        kind: TokenizerKind,
        /// Where to write tokenizer.json.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Runs `primer tokenizer`.
pub fn run(command: TokenizerCommand) -> anyhow::Result<()> {
    match command {
        TokenizerCommand::Train {
            corpus,
            vocab_size,
            kind,
            out,
        } => {
            let specs = corpus.corpus.clone().unwrap_or_default();
            let corpus = data::corpus(&specs, &corpus)?;
            let tokenizer = data::tokenizer(None, &corpus, kind, vocab_size)?;
            tokenizer.save(&out)?;
            println!("wrote {} (vocabulary {})", out.display(), tokenizer.vocab_size());
        }
    }
    Ok(())
}
