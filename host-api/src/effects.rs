//! What an invocation produces for the flow, and how a failure is classified.
//! This is the JSON shape the CLI prints and the runtime consumes.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Why an invocation failed, for the bot builder and the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The fuel budget (instructions) ran out.
    OutOfFuel,
    /// The wall-clock deadline passed (or no sandbox slot freed up in time).
    Timeout,
    /// The instance tried to grow its memory past the tenant's limit.
    MemoryLimit,
    /// The guest's call stack overflowed.
    StackOverflow,
    /// The egress policy refused a request and the action failed, or the action
    /// made more HTTP calls than allowed.
    EgressDenied,
    /// The output, or the data crossing the sandbox boundary, passed its cap.
    OutputTooLarge,
    /// JavaScript code failed: a syntax error, an uncaught exception, a promise
    /// that never settles (the message says which, with the script's line).
    JsError,
    /// The guest returned its own error.
    GuestError,
    /// Any other trap (a panic, an invalid module, a host-side fault).
    Crashed,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OutOfFuel => "out_of_fuel",
            Self::Timeout => "timeout",
            Self::MemoryLimit => "memory_limit",
            Self::StackOverflow => "stack_overflow",
            Self::EgressDenied => "egress_denied",
            Self::OutputTooLarge => "output_too_large",
            Self::JsError => "js_error",
            Self::GuestError => "guest_error",
            Self::Crashed => "crashed",
        }
    }

    /// Every kind, for metrics and documentation.
    pub const ALL: [FailureKind; 9] = [
        Self::OutOfFuel,
        Self::Timeout,
        Self::MemoryLimit,
        Self::StackOverflow,
        Self::EgressDenied,
        Self::OutputTooLarge,
        Self::JsError,
        Self::GuestError,
        Self::Crashed,
    ];
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A classified failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
    /// The guest's own error code, for `guest_error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

impl Failure {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            code: None,
        }
    }
}

/// One log line written by the guest (or captured from its stdout/stderr).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub level: String,
    pub text: String,
}

/// The buffered effects of an invocation: applied by the flow only on success.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Effects {
    /// Session writes in the order they happened, by path; `null` removes.
    pub session: Map<String, Value>,
    /// Bot messages in Chatlayer's type/config format.
    pub messages: Vec<Value>,
    /// The block to continue with (last `goto` wins).
    pub next: Option<String>,
    /// Kept whether the invocation succeeds or fails.
    pub logs: Vec<LogLine>,
    /// Every `http.fetch` call, in order (kept on failure too).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fetches: Vec<FetchRecord>,
    /// What replays the invocation (kept in the process, never printed).
    #[serde(skip)]
    pub recording: Option<crate::replay::Recording>,
}

/// One `http.fetch` call as the studio shows it: what was asked and how it
/// ended (never its headers: they may carry credentials).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FetchRecord {
    pub method: String,
    pub url: String,
    /// The response's status; none when the call failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why it failed: `denied: …` (the egress policy), `timeout`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Response body bytes.
    #[serde(default)]
    pub bytes: u64,
    pub ms: u64,
}

impl Effects {
    /// Applies the session writes to `doc` in order.
    pub fn apply_session(&self, doc: &mut Value) -> Result<(), crate::PathError> {
        for (path, value) in &self.session {
            let path = crate::JsonPath::parse(path)?;
            if value.is_null() {
                path.remove(doc);
            } else {
                path.set(doc, value.clone())?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn session_writes_replay_in_order_and_null_removes() {
        let mut effects = Effects::default();
        effects.session.insert("user.name".into(), json!("Ann"));
        effects.session.insert("items[0]".into(), json!(1));
        effects.session.insert("old".into(), Value::Null);
        let mut doc = json!({"old": true, "user": {"age": 3}});
        effects.apply_session(&mut doc).unwrap();
        assert_eq!(
            doc,
            json!({"user": {"age": 3, "name": "Ann"}, "items": [1]})
        );
    }
}
