//! Which backend and device run the model.

use serde::{Deserialize, Serialize};

use crate::schema::{option_set, parse_name};

/// A compute backend, by name; the CLI turns it into a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// burn-flex, the pure-Rust CPU backend (always compiled in).
    #[default]
    Flex,
    /// burn-wgpu: Vulkan, Metal or DX12 devices, or Mesa's lavapipe on the CPU.
    Wgpu,
    /// burn-tch: libtorch from PyTorch 2.9.0, on the CPU or CUDA.
    Tch,
    /// burn-cuda: CubeCL's CUDA backend.
    Cuda,
}

impl Backend {
    /// Every backend primer knows, compiled in or not.
    pub const ALL: [Backend; 4] = [Backend::Flex, Backend::Wgpu, Backend::Tch, Backend::Cuda];

    /// The backend's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::Wgpu => "wgpu",
            Backend::Tch => "tch",
            Backend::Cuda => "cuda",
        }
    }
}

option_set! {
    /// Which backend and device run the model; shared by every command that runs one.
    pub struct BackendArgs {
        /// Compute backend: flex (CPU), wgpu, tch or cuda.
        backend: Backend; derived "$PRIMER_BACKEND, else flex",
        /// Device of the backend: wgpu default|cpu|discrete[:N]|integrated[:N]; tch cpu|cuda[:N].
        device: String,
    }
}

impl BackendArgs {
    /// The backend: the flag or config key, else `$PRIMER_BACKEND`, else flex.
    pub fn backend(&self) -> anyhow::Result<Backend> {
        match (self.backend, std::env::var("PRIMER_BACKEND")) {
            (Some(backend), _) => Ok(backend),
            (None, Ok(name)) if !name.is_empty() => {
                parse_name(&name).map_err(|e| anyhow::anyhow!("PRIMER_BACKEND={name}: {e}"))
            }
            _ => Ok(Backend::Flex),
        }
    }
}
