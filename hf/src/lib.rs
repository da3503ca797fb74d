//! Hugging Face interop: a primer model as a `transformers` checkpoint.
//!
//! [`export`] writes a directory that `transformers.AutoModelForCausalLM.from_pretrained`
//! loads: rotary models as GPT-NeoX, learned-position models as GPT-2, with
//! `model.safetensors` written by Burn's own store (`burn::store::SafetensorsStore`, with key
//! remapping and an adapter), `config.json`, and the tokenizer files `AutoTokenizer` reads.
//! Where the layouts differ they are converted, not approximated ([`layout`]).

mod error;
mod export;
pub mod layout;
mod tokenizer_files;

pub use error::HfError;
pub use export::{Architecture, Exported, export};
