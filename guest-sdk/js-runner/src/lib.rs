//! The JavaScript code-action guest.
//!
//! A Boa context with the prelude (Chatlayer's code-editor API, `fetch`,
//! `console`, timers, the native `session`/`say`/`goto`) and lodash is built
//! once by `wizer-initialize` and snapshotted with wasmtime-wizer, so every
//! invocation starts from the ready state. Each invocation is a fresh instance
//! of that snapshot: nothing a script does survives it.
//!
//! Input: `{"script": "...", "args": {...}}`. Output: the script's return value.

mod alloc;
mod context;
mod drive;
mod natives;
mod timers;
mod web;

use sandbot_sdk::{Action, ActionError, Value};

struct JsRunner;

impl Action for JsRunner {
    fn run(input: Value) -> Result<Value, ActionError> {
        let script = input["script"]
            .as_str()
            .ok_or_else(|| ActionError::new("invalid_input", "`script` must be a string"))?;
        let args = input.get("args").cloned().unwrap_or(Value::Null);
        context::with(|ctx| drive::run_script(ctx, script, &args))
    }
}

/// Builds the context before the snapshot (called by wasmtime-wizer only).
#[unsafe(export_name = "wizer-initialize")]
pub extern "C" fn wizer_initialize() {
    alloc::reserve_arena();
    context::with(|_| ());
    alloc::start_fresh_arena();
}

sandbot_sdk::export_action!(JsRunner);
