//! What pre-training trains and saves: the Transformer, and the companion its objective trains
//! beside it (ELECTRA's generator and discriminator head), one module for the optimizer, the
//! gradients and the clipping, two files on disk (`model.bpk`, `companion.bpk`) so that a
//! Transformer loads alone, as every run made before companions did.

use burn::module::Module;
use burn::tensor::Device;
use primer_model::{Transformer, TransformerConfig};
use primer_objectives::{Companion, CompanionConfig, Objective};

use crate::checkpoint::load_weights;
use crate::config::RunConfig;
use crate::error::TrainError;
use crate::run_dir::RunDir;

/// A run's trained networks.
#[derive(Module, Debug)]
pub struct Networks {
    /// The Transformer every downstream command reads.
    pub model: Transformer,
    /// What the objective trains beside it, if anything.
    pub companion: Option<Companion>,
}

impl Networks {
    /// Both networks initialised on `host` with `seed` (the companion after the model, from the
    /// same stream) and loaded onto `device`.
    pub fn init_on_host(
        model: &TransformerConfig,
        companion: Option<&CompanionConfig>,
        seed: u64,
        host: &Device,
        device: &Device,
    ) -> Self {
        let init = |device: &Device| Networks {
            model: model.init(device),
            companion: companion.map(|config| config.init(device)),
        };
        init_on_host(init, seed, host, device)
    }

    /// The Transformer and the companion, as objectives and scorers take them.
    pub fn model_and_companion(&self) -> (&Transformer, Option<&Companion>) {
        (&self.model, self.companion.as_ref())
    }
}

/// Initialises a module with `init` on `host` with `seed` and loads the weights onto `device`.
/// Burn's parameters are lazy: moving an uninitialised module would draw its weights on the
/// target device, with that backend's own random generator.
pub fn init_on_host<M: Module>(init: impl Fn(&Device) -> M, seed: u64, host: &Device, device: &Device) -> M {
    host.seed(seed);
    let weights = init(host).into_record();
    init(device).load_record(weights)
}

/// Loads a finished run's networks on `device`: the model, and the companion its objective
/// (built from `config`) trains beside it.
pub fn load_networks(
    run_dir: &RunDir,
    config: &RunConfig,
    objective: &dyn Objective,
    device: &Device,
) -> Result<Networks, TrainError> {
    let model = load_model(run_dir, config, device)?;
    let companion = match objective.companion(&config.model) {
        Some(companion) => {
            let path = run_dir.companion();
            Some(load_weights(companion.init(device), &path).map_err(|e| {
                TrainError::Invalid(format!(
                    "{} is corrupt or missing: {e}: train the run again",
                    path.display()
                ))
            })?)
        }
        None => None,
    };
    Ok(Networks { model, companion })
}

/// Loads a finished run's model on `device`.
pub fn load_model(run_dir: &RunDir, config: &RunConfig, device: &Device) -> Result<Transformer, TrainError> {
    let path = run_dir.model();
    if !path.exists() {
        return Err(TrainError::Invalid(format!(
            "{} has no model.bpk: the run has not finished; resume it with `primer pretrain --resume {}`",
            run_dir.root.display(),
            run_dir.root.display()
        )));
    }
    load_weights(config.model.init(device), &path)
        .map_err(|e| TrainError::Invalid(format!("{} is corrupt: {e}: train the run again", path.display())))
}
