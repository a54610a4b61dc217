//! Texts a bot says: one string, random variants, or either per language.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One text or several variants (one is picked at random per message).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Variants {
    One(String),
    Many(Vec<String>),
}

impl Variants {
    pub fn as_slice(&self) -> &[String] {
        match self {
            Variants::One(s) => std::slice::from_ref(s),
            Variants::Many(v) => v,
        }
    }
}

/// A text, either the same in every language or keyed by language code
/// (`{en: "Hi", nl: "Hallo"}`); a missing language falls back to the bot's
/// primary language.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Text {
    Same(Variants),
    ByLanguage(BTreeMap<String, Variants>),
}

impl Text {
    /// The variants for `language`, falling back to `primary`, then to any.
    pub fn variants(&self, language: &str, primary: &str) -> &[String] {
        match self {
            Text::Same(v) => v.as_slice(),
            Text::ByLanguage(map) => map
                .get(language)
                .or_else(|| map.get(primary))
                .or_else(|| map.values().next())
                .map(Variants::as_slice)
                .unwrap_or(&[]),
        }
    }

    /// Every string in every language (for validation).
    pub fn all(&self) -> Vec<&String> {
        match self {
            Text::Same(v) => v.as_slice().iter().collect(),
            Text::ByLanguage(map) => map.values().flat_map(|v| v.as_slice()).collect(),
        }
    }
}
