//! The sandbox behind the flow engine's [`ActionRunner`]: code actions in the
//! JavaScript runner, API actions in the API-action guest, plugins as they
//! are, each under the limits it was built with.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde_json::Value;

use crate::flow::{
    ActionCall, ActionEffects, ActionFailure, ActionFuture, ActionOutcome, ActionRunner,
    ActionStats,
};
use crate::sandbox::{ActionModule, Invocation, Limits, Outcome, Sandbox};

pub struct SandboxRunner {
    sandbox: Arc<Sandbox>,
    limits: Limits,
    /// Plugins by content hash, compiled once.
    plugins: RwLock<HashMap<String, Arc<ActionModule>>>,
}

impl SandboxRunner {
    pub fn new(sandbox: Arc<Sandbox>, limits: Limits) -> Self {
        Self {
            sandbox,
            limits,
            plugins: RwLock::new(HashMap::new()),
        }
    }

    fn module(&self, call: &ActionCall) -> anyhow::Result<Arc<ActionModule>> {
        match call {
            ActionCall::Code { .. } => self.sandbox.js_runner(),
            ActionCall::Api { .. } => self.sandbox.api_action(),
            ActionCall::Plugin { plugin, .. } => {
                if let Some(m) = self.plugins.read().expect("not poisoned").get(&plugin.key) {
                    return Ok(m.clone());
                }
                let m = self.sandbox.load(&plugin.bytes)?;
                self.plugins
                    .write()
                    .expect("not poisoned")
                    .insert(plugin.key.clone(), m.clone());
                Ok(m)
            }
        }
    }

    async fn invoke(&self, call: ActionCall, session: &Value) -> ActionOutcome {
        let module = match self.module(&call) {
            Ok(m) => m,
            Err(e) => {
                return ActionOutcome {
                    result: Err(ActionFailure {
                        kind: "crashed".into(),
                        message: format!("loading the {} action: {e:#}", call.kind()),
                    }),
                    stats: ActionStats::default(),
                    logs: Vec::new(),
                };
            }
        };
        let invocation = match call {
            ActionCall::Code { source, args, .. } => Invocation::js(&source, args),
            ActionCall::Api { config } => Invocation::new(config),
            ActionCall::Plugin { input, .. } => Invocation::new(input),
        }
        .with_session(session.clone());
        convert(self.sandbox.invoke(&module, invocation, &self.limits).await)
    }
}

fn convert(outcome: Outcome) -> ActionOutcome {
    let stats = ActionStats {
        fuel: outcome.stats.fuel,
        memory_bytes: outcome.stats.memory_bytes,
        wall_us: outcome.stats.wall_us,
    };
    let logs = outcome
        .effects
        .logs
        .iter()
        .map(|l| (l.level.clone(), l.text.clone()))
        .collect();
    let result = match outcome.error {
        Some(f) => Err(ActionFailure {
            kind: f.kind.as_str().to_string(),
            message: f.message,
        }),
        None => Ok(ActionEffects {
            session: outcome.effects.session,
            messages: outcome.effects.messages,
            next: outcome.effects.next,
        }),
    };
    ActionOutcome {
        result,
        stats,
        logs,
    }
}

impl ActionRunner for SandboxRunner {
    fn run<'a>(&'a self, call: ActionCall, session: &'a Value) -> ActionFuture<'a> {
        Box::pin(self.invoke(call, session))
    }
}
