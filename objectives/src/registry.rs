//! The list of objectives, and the configuration of one: its name and its typed settings.
//!
//! A run names its objective as `NAME[:SETTING=VALUE...]` on the command line (`mlm`,
//! `mlm:masking=span:mask_rate=0.2`; a bare value sets the objective's `bare_value_setting`, so
//! `mlm:span` is `mlm:masking=span`), as a string or an `[objective]` table in a `--config` TOML,
//! and as a table in `config.json`. Each objective reads and checks its own settings.

use std::fmt;
use std::str::FromStr;

use primer_datasets::tokenizer::PrimerTokenizer;
use primer_model::AttentionMode;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::{Objective, ObjectiveInfo, causal, electra, mlm, prefix};

/// One objective as the registry lists it.
pub struct Registration {
    /// What the objective is: its name and every fact the rest of primer needs.
    pub info: &'static ObjectiveInfo,
    /// Reads settings given as a JSON object (absent keys take their defaults), checks them and
    /// returns them complete.
    pub settings: fn(Map<String, Value>) -> Result<Value, String>,
    /// Builds the objective from complete settings, for a tokenizer.
    pub build: fn(&Value, &PrimerTokenizer) -> Box<dyn Objective>,
}

/// Every objective primer knows, in the order commands list them. Adding one is one line here.
pub const OBJECTIVES: &[Registration] = &[
    mlm::REGISTRATION,
    causal::REGISTRATION,
    prefix::REGISTRATION,
    electra::REGISTRATION,
    crate::gpt_bert::REGISTRATION,
];

/// The registration of the objective called `name`.
pub fn lookup(name: &str) -> Result<&'static Registration, String> {
    OBJECTIVES
        .iter()
        .find(|registration| registration.info.name == name)
        .ok_or_else(|| format!("unknown objective `{name}`: choose one of {}", names().join(", ")))
}

/// The names of every objective.
pub fn names() -> Vec<&'static str> {
    OBJECTIVES.iter().map(|registration| registration.info.name).collect()
}

/// The names of the objectives with a fact, e.g. those whose models generate text.
pub fn names_where(fact: impl Fn(&ObjectiveInfo) -> bool) -> Vec<&'static str> {
    OBJECTIVES
        .iter()
        .filter(|registration| fact(registration.info))
        .map(|registration| registration.info.name)
        .collect()
}

/// An objective's settings as a Rust type: read from JSON with unknown keys refused, and checked.
pub trait Settings: Serialize + DeserializeOwned {
    /// Checks the values; the message names the setting and its range.
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// [`Registration::settings`] for a settings type.
pub fn typed_settings<S: Settings>(map: Map<String, Value>) -> Result<Value, String> {
    let settings: S = serde_json::from_value(Value::Object(map)).map_err(|e| e.to_string())?;
    settings.validate()?;
    Ok(serde_json::to_value(settings).expect("settings serialize"))
}

/// Complete settings as their type (they were checked when the config was made).
pub fn read_settings<S: Settings>(settings: &Value) -> S {
    serde_json::from_value(settings.clone()).expect("settings were checked when the config was made")
}

/// The settings of an objective that has none.
#[derive(Debug, Clone, Copy, Default, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoSettings {}

impl Settings for NoSettings {}

/// A run's objective: which one, with its settings, checked and complete.
#[derive(Clone)]
pub struct ObjectiveConfig {
    registration: &'static Registration,
    settings: Value,
}

impl ObjectiveConfig {
    /// The objective `name` with `settings` (absent ones take their defaults).
    pub fn new(name: &str, settings: Map<String, Value>) -> Result<Self, String> {
        let registration = lookup(name)?;
        let settings = (registration.settings)(settings).map_err(|e| format!("objective {name}: {e}"))?;
        Ok(Self { registration, settings })
    }

    /// The objective with its default settings.
    pub fn default_of(name: &str) -> Result<Self, String> {
        Self::new(name, Map::new())
    }

