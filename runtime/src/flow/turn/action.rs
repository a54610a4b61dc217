//! The flow engine's one door to actions. The sandbox implements it
//! (`crate::runner`); the engine's tests use a fake.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::flow::bot::Plugin;

/// What to run.
#[derive(Clone)]
pub enum ActionCall {
    /// A JavaScript code action: `actions/NAME`, with its `args`.
    Code {
        name: String,
        source: Arc<str>,
        args: Value,
    },
    /// An API action's configuration.
    Api { config: Value },
    /// A plugin in `plugins/NAME` with its input.
    Plugin {
        name: String,
        plugin: Plugin,
        input: Value,
    },
}

impl ActionCall {
    /// `code`, `api` or `plugin`.
    pub fn kind(&self) -> &'static str {
        match self {
            ActionCall::Code { .. } => "code",
            ActionCall::Api { .. } => "api",
            ActionCall::Plugin { .. } => "plugin",
        }
    }

    pub fn name(&self) -> &str {
        match self {
            ActionCall::Code { name, .. } | ActionCall::Plugin { name, .. } => name,
            ActionCall::Api { .. } => "api",
        }
    }
}

/// What a successful action asks of the conversation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActionEffects {
    /// Session writes in order, by path; `null` removes.
    pub session: Map<String, Value>,
    /// Bot messages in type/config format.
    pub messages: Vec<Value>,
    /// The block to continue with (id or label), overriding the block's go-to.
    pub next: Option<String>,
}

/// Why an action failed (the sandbox's failure kinds: `js_error`, `timeout`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionFailure {
    pub kind: String,
    pub message: String,
}

/// What an action used.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ActionStats {
    pub fuel: u64,
    pub memory_bytes: u64,
    pub wall_us: u64,
}

#[derive(Debug, Clone)]
pub struct ActionOutcome {
    pub result: Result<ActionEffects, ActionFailure>,
    pub stats: ActionStats,
    /// `(level, text)` lines the action logged.
    pub logs: Vec<(String, String)>,
}

pub type ActionFuture<'a> = Pin<Box<dyn Future<Output = ActionOutcome> + Send + 'a>>;

pub trait ActionRunner: Send + Sync {
    /// Runs `call` against a copy of the conversation's session. Never panics;
    /// every failure is an [`ActionFailure`].
    fn run<'a>(&'a self, call: ActionCall, session: &'a Value) -> ActionFuture<'a>;
}

/// One action's outcome as the engine reports it (emulator, transcript, metrics).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionReport {
    pub block: String,
    pub action: String,
    pub name: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ActionFailure>,
    pub stats: ActionStats,
    /// `{level, text}` lines the action logged.
    pub logs: Vec<Value>,
}
