//! The one place that names concrete backends.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

/// A compute backend, chosen at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// burn-flex, the pure-Rust CPU backend.
    #[default]
    Flex,
}

impl Backend {
    /// The device of this backend.
    pub fn device(self) -> Device {
        match self {
            Backend::Flex => Device::flex(),
        }
    }
}
