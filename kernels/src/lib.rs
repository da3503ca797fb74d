//! Fused training kernels with hand-written backward passes.
//!
//! Under autodiff, Burn 0.22 composes a Transformer layer from many tensor ops, each a pass
//! over memory (on libtorch, also an OpenMP region): LayerNorm is nine ops and nine
//! derivatives; attention is a head split, a rotation, a mask, a decomposed softmax and a
//! merge, with layout copies between them; a linear layer on `[batch, seq, d]` inputs runs its
//! forward and input gradient as batched products with the weight broadcast over the batch
//! when `seq` is a multiple of the row tile, instead of one product over `batch · seq` rows.
//! These kernels do each layer as one op with its own backward, through Burn's
//! backend-extension mechanism: [`FusedOps`] is dispatched on the backend of its inputs at run
//! time, and its `Autodiff` implementation records one graph node whose backward step calls
//! the backend's [`FusedKernels`].
//!
//! - flex: Rust kernels, parallel over rows or heads, the products on the `gemm` crate that
//!   flex's own matmul uses;
//! - libtorch: libtorch's own kernels (`native_layer_norm`, `gelu`, `addmm`, CPU flash
//!   attention), the ones PyTorch's layers call.
//!
//! Other backends (wgpu, CUDA) keep Burn's composed ops, and so do flex's kernels on other
//! dtypes than f32 (libtorch's ops take bf16 and f16 too; LayerNorm runs in f32 in every
//! precision): the entry points below check the device and dtype and fall back to them, so
//! callers need not. [`linear`] casts the layer's parameters to the input's dtype, which is how
//! a mixed-precision model keeps f32 weights.
//!
//! [`AttentionMode`] says which keys each query sees; the model chooses it per call.

// The extension names burn-tch's `LibTorch`, deprecated upstream; primer keeps it for PyTorch
// parity.
#![cfg_attr(feature = "tch", allow(deprecated))]

mod autodiff;
mod extension;
mod flex;
#[cfg(feature = "tch")]
mod libtorch;
mod mode;
mod ops;

pub use extension::{AdamWStep, FusedKernels, FusedOps};
pub use mode::AttentionMode;
pub use ops::{adamw, attention, gelu, layer_norm, linear};

/// Whether libtorch finds a CUDA device (and was built with CUDA).
#[cfg(feature = "tch")]
pub fn libtorch_cuda_available() -> bool {
    tch::Cuda::is_available()
}
