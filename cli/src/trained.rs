//! A trained run opened for use: its config, tokenizer and weights on a device.

use std::path::Path;

use anyhow::{Context, bail};
use burn::tensor::Device;
use primer_datasets::tokenizer::PrimerTokenizer;
use primer_model::Transformer;
use primer_objectives::ObjectiveInfo;
use primer_trainer::checkpoint::Checkpointer;
use primer_trainer::config::RunConfig;
use primer_trainer::optim::optimizer;
use primer_trainer::run::{init_on_host, load_model};
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

    /// `dir`'s model as it was before training: its config, tokenizer and the initial weights
    /// its seed draws (the baseline an untrained model of the same size gives).
    pub fn untrained(dir: &Path, device: &Device) -> anyhow::Result<Self> {
        let dir = RunDir::new(dir);
        let config = dir.read_config()?;
        let tokenizer = PrimerTokenizer::from_file(&dir.tokenizer())?;
        let host = crate::backend::Backend::Flex.device()?;
        let model = init_on_host(&config.model, config.train.seed, &host, device);
        Ok(Self {
            dir,
            config,
            tokenizer,
            model,
            unfinished_step: None,
        })
    }

    /// Fails unless the run's objective has `fact`, naming the objectives that do.
    pub fn require(&self, fact: impl Fn(&ObjectiveInfo) -> bool, command: &str, needs: &str) -> anyhow::Result<()> {
        let info = self.config.objective.info();
        if !fact(info) {
            bail!(
                "{} is a {} run; `primer {command}` needs {needs}: give a run pre-trained with {}",
                self.dir.root.display(),
                info.describe(),
                primer_objectives::registry::with(fact).join(" or ")
            );
        }
        Ok(())
    }
}