    /// The objective, with its default settings, that an imported model reading whole texts
    /// with `attention` is run as: the first registered one that reads texts so and whose LM
    /// head was trained (mlm for a bidirectional model, clm for a causal one).
    pub fn imported(attention: &AttentionMode) -> Result<Self, String> {
        OBJECTIVES
            .iter()
            .find(|registration| &registration.info.attention == attention && registration.info.lm_head().is_some())
            .map(|registration| Self::default_of(registration.info.name))
            .unwrap_or_else(|| Err(format!("no objective reads texts with {attention:?} attention")))
    }

    /// What the objective is.
    pub fn info(&self) -> &'static ObjectiveInfo {
        self.registration.info
    }

    /// The objective's name (`mlm`).
    pub fn name(&self) -> &'static str {
        self.info().name
    }

    /// The complete settings, as a JSON object.
    pub fn settings(&self) -> &Value {
        &self.settings
    }

    /// Builds the objective for a tokenizer.
    pub fn build(&self, tokenizer: &PrimerTokenizer) -> Box<dyn Objective> {
        (self.registration.build)(&self.settings, tokenizer)
    }

    /// The shortest spec that names this config: the name, then the settings that differ from
    /// the defaults, in key order (`mlm`, `mlm:span`, `mlm:mask_rate=0.2:span`).
    pub fn label(&self) -> String {
        let defaults = Self::default_of(self.name()).expect("a registered objective").settings;
        let changed: Vec<String> = self
            .settings
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(key, value)| defaults.get(key.as_str()) != Some(*value))
            .map(|(key, value)| match value {
                Value::String(text) if self.info().bare_value_setting == Some(key.as_str()) => text.clone(),
                Value::String(text) => format!("{key}={text}"),
                other => format!("{key}={other}"),
            })
            .collect();
        match changed.is_empty() {
            true => self.name().to_string(),
            false => format!("{}:{}", self.name(), changed.join(":")),
        }
    }

    fn from_value(value: Value) -> Result<Self, String> {
        match value {
            Value::String(spec) => spec.parse(),
            Value::Object(mut table) => {
                let name = match table.remove("name") {
                    Some(Value::String(name)) => name,
                    _ => {
                        return Err(format!(
                            "an objective table needs `name`, one of {}",
                            names().join(", ")
                        ));
                    }
                };
                Self::new(&name, table)
            }
            other => Err(format!(
                "objective {other}: give a name such as \"mlm\" or a table with `name`"
            )),
        }
    }
}

impl FromStr for ObjectiveConfig {
    type Err = String;

    /// Reads `NAME[:SETTING=VALUE...]`; a value is read as JSON when it is JSON (numbers,
    /// booleans) and as text otherwise, and a bare value sets the objective's `bare_value_setting`.
    fn from_str(spec: &str) -> Result<Self, String> {
        let mut parts = spec.split(':').map(str::trim);
        let name = parts.next().unwrap_or_default();
        let registration = lookup(name)?;
        let mut settings = Map::new();
        for part in parts.filter(|part| !part.is_empty()) {
            let (key, value) = match (part.split_once('='), registration.info.bare_value_setting) {
                (Some((key, value)), _) => (key.trim(), value.trim()),
                (None, Some(variant)) => (variant, part),
                (None, None) => return Err(format!("objective {name}: `{part}` needs a value: write SETTING=VALUE")),
            };
            let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()));
            settings.insert(key.to_string(), value);
        }
        Self::new(registration.info.name, settings)
    }
}

impl fmt::Debug for ObjectiveConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.label())
    }
}

impl fmt::Display for ObjectiveConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.label())
    }
}

impl PartialEq for ObjectiveConfig {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name() && self.settings == other.settings
    }
}

