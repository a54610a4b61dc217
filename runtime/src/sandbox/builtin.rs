//! Guests that ship inside the binary: the JavaScript runner (Boa, pre-initialized
//! with the prelude and lodash) and the API-action guest. Each is loaded at most
//! once per sandbox.

use std::sync::{Arc, OnceLock};

use serde_json::{Value, json};

use super::{ActionModule, Invocation, Sandbox};

/// `guest-sdk/artifacts/js-runner.wasm`, rebuilt by `guest-sdk/scripts/build.sh`.
#[cfg(feature = "builtin-guests")]
pub const JS_RUNNER: &[u8] = include_bytes!("../../../guest-sdk/artifacts/js-runner.wasm");
#[cfg(not(feature = "builtin-guests"))]
pub const JS_RUNNER: &[u8] = &[];

/// `guest-sdk/artifacts/api-action.wasm`.
#[cfg(feature = "builtin-guests")]
pub const API_ACTION: &[u8] = include_bytes!("../../../guest-sdk/artifacts/api-action.wasm");
#[cfg(not(feature = "builtin-guests"))]
pub const API_ACTION: &[u8] = &[];

/// Loaded once; concurrent first callers wait for the one compilation.
type Slot = OnceLock<Result<Arc<ActionModule>, String>>;

#[derive(Default)]
pub(crate) struct Builtins {
    js_runner: Slot,
    api_action: Slot,
}

impl Sandbox {
    /// The JavaScript runner, compiled on first use (and cached on disk).
    pub fn js_runner(&self) -> anyhow::Result<Arc<ActionModule>> {
        self.builtin(&self.builtins.js_runner, JS_RUNNER)
    }

    /// The API-action guest, compiled on first use (and cached on disk).
    pub fn api_action(&self) -> anyhow::Result<Arc<ActionModule>> {
        self.builtin(&self.builtins.api_action, API_ACTION)
    }

    fn builtin(&self, slot: &Slot, bytes: &[u8]) -> anyhow::Result<Arc<ActionModule>> {
        let loaded = slot.get_or_init(|| {
            if bytes.is_empty() {
                return Err(
                    "this sandbot was built without its built-in guests (feature `builtin-guests`)"
                        .into(),
                );
            }
            self.load(bytes).map_err(|e| format!("{e:#}"))
        });
        loaded.clone().map_err(anyhow::Error::msg)
    }
}

impl Invocation {
    /// A code action: `script` runs as the body of an async function with
    /// `args` as its arguments.
    pub fn js(script: &str, args: Value) -> Self {
        Invocation::new(json!({ "script": script, "args": args }))
    }
}

/// The largest initial linear memory of any core module in `bytes` (a module or
/// a component), in bytes: what an instance needs before it runs any code.
pub fn initial_memory_bytes(bytes: &[u8]) -> u64 {
    let mut largest = 0;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        if let Ok(wasmparser::Payload::MemorySection(memories)) = payload {
            for memory in memories.into_iter().flatten() {
                largest = largest.max(memory.initial << 16);
            }
        }
    }
    largest
}

/// Refuses `limits` whose memory cannot even start a built-in guest.
pub fn check_builtin_limits(limits: &super::Limits) -> anyhow::Result<()> {
    // Read once per process: parsing the runner's 14 MB takes a moment.
    static NEEDED: OnceLock<[(&str, u64); 2]> = OnceLock::new();
    let needed = NEEDED.get_or_init(|| {
        [
            ("JavaScript runner", initial_memory_bytes(JS_RUNNER)),
            ("API-action guest", initial_memory_bytes(API_ACTION)),
        ]
    });
    for &(name, needed) in needed {
        if limits.memory_bytes < needed {
            anyhow::bail!(
                "the memory limit of {} MiB is below the {:.1} MiB the {name} needs to start \
                 (every code or API action would fail with `memory_limit`)",
                limits.memory_bytes >> 20,
                super::limits::mib(needed)
            );
        }
    }
    Ok(())
}
