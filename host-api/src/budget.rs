//! `sandbot:action/budget`: linked by hand rather than through the generated
//! `Host` trait, because reading the remaining fuel needs the store itself.

use std::time::Instant;

use wasmtime::StoreContextMut;
use wasmtime::component::Linker;

use crate::ActionState;
use crate::bindings::budget::BudgetLeft;

/// The WIT instance name of the interface.
const INTERFACE: &str = "sandbot:action/budget@0.1.0";

pub(crate) fn add_to_linker(linker: &mut Linker<ActionState>) -> wasmtime::Result<()> {
    linker.instance(INTERFACE)?.func_wrap(
        "remaining",
        |mut store: StoreContextMut<'_, ActionState>, (): ()| {
            let fuel = store.get_fuel().unwrap_or(0);
            let state = store.data_mut();
            state.meter.enter(&state.limits, 0)?;
            let wall_ms = state
                .deadline
                .saturating_duration_since(Instant::now())
                .as_millis() as u64;
            Ok((BudgetLeft {
                fuel,
                wall_ms,
                http_calls: state
                    .limits
                    .max_http_calls
                    .saturating_sub(state.meter.http_calls),
                memory_bytes: state.memory.limit.saturating_sub(state.memory.current),
            },))
        },
    )
}
