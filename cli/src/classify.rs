//! `primer classify`: label texts with a fine-tuned classifier.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::bail;
use primer_datasets::corpus::MAX_DOC_BYTES;
use primer_trainer::finetune::{TrainedClassifier, encode_for_classifier, predict};
use primer_trainer::run_dir::RunDir;
use serde::Serialize;

use primer_options::BackendArgs;

/// Arguments of `primer classify`.
#[derive(clap::Args, Debug)]
pub struct ClassifyArgs {
    /// A fine-tuning run directory (made by `primer finetune`).
    #[arg(long)]
    run: PathBuf,
    /// Texts to classify.
    texts: Vec<String>,
    /// A UTF-8 file with one text per line (blank lines skipped), after any texts given.
    #[arg(long)]
    file: Option<PathBuf>,
    /// One JSON object per text instead of a table.
    #[arg(long)]
    json: bool,
    /// Texts per batch.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    #[command(flatten)]
    backend: BackendArgs,
}

/// What `--json` prints per text.
#[derive(Debug, Serialize)]
struct Labelled<'a> {
    text: &'a str,
    label: &'a str,
    probability: f32,
    probabilities: BTreeMap<&'a str, f32>,
}

/// Runs `primer classify`.
pub fn run(args: ClassifyArgs) -> anyhow::Result<()> {
    let mut texts = args.texts.clone();
    if let Some(path) = &args.file {
        let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: {e}: check the path", path.display()))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            anyhow::anyhow!(
                "{}: invalid UTF-8 at byte {}: convert the file to UTF-8",
                path.display(),
                e.utf8_error().valid_up_to()
            )
        })?;
        // The classifier reads the first tokens only; a line of any length is cut first, so it
        // is tokenized in bounded memory.
        let bounded = |line: &str| line[..line.floor_char_boundary(MAX_DOC_BYTES)].to_string();
        texts.extend(text.lines().filter(|l| !l.trim().is_empty()).map(bounded));
    }
    if texts.is_empty() {
        bail!("nothing to classify: give texts, or --file with one text per line");
    }
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let (_, device) = crate::devices::resolve(&args.backend)?;
    let classifier = TrainedClassifier::load(&RunDir::new(&args.run), &device)?;
    let config = &classifier.config;
    let encoded = texts
        .iter()
        .map(|text| encode_for_classifier(&classifier.tokenizer, config.objective.info(), text, config.max_len))
        .collect::<Result<Vec<_>, _>>()?;
    let probabilities = predict(
        &classifier.model,
        &encoded,
        classifier.tokenizer.specials().pad,
        args.batch_size,
    );
    for (text, probs) in texts.iter().zip(&probabilities) {
        let best = primer_model::generate::argmax(probs) as usize;
        let label = config.labels[best].as_str();
        if args.json {
            let labelled = Labelled {
                text,
                label,
                probability: probs[best],
                probabilities: config
                    .labels
                    .iter()
                    .map(String::as_str)
                    .zip(probs.iter().copied())
                    .collect(),
            };
            println!("{}", serde_json::to_string(&labelled)?);
        } else {
            println!("{label}\t{:.3}\t{text}", probs[best]);
        }
    }
    Ok(())
}
