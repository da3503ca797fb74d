//! A trained run opened for use: its config, tokenizer and weights on a device.

use std::path::Path;

use anyhow::{Context, bail};
use burn::tensor::Device;
use primer_datasets::tokenizer::PrimerTokenizer;
use primer_model::Transformer;
use primer_objectives::info::Scoring;
use primer_objectives::scoring::Pll;
use primer_objectives::{Companion, ObjectiveInfo};
use primer_trainer::checkpoint::Checkpointer;
use primer_trainer::config::RunConfig;
use primer_trainer::networks::Networks;
use primer_trainer::networks::load_networks;
use primer_trainer::optim::optimizer;
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
    /// What its objective trained beside the model (ELECTRA's generator and discriminator
    /// head), if anything.
    pub companion: Option<Companion>,
    /// The checkpoint step, when the run has not finished and its latest checkpoint was loaded.
    pub unfinished_step: Option<u64>,
}

impl TrainedRun {
    /// Loads `dir` on `device`: the final weights, else the latest checkpoint (with a note).
    pub fn load(dir: &Path, device: &Device) -> anyhow::Result<Self> {
        let dir = RunDir::new(dir);
        let config = dir.read_config()?;
        let tokenizer = PrimerTokenizer::from_file(&dir.tokenizer())?;
        let objective = config.objective.build(&tokenizer);
        let (networks, unfinished_step) = if dir.model().exists() {
            (load_networks(&dir, &config, objective.as_ref(), device)?, None)
        } else {
            let fresh = Networks {
                model: config.model.init(device),
                companion: objective
                    .companion(&config.model)
                    .map(|companion| companion.init(device)),
            };
            let (networks, _, state) =
                Checkpointer::new(dir.checkpoints(), 1).load_latest(fresh, optimizer(&config.train))?;
            let state = state.with_context(|| no_weights(&dir))?;
            eprintln!("the run has not finished: using its checkpoint at step {}", state.step);
            (networks, Some(state.step))
        };
        Ok(Self::of(dir, config, tokenizer, networks, unfinished_step))
    }

    /// Check mode: what [`TrainedRun::load`] (or, `untrained`, [`TrainedRun::untrained`])
    /// checks short of loading weights: the run's config, its tokenizer, and that it has weights.
    pub fn check(dir: &Path, untrained: bool) -> anyhow::Result<(RunConfig, PrimerTokenizer)> {
        let dir = RunDir::new(dir);
        let config = dir.read_config()?;
        let tokenizer = PrimerTokenizer::from_file(&dir.tokenizer())?;
        if !untrained && !dir.model().exists() && Checkpointer::new(dir.checkpoints(), 1).list()?.is_empty() {
            bail!(no_weights(&dir));
        }
        Ok((config, tokenizer))
    }

    /// `dir`'s model as it was before training: its config, tokenizer and the initial weights
    /// its seed draws (the baseline an untrained model of the same size gives).
    pub fn untrained(dir: &Path, device: &Device) -> anyhow::Result<Self> {
        let dir = RunDir::new(dir);
        let config = dir.read_config()?;
        let tokenizer = PrimerTokenizer::from_file(&dir.tokenizer())?;
        let host = crate::devices::Devices::device(primer_options::Backend::Flex)?;
        let companion = config.objective.build(&tokenizer).companion(&config.model);
        let networks = Networks::init_on_host(&config.model, companion.as_ref(), config.train.seed, &host, device);
        Ok(Self::of(dir, config, tokenizer, networks, None))
    }

    fn of(
        dir: RunDir,
        config: RunConfig,
        tokenizer: PrimerTokenizer,
        networks: Networks,
        unfinished_step: Option<u64>,
    ) -> Self {
        Self {
            dir,
            config,
            tokenizer,
            model: networks.model,
            companion: networks.companion,
            unfinished_step,
        }
    }

    /// The model and its companion, as scorers take them.
    pub fn model_and_companion(&self) -> (&Transformer, Option<&Companion>) {
        (&self.model, self.companion.as_ref())
    }

    /// How the run's texts are scored: its objective's way, or read both ways with masks as
    /// `pll` says when given (a masked run's, or GPT-BERT's; any other run refuses it).
    pub fn scoring(&self, pll: Option<Pll>) -> anyhow::Result<Scoring> {
        self.config
            .objective
            .info()
            .scoring_with(pll)
            .map_err(|e| anyhow::anyhow!("{}: {e}", self.dir.root.display()))
    }

    /// Fails unless the run's objective has `fact`, naming the objectives that do.
    pub fn require(&self, fact: impl Fn(&ObjectiveInfo) -> bool, command: &str, needs: &str) -> anyhow::Result<()> {
        let info = self.config.objective.info();
        if !fact(info) {
            bail!(
                "{} is a {} run; `primer {command}` needs {needs}: give a run pre-trained with {}",
                self.dir.root.display(),
                info.describe(),
                primer_objectives::registry::names_where(fact).join(" or ")
            );
        }
        Ok(())
    }
}

/// Why a run without weights cannot be used.
fn no_weights(dir: &RunDir) -> String {
    format!(
        "{} has neither model.bpk nor a checkpoint: train it first",
        dir.root.display()
    )
}
