//! `primer export`: a pre-training run as a Hugging Face transformers checkpoint.

use std::path::PathBuf;

use anyhow::bail;
use burn::tensor::Device;
use primer_model::LmHead;
use primer_objectives::ObjectiveInfo;
use primer_objectives::registry;

use crate::trained::TrainedRun;

/// Arguments of `primer export`.
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// The pre-training run to export (any objective whose LM head is trained: clm, prefix, mlm).
    #[arg(long, value_name = "RUN_DIR")]
    run: PathBuf,
    /// The format: hf, a transformers checkpoint directory: a next-token model loads with
    /// `AutoModelForCausalLM` (rotary positions as GPT-NeoX, learned as GPT-2), a masked one
    /// with `AutoModelForMaskedLM` and `trust_remote_code=True` (primer's layers, shipped as
    /// code in the directory).
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
        return head_of(&args, config.objective.info()).map(drop);
    }
    let trained = TrainedRun::load(&args.run, &Device::flex())?;
    let info = trained.config.objective.info();
    let head = head_of(&args, info)?;
    let exported = primer_hf::export(
        &trained.model,
        &trained.config.model,
        head,
        (&trained.dir.tokenizer(), &trained.tokenizer),
        &args.out,
    )?;
    println!(
        "wrote {} ({}): load it with transformers.{}",
        exported.dir.display(),
        exported.architecture.class(),
        exported.architecture.loader()
    );
    Ok(())
}

/// The head to export: the one the objective trained; refused where it trained none.
fn head_of(args: &ExportArgs, info: &ObjectiveInfo) -> anyhow::Result<LmHead> {
    match info.lm_head() {
        Some(head) => Ok(head),
        None => bail!(
            "{} is a {} run: it judges the tokens it is shown, as a discriminator, and its LM head is not trained, so as a language model it would mislead; export a run of {}",
            args.run.display(),
            info.describe(),
            registry::names_where(|info| info.lm_head().is_some()).join(", ")
        ),
    }
}
