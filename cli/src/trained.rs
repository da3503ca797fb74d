//! A trained run opened for use: its config, tokenizer and weights on a device.

use std::path::Path;

use anyhow::{Context, bail};
use burn::tensor::Device;
use primer_datasets::tokenizer::PrimerTokenizer;
use primer_model::Transformer;
use primer_trainer::checkpoint::Checkpointer;
use primer_trainer::config::{ObjectiveKind, RunConfig};
use primer_trainer::optim::optimizer;
use primer_trainer::run::load_model;
use primer_trainer::run_dir::RunDir;

/// A pre-training run loaded for evaluation or inference.
pub struct TrainedRun {
    /// The run directory.
    pub dir: RunDir,
    /// Its configuration.
    pub config: RunConfig,
    /// Its tokenizer.
    pub tokenizer: PrimerTokenizer,
    /// Its weights, without autodiff.
    pub model: Transformer,
    /// The checkpoint step, when the run has not finished and its latest checkpoint was loaded.
    pub unfinished_step: Option<u64>,
}

impl TrainedRun {
    /// Loads `dir` on `device`: the final weights, else the latest checkpoint (with a note).
    pub fn load(dir: &Path, device: &Device) -> anyhow::Result<Self> {
        let dir = RunDir::new(dir);
        let config = dir.read_config()?;
        let tokenizer = PrimerTokenizer::from_file(&dir.tokenizer())?;
        let (model, unfinished_step) = if dir.model().exists() {
            (load_model(&dir, &config, device)?, None)
        } else {
            let (model, _, state) = Checkpointer::new(dir.checkpoints(), 1)
                .load_latest(config.model.init(device), optimizer(&config.train))?;
            let state = state.with_context(|| {
                format!(
                    "{} has neither model.bpk nor a checkpoint: train it first",
                    dir.root.display()
                )
            })?;
            eprintln!("the run has not finished: using its checkpoint at step {}", state.step);
            (model, Some(state.step))
        };
        Ok(Self {
            dir,
            config,
            tokenizer,
            model,
            unfinished_step,
        })
    }

    /// Fails unless the run was pre-trained with `objective`, naming the command that fits.
    pub fn require(&self, objective: ObjectiveKind, command: &str, instead: &str) -> anyhow::Result<()> {
        if self.config.objective != objective {
            bail!(
                "{} is a {} run; `primer {command}` needs a {} run: use `primer {instead}`",
                self.dir.root.display(),
                describe(self.config.objective),
                describe(objective)
            );
        }
        Ok(())
    }
}

fn describe(objective: ObjectiveKind) -> &'static str {
    match objective {
        ObjectiveKind::Mlm => "masked-LM (mlm)",
        ObjectiveKind::Clm => "causal-LM (clm)",
    }
}
