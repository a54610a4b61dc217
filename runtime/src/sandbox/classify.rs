//! Turns whatever stopped an invocation into a [`Failure`] with the right kind.
//! Order matters: a meter that tripped knows the cause better than the trap it
//! caused (a failed allocation surfaces as `unreachable`, say).

use sandbot_host_api::ActionState;
use wasmtime::Trap;

use super::{Failure, FailureKind, Limits};

/// Classifies an error raised by instantiation or by the call.
pub fn classify_trap(err: &wasmtime::Error, state: &ActionState, limits: &Limits) -> Failure {
    if let Some(abort) = &state.meter.abort {
        return abort.clone();
    }
    let trap = err.downcast_ref::<Trap>().copied();
    match trap {
        Some(Trap::OutOfFuel) => Failure::new(
            FailureKind::OutOfFuel,
            format!("the action used up its fuel budget of {}", limits.fuel),
        ),
        Some(Trap::Interrupt) => timeout(limits),
        Some(Trap::StackOverflow) => Failure::new(
            FailureKind::StackOverflow,
            "the action overflowed its call stack (unbounded recursion?)",
        ),
        _ if state.memory.hit => memory_limit(state, limits),
        _ if state.meter.denied.is_some() => denied(state),
        Some(Trap::MemoryOutOfBounds) => Failure::new(
            FailureKind::Crashed,
            "the action trapped: out of bounds memory access (in Rust guests usually the \
             stack in linear memory running out: unbounded recursion; build with a larger \
             `-zstack-size`, see the README)",
        ),
        _ => {
            let mut message = match trap {
                Some(t) => format!("the action trapped: {t}"),
                None => format!("the action failed: {}", root_message(err)),
            };
            if let Some(line) = state.last_stderr_line() {
                message.push_str(&format!(" ({line})"));
            }
            Failure::new(FailureKind::Crashed, message)
        }
    }
}

/// Classifies the guest's own error value. A refused address or a refused
/// memory growth before it is the cause (the JS runner, say, turns a failed
/// allocation into a catchable `RangeError`).
pub fn classify_guest_error(
    code: String,
    message: String,
    state: &ActionState,
    limits: &Limits,
) -> Failure {
    let cause = if state.meter.denied.is_some() {
        Some(denied(state))
    } else if state.memory.hit {
        Some(memory_limit(state, limits))
    } else {
        None
    };
    if let Some(mut f) = cause {
        f.message
            .push_str(&format!(" (the action then failed: {code}: {message})"));
        return f;
    }
    // The JS runner reports what went wrong in the script with these codes.
    match code.as_str() {
        "js_error" => Failure::new(FailureKind::JsError, message),
        "stack_overflow" => Failure::new(FailureKind::StackOverflow, message),
        _ => Failure {
            kind: FailureKind::GuestError,
            message,
            code: Some(code),
        },
    }
}

pub fn timeout(limits: &Limits) -> Failure {
    Failure::new(
        FailureKind::Timeout,
        format!(
            "the action did not finish within its {} ms deadline",
            limits.timeout.as_millis()
        ),
    )
}

fn memory_limit(state: &ActionState, limits: &Limits) -> Failure {
    let limit = limits.memory_bytes >> 20;
    let message = if let Some(b) = state
        .memory
        .budget
        .as_ref()
        .filter(|_| state.memory.budget_hit)
    {
        format!(
            "this tenant's actions running now hold {:.1} MiB of memory together and this one needed more; the tenant's cap is {} MiB (maxMemoryMib)",
            super::limits::mib(b.held()),
            b.cap() >> 20
        )
    } else if state.memory.hit_at_start {
        // Its initial memory alone (the JS runner's snapshot, say) is over the limit.
        format!(
            "the action needs {:.1} MiB of memory to start; its memory limit is {limit} MiB",
            super::limits::mib(state.memory.wanted)
        )
    } else {
        format!("the action hit its memory limit of {limit} MiB")
    };
    Failure::new(FailureKind::MemoryLimit, message)
}

fn denied(state: &ActionState) -> Failure {
    let why = state.meter.denied.as_deref().unwrap_or("refused");
    Failure::new(FailureKind::EgressDenied, format!("egress denied: {why}"))
}

fn root_message(err: &wasmtime::Error) -> String {
    err.chain()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}
