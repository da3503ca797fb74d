//! The tokenizer files `transformers.AutoTokenizer` reads: primer's own `tokenizer.json`, and
//! `tokenizer_config.json` and `special_tokens_map.json` naming its special tokens.

use std::path::Path;

use serde_json::{Value, json};

use crate::HfError;

/// Each transformers role and primer's special token that plays it.
const ROLES: [(&str, &str); 7] = [
    ("pad_token", "[PAD]"),
    ("unk_token", "[UNK]"),
    ("cls_token", "[CLS]"),
    ("sep_token", "[SEP]"),
    ("mask_token", "[MASK]"),
    ("bos_token", "[BOS]"),
    ("eos_token", "[EOS]"),
];

/// The special-token map: role → token.
fn special_tokens() -> serde_json::Map<String, Value> {
    ROLES
        .iter()
        .map(|(role, token)| (role.to_string(), json!(token)))
        .collect()
}

/// Writes the tokenizer files into `dir`, from primer's `tokenizer.json` at `tokenizer`.
/// `max_len` is the longest sequence the model reads.
pub fn write(tokenizer: &Path, dir: &Path, max_len: usize) -> Result<(), HfError> {
    let target = dir.join("tokenizer.json");
    std::fs::copy(tokenizer, &target).map_err(|e| HfError::write(&target, e))?;
    let mut config = special_tokens();
    config.insert("tokenizer_class".into(), json!("PreTrainedTokenizerFast"));
    config.insert("model_max_length".into(), json!(max_len));
    config.insert("clean_up_tokenization_spaces".into(), json!(false));
    write_json(&dir.join("tokenizer_config.json"), &Value::Object(config))?;
    write_json(&dir.join("special_tokens_map.json"), &Value::Object(special_tokens()))
}

/// Writes `value` as pretty JSON to `path`.
pub fn write_json(path: &Path, value: &Value) -> Result<(), HfError> {
    let text = serde_json::to_string_pretty(value).expect("JSON values serialize");
    std::fs::write(path, text).map_err(|e| HfError::write(path, e))
}
