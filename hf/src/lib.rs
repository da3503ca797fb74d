//! Hugging Face interop: primer models as `transformers` checkpoints, and back.
//!
//! [`export`] writes a directory that transformers loads: next-token models with
//! `AutoModelForCausalLM` (rotary positions as GPT-NeoX, learned ones as GPT-2), masked models
//! with `AutoModelForMaskedLM` as primer's own layers shipped as code ([`MODELING_FILE`]), with
//! `model.safetensors` written by Burn's own store (`burn::store::SafetensorsStore`, with key
//! remapping and an adapter), `config.json`, and the tokenizer files `AutoTokenizer` reads.
//! [`import`] reads such a directory (GPT-NeoX or GPT-2, public checkpoints included, or
//! primer's own) back as a primer model, checking every file, size and weight before the model
//! is built. Where the layouts differ they are converted, not approximated ([`layout`]).

mod error;
mod expected;
mod export;
mod fields;
mod files;
mod import;
pub mod layout;
mod tokenizer_files;
mod weights_file;

pub use error::HfError;
pub use export::{Architecture, Exported, MODELING_FILE, export};
pub use import::{Imported, import};
