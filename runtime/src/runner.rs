//! The sandbox behind the flow engine's [`ActionRunner`]: code actions in the
//! JavaScript runner, API actions in the API-action guest, plugins as they
//! are, each under the limits it was built with.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Semaphore;

use crate::flow::{
    ActionCall, ActionEffects, ActionFailure, ActionFuture, ActionOutcome, ActionRunner,
    ActionStats,
};
use crate::sandbox::{
    ActionModule, Effects, Failure, FailureKind, Invocation, Limits, Outcome, Sandbox, Stats,
};
use crate::studio::failures::{FailureLog, FailureRecord};
use sandbot_host_api::replay::Recording;

pub struct SandboxRunner {
    sandbox: Arc<Sandbox>,
    limits: Limits,
    /// Plugins by content hash, compiled once.
    plugins: RwLock<HashMap<String, Arc<ActionModule>>>,
    /// This tenant's actions at once, at most: one tenant cannot take every
    /// sandbox slot of the process.
    running: Option<(Arc<Semaphore>, usize)>,
    /// Failed code actions kept for the studio's replay.
    failures: Option<Arc<FailureLog>>,
}

impl SandboxRunner {
    pub fn new(sandbox: Arc<Sandbox>, limits: Limits) -> Self {
        Self {
            sandbox,
            limits,
            plugins: RwLock::new(HashMap::new()),
            running: None,
            failures: None,
        }
    }

    /// At most `cap` of these actions at once; the next waits for one to
    /// finish within its own deadline (the wait counts against it).
    pub fn with_cap(mut self, cap: usize) -> Self {
        self.running = Some((Arc::new(Semaphore::new(cap)), cap));
        self
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

    /// Failed code actions are kept in `log` (see [`FailureLog`]).
    pub fn with_failures(mut self, log: Arc<FailureLog>) -> Self {
        self.failures = Some(log);
        self
    }

    pub fn failures(&self) -> Option<&Arc<FailureLog>> {
        self.failures.as_ref()
    }

    /// The limits this runner's actions run under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Runs `call` over `session` under the tenant's limits and cap, with
    /// everything the sandbox reports (the studio's run panel).
    pub async fn outcome(&self, call: ActionCall, session: &Value) -> Outcome {
        self.outcome_with(call, session, None).await
    }

    /// Like [`outcome`](Self::outcome), replaying `recording` (its clock,
    /// randomness and fetch answers) when given.
    pub async fn outcome_with(
        &self,
        call: ActionCall,
        session: &Value,
        recording: Option<Recording>,
    ) -> Outcome {
        let started = Instant::now();
        let deadline = started + self.limits.timeout;
        // What the action waited for one of the tenant's slots (none when
        // one was free at once).
        let mut waited = Duration::ZERO;
        let _turn = match &self.running {
            Some((slots, _)) if let Ok(permit) = slots.clone().try_acquire_owned() => Some(permit),
            Some((slots, cap)) => {
                let permit =
                    tokio::time::timeout_at(deadline.into(), slots.clone().acquire_owned());
                match permit.await {
                    Ok(Ok(permit)) if deadline > Instant::now() => {
                        waited = started.elapsed();
                        Some(permit)
                    }
                    _ => {
                        let message = format!(
                            "this tenant already runs {cap} actions at once (maxConcurrentActions) and none finished within the {} ms deadline",
                            self.limits.timeout.as_millis()
                        );
                        return failed(FailureKind::Timeout, message);
                    }
                }
            }
            None => None,
        };
        let module = match self.module(&call) {
            Ok(m) => m,
            Err(e) => {
                return failed(
                    FailureKind::Crashed,
                    format!("loading the {} action: {e:#}", call.kind()),
                );
            }
        };
        let invocation = match call {
            ActionCall::Code { source, args, .. } => Invocation::js(&source, args),
            ActionCall::Api { config } => Invocation::new(config),
            ActionCall::Plugin { input, .. } => Invocation::new(input),
        }
        .with_session(session.clone());
        let invocation = Invocation {
            replay: recording,
            ..invocation
        };
        if waited.as_millis() == 0 {
            return self.sandbox.invoke(&module, invocation, &self.limits).await;
        }
        // The wait for a slot counts against the action's deadline.
        let mut limits = self.limits.clone();
        limits.timeout = self.limits.timeout.saturating_sub(waited);
        let mut outcome = self.sandbox.invoke(&module, invocation, &limits).await;
        if let Some(f) = &mut outcome.error
            && f.kind == FailureKind::Timeout
        {
            f.message = format!(
                "the action did not finish within its {} ms deadline, {} ms of which it waited for one of this tenant's maxConcurrentActions slots",
                self.limits.timeout.as_millis(),
                waited.as_millis()
            );
        }
        outcome
    }
}

fn failed(kind: FailureKind, message: String) -> Outcome {
    Outcome::failed(
        Failure::new(kind, message),
        Effects::default(),
        Stats::default(),
    )
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
        Box::pin(async move {
            // A code action's failure is kept for replay with what it ran on.
            let kept = match (&self.failures, &call) {
                (Some(log), ActionCall::Code { name, source, args }) => {
                    Some((log, name.clone(), source.clone(), args.clone()))
                }
                _ => None,
            };
            let mut outcome = self.outcome(call, session).await;
            let recording = outcome.effects.recording.take();
            if let (Some((log, name, source, args)), Some(error), Some(recording)) =
                (kept, &outcome.error, recording)
            {
                log.push(FailureRecord::new(
                    crate::flow::session_key(session),
                    session["internal"]["sessionId"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    name,
                    &source,
                    args,
                    session.clone(),
                    error.clone(),
                    recording,
                ))
                .await;
            }
            convert(outcome)
        })
    }
}
