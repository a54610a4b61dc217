//! The API action's configuration, as a bot builder sets it up.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiAction {
    /// GET, POST, PUT, PATCH or DELETE.
    #[serde(default = "get")]
    pub method: String,
    /// The URL; `{path}` placeholders are filled from the session.
    pub url: String,
    #[serde(default)]
    pub query: Vec<Row>,
    #[serde(default)]
    pub headers: Vec<Row>,
    /// JSON body fields (sent when there is at least one).
    #[serde(default)]
    pub body: Vec<Row>,
    pub auth: Option<Auth>,
    pub timeout_ms: Option<u32>,
}

fn get() -> String {
    "GET".into()
}

/// One query, header or body row.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Row {
    pub key: String,
    #[serde(rename = "type", default)]
    pub kind: RowKind,
    pub value: serde_json::Value,
}

/// How a row's value is read.
#[derive(Debug, Default, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RowKind {
    /// The value as written.
    #[default]
    Text,
    /// A session path; the JSON type is kept in bodies.
    Variable,
    /// A block id, sent as a string.
    Dialogstate,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Auth {
    Basic { username: String, password: String },
    Bearer { token: String },
}
