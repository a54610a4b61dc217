//! Bots written inline for engine tests, a fake action runner, and helpers
//! to read a transcript.

use std::sync::{Arc, Mutex};

use sandbot::flow::turn::script::Conversation;
use sandbot::flow::{
    ActionCall, ActionEffects, ActionFailure, ActionFuture, ActionOutcome, ActionRunner,
    ActionStats, Bot, FlowEngine,
};
use sandbot::store::{DEFAULT_SESSION_TTL, EmbeddedStore, Store};
use serde_json::Value;

/// The three system blocks besides Introduction, for test bots.
pub const SYSTEM: &str = r#"
  - { id: not-understood, system: notUnderstood, type: message, messages: [{ text: "NU" }] }
  - { id: error, system: errorOccurred, type: message, messages: [{ text: "ERR" }] }
  - { id: disabled, system: botDisabled, type: message, messages: [{ text: "OFF" }] }
"#;

/// A bot folder in a temp dir: `bot_yaml` (the id line is added), `blocks`
/// (YAML list items, SYSTEM appended), and `actions/` scripts.
pub fn write_bot(bot_yaml: &str, blocks: &str, scripts: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bot.yaml"),
        format!("id: test\nname: Test\n{bot_yaml}"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("flows")).unwrap();
    std::fs::write(
        dir.path().join("flows/main.yaml"),
        format!("blocks:\n{blocks}{SYSTEM}"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("actions")).unwrap();
    for (name, text) in scripts {
        std::fs::write(dir.path().join("actions").join(name), text).unwrap();
    }
    dir
}

pub fn load(dir: &tempfile::TempDir) -> Bot {
    Bot::load(dir.path()).unwrap_or_else(|p| panic!("{p}"))
}

type Behaviour = dyn Fn(&ActionCall, &Value) -> Result<ActionEffects, ActionFailure> + Send + Sync;

/// Answers every action with `behaviour` and records the calls.
pub struct FakeRunner {
    behaviour: Box<Behaviour>,
    pub calls: Mutex<Vec<(String, Value)>>,
}

impl FakeRunner {
    pub fn new(
        f: impl Fn(&ActionCall, &Value) -> Result<ActionEffects, ActionFailure> + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(Self {
            behaviour: Box::new(f),
            calls: Mutex::new(Vec::new()),
        })
    }

    pub fn ok() -> Arc<Self> {
        Self::new(|_, _| Ok(ActionEffects::default()))
    }
}

impl ActionRunner for FakeRunner {
    fn run<'a>(&'a self, call: ActionCall, session: &'a Value) -> ActionFuture<'a> {
        let input = match &call {
            ActionCall::Code { args, .. } => args.clone(),
            ActionCall::Api { config } => config.clone(),
            ActionCall::Plugin { input, .. } => input.clone(),
        };
        self.calls
            .lock()
            .unwrap()
            .push((call.name().to_string(), input));
        let result = (self.behaviour)(&call, session);
        Box::pin(async move {
            ActionOutcome {
                result,
                stats: ActionStats {
                    fuel: 1,
                    memory_bytes: 0,
                    wall_us: 1,
                },
                logs: Vec::new(),
            }
        })
    }
}

/// An engine on a fresh embedded store (kept in `data`).
pub fn engine(data: &std::path::Path, runner: Arc<dyn ActionRunner>) -> FlowEngine {
    let store: Arc<dyn Store> =
        Arc::new(EmbeddedStore::open(&data.join("s.redb"), DEFAULT_SESSION_TTL).unwrap());
    FlowEngine::new(store, runner, "LIVE")
}

/// Runs `script` in a fresh conversation; returns the events.
pub async fn talk(bot: &Bot, runner: Arc<dyn ActionRunner>, script: &str) -> Vec<Value> {
    talk_session(bot, runner, script).await.0
}

/// Runs `script` in a fresh conversation; returns the events and the session.
pub async fn talk_session(
    bot: &Bot,
    runner: Arc<dyn ActionRunner>,
    script: &str,
) -> (Vec<Value>, Value) {
    let data = tempfile::tempdir().unwrap();
    let engine = engine(data.path(), runner);
    let mut conv = Conversation::new(&engine, bot, "c1");
    let events = conv.run_script(script).await.unwrap();
    let state = engine.store().load(bot.id(), "c1").await.unwrap().unwrap();
    (events, state.session)
}

/// The first text of every bot message (`<type>` for messages without text).
pub fn said(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| e.get("bot"))
        .map(|m| {
            m["config"]["textMessages"][0]["text"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("<{}>", m["type"].as_str().unwrap_or("?")))
        })
        .collect()
}

/// The blocks entered.
pub fn blocks(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| e.get("block"))
        .map(|b| b.as_str().unwrap().to_string())
        .collect()
}

/// The error kinds recorded.
pub fn errors(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| e.get("error"))
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}
