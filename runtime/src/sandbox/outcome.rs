//! The result of one invocation: the JSON document `sandbot action run` prints
//! and the flow engine consumes.

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use sandbot_host_api::{Effects, Failure, FailureKind, FetchRecord, LogLine};

/// `ok` or `error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Error,
}

/// What an invocation used.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Fuel consumed.
    pub fuel: u64,
    /// Peak linear memory of the instance, in bytes.
    pub memory_bytes: u64,
    /// Wall time of the whole invocation (queueing for a slot included).
    pub wall_us: u64,
    /// `http.fetch` calls made.
    pub http_calls: u32,
    /// Host calls of any kind (session, conversation, http, budget).
    pub host_calls: u64,
}

/// One invocation's outcome. On error, `session`, `messages` and `next` are
/// empty (nothing applies); `logs` and `fetches` are kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
    /// The value `run` returned (`null` on error).
    pub output: Value,
    #[serde(flatten)]
    pub effects: Effects,
    pub stats: Stats,
}

impl Outcome {
    pub fn is_ok(&self) -> bool {
        self.status == Status::Ok
    }

    /// The failure kind, if the invocation failed.
    pub fn kind(&self) -> Option<FailureKind> {
        self.error.as_ref().map(|e| e.kind)
    }

    pub(crate) fn ok(output: Value, effects: Effects, stats: Stats) -> Self {
        Self {
            status: Status::Ok,
            error: None,
            output,
            effects,
            stats,
        }
    }

    /// A failure: of `effects`, only the logs, fetches and recording are kept.
    pub(crate) fn failed(failure: Failure, effects: Effects, stats: Stats) -> Self {
        Self {
            status: Status::Error,
            error: Some(failure),
            output: Value::Null,
            effects: Effects {
                logs: effects.logs,
                fetches: effects.fetches,
                recording: effects.recording,
                ..Effects::default()
            },
            stats,
        }
    }
}
