//! Prefix language modelling (UniLM, Dong et al. 2019; T5's prefix LM, Raffel et al. 2020):
//! each block is split at a random point; the prefix is read both ways, and the tokens after
//! it are predicted left to right.

use burn::tensor::Device;
use primer_datasets::blocks::Blocks;
use primer_model::{AttentionMode, Pooling};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::info::{Framing, LabelSlot, Metric, ObjectiveInfo, Scoring, Special};
use crate::registry::{NoSettings, Registration, typed_settings};
use crate::{LmBatch, Objective};

/// What prefix language modelling is.
pub static INFO: ObjectiveInfo = ObjectiveInfo {
    name: "prefix",
    description: "prefix-LM: UniLM's and T5's prefix language modelling, a random prefix read both ways and the rest predicted left to right",
    bare_value_setting: None,
    // A classified text is all prefix: read both ways, pooled where the last prefix position
    // learned to sum it up.
    attention: AttentionMode::Bidirectional,
    framing: Framing {
        open: Special::Eos,
        close: Special::Eos,
        pooling: Pooling::Last,
    },
    scoring: Scoring::LogLikelihood,
    masked_scoring: None,
    label_slot: LabelSlot::AfterPrefix,
    shifted_targets: 1,
    accuracy: "next-token accuracy after the prefix",
    metrics: [Metric::BitsPerByte, Metric::Accuracy],
};

/// The registry's entry.
pub const REGISTRATION: Registration = Registration {
    info: &INFO,
    settings: typed_settings::<NoSettings>,
    build: |_, _| Box::new(PrefixLm),
};

/// Prefix-LM on packed blocks: a block of `seq_len + 1` tokens gives inputs `block[..seq_len]`
/// and a split `s` drawn uniformly from `1..seq_len`; inputs `..s` are the prefix, and each
/// token from `block[s]` on is predicted from the position before it. A split of 1 is causal
/// language modelling.
#[derive(Debug, Clone, Default)]
pub struct PrefixLm;

impl Objective for PrefixLm {
    fn info(&self) -> &'static ObjectiveInfo {
        &INFO
    }

    fn batch(&self, blocks: &Blocks, seed: u64, device: &Device) -> LmBatch {
        let (n_blocks, seq) = (blocks.count(), blocks.block_len - 1);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let splits: Vec<usize> = (0..n_blocks).map(|_| rng.random_range(1..seq.max(2))).collect();
        let mut inputs = Vec::with_capacity(n_blocks * seq);
        let (mut predict_at, mut targets) = (Vec::new(), Vec::new());
        for (row, (block, &split)) in blocks.iter().zip(&splits).enumerate() {
            inputs.extend_from_slice(&block[..seq]);
            predict_at.extend((split - 1..seq).map(|at| (row * seq + at) as u32));
            targets.extend_from_slice(&block[split..]);
        }
        let attention = AttentionMode::Prefix(splits);
        LmBatch::from_host(inputs, [n_blocks, seq], Some(predict_at), targets, attention, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(tensor: burn::tensor::Tensor<1, burn::tensor::Int>) -> Vec<i64> {
        tensor.into_data().convert::<i64>().try_into_vec::<i64>().unwrap()
    }

    #[test]
    fn the_loss_is_on_the_tokens_after_a_seeded_split() {
        let device = Device::flex();
        let blocks = Blocks::new((0..2).flat_map(|row| (0..9).map(move |i| 100 * row + i)).collect(), 9);
        let batch = PrefixLm.batch(&blocks, 7, &device);
        assert_eq!(batch.inputs.dims(), [2, 8]);
        let AttentionMode::Prefix(splits) = batch.attention.clone() else {
            panic!("a prefix batch reads its rows with prefixes");
        };
        let (positions, targets) = (host(batch.predict_at.clone().unwrap()), host(batch.targets.clone()));
        let mut expected = (Vec::new(), Vec::new());
        for (row, &split) in splits.iter().enumerate() {
            assert!((1..8).contains(&split), "split {split}");
            for at in split - 1..8 {
                expected.0.push((row * 8 + at) as i64);
                // The token after input `at` of this row.
                expected.1.push((100 * row + at + 1) as i64);
            }
        }
        assert_eq!((positions, targets), expected);

        // The same blocks and seed give the same batch; other seeds other splits.
        let again = PrefixLm.batch(&blocks, 7, &device);
        assert_eq!(again.attention, batch.attention);
        let seeds: std::collections::HashSet<_> = (0..20)
            .map(|seed| format!("{:?}", PrefixLm.batch(&blocks, seed, &device).attention))
            .collect();
        assert!(seeds.len() > 5, "{seeds:?}");
    }
}
