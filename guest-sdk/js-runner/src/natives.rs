//! Host functions the prelude and the web globals build on, installed as
//! `__sandbot` (removed from the global scope by js/web.js, loaded last).

use std::time::Duration;

use boa_engine::object::ObjectInitializer;
use boa_engine::{
    Context, JsArgs, JsError, JsNativeError, JsObject, JsResult, JsValue, NativeFunction, js_string,
};
use sandbot_sdk::bindings::sandbot::action::{conversation, http, session};
use serde_json::json;

use crate::timers;

pub fn object(ctx: &mut Context) -> JsObject {
    let fns: [(&str, NativeFunction, usize); 9] = [
        ("sessionGet", NativeFunction::from_fn_ptr(session_get), 1),
        ("sessionSet", NativeFunction::from_fn_ptr(session_set), 2),
        (
            "sessionRemove",
            NativeFunction::from_fn_ptr(session_remove),
            1,
        ),
        ("say", NativeFunction::from_fn_ptr(say), 1),
        ("goto", NativeFunction::from_fn_ptr(goto), 1),
        ("log", NativeFunction::from_fn_ptr(log), 2),
        ("fetch", NativeFunction::from_fn_ptr(fetch), 5),
        ("setTimeout", NativeFunction::from_fn_ptr(set_timeout), 2),
        (
            "clearTimeout",
            NativeFunction::from_fn_ptr(clear_timeout),
            1,
        ),
    ];
    let mut init = ObjectInitializer::new(ctx);
    for (name, f, arity) in fns.into_iter().chain(crate::web::functions()) {
        init.function(f, js_string!(name), arity);
    }
    init.build()
}

fn string_arg(args: &[JsValue], i: usize, ctx: &mut Context) -> JsResult<String> {
    Ok(args
        .get_or_undefined(i)
        .to_string(ctx)?
        .to_std_string_escaped())
}

fn type_error(message: String) -> JsError {
    JsNativeError::typ().with_message(message).into()
}

fn session_get(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let path = string_arg(args, 0, ctx)?;
    Ok(match session::get(&path) {
        Some(json) => js_string!(json).into(),
        None => JsValue::undefined(),
    })
}

/// A JS value as JSON text, converted in Rust (much cheaper than
/// `JSON.stringify` for large values); `undefined` becomes `null`.
fn json_arg(args: &[JsValue], i: usize, ctx: &mut Context) -> JsResult<String> {
    let value = args
        .get_or_undefined(i)
        .to_json(ctx)?
        .unwrap_or(serde_json::Value::Null);
    serde_json::to_string(&value).map_err(|e| type_error(e.to_string()))
}

fn session_set(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let path = string_arg(args, 0, ctx)?;
    let json = json_arg(args, 1, ctx)?;
    session::set(&path, &json).map_err(type_error)?;
    Ok(JsValue::undefined())
}

fn session_remove(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let path = string_arg(args, 0, ctx)?;
    session::remove(&path).map_err(type_error)?;
    Ok(JsValue::undefined())
}

fn say(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let json = json_arg(args, 0, ctx)?;
    conversation::say(&json).map_err(type_error)?;
    Ok(JsValue::undefined())
}

fn goto(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    conversation::goto(&string_arg(args, 0, ctx)?);
    Ok(JsValue::undefined())
}

fn log(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let level = match string_arg(args, 0, ctx)?.as_str() {
        "debug" => conversation::Level::Debug,
        "warn" => conversation::Level::Warn,
        "error" => conversation::Level::Error,
        _ => conversation::Level::Info,
    };
    conversation::log(level, &string_arg(args, 1, ctx)?);
    Ok(JsValue::undefined())
}

/// `fetch(method, url, [[name, value]...], body|null, timeoutMs|null)` ->
/// `{status, statusText, headers, body, url}`; failures throw a `TypeError`, as
/// WHATWG fetch rejects.
fn fetch(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let method = string_arg(args, 0, ctx)?;
    let url = string_arg(args, 1, ctx)?;
    let headers = match args.get_or_undefined(2).to_json(ctx)? {
        Some(serde_json::Value::Array(list)) => list
            .iter()
            .filter_map(|pair| Some((pair[0].as_str()?.to_string(), pair[1].as_str()?.to_string())))
            .collect(),
        _ => Vec::new(),
    };
    let body = match args.get_or_undefined(3) {
        v if v.is_null_or_undefined() => None,
        v => Some(v.to_string(ctx)?.to_std_string_escaped().into_bytes()),
    };
    let timeout_ms = match args.get_or_undefined(4) {
        v if v.is_null_or_undefined() => None,
        v => Some(v.to_number(ctx)?.clamp(0.0, u32::MAX as f64) as u32),
    };
    let request = http::Request {
        method,
        url,
        headers,
        body,
        timeout_ms,
    };
    match http::fetch(&request) {
        Ok(r) => {
            let value = json!({
                "status": r.status,
                "statusText": r.status_text,
                "headers": r.headers,
                "body": String::from_utf8_lossy(&r.body),
                "url": r.url,
            });
            JsValue::from_json(&value, ctx)
        }
        Err(e) => Err(type_error(format!(
            "fetch failed: {}",
            sandbot_sdk::http::describe(&e)
        ))),
    }
}

fn set_timeout(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let callback = args
        .get_or_undefined(0)
        .as_callable()
        .ok_or_else(|| type_error("setTimeout needs a function".into()))?
        .clone();
    let ms = args.get_or_undefined(1).to_number(ctx)?;
    let ms = if ms.is_finite() && ms > 0.0 { ms } else { 0.0 };
    let extra = args.iter().skip(2).cloned().collect();
    let id = timers::add(Duration::from_secs_f64(ms / 1000.0), callback, extra);
    Ok(JsValue::from(id))
}

fn clear_timeout(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let id = args.get_or_undefined(0).to_number(ctx)?;
    if id.is_finite() && id >= 0.0 {
        timers::cancel(id as u32);
    }
    Ok(JsValue::undefined())
}
