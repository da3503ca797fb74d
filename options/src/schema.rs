//! The schema of an option set: each option's key, flag, help, kind, choices and default, as
//! [`option_set!`] declares them once. The CLI's flags, `--config` TOML keys, `config.json`'s
//! `options` and the dashboard's form (served as JSON) all come from it.

use std::path::PathBuf;

use primer_datasets::corpus::DocSplit;
use primer_datasets::tokenizer::TokenizerKind;
use primer_model::Positions;
use primer_objectives::ObjectiveConfig;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backend::Backend;

/// One option: what a form, a help text or a config reader needs to know of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OptionSpec {
    /// Its config key (`seq-len`); the flag is `--` and the key.
    pub key: String,
    /// What it does.
    pub help: String,
    /// What its values are: `integer`, `number`, `text`, `path`, `paths`, `bool`, `choice` or
    /// `objective`.
    pub kind: &'static str,
    /// The values of a `choice`.
    pub choices: Vec<&'static str>,
    /// The value it takes when unset, if it is a value.
    pub default: Option<serde_json::Value>,
    /// The default said in words: the value, or how it follows from other options
    /// (`lr / 10`).
    pub default_text: Option<String>,
}

/// A type an option can hold.
pub trait OptionValue: Sized + Clone {
    /// What clap parses one command-line value into (a list option's element).
    type Item: Clone + Send + Sync + 'static;
    /// The kind named in [`OptionSpec::kind`].
    const KIND: &'static str;

    /// The values a choice takes.
    fn choices() -> Vec<&'static str> {
        Vec::new()
    }

    /// Parses one command-line value.
    fn parse(text: &str) -> Result<Self::Item, String>;

    /// The value as the command line writes it.
    fn flag_text(&self) -> String;
}

macro_rules! from_str_values {
    ($($ty:ty => $kind:literal),* $(,)?) => {$(
        impl OptionValue for $ty {
            type Item = $ty;
            const KIND: &'static str = $kind;

            fn parse(text: &str) -> Result<Self, String> {
                text.parse().map_err(|e| format!("{e}"))
            }

            fn flag_text(&self) -> String {
                self.to_string()
            }
        }
    )*};
}

from_str_values!(u64 => "integer", usize => "integer", bool => "bool", String => "text");

impl OptionValue for f64 {
    type Item = f64;
    const KIND: &'static str = "number";

    fn parse(text: &str) -> Result<Self, String> {
        text.parse().map_err(|e| format!("{e}"))
    }

    /// With a decimal point (`1.0`), so a number reads as one.
    fn flag_text(&self) -> String {
        format!("{self:?}")
    }
}

impl OptionValue for PathBuf {
    type Item = PathBuf;
    const KIND: &'static str = "path";

    fn parse(text: &str) -> Result<Self, String> {
        Ok(PathBuf::from(text))
    }

    fn flag_text(&self) -> String {
        self.display().to_string()
    }
}

/// Files, folders, globs or names: one flag value, comma-separated.
impl OptionValue for Vec<String> {
    type Item = String;
    const KIND: &'static str = "paths";

    fn parse(text: &str) -> Result<String, String> {
        Ok(text.to_string())
    }

    fn flag_text(&self) -> String {
        self.join(",")
    }
}

impl OptionValue for ObjectiveConfig {
    type Item = ObjectiveConfig;
    const KIND: &'static str = "objective";

    fn choices() -> Vec<&'static str> {
        primer_objectives::registry::names()
    }

    fn parse(text: &str) -> Result<Self, String> {
        text.parse()
    }

    fn flag_text(&self) -> String {
        self.label()
    }
}

macro_rules! named_values {
    ($($ty:ty: [$($name:literal),*]),* $(,)?) => {$(
        impl OptionValue for $ty {
            type Item = $ty;
            const KIND: &'static str = "choice";

            fn choices() -> Vec<&'static str> {
                vec![$($name),*]
            }

            fn parse(text: &str) -> Result<Self, String> {
                parse_name(text)
            }

            fn flag_text(&self) -> String {
                serde_json::to_value(self).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
            }
        }
    )*};
}

named_values!(
    TokenizerKind: ["bpe", "wordpiece", "char"],
    Positions: ["rotary", "learned"],
    DocSplit: ["paragraph", "line", "file"],
    Backend: ["flex", "wgpu", "tch", "cuda"],
);

