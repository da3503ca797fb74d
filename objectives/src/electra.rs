//! Replaced-token detection (ELECTRA, Clark et al. 2020): a small masked-LM generator fills
//! masked positions with its own samples, and the Transformer, the discriminator, judges every
//! position original or replaced.

use burn::tensor::activation::{log_softmax, sigmoid, softplus};
use burn::tensor::{Device, IndexingUpdateOp, Int, Tensor};
use primer_datasets::blocks::Blocks;
use primer_datasets::tokenizer::{PrimerTokenizer, SpecialTokens};
use primer_model::tensors::{host_floats, ids};
use primer_model::{AttentionMode, Pooling, Transformer, TransformerConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::companion::{Companion, CompanionConfig};
use crate::info::{Framing, LabelSlot, Metric, ObjectiveInfo, Scoring, Special};
use crate::mlm::{MaskedLm, MlmConfig};
use crate::registry::{Registration, Settings, read_settings, typed_settings};
use crate::samples::{Judgment, Sample, Sampler};
use crate::scoring::{Text, padded_rows};
use crate::{Details, LmBatch, LmSums, Objective};

/// The detail ([`LmSums::details`]) of the discriminator's logit at each position.
const SCORES: &str = "scores";
/// The detail of whether each position's token was replaced (1) or is original (0).
const REPLACED: &str = "replaced";
/// The detail of whether the generator's top guess at each masked position was the original.
const GENERATOR_HITS: &str = "generator_hits";

/// What ELECTRA is.
pub static INFO: ObjectiveInfo = ObjectiveInfo {
    name: "electra",
    description: "replaced-token detection: ELECTRA's discriminator, every token judged original or replaced by a small masked-LM generator's samples",
    bare_value_setting: None,
    attention: AttentionMode::Bidirectional,
    framing: Framing {
        open: Special::Cls,
        close: Special::Sep,
        pooling: Pooling::First,
    },
    scoring: Scoring::ReplacedTokenDetection,
    masked_scoring: None,
    label_slot: LabelSlot::Judged,
    shifted_targets: 0,
    accuracy: "replaced-token detection accuracy",
    metrics: [
        Metric::FromObjective {
            key: "discriminator_auc",
            name: "replaced-token detection AUC",
            chance: Some(0.5),
        },
        Metric::FromObjective {
            key: "generator_accuracy",
            name: "generator masked-token accuracy",
            chance: None,
        },
    ],
};

/// The registry's entry.
pub const REGISTRATION: Registration = Registration {
    info: &INFO,
    settings: typed_settings::<ElectraConfig>,
    build: |settings, tokenizer| {
        Box::new(Electra::new(
            read_settings(settings),
            *tokenizer.specials(),
            tokenizer.vocab_size(),
        ))
    },
};

/// ELECTRA's settings (`electra:generator_width=0.5`), defaults as in the paper's small models
/// and its code.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ElectraConfig {
    /// Probability that a non-special token is masked for the generator (0.15); at 0 nothing is
    /// replaced and the discriminator trains alone.
    pub mask_rate: f64,
    /// Of the masked tokens, the share the generator sees as `[MASK]` (0.85); it sees the rest
    /// as they are.
    pub mask_token_prob: f64,
    /// The generator's width as a share of the discriminator's (0.25), heads and MLP alike.
    pub generator_width: f64,
    /// Weight of the discriminator's mean loss against the generator's (50).
    pub discriminator_weight: f64,
}

impl Default for ElectraConfig {
    fn default() -> Self {
        Self {
            mask_rate: 0.15,
            mask_token_prob: 0.85,
            generator_width: 0.25,
            discriminator_weight: 50.0,
        }
    }
}

impl Settings for ElectraConfig {
    fn validate(&self) -> Result<(), String> {
        let unit = 0.0..=1.0;
        if !unit.contains(&self.mask_rate) || !unit.contains(&self.mask_token_prob) {
            return Err(format!(
                "mask_rate {} and mask_token_prob {} must be in [0, 1]",
                self.mask_rate, self.mask_token_prob
            ));
        }
        if !(self.generator_width > 0.0 && self.generator_width <= 1.0) {
            return Err(format!("generator_width {} must be in (0, 1]", self.generator_width));
        }
        if !(self.discriminator_weight.is_finite() && self.discriminator_weight >= 0.0) {
            return Err(format!(
                "discriminator_weight {} must be a number >= 0",
                self.discriminator_weight
            ));
        }
        Ok(())
    }
}

