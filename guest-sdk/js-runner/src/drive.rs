//! Runs one script: as the body of an async function, driving promise jobs and
//! timers until it settles; errors become `js_error` with the script's line.

use std::time::Instant;

use boa_engine::builtins::promise::PromiseState;
use boa_engine::object::builtins::JsPromise;
use boa_engine::{Context, JsError, JsValue, Source, js_string};
use sandbot_sdk::{ActionError, Value};

use crate::timers;

/// The name scripts get in error messages and stacks.
const SCRIPT_NAME: &str = "action.js";
/// The script is the body of an async function; no newline after the prefix
/// keeps the user's line numbers (line 1 columns shift by its length).
const PREFIX: &str = "(async function () {";
const SUFFIX: &str = "\n})()";

pub fn run_script(ctx: &mut Context, script: &str, args: &Value) -> Result<Value, ActionError> {
    let args = JsValue::from_json(args, ctx).map_err(|e| js_error(ctx, e))?;
    ctx.global_object()
        .set(js_string!("args"), args, false, ctx)
        .map_err(|e| js_error(ctx, e))?;

    let source = format!("{PREFIX}{script}{SUFFIX}");
    let promise = ctx
        .eval(Source::from_bytes(source.as_bytes()).with_path(std::path::Path::new(SCRIPT_NAME)))
        .map_err(|e| js_error(ctx, e))?;
    let promise = promise
        .as_object()
        .and_then(|o| JsPromise::from_object(o.clone()).ok())
        .ok_or_else(|| ActionError::new("js_error", "internal: the wrapper is not a promise"))?;

    loop {
        ctx.run_jobs().map_err(|e| js_error(ctx, e))?;
        match promise.state() {
            PromiseState::Fulfilled(value) => {
                return match value.to_json(ctx).map_err(|e| js_error(ctx, e))? {
                    Some(json) => Ok(integral_numbers(json)),
                    None => Ok(Value::Null),
                };
            }
            PromiseState::Rejected(reason) => {
                return Err(js_error(ctx, JsError::from_opaque(reason)));
            }
            PromiseState::Pending => {}
        }
        let Some(timer) = timers::take_next() else {
            return Err(ActionError::new(
                "js_error",
                "the code never finished: it awaits a promise that nothing will ever resolve",
            ));
        };
        let wait = timer.due.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            // Sleeps on the host's clock: no fuel burns while waiting; the
            // invocation's wall-clock deadline still applies.
            std::thread::sleep(wait);
        }
        timer
            .callback
            .call(&JsValue::undefined(), &timer.args, ctx)
            .map_err(|e| js_error(ctx, e))?;
    }
}

/// Describes a JS error for the bot builder: the message and where it happened.
fn js_error(ctx: &mut Context, error: JsError) -> ActionError {
    let opaque = match error.into_opaque(ctx) {
        Ok(value) => value,
        // Engine errors (runtime limits) cannot be caught by scripts.
        Err(engine) => {
            let message = engine.to_string();
            let code = if message.contains("recursive calls") || message.contains("stack size") {
                "stack_overflow"
            } else {
                "js_error"
            };
            return ActionError::new(code, message);
        }
    };
    let mut message = describe(ctx, &opaque);
    if let Some(position) = position(ctx, &opaque, &message) {
        message.push_str(&format!(" ({position})"));
    }
    ActionError::new("js_error", message)
}

fn describe(ctx: &mut Context, value: &JsValue) -> String {
    if let Some(obj) = value.as_object() {
        let name = obj
            .get(js_string!("name"), ctx)
            .ok()
            .filter(|v| !v.is_undefined());
        let message = obj
            .get(js_string!("message"), ctx)
            .ok()
            .filter(|v| !v.is_undefined());
        if let (Some(name), Some(message)) = (name, message) {
            let name = name
                .to_string(ctx)
                .map(|s| s.to_std_string_escaped())
                .unwrap_or_default();
            let message = message
                .to_string(ctx)
                .map(|s| s.to_std_string_escaped())
                .unwrap_or_default();
            return format!("{name}: {message}");
        }
    }
    match value.to_json(ctx) {
        Ok(Some(json)) => format!("Uncaught {json}"),
        _ => format!("Uncaught {}", value.display()),
    }
}

/// `line L, column C` in the user's script, from the error's stack or message.
fn position(ctx: &mut Context, value: &JsValue, message: &str) -> Option<String> {
    let stack = value
        .as_object()
        .and_then(|o| o.get(js_string!("stack"), ctx).ok())
        .and_then(|s| s.as_string().map(|s| s.to_std_string_escaped()))
        .unwrap_or_default();
    let (line, column) = find_position(&stack).or_else(|| find_position(message))?;
    let column = if line == 1 {
        column.saturating_sub(PREFIX.len() as u32)
    } else {
        column
    };
    Some(format!("{SCRIPT_NAME} line {line}, column {column}"))
}

/// The first `action.js:L:C` in `text`, or a parser's `line L, col C`.
fn find_position(text: &str) -> Option<(u32, u32)> {
    if let Some(at) = text.find(&format!("{SCRIPT_NAME}:")) {
        let rest = &text[at + SCRIPT_NAME.len() + 1..];
        let mut parts = rest
            .split(|c: char| !c.is_ascii_digit())
            .filter(|p| !p.is_empty());
        let line = parts.next()?.parse().ok()?;
        let column = parts.next()?.parse().ok()?;
        return Some((line, column));
    }
    let at = text.find("line ")?;
    let rest = &text[at + 5..];
    let mut parts = rest
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// JS has only doubles; `42.0` goes back to the flow as `42`, as JSON.stringify
/// would write it.
fn integral_numbers(value: Value) -> Value {
    const SAFE: f64 = 9_007_199_254_740_991.0;
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() <= SAFE => Value::from(f as i64),
            _ => Value::Number(n),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(integral_numbers).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, integral_numbers(v)))
                .collect(),
        ),
        other => other,
    }
}
