//! One invocation: wait for a slot, a fresh store with the tenant's limits,
//! instantiate, call `run`, classify, drop everything.

use std::time::Instant;

use sandbot_host_api::ActionState;
use serde_json::Value;
use wasmtime::{Store, UpdateDeadline};

use super::classify::{classify_guest_error, classify_trap, timeout};
use super::{ActionModule, Failure, FailureKind, Limits, Outcome, Sandbox, Stats};

/// What to run: the action's input and the conversation's session.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    pub input: Value,
    pub session: Value,
    /// Replays a recorded invocation (its clock, randomness and fetch
    /// answers) instead of reaching the network.
    pub replay: Option<sandbot_host_api::replay::Recording>,
}

impl Invocation {
    pub fn new(input: Value) -> Self {
        Self {
            input,
            session: Value::Object(Default::default()),
            replay: None,
        }
    }

    pub fn with_session(mut self, session: Value) -> Self {
        self.session = session;
        self
    }
}

impl Sandbox {
    /// Runs `module` once under `limits`. Never panics and never fails: every
    /// problem is an [`Outcome`] with a classified [`Failure`]. The guest runs
    /// one slice per poll, in its tenant's CPU share.
    pub async fn invoke(
        &self,
        module: &ActionModule,
        invocation: Invocation,
        limits: &Limits,
    ) -> Outcome {
        let started = Instant::now();
        let deadline = started + limits.timeout;
        let permit = tokio::time::timeout_at(deadline.into(), self.slots.acquire()).await;
        let Ok(Ok(_permit)) = permit else {
            let mut f = timeout(limits);
            f.message = format!(
                "no sandbox slot freed up within the {} ms deadline (all {} slots busy: raise `maxInstances` or lower the load)",
                limits.timeout.as_millis(),
                self.config.max_instances
            );
            return Outcome::failed(f, Default::default(), wall(started, Stats::default()));
        };

        // The engine's epoch ticks while a guest runs.
        let _running = self.ticker.running();
        let mut state = ActionState::new(
            invocation.session,
            limits.egress.clone(),
            limits.host,
            limits.memory_bytes,
            deadline,
            invocation.replay,
        );
        state.memory.budget = limits.memory_budget.clone();
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.memory);
        if let Err(e) = store.set_fuel(limits.fuel) {
            let f = Failure::new(FailureKind::Crashed, format!("setting fuel: {e}"));
            return Outcome::failed(f, Default::default(), wall(started, Stats::default()));
        }
        // Every tick: yield to other tasks, or stop once the deadline has passed.
        store.set_epoch_deadline(1);
        // A slice is at least half a tick of guest code (see fair::slice_elapsed).
        let min_slice = self.config.epoch_tick / 2;
        store.epoch_deadline_callback(move |_| {
            Ok(if Instant::now() >= deadline {
                UpdateDeadline::Interrupt
            } else if super::fair::slice_elapsed().is_some_and(|e| e < min_slice) {
                UpdateDeadline::Continue(1)
            } else {
                UpdateDeadline::Yield(1)
            })
        });

        let input = invocation.input.to_string();
        let call = async {
            let instance = module.pre().instantiate_async(&mut store).await?;
            instance.call_run(&mut store, &input).await
        };
        // One epoch tick of guest code per poll, in the tenant's CPU share.
        let call = self.cpu.run(limits.cpu_share.clone(), call);
        let result = tokio::time::timeout_at(deadline.into(), call).await;

        let fuel_left = store.get_fuel().unwrap_or(0);
        let state = store.data_mut();
        let stats = wall(
            started,
            Stats {
                fuel: limits.fuel.saturating_sub(fuel_left),
                memory_bytes: state.memory.peak,
                wall_us: 0,
                http_calls: state.meter.http_calls,
                host_calls: state.meter.host_calls,
            },
        );
        let effects = state.take_effects();
        // Past the deadline, whatever surfaced first (a fetch cut short, the guest's
        // reaction to it) is a consequence: the cause is the deadline.
        let late = Instant::now() >= deadline && state.meter.abort.is_none();
        match result {
            Err(_) | Ok(Err(_)) | Ok(Ok(Err(_))) if late => {
                Outcome::failed(timeout(limits), effects, stats)
            }
            Err(_elapsed) => Outcome::failed(
                state.meter.abort.clone().unwrap_or_else(|| timeout(limits)),
                effects,
                stats,
            ),
            Ok(Err(trap)) => Outcome::failed(classify_trap(&trap, state, limits), effects, stats),
            Ok(Ok(Err(e))) => Outcome::failed(
                classify_guest_error(e.code, e.message, state, limits),
                effects,
                stats,
            ),
            Ok(Ok(Ok(output))) => {
                if output.len() > limits.max_output_bytes {
                    let f = Failure::new(
                        FailureKind::OutputTooLarge,
                        format!(
                            "the action returned {} bytes; the limit is {}",
                            output.len(),
                            limits.max_output_bytes
                        ),
                    );
                    return Outcome::failed(f, effects, stats);
                }
                match serde_json::from_str(&output) {
                    Ok(value) => Outcome::ok(value, effects, stats),
                    Err(e) => Outcome::failed(
                        Failure::new(
                            FailureKind::Crashed,
                            format!("the action returned invalid JSON: {e}"),
                        ),
                        effects,
                        stats,
                    ),
                }
            }
        }
    }
}

fn wall(started: Instant, mut stats: Stats) -> Stats {
    stats.wall_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    stats
}