/// Seeds the generator's sampling apart from the masks drawn with the same batch seed.
const SAMPLING_STREAM: u64 = 0xE1EC_7A00;

/// ELECTRA on blocks of `seq_len` tokens: BERT's token masking (all `[MASK]` or kept, none
/// random) for the generator, whose samples, drawn without gradient, replace the masked tokens
/// for the discriminator.
#[derive(Debug, Clone)]
pub struct Electra {
    config: ElectraConfig,
    masking: MaskedLm,
}

impl Electra {
    /// ELECTRA for a tokenizer with these special tokens and vocabulary size.
    pub fn new(config: ElectraConfig, specials: SpecialTokens, vocab_size: usize) -> Self {
        let masking = MlmConfig {
            mask_rate: config.mask_rate,
            mask_token_prob: config.mask_token_prob,
            random_token_prob: 0.0,
            ..MlmConfig::default()
        };
        Self {
            config,
            masking: MaskedLm::new(masking, specials, vocab_size),
        }
    }
}

impl Objective for Electra {
    fn info(&self) -> &'static ObjectiveInfo {
        &INFO
    }

    /// The generator's masked batch, with one uniform draw per masked position to sample its
    /// replacement with.
    fn batch(&self, blocks: &Blocks, seed: u64, device: &Device) -> LmBatch {
        let batch = self.masking.batch(blocks, seed, device);
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ SAMPLING_STREAM);
        let n = batch.n_targets();
        let noise: Vec<f32> = (0..n).map(|_| rng.random()).collect();
        LmBatch {
            noise: Some(Tensor::from_data(burn::tensor::TensorData::new(noise, [n]), device)),
            ..batch
        }
    }

    /// Every position is judged.
    fn n_targets(&self, batch: &LmBatch) -> usize {
        batch.inputs.shape().num_elements()
    }

    /// The generator's uniform guess plus the weighted discriminator's even one.
    fn chance_loss(&self, vocab_size: usize) -> f64 {
        (vocab_size as f64).ln() + self.config.discriminator_weight * std::f64::consts::LN_2
    }

    fn companion(&self, model: &TransformerConfig) -> Option<CompanionConfig> {
        Some(CompanionConfig::narrower(model, self.config.generator_width))
    }

    /// `generator's summed cross-entropy x positions / masked + weight x the discriminator's
    /// summed binary cross-entropy`, over every position as a target: divided by the positions
    /// it is ELECTRA's `generator mean + 50 x discriminator mean`. `correct` counts the
    /// discriminator's right judgments; the details are its logits, the labels (1 = replaced)
    /// and the generator's hits at masked positions.
    fn loss(&self, model: &Transformer, companion: Option<&Companion>, batch: LmBatch) -> LmSums {
        let companion = companion.expect("electra trains a companion");
        let [rows, seq] = batch.inputs.dims();
        let positions = rows * seq;
        let masked = batch.n_targets();
        let device = batch.inputs.device();
        let mut inputs = batch.inputs.reshape([positions]);
        let mut labels = Tensor::<1>::zeros([positions], &device);
        let (mut nll, mut details) = (Tensor::<1>::zeros([1], &device), Vec::new());
        if masked > 0 {
            let at = batch.predict_at.expect("electra predicts masked positions");
            let noise = batch.noise.expect("electra batches carry sampling noise");
            let logits = companion.generator_logits(model, inputs.clone().reshape([rows, seq]), at.clone());
            let targets = batch.targets.reshape([masked, 1]);
            let hits = logits
                .clone()
                .argmax(1)
                .equal(targets.clone())
                .float()
                .reshape([masked]);
            let generator_nll = log_softmax(logits.clone(), 1).gather(1, targets.clone()).sum().neg();
            nll = generator_nll.mul_scalar(positions as f64 / masked as f64);
            let sampled = sample(logits.detach(), noise);
            let replaced = sampled.clone().not_equal(targets.clone()).float().reshape([masked]);
            // Inputs at the masked positions become the samples: add `sample - shown token`.
            let shown = inputs.clone().select(0, at.clone());
            inputs = inputs.select_assign(0, at.clone(), sampled.reshape([masked]) - shown, IndexingUpdateOp::Add);
            labels = labels.select_assign(0, at, replaced, IndexingUpdateOp::Add);
            details.push((GENERATOR_HITS, hits));
        }
        let hidden = model.forward_hidden(inputs.reshape([rows, seq]), AttentionMode::Bidirectional);
        let scores = companion.head_logits(hidden);
        // Binary cross-entropy with logits: softplus(z) - y z.
        let bce = (softplus(scores.clone(), 1.0) - scores.clone() * labels.clone()).sum();
        let correct = scores
            .clone()
            .greater_elem(0.0)
            .equal(labels.clone().greater_elem(0.5))
            .int()
            .sum();
        details.extend([(SCORES, scores.detach()), (REPLACED, labels)]);
        LmSums {
            nll: nll + bce.mul_scalar(self.config.discriminator_weight),
            correct,
            n_targets: positions,
            details,
        }
    }

    fn own_metrics(&self, details: &Details) -> Vec<(&'static str, f64)> {
        let column = |name: &str| details.get(name).map_or(&[][..], Vec::as_slice);
        let (scores, labels, hits) = (column(SCORES), column(REPLACED), column(GENERATOR_HITS));
        let mean = |values: &[f32]| values.iter().map(|&v| f64::from(v)).sum::<f64>() / values.len().max(1) as f64;
        vec![
            ("discriminator_auc", auc(scores, labels)),
            ("generator_accuracy", mean(hits)),
            ("replaced_share", mean(labels)),
        ]
    }

    /// What the discriminator makes of the generator's guesses in the excerpt.
    fn sample(
        &self,
        sampler: &Sampler,
        (model, companion): (&Transformer, Option<&Companion>),
        tokenizer: &PrimerTokenizer,
        device: &Device,
    ) -> Sample {
        let companion = companion.expect("electra trains a companion");
        detections(sampler, (model, companion), tokenizer, device)
    }
}

