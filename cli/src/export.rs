//! `primer export`: a pre-training run as a Hugging Face transformers checkpoint.

use std::path::PathBuf;

use anyhow::bail;
use burn::tensor::Device;
use primer_objectives::ObjectiveInfo;
use primer_objectives::info::Scoring;

use crate::trained::TrainedRun;

/// Arguments of `primer export`.
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// The pre-training run (clm or mlm) to export.
    #[arg(long, value_name = "RUN_DIR")]
    run: PathBuf,
    /// The format: hf, a directory `transformers.AutoModelForCausalLM.from_pretrained` loads
    /// (rotary models as GPT-NeoX, learned positions as GPT-2).
    #[arg(long, default_value = "hf", value_parser = ["hf"])]
    format: String,
    /// The directory to create.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

/// Runs `primer export`.
pub fn run(args: ExportArgs) -> anyhow::Result<()> {
    if primer_options::check_only() {
        let (config, _) = TrainedRun::check(&args.run, false)?;
        return exportable(&args, config.objective.info());
    }
    let trained = TrainedRun::load(&args.run, &Device::flex())?;
    let info = trained.config.objective.info();
    exportable(&args, info)?;
    let exported = primer_hf::export(
        &trained.model,
        &trained.config.model,
        &info.attention,
        (&trained.dir.tokenizer(), &trained.tokenizer),
        &args.out,
    )?;
    println!(
        "wrote {} ({}{}): load it with transformers.AutoModelForCausalLM.from_pretrained",
        exported.dir.display(),
        exported.architecture.class(),
        if exported.bidirectional {
            "; a masked model: give it a 4-D attention mask that hides nothing, with attn_implementation=\"eager\" (README, Hugging Face)"
        } else {
            ""
        }
    );
    Ok(())
}

/// Fails unless a run of an objective described by `info` exports as a language model.
fn exportable(args: &ExportArgs, info: &ObjectiveInfo) -> anyhow::Result<()> {
    if info.scoring == Scoring::ReplacedTokenDetection {
        bail!(
            "{} is an {} run: its model is a discriminator whose LM head is not trained, so as a language model it would mislead; export a clm or mlm run",
            args.run.display(),
            info.name
        );
    }
    Ok(())
}
