//! The Transformer language model shared by every objective.

use burn::module::Module;
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig,
};
use burn::tensor::{Device, Int, Tensor};

use crate::block::Block;
use crate::config::{AttentionMode, Positions, TransformerConfig};

/// Token embedding, optional learned positions, pre-LN blocks, final LayerNorm and an LM head
/// (tied to the token embedding unless configured otherwise).
///
/// It knows nothing of training objectives: a caller picks the [`AttentionMode`].
#[derive(Module, Debug)]
pub struct Transformer {
    /// `[vocab_size, d_model]`.
    pub token_embedding: Embedding,
    /// `[max_seq_len, d_model]`, for learned positions.
    pub position_embedding: Option<Embedding>,
    /// The blocks.
    pub blocks: Vec<Block>,
    /// Final LayerNorm.
    pub norm: LayerNorm,
    /// Untied LM head `[d_model, vocab_size]`; `None` when tied to the token embedding.
    pub lm_head: Option<Linear>,
    dropout: Dropout,
    max_seq_len: usize,
}

impl TransformerConfig {
    /// Builds the model with GPT-2 initialisation.
    ///
    /// # Panics
    /// If [`validate`](Self::validate) fails.
    pub fn init(&self, device: &Device) -> Transformer {
        if let Err(message) = self.validate() {
            panic!("invalid transformer config: {message}");
        }
        let normal = Initializer::Normal {
            mean: 0.0,
            std: self.init_std,
        };
        let embedding = |rows| {
            EmbeddingConfig::new(rows, self.d_model)
                .with_initializer(normal.clone())
                .init(device)
        };
        Transformer {
            token_embedding: embedding(self.vocab_size),
            position_embedding: (self.positions == Positions::Learned).then(|| embedding(self.max_seq_len)),
            blocks: (0..self.n_layers).map(|_| Block::new(self, device)).collect(),
            norm: LayerNormConfig::new(self.d_model)
                .with_epsilon(self.norm_eps)
                .init(device),
            lm_head: (!self.tie_embeddings).then(|| {
                LinearConfig::new(self.d_model, self.vocab_size)
                    .with_bias(false)
                    .with_initializer(normal.clone())
                    .init(device)
            }),
            dropout: DropoutConfig::new(self.dropout).init(),
            max_seq_len: self.max_seq_len,
        }
    }
}

impl Transformer {
    /// Final hidden states, after the last LayerNorm.
    ///
    /// # Shapes
    /// - tokens: `[batch, seq]`
    /// - output: `[batch, seq, d_model]`
    ///
    /// # Panics
    /// If `seq` exceeds the configured `max_seq_len`.
    pub fn forward_hidden(&self, tokens: Tensor<2, Int>, mode: AttentionMode) -> Tensor<3> {
        let [batch, seq] = tokens.dims();
        assert!(
            seq <= self.max_seq_len,
            "sequence of {seq} tokens is longer than max_seq_len {}",
            self.max_seq_len
        );
        let device = tokens.device();
        let mut x = self.token_embedding.forward(tokens);
        if let Some(positions) = &self.position_embedding {
            // [1, seq] -> [1, seq, d_model], broadcast over the batch
            let ids = Tensor::<1, Int>::arange(0..seq as i64, &device).reshape([1, seq]);
            x = x + positions.forward(ids).expand([batch as i64, -1, -1]);
        }
        let mut x = self.dropout.forward(x);
        for block in &self.blocks {
            x = block.forward(x, mode);
        }
        self.norm.forward(x)
    }

    /// Vocabulary logits of hidden states.
    ///
    /// # Shapes
    /// - hidden: `[batch, seq, d_model]`
    /// - output: `[batch, seq, vocab_size]`
    pub fn lm_logits(&self, hidden: Tensor<3>) -> Tensor<3> {
        let [batch, seq, d_model] = hidden.dims();
        let flat = hidden.reshape([batch * seq, d_model]);
        let logits = match &self.lm_head {
            Some(head) => head.forward(flat),
            None => flat.matmul(self.token_embedding.weight.val().transpose()),
        };
        let vocab = logits.dims()[1];
        logits.reshape([batch, seq, vocab])
    }

    /// Vocabulary logits of token ids.
    ///
    /// # Shapes
    /// - tokens: `[batch, seq]`
    /// - output: `[batch, seq, vocab_size]`
    pub fn forward(&self, tokens: Tensor<2, Int>, mode: AttentionMode) -> Tensor<3> {
        self.lm_logits(self.forward_hidden(tokens, mode))
    }
}