impl Serialize for ObjectiveConfig {
    /// A table: `name`, then the settings.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut table = Map::new();
        table.insert("name".into(), Value::String(self.name().into()));
        table.extend(self.settings.as_object().cloned().unwrap_or_default());
        table.serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for ObjectiveConfig {
    /// A spec string (`"mlm:span"`) or a table with `name` and settings.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::from_value(Value::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// Moves what configs written before the registry kept outside the objective into it: MLM's
/// rates were `train.mlm` of `config.json`, and `mask-rate`, `masking`, `mask-token-prob` and
/// `random-token-prob` options beside `objective`. Newer configs pass unchanged.
pub fn upgrade_config(config: &mut Value) {
    let legacy = config
        .get_mut("train")
        .and_then(Value::as_object_mut)
        .and_then(|train| train.remove("mlm"));
    if let (Some(Value::Object(settings)), Some(Value::String(name))) = (legacy, config.get("objective")) {
        let name = name.clone();
        let mut table = if name == mlm::INFO.name { settings } else { Map::new() };
        table.insert("name".into(), Value::String(name));
        config["objective"] = Value::Object(table);
    }
    if let Some(options) = config.get_mut("options") {
        upgrade_options(options);
    }
}

/// The options half of [`upgrade_config`]: old MLM flags become settings of the objective.
pub fn upgrade_options(options: &mut Value) {
    let Some(options) = options.as_object_mut() else {
        return;
    };
    let mut settings = Map::new();
    for flag in ["mask-rate", "masking", "mask-token-prob", "random-token-prob"] {
        if let Some(value) = options.remove(flag) {
            settings.insert(flag.replace('-', "_"), value);
        }
    }
    if let Some(Value::String(name)) = options.get("objective")
        && name == mlm::INFO.name
        && !settings.is_empty()
    {
        settings.insert("name".into(), Value::String(name.clone()));
        options.insert("objective".into(), Value::Object(settings));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn specs_tables_and_labels_name_the_same_configs() {
        let span: ObjectiveConfig = "mlm:span".parse().unwrap();
        assert_eq!(span.settings()["masking"], "span");
        assert_eq!(span.settings()["mask_rate"], 0.15);
        assert_eq!(span.label(), "mlm:span");
        let spelled: ObjectiveConfig = "mlm:masking=span: mask_rate=0.15".parse().unwrap();
        assert_eq!(spelled, span);
        let table: ObjectiveConfig = serde_json::from_value(json!({"name": "mlm", "masking": "span"})).unwrap();
        assert_eq!(table, span);
        let round: ObjectiveConfig = serde_json::from_value(serde_json::to_value(&span).unwrap()).unwrap();
        assert_eq!(round, span);
        let two: ObjectiveConfig = "mlm:span:mask_rate=0.2".parse().unwrap();
        assert_eq!(two.label(), "mlm:mask_rate=0.2:span");
        assert_eq!(two.label().parse::<ObjectiveConfig>().unwrap(), two);
        for name in names() {
            assert_eq!(ObjectiveConfig::default_of(name).unwrap().label(), name);
        }
    }

    #[test]
    fn bad_specs_name_the_fault() {
        let err = |spec: &str| spec.parse::<ObjectiveConfig>().unwrap_err();
        assert!(err("bert").contains("unknown objective `bert`: choose one of mlm, clm, prefix, electra"));
        assert!(err("mlm:phrase").contains("phrase"), "{}", err("mlm:phrase"));
        assert!(err("mlm:mask_rate=0").contains("mask_rate 0 must be in (0, 1]"));
        assert!(err("mlm:mask_rat=0.2").contains("unknown field `mask_rat`"));
        assert!(err("clm:span").contains("`span` needs a value"));
        assert!(err("clm:x=1").contains("objective clm: unknown field `x`"));
    }

    #[test]
    fn configs_from_before_the_registry_read_as_they_were_meant() {
        let mut config = json!({
            "objective": "mlm",
            "train": {"steps": 3, "mlm": {"mask_rate": 0.2, "mask_token_prob": 0.8, "random_token_prob": 0.1}},
            "options": {"objective": "mlm", "mask-rate": 0.2, "steps": 3},
        });
        upgrade_config(&mut config);
        let objective: ObjectiveConfig = serde_json::from_value(config["objective"].clone()).unwrap();
        assert_eq!(objective.label(), "mlm:mask_rate=0.2");
        assert_eq!(config["train"], json!({"steps": 3}));
        let options: ObjectiveConfig = serde_json::from_value(config["options"]["objective"].clone()).unwrap();
        assert_eq!(options, objective);
        assert!(config["options"].get("mask-rate").is_none());

        let mut causal =
            json!({"objective": "clm", "train": {"mlm": {"mask_rate": 0.15}}, "options": {"objective": "clm"}});
        upgrade_config(&mut causal);
        assert_eq!(causal["objective"], json!({"name": "clm"}));
        assert_eq!(causal["options"]["objective"], "clm");
    }
}
