//! What a primer job is asked to do, typed: every option with its flag, its config key and its
//! default, declared once ([`schema::option_set!`]) and read by the CLI's flags, `--config`
//! TOML files, a run's `config.json`, `primer compare` and the web dashboard's forms (which
//! get every command's options from clap through [`options_of`], as JSON); and what the options resolve to: the model and
//! training configs, the corpus, the tokenizer, the prepared data, the task.

pub mod backend;
pub mod check;
pub mod config_file;
pub mod corpus;
pub mod data;
pub mod presets;
pub mod pretrain;
pub mod schema;
pub mod task;

pub use backend::{Backend, BackendArgs};
pub use check::check_only;
pub use corpus::CorpusArgs;
pub use presets::ModelPreset;
pub use pretrain::{PretrainOptions, flag_error};
pub use schema::{OptionSpec, options_of, parse_name, parser};
pub use task::TaskArgs;
