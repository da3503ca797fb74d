//! The configuration of the Transformer family.

use burn::config::Config;
use serde::{Deserialize, Serialize};

/// How token positions enter the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Positions {
    /// A learned position embedding added to the token embedding (GPT-2, BERT).
    Learned,
    /// Rotary position encoding applied to queries and keys in every layer.
    Rotary,
}

/// The MLP's activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    /// GELU with the exact error function (PyTorch's `nn.GELU()`, BERT).
    Gelu,
    /// GELU's tanh approximation (GPT-2's `gelu_new`, PyTorch's `approximate="tanh"`).
    GeluTanh,
}

/// Configuration of a [`Transformer`](crate::Transformer): a token embedding, optional learned
/// positions, `n_layers` pre-LayerNorm blocks, a final LayerNorm and an LM head.
#[derive(Config, Debug)]
pub struct TransformerConfig {
    /// Vocabulary size (rows of the token embedding, columns of the LM head).
    pub vocab_size: usize,
    /// Width of the residual stream.
    #[config(default = 128)]
    pub d_model: usize,
    /// Number of blocks.
    #[config(default = 4)]
    pub n_layers: usize,
    /// Attention heads per block; must divide `d_model`.
    #[config(default = 4)]
    pub n_heads: usize,
    /// Hidden width of the MLP.
    #[config(default = 512)]
    pub d_ff: usize,
    /// Longest sequence the model accepts.
    #[config(default = 256)]
    pub max_seq_len: usize,
    /// Dropout on embeddings, attention weights and residual branches.
    #[config(default = 0.0)]
    pub dropout: f64,
    /// Position scheme.
    #[config(default = "Positions::Rotary")]
    pub positions: Positions,
    /// Share the LM head's weights with the token embedding.
    #[config(default = true)]
    pub tie_embeddings: bool,
    /// LayerNorm epsilon.
    #[config(default = 1e-5)]
    pub norm_eps: f64,
    /// Standard deviation of the normal initialisation (GPT-2: 0.02).
    #[config(default = 0.02)]
    pub init_std: f64,
    /// Share of each head's features that rotary positions rotate, the first ones (GPT-NeoX's
    /// `rotary_pct`); the rest carry no position. 1 rotates them all.
    #[config(default = 1.0)]
    pub rotary_fraction: f64,
    /// Attention and MLP both read the block's input and add to it (GPT-NeoX's
    /// `use_parallel_residual`), instead of the MLP reading the attention's output.
    #[config(default = false)]
    pub parallel_residual: bool,
    /// The MLP's activation.
    #[config(default = "Activation::Gelu")]
    pub activation: Activation,
}

impl TransformerConfig {
    /// Checks the sizes; the error names the field at fault and the fix.
    pub fn validate(&self) -> Result<(), FieldError> {
        FieldError::at_least_one([
            ("vocab_size", self.vocab_size),
            ("d_model", self.d_model),
            ("n_layers", self.n_layers),
            ("n_heads", self.n_heads),
            ("d_ff", self.d_ff),
            ("max_seq_len", self.max_seq_len),
        ])?;
        if !self.d_model.is_multiple_of(self.n_heads) {
            return Err(FieldError::new(
                "n_heads",
                format!(
                    "`n_heads` {} does not divide `d_model` {}: choose heads that divide the model width",
                    self.n_heads, self.d_model
                ),
            ));
        }
        if self.positions == Positions::Rotary && !(self.d_model / self.n_heads).is_multiple_of(2) {
            return Err(FieldError::new(
                "n_heads",
                format!(
                    "rotary positions need an even head width, got {}: change `d_model` or `n_heads`",
                    self.d_model / self.n_heads
                ),
            ));
        }
        let rotary_dims = self.rotary_dims();
        let rotary_ok = self.rotary_fraction > 0.0
            && self.rotary_fraction <= 1.0
            && rotary_dims > 0
            && rotary_dims.is_multiple_of(2);
        if self.positions == Positions::Rotary && !rotary_ok {
            return Err(FieldError::new(
                "rotary_fraction",
                format!(
                    "`rotary_fraction` {} must be in (0, 1] and rotate an even number of a head's {} features (it rotates {rotary_dims})",
                    self.rotary_fraction,
                    self.head_dim()
                ),
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(FieldError::new(
                "dropout",
                format!("`dropout` {} must be in [0, 1)", self.dropout),
            ));
        }
        Ok(())
    }

    /// Number of trainable parameters of the model this config builds.
    pub fn num_params(&self) -> usize {
        let (d, f, v) = (self.d_model, self.d_ff, self.vocab_size);
        // Two LayerNorms, fused QKV and output projection, MLP expansion and projection.
        let block = 4 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * f + f) + (f * d + d);
        let head = if self.tie_embeddings { 0 } else { d * v };
        v * d + self.position_params() + self.n_layers * block + 2 * d + head
    }

    /// Training FLOPs per token at context `seq_len`, counted as nanoGPT and PaLM count them:
    /// `6 N` for the forward and backward matrix products of the `N` parameters that multiply
    /// (learned positions are added, not multiplied, and are left out), plus `12 L d T` for
    /// attention scores and their weighted sums.
    pub fn train_flops_per_token(&self, seq_len: usize) -> f64 {
        let multiplying = (self.num_params() - self.position_params()) as f64;
        6.0 * multiplying + 12.0 * (self.n_layers * self.d_model * seq_len) as f64
    }

    /// Parameters of the learned position embedding (none with rotary positions).
    fn position_params(&self) -> usize {
        match self.positions {
            Positions::Learned => self.max_seq_len * self.d_model,
            Positions::Rotary => 0,
        }
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_heads.max(1)
    }

    /// The features of each head that rotary positions rotate (GPT-NeoX's `rotary_ndims`).
    pub fn rotary_dims(&self) -> usize {
        (self.head_dim() as f64 * self.rotary_fraction) as usize
    }
}

/// A config value that cannot be used: the field at fault, and a message that names fields in
/// backticks (`` `n_heads` ``), so that a caller can say them its own way (the CLI as flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field at fault, as the config names it.
    pub field: &'static str,
    /// What is wrong and the fix.
    pub message: String,
}

impl FieldError {
    /// An error of `field`.
    pub fn new(field: &'static str, message: String) -> Self {
        Self { field, message }
    }

    /// The first of `fields` (name, value) that is 0, as an error.
    pub fn at_least_one(fields: impl IntoIterator<Item = (&'static str, usize)>) -> Result<(), FieldError> {
        match fields.into_iter().find(|&(_, value)| value == 0) {
            Some((field, _)) => Err(Self::new(field, format!("`{field}` must be at least 1"))),
            None => Ok(()),
        }
    }

    /// The message with each backticked field name replaced by `name(field)`, or left as the
    /// field where `name` has none.
    pub fn named(&self, name: impl Fn(&str) -> Option<String>) -> String {
        let mut out = String::new();
        let mut parts = self.message.split('`');
        out.push_str(parts.next().unwrap_or_default());
        for (i, part) in parts.enumerate() {
            match i % 2 {
                0 => out.push_str(&name(part).unwrap_or_else(|| part.to_string())),
                _ => out.push_str(part),
            }
        }
        out
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.message.replace('`', ""))
    }
}

impl std::error::Error for FieldError {}
