//! Host side of Sandbot's WIT contract (`wit/action.wit`).
//!
//! - [`bindings`]: the single `bindgen!`;
//! - one module per interface: [`session`], [`conversation`], [`http`], [`budget`];
//! - [`egress`]: the deny-by-default policy behind `http.fetch`;
//! - [`ActionState`]: the per-invocation store data. Guest writes (session values,
//!   messages, the next block) are buffered in it and handed back as [`Effects`],
//!   which the flow applies only when the invocation succeeds.
//!
//! ```no_run
//! use std::{sync::Arc, time::{Duration, Instant}};
//! use sandbot_host_api::{ActionState, HostLimits, egress::{Egress, EgressPolicy}};
//!
//! let egress = Arc::new(Egress::new(EgressPolicy::default()).unwrap());
//! let state = ActionState::new(
//!     serde_json::json!({"user": {"firstName": "Ann"}}),
//!     egress,
//!     HostLimits::default(),
//!     64 << 20,
//!     Instant::now() + Duration::from_secs(2),
//!     None,
//! );
//! // Put `state` in a wasmtime Store, link with `sandbot_host_api::add_to_linker`.
//! # drop(state);
//! ```

pub mod bindings;
pub mod budget;
pub mod conversation;
mod effects;
pub mod egress;
pub mod http;
mod json_path;
mod meter;
pub mod replay;
pub mod session;

use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

pub use effects::{Effects, Failure, FailureKind, FetchRecord, LogLine};
pub use json_path::{JsonPath, PathError, Segment};
pub use meter::{HostLimits, MemoryBudget, MemoryMeter, Meter};

/// Captured stdout/stderr per stream; past this, writes fail (and are dropped).
const STDIO_CAPTURE_BYTES: usize = 64 << 10;

/// The data of one invocation's store.
pub struct ActionState {
    /// The session as the guest sees it: the real one plus its own writes.
    session: Value,
    effects: Effects,
    pub meter: Meter,
    pub memory: MemoryMeter,
    limits: HostLimits,
    egress: Arc<egress::Egress>,
    deadline: Instant,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
    wasi: WasiCtx,
    table: ResourceTable,
    /// What makes this invocation repeatable (its answers added as they come).
    recording: replay::Recording,
    /// Replaying: the recorded answers not handed out yet.
    answers: Option<std::collections::VecDeque<replay::Answer>>,
}

impl ActionState {
    /// State for one invocation over `session`, ending at `deadline` at the latest;
    /// with `replay`, one that replays that recording (its clock, its
    /// randomness, and its fetch answers in order instead of the network).
    ///
    /// WASI is reduced to what the preview1 adapter needs: no files, no
    /// environment, no sockets; clocks are real (or the recording's),
    /// randomness comes from a seed the invocation's
    /// [`Recording`](replay::Recording) keeps.
    pub fn new(
        session: Value,
        egress: Arc<egress::Egress>,
        limits: HostLimits,
        memory_limit: u64,
        deadline: Instant,
        replay: Option<replay::Recording>,
    ) -> Self {
        let replaying = replay.is_some();
        let recording = replay.unwrap_or_else(replay::Recording::start);
        let stdout = MemoryOutputPipe::new(STDIO_CAPTURE_BYTES);
        let stderr = MemoryOutputPipe::new(STDIO_CAPTURE_BYTES);
        let (secure, insecure, seed) = recording.rngs();
        let mut builder = WasiCtx::builder();
        builder
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .secure_random(secure)
            .insecure_random(insecure)
            .insecure_random_seed(seed);
        if replaying {
            builder.wall_clock(recording.clock());
        }
        let wasi = builder.build();
        let answers = replaying.then(|| recording.queue());
        Self {
            session,
            effects: Effects::default(),
            meter: Meter::default(),
            memory: MemoryMeter::new(memory_limit),
            limits,
            egress,
            deadline,
            stdout,
            stderr,
            wasi,
            table: ResourceTable::new(),
            recording,
            answers,
        }
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    pub(crate) fn effects_mut(&mut self) -> &mut Effects {
        &mut self.effects
    }

    /// The buffered effects plus what the guest printed (as log lines).
    pub fn take_effects(&mut self) -> Effects {
        let mut effects = std::mem::take(&mut self.effects);
        effects.recording = Some(std::mem::replace(
            &mut self.recording,
            replay::Recording {
                clock_ms: 0,
                seed: String::new(),
                answers: Vec::new(),
            },
        ));
        for (level, pipe) in [("info", &self.stdout), ("warn", &self.stderr)] {
            let bytes = pipe.contents();
            for line in String::from_utf8_lossy(&bytes).lines() {
                if !line.trim().is_empty() {
                    effects.logs.push(LogLine {
                        level: level.to_string(),
                        text: format!(
                            "[{}] {line}",
                            if level == "info" { "stdout" } else { "stderr" }
                        ),
                    });
                }
            }
        }
        if self.meter.dropped_logs > 0 {
            effects.logs.push(LogLine {
                level: "warn".into(),
                text: format!("{} more log lines dropped", self.meter.dropped_logs),
            });
        }
        effects
    }

    /// The last line the guest wrote to stderr (a Rust panic message, say),
    /// skipping the `note: run with RUST_BACKTRACE` hint.
    pub fn last_stderr_line(&self) -> Option<String> {
        let bytes = self.stderr.contents();
        String::from_utf8_lossy(&bytes)
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty() && !l.starts_with("note: "))
            .map(str::to_string)
    }
}

impl WasiView for ActionState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Adds WASI (for the preview1 adapter) and every `sandbot:action` interface.
pub fn add_to_linker(linker: &mut Linker<ActionState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    bindings::session::add_to_linker::<_, HasSelf<ActionState>>(linker, |s| s)?;
    bindings::conversation::add_to_linker::<_, HasSelf<ActionState>>(linker, |s| s)?;
    bindings::http::add_to_linker::<_, HasSelf<ActionState>>(linker, |s| s)?;
    budget::add_to_linker(linker)
}
