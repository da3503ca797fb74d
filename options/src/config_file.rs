//! `--config` TOML files of options, with one-line errors that name the file.

use std::path::Path;

use crate::pretrain::PretrainOptions;

/// What the keys of a `--config` file are, for its error messages.
pub const CONFIG_KEYS: &str = "keys are the pretrain flag names without `--`";

/// Reads a `--config` TOML file of [`PretrainOptions`].
pub fn read_config(path: &Path) -> anyhow::Result<PretrainOptions> {
    options_of(path, read_toml(path, CONFIG_KEYS)?, CONFIG_KEYS)
}

/// A TOML file as a table; `hint` says, in a message about a fault in it, what it holds.
pub fn read_toml(path: &Path, hint: &str) -> anyhow::Result<toml::Table> {
    primer_files::roots::check_input("config", path)?;
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("config {}: {e}: check the path", path.display()))?;
    toml::from_str(&text).map_err(|e| config_fault(path, e, hint))
}

/// The options a table of `path` gives.
pub fn options_of(path: &Path, table: toml::Table, hint: &str) -> anyhow::Result<PretrainOptions> {
    toml::Value::Table(table)
        .try_into()
        .map_err(|e| config_fault(path, e, hint))
}

/// A one-line error about the TOML file `path`, ending with `hint`.
pub fn config_fault(path: &Path, error: toml::de::Error, hint: &str) -> anyhow::Error {
    let message = error.message().replace('\n', " ");
    anyhow::anyhow!("config {}: {message}: {hint}", path.display())
}
