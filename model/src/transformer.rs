//! The Transformer language model shared by every objective.

use burn::module::Module;
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig,
};
use burn::tensor::module::linear;
use burn::tensor::{Bool, DType, Device, Int, Tensor};

use crate::attention::LayerKv;
use crate::block::Block;
use crate::config::{Positions, TransformerConfig};
use crate::precision::Precision;
use primer_kernels::AttentionMode;

/// Token embedding, optional learned positions, pre-LN blocks, final LayerNorm and an LM head
/// (tied to the token embedding unless configured otherwise).
///
/// It knows nothing of training objectives: a caller picks the [`AttentionMode`]. It computes
/// in its [`Precision`] (see [`crate::precision`]) and takes and returns `f32` tensors.
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
    norm_eps: f64,
    #[module(skip)]
    precision: Precision,
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
            norm_eps: self.norm_eps,
            precision: Precision::F32,
        }
    }
}

impl Transformer {
    /// The model computing in `precision`; its parameters stay as they are.
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    /// The precision the model computes in.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Final hidden states, after the last LayerNorm (computed in `f32`).
    ///
    /// # Shapes
    /// - tokens: `[batch, seq]`
    /// - output: `[batch, seq, d_model]`
    ///
    /// # Panics
    /// If `seq` exceeds the configured `max_seq_len`.
    pub fn forward_hidden(&self, tokens: Tensor<2, Int>, mode: AttentionMode) -> Tensor<3> {
        self.forward_hidden_padded(tokens, mode, None)
    }

    /// [`forward_hidden`](Self::forward_hidden) of padded rows: no position attends to padding.
    ///
    /// # Shapes
    /// - tokens: `[batch, seq]`
    /// - padding: `[batch, seq]`, true at padding positions
    /// - output: `[batch, seq, d_model]`
    ///
    /// # Panics
    /// If `seq` exceeds the configured `max_seq_len`.
    pub fn forward_hidden_padded(
        &self,
        tokens: Tensor<2, Int>,
        mode: AttentionMode,
        padding: Option<Tensor<2, Bool>>,
    ) -> Tensor<3> {
        let [_, seq] = tokens.dims();
        assert!(
            seq <= self.max_seq_len,
            "sequence of {seq} tokens is longer than max_seq_len {}",
            self.max_seq_len
        );
        let mut x = self.embed(tokens, 0).cast(self.precision.dtype());
        for block in &self.blocks {
            x = match &padding {
                Some(padding) => block.forward_padded(x, mode.clone(), padding.clone()),
                None => block.forward(x, mode.clone()),
            };
        }
        primer_kernels::layer_norm(&self.norm, self.norm_eps, x.cast(DType::F32))
    }

    /// Logits of the tokens that follow the `cache.len()` cached positions, each position
    /// costing one step instead of a re-run of the whole context; extends `cache`. `mode` is
    /// causal, or a prefix (lengths counted from the first cached position: a prompt read both
    /// ways, then decoding).
    ///
    /// # Shapes
    /// - tokens: `[batch, new]`
    /// - output: `[batch, new, vocab_size]`
    ///
    /// # Panics
    /// If the cache and the new tokens together exceed `max_seq_len`.
    pub fn forward_cached(&self, tokens: Tensor<2, Int>, mode: AttentionMode, cache: &mut KvCache) -> Tensor<3> {
        let [_, new] = tokens.dims();
        let start = cache.len();
        assert!(
            start + new <= self.max_seq_len,
            "{start} cached and {new} new positions exceed max_seq_len {}",
            self.max_seq_len
        );
        cache.layers.resize_with(self.blocks.len(), LayerKv::default);
        let mut x = self.embed(tokens, start).cast(self.precision.dtype());
        for (block, layer) in self.blocks.iter().zip(&mut cache.layers) {
            x = block.forward_cached(x, mode.clone(), layer);
        }
        self.lm_logits(primer_kernels::layer_norm(
            &self.norm,
            self.norm_eps,
            x.cast(DType::F32),
        ))
    }

    /// The longest sequence the model takes.
    pub fn max_seq_len(&self) -> usize {
        self.max_seq_len
    }

    /// Token embeddings plus learned positions from `start` on, after dropout, in `f32`: what
    /// the first block reads (cast to the model's precision), and what a second network sharing
    /// the embeddings reads too.
    ///
    /// # Shapes
    /// - tokens: `[batch, seq]`
    /// - output: `[batch, seq, d_model]`
    pub fn embed(&self, tokens: Tensor<2, Int>, start: usize) -> Tensor<3> {
        let [batch, seq] = tokens.dims();
        let device = tokens.device();
        let mut x = self.token_embedding.forward(tokens);
        if let Some(positions) = &self.position_embedding {
            // [1, seq] -> [1, seq, d_model], broadcast over the batch
            let ids = Tensor::<1, Int>::arange(start as i64..(start + seq) as i64, &device).reshape([1, seq]);
            x = x + positions.forward(ids).expand([batch as i64, -1, -1]);
        }
        self.dropout.forward(x)
    }

    /// Vocabulary logits of hidden states: the product in the model's precision, the logits
    /// in `f32`, so that every loss is computed in `f32`.
    ///
    /// # Shapes
    /// - hidden: `[batch, seq, d_model]`
    /// - output: `[batch, seq, vocab_size]`
    pub fn lm_logits(&self, hidden: Tensor<3>) -> Tensor<3> {
        let [batch, seq, d_model] = hidden.dims();
        let dtype = self.precision.dtype();
        let flat = hidden.reshape([batch * seq, d_model]).cast(dtype);
        let logits = match &self.lm_head {
            Some(head) => linear(flat, head.weight.val().cast(dtype), None),
            None => flat.matmul(self.token_embedding.weight.val().cast(dtype).transpose()),
        }
        .cast(DType::F32);
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

/// What a model's LM head was trained to predict, which decides how it is used and exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LmHead {
    /// Each position's next token, reading left to right.
    NextToken,
    /// The token behind each `[MASK]`, reading both ways.
    MaskedToken,
}

/// Keys and values of every layer for the positions decoded so far: what lets
/// [`Transformer::forward_cached`] cost one position per new token.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    layers: Vec<LayerKv>,
}

impl KvCache {
    /// Positions cached.
    pub fn len(&self) -> usize {
        self.layers.first().map_or(0, LayerKv::len)
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
