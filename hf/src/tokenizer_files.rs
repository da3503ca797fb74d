//! The tokenizer files `transformers.AutoTokenizer` reads: primer's own `tokenizer.json`, and
//! `tokenizer_config.json` and `special_tokens_map.json` naming its special tokens.

use std::path::Path;

use primer_datasets::tokenizer::PrimerTokenizer;
use serde_json::{Value, json};

use crate::HfError;

/// The special-token map: each transformers role and the token that plays it (primer's own
/// `[PAD]`...`[EOS]`, or an imported tokenizer's). `bos_token` is the token that opens every
/// document in training, `[EOS]` (as GPT-2's `<|endoftext|>` plays both): the one evaluators
/// put before a text (lm-eval's empty context, minicons' `bos_token=True`), as primer scores it.
fn special_tokens(tokenizer: &PrimerTokenizer) -> serde_json::Map<String, Value> {
    let specials = tokenizer.specials();
    specials
        .by_role()
        .into_iter()
        .map(|(role, id)| (role, if role == "bos_token" { specials.eos } else { id }))
        .filter_map(|(role, id)| Some((role.to_string(), json!(tokenizer.id_to_token(id)?))))
        .collect()
}

/// Writes the tokenizer files into `dir`: `tokenizer`'s `tokenizer.json` (saved at `path`) and
/// its roles. `max_len` is the longest sequence the model reads.
pub fn write(path: &Path, tokenizer: &PrimerTokenizer, dir: &Path, max_len: usize) -> Result<(), HfError> {
    let target = dir.join("tokenizer.json");
    std::fs::copy(path, &target).map_err(|e| HfError::write(&target, e))?;
    let mut config = special_tokens(tokenizer);
    config.insert("tokenizer_class".into(), json!("PreTrainedTokenizerFast"));
    config.insert("model_max_length".into(), json!(max_len));
    config.insert("clean_up_tokenization_spaces".into(), json!(false));
    write_json(&dir.join("tokenizer_config.json"), &Value::Object(config))?;
    write_json(
        &dir.join("special_tokens_map.json"),
        &Value::Object(special_tokens(tokenizer)),
    )
}

/// Writes `value` as pretty JSON to `path`.
pub fn write_json(path: &Path, value: &Value) -> Result<(), HfError> {
    let text = serde_json::to_string_pretty(value).expect("JSON values serialize");
    std::fs::write(path, text).map_err(|e| HfError::write(path, e))
}
