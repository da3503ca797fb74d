//! `primer fill-mask`: the most likely tokens at each `[MASK]` of a text, from a masked-LM run.

use std::path::PathBuf;

use anyhow::bail;
use primer_objectives::scoring::fill_mask;
use serde::Serialize;

use crate::trained::TrainedRun;
use primer_options::BackendArgs;

/// Arguments of `primer fill-mask`.
#[derive(clap::Args, Debug)]
pub struct FillMaskArgs {
    /// A masked-LM (mlm) run directory.
    #[arg(long)]
    run: PathBuf,
    /// Texts with one or more `[MASK]` tokens.
    #[arg(required = true)]
    texts: Vec<String>,
    /// Predictions per mask.
    #[arg(long, default_value_t = 5)]
    top_k: usize,
    /// One JSON object per text instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    backend: BackendArgs,
}

/// One prediction at a mask.
#[derive(Debug, Serialize)]
struct Prediction {
    token: String,
    id: u32,
    probability: f32,
}

/// What `--json` prints per text.
#[derive(Debug, Serialize)]
struct Filled<'a> {
    text: &'a str,
    masks: Vec<Vec<Prediction>>,
}

/// Runs `primer fill-mask`.
pub fn run(args: FillMaskArgs) -> anyhow::Result<()> {
    if args.top_k == 0 {
        bail!("--top-k 0 shows nothing: use 1 or more");
    }
    let (_, device) = crate::devices::resolve(&args.backend)?;
    let run = TrainedRun::load(&args.run, &device)?;
    run.require(
        |info| info.fills_masks(),
        "fill-mask",
        "a model that predicts [MASK] tokens",
    )?;
    let mask = run.tokenizer.specials().mask;
    let context = run.model.max_seq_len();
    let mut encoded = Vec::new();
    for text in &args.texts {
        let tokens = run.tokenizer.encode(text)?;
        if !tokens.contains(&mask) {
            bail!("{text:?} has no [MASK]: mark the tokens to predict with [MASK]");
        }
        if tokens.len() > context {
            bail!(
                "{text:?} is {} tokens, more than the model's context of {context}: shorten it",
                tokens.len()
            );
        }
        encoded.push(tokens);
    }
    for (text, tokens) in args.texts.iter().zip(encoded) {
        let masks: Vec<Vec<Prediction>> = fill_mask(&run.model, &tokens, mask, args.top_k, &device)
            .into_iter()
            .map(|top| {
                top.into_iter()
                    .map(|(id, probability)| Prediction {
                        token: run.tokenizer.decode(&[id]),
                        id,
                        probability,
                    })
                    .collect()
            })
            .collect();
        if args.json {
            println!("{}", serde_json::to_string(&Filled { text, masks })?);
            continue;
        }
        println!("{text}");
        for (i, top) in masks.iter().enumerate() {
            let shown: Vec<String> = top
                .iter()
                .map(|p| format!("{:?} {:.3}", p.token, p.probability))
                .collect();
            println!("  [MASK] {}: {}", i + 1, shown.join("  "));
        }
    }
    Ok(())
}