/// The sample of an ELECTRA run: the generator's best guesses replace masked tokens of the
/// sampler's excerpt, and the discriminator judges every position of the result.
fn detections(
    sampler: &Sampler,
    (model, companion): (&Transformer, &Companion),
    tokenizer: &PrimerTokenizer,
    device: &Device,
) -> Sample {
    let (mut tokens, positions) = sampler.masked_excerpt(model, tokenizer);
    let originals: Vec<u32> = positions.iter().map(|&i| tokens[i]).collect();
    let mut masked = tokens.clone();
    for &i in &positions {
        masked[i] = tokenizer.specials().mask;
    }
    let len = tokens.len();
    let row = |tokens: &[u32]| ids(tokens.iter().copied(), device).reshape([1, len]);
    let at = ids(positions.iter().map(|&i| i as u32), device);
    let guesses = companion.generator_logits(model, row(&masked), at).argmax(1);
    for (&i, guess) in positions
        .iter()
        .zip(host_floats(guesses.float().reshape([positions.len()])))
    {
        tokens[i] = guess as u32;
    }
    let hidden = model.forward_hidden(row(&tokens), AttentionMode::Bidirectional);
    let p_replaced = host_floats(sigmoid(companion.head_logits(hidden)));
    let replaced = positions
        .iter()
        .zip(originals)
        .map(|(&i, original)| Judgment {
            original: tokenizer.decode(&[original]),
            shown: tokenizer.decode(&[tokens[i]]),
            p_replaced: p_replaced[i],
        })
        .collect();
    Sample::Detect {
        text: tokenizer.decode(&tokens),
        replaced,
        flagged: p_replaced.iter().filter(|&&p| p > 0.5).count(),
    }
}

