//! What pre-training trains and saves: the Transformer, and the companion its objective trains
//! beside it (ELECTRA's generator and discriminator head), one module for the optimizer, the
//! gradients and the clipping, two files on disk (`model.bpk`, `companion.bpk`) so that a
//! Transformer loads alone, as every run made before companions did.

use burn::module::Module;
use burn::tensor::Device;
use primer_model::{Transformer, TransformerConfig};
use primer_objectives::{Companion, CompanionConfig};

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
