//! A sequence classifier: a pre-trained [`Transformer`] with a pooled linear head.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Initializer, Linear, LinearConfig};
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::transformer::Transformer;
use primer_kernels::AttentionMode;

/// How a sequence's hidden states become one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// The first position (`[CLS]`), as BERT: natural for bidirectional models.
    First,
    /// The last non-padding position, as GPT: the only one a causal model has read all of.
    Last,
    /// The mean over non-padding positions.
    Mean,
}

/// Builds a [`Classifier`].
#[derive(Config, Debug)]
pub struct ClassifierConfig {
    /// Number of labels.
    pub n_labels: usize,
    /// Pooling of the hidden states.
    pub pooling: Pooling,
    /// Attention of the encoder: bidirectional for masked-LM encoders, causal for causal ones.
    pub attention: AttentionMode,
    /// Dropout before the head.
    #[config(default = 0.1)]
    pub dropout: f64,
}

/// A [`Transformer`] encoder, a pooling and a linear head over the labels.
#[derive(Module, Debug)]
pub struct Classifier {
    /// The (pre-trained) Transformer.
    pub encoder: Transformer,
    /// `[d_model, n_labels]`.
    pub head: Linear,
    dropout: Dropout,
    #[module(skip)]
    pooling: Pooling,
    #[module(skip)]
    attention: AttentionMode,
}

impl ClassifierConfig {
    /// A classifier over `encoder` with a new head (normal init, std 0.02, zero bias).
    pub fn init(&self, encoder: Transformer, device: &Device) -> Classifier {
        let d_model = encoder.token_embedding.weight.dims()[1];
        let head = LinearConfig::new(d_model, self.n_labels)
            .with_initializer(Initializer::Normal { mean: 0.0, std: 0.02 })
            .init(device);
        Classifier {
            encoder,
            head: crate::zero_bias(head),
            dropout: DropoutConfig::new(self.dropout).init(),
            pooling: self.pooling,
            attention: self.attention.clone(),
        }
    }
}

impl Classifier {
    /// One pooled vector per sequence.
    ///
    /// # Shapes
    /// - tokens: `[batch, seq]`, each row `lengths[row]` tokens then padding
    /// - output: `[batch, d_model]`
    pub fn features(&self, tokens: Tensor<2, Int>, lengths: &[usize]) -> Tensor<2> {
        let [batch, seq] = tokens.dims();
        let device = tokens.device();
        let padding = padding_mask(lengths, seq, &device);
        let hidden = self
            .encoder
            .forward_hidden_padded(tokens, self.attention.clone(), Some(padding.clone()));
        let d_model = hidden.dims()[2];
        match self.pooling {
            Pooling::First => hidden.slice([0..batch, 0..1]).reshape([batch, d_model]),
            Pooling::Last => {
                let last: Vec<i64> = lengths.iter().map(|&len| len as i64 - 1).collect();
                // [batch] -> [batch, 1, d_model]
                let index = Tensor::<1, Int>::from_data(TensorData::new(last, [batch]), &device)
                    .reshape([batch, 1, 1])
                    .expand([batch, 1, d_model]);
                hidden.gather(1, index).reshape([batch, d_model])
            }
            Pooling::Mean => {
                // [batch, seq, 1], 1 on tokens and 0 on padding
                let keep = padding.bool_not().float().reshape([batch, seq, 1]);
                let counts = keep.clone().sum_dim(1).reshape([batch, 1]);
                (hidden * keep).sum_dim(1).reshape([batch, d_model]) / counts
            }
        }
    }

    /// Label logits.
    ///
    /// # Shapes
    /// - tokens: `[batch, seq]`, each row `lengths[row]` tokens then padding
    /// - output: `[batch, n_labels]`
    pub fn forward(&self, tokens: Tensor<2, Int>, lengths: &[usize]) -> Tensor<2> {
        self.head.forward(self.dropout.forward(self.features(tokens, lengths)))
    }
}

/// `[batch, seq]`, true at the padding positions of rows of `lengths` tokens padded to `seq`.
pub fn padding_mask(lengths: &[usize], seq: usize, device: &Device) -> Tensor<2, Bool> {
    let flags: Vec<bool> = lengths
        .iter()
        .flat_map(|&len| (0..seq).map(move |i| i >= len))
        .collect();
    Tensor::from_data(TensorData::new(flags, [lengths.len(), seq]), device)
}