/// The log-probability a discriminator (the model read both ways, then the companion's head)
/// gives each token at flat positions `predict_at` of `rows` of being original: `log sigmoid(-z)`.
pub(crate) fn judged_log_probs(
    model: &Transformer,
    companion: &Companion,
    rows: &[Vec<u32>],
    predict_at: &[u32],
    device: &Device,
) -> Vec<f32> {
    let (inputs, padding) = padded_rows(rows, device);
    let hidden = model.forward_hidden_padded(inputs, AttentionMode::Bidirectional, padding);
    let logits = companion
        .head_logits(hidden)
        .select(0, ids(predict_at.iter().copied(), device));
    host_floats(softplus(logits, 1.0).neg())
}

/// The log-probability a discriminator gives each of `texts` of having no replaced token: the
/// sum of [`judged_log_probs`] over its tokens, read in windows of the model's context after
/// `start` (the `[EOS]` that precedes every document in training), `batch_rows` windows at a
/// time.
pub(crate) fn detection_log_probs(
    model: &Transformer,
    companion: &Companion,
    start: u32,
    texts: &[Text],
    batch_rows: usize,
    device: &Device,
) -> Vec<f64> {
    let window = model.max_seq_len() - 1;
    let mut rows: Vec<(usize, Vec<u32>)> = texts
        .iter()
        .enumerate()
        .flat_map(|(text, Text { tokens, .. })| {
            tokens
                .chunks(window)
                .map(move |chunk| (text, std::iter::once(start).chain(chunk.iter().copied()).collect()))
        })
        .collect();
    rows.sort_by_key(|(_, row)| row.len());
    let mut sums = vec![0.0; texts.len()];
    for group in rows.chunks(batch_rows.max(1)) {
        let seq = group.iter().map(|(_, row)| row.len()).max().unwrap_or(0);
        let tokens: Vec<Vec<u32>> = group.iter().map(|(_, row)| row.clone()).collect();
        let predict_at: Vec<u32> = group
            .iter()
            .enumerate()
            .flat_map(|(r, (_, row))| (1..row.len()).map(move |at| (r * seq + at) as u32))
            .collect();
        let mut scores = judged_log_probs(model, companion, &tokens, &predict_at, device).into_iter();
        for (text, row) in group {
            sums[*text] += scores.by_ref().take(row.len() - 1).map(f64::from).sum::<f64>();
        }
    }
    sums
}

/// One token per row of `logits`, drawn from their softmax by inverting its cumulative sum at
/// the row's uniform draw.
///
/// # Shapes
/// - logits: `[n, vocab]`
/// - uniform: `[n]`
/// - output: `[n, 1]`
fn sample(logits: Tensor<2>, uniform: Tensor<1>) -> Tensor<2, Int> {
    let [n, vocab] = logits.dims();
    let cumulative = burn::tensor::activation::softmax(logits, 1).cumsum(1);
    // The first token whose cumulative probability reaches the draw: how many stay below it.
    let below = cumulative.lower(uniform.reshape([n, 1]).expand([n, vocab]));
    below.int().sum_dim(1).clamp_max(vocab as i64 - 1)
}

