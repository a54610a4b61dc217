//! Applies the customer's response, in Chatlayer's order: session, then
//! messages, then navigation.

use sandbot_sdk::http::Response;
use sandbot_sdk::{ActionError, Value, conversation, json, session};

pub fn apply(res: &Response) -> Result<Value, ActionError> {
    if !res.ok() {
        return Err(ActionError::new(
            "http_status",
            format!("the API answered {} for {}", res.status(), res.url()),
        ));
    }
    let text = res.text();
    let body: Value = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).map_err(|e| {
            ActionError::new(
                "invalid_json",
                format!("the API's response is not JSON: {e}"),
            )
        })?
    };
    if let Some(s) = body.get("session") {
        apply_session(s)?;
    }
    if let Some(messages) = body.get("messages") {
        let list = messages
            .as_array()
            .ok_or_else(|| ActionError::new("invalid_response", "`messages` must be an array"))?;
        for m in list {
            conversation::say(m)?;
        }
    }
    let next = body
        .pointer("/action/nextDialogstate")
        .or_else(|| body.get("nextDialogstate"))
        .and_then(Value::as_str);
    if let Some(next) = next {
        conversation::goto(next);
    }
    Ok(json!({"status": res.status(), "body": body}))
}

/// `{"namespace": "ns", "data": {...}}`: `data`'s keys merge into `ns` (shallow).
fn apply_session(s: &Value) -> Result<(), ActionError> {
    let namespace = s.get("namespace").and_then(Value::as_str).unwrap_or("");
    let data = s.get("data").cloned().unwrap_or(Value::Null);
    match (namespace, data) {
        ("", Value::Object(map)) => {
            for (k, v) in map {
                session::set(&k, &v)?;
            }
        }
        ("", _) => {
            return Err(ActionError::new(
                "invalid_response",
                "`session.data` without a namespace must be an object",
            ));
        }
        (ns, Value::Object(map)) => {
            for (k, v) in map {
                session::set(&format!("{ns}.{k}"), &v)?;
            }
        }
        (ns, other) => session::set(ns, &other)?,
    }
    Ok(())
}
