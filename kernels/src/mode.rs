//! Which keys each query of self-attention sees.

use serde::{Deserialize, Serialize};

/// Which positions a token may attend to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttentionMode {
    /// Every position sees every other (BERT, masked LM).
    Bidirectional,
    /// A position sees itself and the positions before it (GPT, causal LM).
    Causal,
    /// Each row's first `lengths[row]` positions see each other; a position sees them, itself
    /// and the positions before it (UniLM, T5's prefix LM). Lengths 0 are causal.
    Prefix(Vec<usize>),
}

impl AttentionMode {
    /// How many keys, from the first, query `query` of batch row `row` sees among `keys`.
    pub fn visible_keys(&self, row: usize, query: usize, keys: usize) -> usize {
        match self {
            Self::Bidirectional => keys,
            Self::Causal => query + 1,
            Self::Prefix(lengths) => (query + 1).max(lengths[row]).min(keys),
        }
    }
}
