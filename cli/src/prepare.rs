//! `primer prepare`: tokenize a corpus once into cached token shards.

use std::path::PathBuf;

use primer_datasets::prepare::SplitOptions;
use primer_datasets::tokenizer::PrimerTokenizer;
use primer_options::{CorpusArgs, data};

/// Arguments of `primer prepare`.
#[derive(clap::Args, Debug)]
pub struct PrepareArgs {
    #[command(flatten)]
    corpus: CorpusArgs,
    /// A corpus to use as the validation split.
    #[arg(long)]
    valid: Option<String>,
    /// Fraction of documents held out for validation.
    #[arg(long, default_value_t = 0.05)]
    valid_fraction: f64,
    /// Seed of the document split.
    #[arg(long, default_value_t = 1337)]
    seed: u64,
    /// The tokenizer.json to use.
    #[arg(long)]
    tokenizer: PathBuf,
}

/// Runs `primer prepare`: prints the folder of the prepared data.
pub fn run(args: PrepareArgs) -> anyhow::Result<()> {
    let specs = args.corpus.corpus.clone().unwrap_or_default();
    let corpus = data::corpus(&specs, &args.corpus)?;
    let valid = args.valid.map(|v| data::corpus(&[v], &args.corpus)).transpose()?;
    let tokenizer = PrimerTokenizer::from_file(&args.tokenizer)?;
    let split = SplitOptions {
        valid_fraction: args.valid_fraction,
        seed: args.seed,
    };
    let data = data::prepare(&corpus, valid.as_ref(), &tokenizer, &split)?;
    println!("{}", data.dir.display());
    Ok(())
}
