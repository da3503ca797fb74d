//! Mixed precision: the dtype a [`Transformer`](crate::Transformer) computes in.
//!
//! Burn 0.22 has no autocast (tracel-ai/burn issue 5696), so the casts are explicit: the
//! parameters stay `f32` (the optimizer's master weights), and the forward pass casts them to
//! the compute dtype where it uses them, so the backward pass of each cast carries an `f32`
//! gradient back to its parameter. The embedding output is cast down once; LayerNorm, softmax
//! and the LM head's output (so every loss) are computed in `f32`, as PyTorch's autocast lists
//! them. In `f32` no cast is made: the graph is the one primer always built.

use burn::tensor::DType;
use serde::{Deserialize, Serialize};

/// The dtype of a model's matrix products and activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// float32 throughout.
    #[default]
    F32,
    /// bfloat16 products and activations (float32's range, 8 bits of mantissa).
    Bf16,
    /// float16 products and activations (10 bits of mantissa, range to 65504): gradients
    /// need loss scaling.
    F16,
}

impl Precision {
    /// The compute dtype.
    pub fn dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::Bf16 => DType::BF16,
            Precision::F16 => DType::F16,
        }
    }

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::F16 => "f16",
        }
    }
}