/// The area under the ROC curve of `scores` for `labels` (1 positive, 0 negative): the
/// probability that a positive scores above a negative, ties counting half (Mann-Whitney);
/// `NaN` without both classes.
pub fn auc(scores: &[f32], labels: &[f32]) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut positive_rank_sum, mut positives) = (0.0, 0usize);
    let mut start = 0;
    while start < order.len() {
        let mut end = start;
        while end < order.len() && scores[order[end]] == scores[order[start]] {
            end += 1;
        }
        // Ranks start..end (1-based start + 1 ..= end) share their mean.
        let rank = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            if labels[i] > 0.5 {
                positive_rank_sum += rank;
                positives += 1;
            }
        }
        start = end;
    }
    let negatives = scores.len() - positives;
    if positives == 0 || negatives == 0 {
        return f64::NAN;
    }
    let p = positives as f64;
    (positive_rank_sum - p * (p + 1.0) / 2.0) / (p * negatives as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Module;
    use burn::optim::GradientsParams;
    use burn::tensor::activation::sigmoid;

    const SPECIALS: SpecialTokens = SpecialTokens::PRIMER;

    fn setup(config: ElectraConfig, device: &Device) -> (Electra, Transformer, Companion) {
        let model_config = TransformerConfig::new(40)
            .with_d_model(16)
            .with_n_layers(1)
            .with_n_heads(4)
            .with_d_ff(32)
            .with_max_seq_len(16)
            .with_dropout(0.0);
        let electra = Electra::new(config, SPECIALS, 40);
        let companion = electra.companion(&model_config).unwrap().init(device);
        (electra, model_config.init(device), companion)
    }

    /// Three blocks of 16 tokens.
    fn blocks() -> Blocks {
        Blocks::new((0..48).map(|i| 10 + (i * 7 % 30) as u32).collect(), 16)
    }

    fn host<const D: usize>(tensor: Tensor<D>) -> Vec<f64> {
        primer_model::tensors::host_floats(tensor)
            .into_iter()
            .map(f64::from)
            .collect()
    }

    /// The detail `name` of a batch's sums.
    fn detail(sums: &LmSums, name: &str) -> Tensor<1> {
        let (_, values) = sums
            .details
            .iter()
            .find(|(key, _)| *key == name)
            .expect("a detail of electra's");
        values.clone()
    }

    #[test]
    fn labels_mark_exactly_the_positions_whose_input_changed() {
        let device = Device::flex();
        let config = ElectraConfig {
            mask_rate: 0.5,
            ..ElectraConfig::default()
        };
        let (electra, model, companion) = setup(config, &device);
        let batch = electra.batch(&blocks(), 11, &device);
        let again = electra.batch(&blocks(), 11, &device);
        assert_eq!(host(batch.inputs.clone().float()), host(again.inputs.float()));
        assert_eq!(host(batch.noise.clone().unwrap()), host(again.noise.unwrap()));
        // The discriminator's input: the blocks with the generator's samples at the masked
        // positions, drawn from its logits with the batch's noise.
        let at = batch.predict_at.clone().unwrap();
        let logits = companion.generator_logits(&model, batch.inputs.clone(), at.clone());
        let sampled = host(sample(logits, batch.noise.clone().unwrap()).float());
        let mut corrupted: Vec<f64> = blocks().tokens.iter().map(|&t| f64::from(t)).collect();
        for (position, token) in host(at.float()).into_iter().zip(sampled) {
            corrupted[position as usize] = token;
        }
        let sums = electra.loss(&model, Some(&companion), batch);
        let labels = host(detail(&sums, REPLACED));
        let expected: Vec<f64> = corrupted
            .iter()
            .zip(blocks().tokens)
            .map(|(&input, original)| f64::from(u8::from(input != f64::from(original))))
            .collect();
        assert_eq!(labels, expected, "labels are input != original");
        // An untrained generator rarely samples the original: most masked positions are replaced.
        let masked = electra.masking.mask(&blocks().tokens, 16, 11);
        let replaced = labels.iter().filter(|&&l| l == 1.0).count();
        assert!(
            replaced * 2 > masked.selected.len(),
            "{replaced} of {}",
            masked.selected.len()
        );
    }

    #[test]
    fn the_loss_is_generator_mean_plus_weighted_discriminator_mean() {
        let device = Device::flex();
        let (electra, model, companion) = setup(ElectraConfig::default(), &device);
        let batch = electra.batch(&blocks(), 5, &device);
        let masked = batch.n_targets() as f64;
        let at = batch.predict_at.clone().unwrap();
        let logits = companion.generator_logits(&model, batch.inputs.clone(), at);
        let targets = batch.targets.clone().reshape([batch.n_targets(), 1]);
        let generator_mean = host(log_softmax(logits, 1).gather(1, targets).sum().neg())[0] / masked;
        let sums = electra.loss(&model, Some(&companion), batch);
        let (scores, labels) = (host(detail(&sums, SCORES)), host(detail(&sums, REPLACED)));
        let discriminator_mean = scores
            .iter()
            .zip(&labels)
            .map(|(&z, &y)| -(y * (1.0 / (1.0 + (-z).exp())).ln() + (1.0 - y) * (1.0 / (1.0 + z.exp())).ln()))
            .sum::<f64>()
            / 48.0;
        let loss = host(sums.nll)[0] / sums.n_targets as f64;
        let expected = generator_mean + 50.0 * discriminator_mean;
        assert!((loss - expected).abs() < 1e-3 * expected, "{loss} vs {expected}");
        assert!(
            discriminator_mean > 0.5 && discriminator_mean < 0.9,
            "{discriminator_mean}"
        );
    }

    #[test]
    fn at_mask_rate_zero_nothing_is_replaced_and_the_loss_is_the_discriminators_alone() {
        let device = Device::flex();
        let config = ElectraConfig {
            mask_rate: 0.0,
            ..ElectraConfig::default()
        };
        let (electra, model, companion) = setup(config, &device);
        let batch = electra.batch(&blocks(), 5, &device);
        assert_eq!(batch.n_targets(), 0);
        let sums = electra.loss(&model, Some(&companion), batch);
        let scores = host(detail(&sums, SCORES));
        assert!(host(detail(&sums, REPLACED)).iter().all(|&l| l == 0.0));
        let discriminator: f64 = scores.iter().map(|&z| (1.0 + z.exp()).ln()).sum();
        let loss = host(sums.nll)[0];
        assert!(
            (loss - 50.0 * discriminator).abs() < 1e-3 * loss,
            "{loss} vs {discriminator}"
        );
    }

    /// The discriminator's loss reaches the generator only through the shared embeddings: the
    /// generator's own weights get exactly the gradient of its masked-LM loss.
    #[test]
    fn no_gradient_flows_through_the_sampled_replacements() {
        let device = Device::flex().autodiff();
        let (electra, model, companion) = setup(ElectraConfig::default(), &device);
        let batch = electra.batch(&blocks(), 5, &device);
        let (masked, positions) = (batch.n_targets(), 48.0);
        let at = batch.predict_at.clone().unwrap();
        let logits = companion.generator_logits(&model, batch.inputs.clone(), at);
        let targets = batch.targets.clone().reshape([masked, 1]);
        let generator = log_softmax(logits, 1)
            .gather(1, targets)
            .sum()
            .neg()
            .mul_scalar(positions / masked as f64);
        let total = electra.loss(&model, Some(&companion), batch).nll;
        let of = |loss: Tensor<1>| GradientsParams::from_grads(loss.backward(), &companion);
        let (alone, together) = (of(generator), of(total));
        let weight = &companion.blocks[0].attn.qkv.weight;
        let (a, b) = (
            host(alone.get::<2>(weight.id).unwrap()),
            host(together.get::<2>(weight.id).unwrap()),
        );
        assert!(a.iter().any(|&g| g != 0.0));
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= 1e-5 * x.abs().max(1e-3), "{x} vs {y}");
        }
        // The discriminator head does learn from the total.
        assert!(together.get::<2>(companion.head.weight.id).is_some());
        assert!(model.num_params() > 0 && sigmoid(Tensor::<1>::zeros([1], &device)).dims() == [1]);
    }

    #[test]
    fn auc_counts_ties_as_half_and_needs_both_classes() {
        assert_eq!(auc(&[0.1, 0.9, 0.3, 0.7], &[0.0, 1.0, 0.0, 1.0]), 1.0);
        assert_eq!(auc(&[0.9, 0.1], &[0.0, 1.0]), 0.0);
        assert_eq!(auc(&[0.5, 0.5, 0.5], &[1.0, 0.0, 0.0]), 0.5);
        assert_eq!(auc(&[0.2, 0.4, 0.4, 0.8], &[0.0, 1.0, 0.0, 1.0]), 0.875);
        assert!(auc(&[0.2, 0.4], &[1.0, 1.0]).is_nan());
    }

    #[test]
    fn samples_follow_the_generator_distribution() {
        let device = Device::flex();
        let logits = Tensor::<2>::from_data([[0.0f32, (3.0f32).ln(), -30.0]], &device);
        let draws = 4000;
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let uniform: Vec<f32> = (0..draws).map(|_| rng.random()).collect();
        let tokens = host(
            sample(
                logits.expand([draws, 3]),
                Tensor::from_data(burn::tensor::TensorData::new(uniform, [draws]), &device),
            )
            .float(),
        );
        let ones = tokens.iter().filter(|&&t| t == 1.0).count() as f64 / draws as f64;
        assert!((ones - 0.75).abs() < 0.03, "{ones}");
        assert!(tokens.iter().all(|&t| t < 2.0));
    }
}
