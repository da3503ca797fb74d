//! Causal language modelling (GPT): predict each next token from the tokens before it.

use burn::tensor::Device;
use primer_datasets::blocks::Blocks;
use primer_model::{AttentionMode, Pooling};

use crate::info::{Framing, LabelSlot, Metric, ObjectiveInfo, Scoring, Special};
use crate::registry::{NoSettings, Registration, typed_settings};
use crate::{LmBatch, Objective};

/// What causal language modelling is.
pub static INFO: ObjectiveInfo = ObjectiveInfo {
    name: "clm",
    description: "causal-LM: GPT's next-token prediction from the left context",
    bare_value_setting: None,
    attention: AttentionMode::Causal,
    // A document starts after an `[EOS]` in pre-training, and the closing one is where the
    // last-token pooling reads.
    framing: Framing {
        open: Special::Eos,
        close: Special::Eos,
        pooling: Pooling::Last,
    },
    scoring: Scoring::LogLikelihood,
    masked_scoring: None,
    label_slot: LabelSlot::NextToken,
    shifted_targets: 1,
    accuracy: "next-token accuracy",
    metrics: [Metric::BitsPerByte, Metric::Accuracy],
};

/// The registry's entry.
pub const REGISTRATION: Registration = Registration {
    info: &INFO,
    settings: typed_settings::<NoSettings>,
    build: |_, _| Box::new(CausalLm),
};

/// Next-token prediction on packed blocks: a block of `seq_len + 1` tokens gives inputs
/// `block[..seq_len]` and targets `block[1..]`.
#[derive(Debug, Clone, Default)]
pub struct CausalLm;

impl Objective for CausalLm {
    fn info(&self) -> &'static ObjectiveInfo {
        &INFO
    }

    fn batch(&self, blocks: &Blocks, _seed: u64, device: &Device) -> LmBatch {
        let seq = blocks.block_len - 1;
        let (inputs, targets): (Vec<_>, Vec<_>) = blocks
            .iter()
            .flat_map(|block| block[..seq].iter().copied().zip(block[1..].iter().copied()))
            .unzip();
        LmBatch::from_host(
            inputs,
            [blocks.count(), seq],
            None,
            targets,
            AttentionMode::Causal,
            device,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_inputs_shifted_by_one() {
        let device = Device::flex();
        let blocks: Vec<u32> = vec![10, 11, 12, 13, 20, 21, 22, 23];
        let batch = CausalLm.batch(&Blocks::new(blocks, 4), 0, &device);
        assert_eq!(batch.inputs.dims(), [2, 3]);
        let inputs = batch.inputs.into_data().convert::<i64>().try_into_vec::<i64>().unwrap();
        let targets = batch
            .targets
            .into_data()
            .convert::<i64>()
            .try_into_vec::<i64>()
            .unwrap();
        assert_eq!(inputs, [10, 11, 12, 20, 21, 22]);
        assert_eq!(targets, [11, 12, 13, 21, 22, 23]);
        assert!(batch.predict_at.is_none());
        assert_eq!(INFO.block_len(64), 65);
    }
}
