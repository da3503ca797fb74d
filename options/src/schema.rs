//! Options declared once: [`option_set!`] makes each option a flag, a config key and a default,
//! from which the CLI's flags, `--config` TOML keys and `config.json`'s `options` all come; and
//! [`options_of`] reads any command's options back from clap (key, help, kind, choices,
//! default), as the dashboard serves them to its forms.

use std::path::PathBuf;

use clap::builder::TypedValueParser;
use primer_datasets::corpus::DocSplit;
use primer_datasets::shots::ShotOrder;
use primer_datasets::tokenizer::TokenizerKind;
use primer_model::{Pooling, Positions, Precision};
use primer_objectives::ObjectiveConfig;
use primer_objectives::scoring::Pll;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backend::Backend;
use crate::presets::ModelPreset;

/// One option of a command, as clap declares it: what a form, a help text or a config reader
/// needs to know of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OptionSpec {
    /// Its key (`seq-len`): the flag is `--` and the key; a positional argument's name.
    pub key: String,
    /// What it does.
    pub help: String,
    /// What its values are: `integer`, `number`, `text`, `path`, `bool` (a value, `true` or
    /// `false`), `flag` (present or not), `choice` or `objective`.
    pub kind: &'static str,
    /// The values of a `choice` (an `objective`: the registry's names).
    pub choices: Vec<String>,
    /// The default said in words: the value, or how it follows from other options
    /// (`lr / 10`).
    pub default_text: Option<String>,
    /// Whether the command needs it.
    pub required: bool,
    /// Whether it is given by position, without a flag.
    pub positional: bool,
    /// Whether it takes several values, comma-separated.
    pub list: bool,
}

/// Every option of a clap command (flags and positional arguments, `--help` and hidden ones
/// left out), in declaration order: the same definitions the command line parses.
pub fn options_of(command: &clap::Command) -> Vec<OptionSpec> {
    command
        .get_arguments()
        .filter(|arg| !arg.is_hide_set() && !matches!(arg.get_id().as_str(), "help" | "version"))
        .map(|arg| {
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            let defaults: Vec<String> = arg
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            let default_text = if matches!(arg.get_action(), clap::ArgAction::SetTrue) {
                None
            } else if defaults.is_empty() {
                stated_default(&help)
            } else {
                Some(defaults.join(","))
            };
            let choices: Vec<String> = arg
                .get_possible_values()
                .iter()
                .map(|v| v.get_name().to_string())
                .collect();
            let list = arg.get_value_delimiter().is_some() || arg.get_num_args().is_some_and(|n| n.max_values() > 1);
            OptionSpec {
                key: arg
                    .get_long()
                    .map_or_else(|| arg.get_id().as_str().replace('_', "-"), str::to_string),
                kind: kind_of(arg, !choices.is_empty()),
                help,
                choices,
                default_text,
                required: arg.is_required_set(),
                positional: arg.is_positional(),
                list,
            }
        })
        .collect()
}

/// The kind of an argument's values, from the type its parser makes.
fn kind_of(arg: &clap::Arg, has_choices: bool) -> &'static str {
    use std::any::TypeId;
    if matches!(arg.get_action(), clap::ArgAction::SetTrue) {
        return "flag";
    }
    let made = arg.get_value_parser().type_id();
    let is = |id: TypeId| made == id;
    if is(TypeId::of::<ObjectiveConfig>()) {
        "objective"
    } else if has_choices {
        "choice"
    } else if [TypeId::of::<u64>(), TypeId::of::<usize>(), TypeId::of::<u32>()]
        .into_iter()
        .any(is)
    {
        "integer"
    } else if is(TypeId::of::<f64>()) {
        "number"
    } else if is(TypeId::of::<bool>()) {
        "bool"
    } else if is(TypeId::of::<PathBuf>()) {
        "path"
    } else {
        "text"
    }
}

/// The default an option's help states (`[default: X]`, as [`help`] writes it).
fn stated_default(help: &str) -> Option<String> {
    let start = help.rfind("[default: ")?;
    let rest = &help[start + "[default: ".len()..];
    Some(rest.strip_suffix(']').unwrap_or(rest).to_string())
}

/// clap's parser of an [`OptionValue`]: [`OptionValue::parse`], and the choices it accepts, so
/// that `--help` and the dashboard's forms list them.
#[derive(Debug)]
pub struct OptionParser<T>(std::marker::PhantomData<fn() -> T>);

impl<T> Clone for OptionParser<T> {
    fn clone(&self) -> Self {
        Self(std::marker::PhantomData)
    }
}

/// The clap parser of option values of type `T` (`value_parser = parser::<DocSplit>()`).
pub fn parser<T: OptionValue>() -> OptionParser<T> {
    OptionParser(std::marker::PhantomData)
}

impl<T: OptionValue + 'static> TypedValueParser for OptionParser<T> {
    type Value = T::Item;

    fn parse_ref(
        &self,
        command: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<T::Item, clap::Error> {
        // A function parser words the error as clap does (`invalid value 'x' for '--flag'`).
        let parse: fn(&str) -> Result<T::Item, String> = T::parse;
        parse.parse_ref(command, arg, value)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        let choices = T::choices();
        (!choices.is_empty()).then(|| {
            Box::new(choices.into_iter().map(clap::builder::PossibleValue::new)) as Box<dyn Iterator<Item = _>>
        })
    }
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
    Pooling: ["first", "last", "mean"],
    Positions: ["rotary", "learned"],
    DocSplit: ["paragraph", "line", "file"],
    Backend: ["flex", "wgpu", "tch", "cuda"],
    ShotOrder: ["balanced", "random"],
    ModelPreset: ["gpt2-small", "gpt2-medium", "bert-base", "bert-small", "tiny"],
    Precision: ["f32", "bf16", "f16"],
    Pll: ["original", "word-l2r"],
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
                    value_parser = $crate::schema::parser::<$ty>()
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
