//! `primer import`: a Hugging Face transformers checkpoint as a primer run.

use std::path::PathBuf;

use burn::tensor::Device;
use primer_model::AttentionMode;
use primer_objectives::ObjectiveConfig;
use primer_options::PretrainOptions;
use primer_trainer::checkpoint::save_networks;
use primer_trainer::config::{DataInfo, RunConfig};
use primer_trainer::networks::Networks;
use primer_trainer::run_dir::RunDir;

/// Arguments of `primer import`.
#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// The format: hf, a transformers checkpoint directory (GPT-NeoX or GPT-2: `config.json`,
    /// `model.safetensors`, `tokenizer.json`, and `special_tokens_map.json` when its vocabulary
    /// lacks primer's special tokens).
    #[arg(long, default_value = "hf", value_parser = ["hf"])]
    format: String,
    /// The checkpoint directory.
    #[arg(long, value_name = "DIR")]
    from: PathBuf,
    /// The run directory to create.
    #[arg(long, value_name = "RUN_DIR")]
    out: PathBuf,
}

/// Runs `primer import`.
pub fn run(args: ImportArgs) -> anyhow::Result<()> {
    // The checkpoint's folder and each file in it.
    primer_files::roots::check_input("--from", &args.from)?;
    if primer_options::check_only() {
        primer_datasets::tokenizer::PrimerTokenizer::from_file(&args.from.join("tokenizer.json"))?;
        return Ok(RunDir::new(&args.out).check_new(false)?);
    }
    let imported = primer_hf::import(&args.from, &Device::flex())?;
    let tokenizer = &imported.tokenizer;
    // A masked model primer exported reads text both ways; every other checkpoint is causal.
    let attention = match imported.bidirectional {
        true => AttentionMode::Bidirectional,
        false => AttentionMode::Causal,
    };
    let objective = ObjectiveConfig::imported(&attention).map_err(anyhow::Error::msg)?;
    let options = PretrainOptions {
        objective: Some(objective.clone()),
        seq_len: Some(imported.config.max_seq_len.min(PretrainOptions::default().seq_len())),
        ..Default::default()
    };
    let (train, _) = options.configs(imported.config.vocab_size)?;
    let config = RunConfig {
        objective,
        model: imported.config.clone(),
        train,
        data: DataInfo {
            corpus: format!("imported from {}", args.from.display()),
            data_hash: String::new(),
            tokenizer_sha256: tokenizer.fingerprint(),
        },
        options: serde_json::to_value(&options).expect("options serialize"),
    };
    let run_dir = RunDir::new(&args.out);
    let _lock = run_dir.create(false, &config, tokenizer)?;
    let networks = Networks {
        model: imported.model,
        companion: None,
    };
    save_networks(&networks, &run_dir.model())?;
    println!(
        "wrote {} from {} ({}, {} parameters)",
        run_dir.root.display(),
        args.from.display(),
        imported.architecture.class(),
        imported.config.num_params()
    );
    Ok(())
}