/// Parses a lower-case name into any serde enum (`mlm`, `bpe`, `rotary`, ...); the error lists
/// the accepted names.
pub fn parse_name<T: DeserializeOwned>(name: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).map_err(|e| e.to_string())
}

/// An option's help: its doc comment's lines joined, then its default.
pub fn help(doc: &[&str], default: Option<String>) -> String {
    let text = doc.iter().map(|line| line.trim()).collect::<Vec<_>>().join(" ");
    let text = text.trim_end_matches('.');
    match default {
        Some(default) => format!("{text} [default: {default}]"),
        None => text.to_string(),
    }
}

/// Declares a set of options once: the struct (each option a flag and a config key, unset as
/// `None` so that flags, a config file and a stored run can be layered with `or`), its
/// defaults, its schema and its command line.
///
/// Each option is `name: Type`, then `= default` (a value) or `; derived "how"` (a default
/// that follows from other options), or nothing (no default); `#[arg(..)]` adds clap settings.
macro_rules! option_set {
    (
        $(#[doc = $struct_doc:literal])*
        pub struct $Name:ident {
            $( #[flatten] $flat:ident : $Flat:ty, )*
            $(
                $(#[doc = $doc:literal])*
                $(#[arg($($arg:tt)*)])?
                $name:ident : $ty:ty $(= $default:expr)? $(; derived $derived:literal)?
            ),* $(,)?
        }
    ) => {
        $(#[doc = $struct_doc])*
        #[derive(clap::Args, Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq)]
        #[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
        pub struct $Name {
            $(
                #[allow(missing_docs)]
                #[command(flatten)]
                #[serde(flatten)]
                pub $flat: $Flat,
            )*
            $(
                $(#[doc = $doc])*
                #[arg(
                    long,
                    help = $crate::schema::help(&[$($doc),*], Self::default_text_of(stringify!($name))),
                    value_parser = <$ty as $crate::schema::OptionValue>::parse
                    $(, $($arg)*)?
                )]
                #[serde(skip_serializing_if = "Option::is_none")]
                pub $name: Option<$ty>,
            )*
        }

        impl $Name {
            /// Fills what `self` leaves unset from `base` (flags over a config file).
            pub fn or(self, base: $Name) -> $Name {
                $Name {
                    $( $flat: self.$flat.or(base.$flat), )*
                    $( $name: self.$name.or(base.$name), )*
                }
            }

            $($(
                #[doc = concat!("`", stringify!($name), "`, or its default.")]
                pub fn $name(&self) -> $ty {
                    self.$name.clone().unwrap_or_else(|| $default)
                }
            )?)*

            /// How the default of the option `name` (a field name) reads, if it has one.
            fn default_text_of(name: &str) -> Option<String> {
                match name {
                    $(
                        $( stringify!($name) => Some($crate::schema::OptionValue::flag_text(&{ let value: $ty = $default; value })), )?
                        $( stringify!($name) => Some($derived.to_string()), )?
                    )*
                    _ => None,
                }
            }

            /// Every option of the set, flattened ones first, in declaration order.
            pub fn schema() -> Vec<$crate::schema::OptionSpec> {
                let mut specs = Vec::new();
                $( specs.extend(<$Flat>::schema()); )*
                $(
                    let default: Option<$ty> = None $( .or(Some($default)) )?;
                    specs.push($crate::schema::OptionSpec {
                        key: stringify!($name).replace('_', "-"),
                        help: $crate::schema::help(&[$($doc),*], None),
                        kind: <$ty as $crate::schema::OptionValue>::KIND,
                        choices: <$ty as $crate::schema::OptionValue>::choices(),
                        default: default.map(|value| serde_json::to_value(value).expect("defaults serialize")),
                        default_text: Self::default_text_of(stringify!($name)),
                    });
                )*
                specs
            }

            /// The options that are set, as command-line arguments (`--seq-len 64 ...`).
            pub fn to_args(&self) -> Vec<String> {
                let mut args = Vec::new();
                $( args.extend(self.$flat.to_args()); )*
                $(
                    if let Some(value) = &self.$name {
                        args.push(format!("--{}", stringify!($name).replace('_', "-")));
                        args.push($crate::schema::OptionValue::flag_text(value));
                    }
                )*
                args
            }
        }
    };
}

pub(crate) use option_set;
