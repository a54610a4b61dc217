//! From configuration to request: rows resolved through the session.

use sandbot_sdk::http::Request;
use sandbot_sdk::{ActionError, Value, session};

use crate::config::{ApiAction, Auth, Row, RowKind};

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

pub fn build(action: &ApiAction) -> Result<Request, ActionError> {
    let method = action.method.to_ascii_uppercase();
    if !METHODS.contains(&method.as_str()) {
        return Err(ActionError::new(
            "invalid_arguments",
            format!(
                "method `{}` is not one of {}",
                action.method,
                METHODS.join(", ")
            ),
        ));
    }
    let mut url = fill_placeholders(&action.url);
    let query: Vec<(String, String)> = action
        .query
        .iter()
        .map(|r| Ok((r.key.clone(), as_text(&resolve(r)?))))
        .collect::<Result<_, ActionError>>()?;
    if !query.is_empty() {
        url.push(if url.contains('?') { '&' } else { '?' });
        let encoded: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        url.push_str(&encoded.join("&"));
    }
    let mut req = Request::new(&method, &url).header("accept", "application/json");
    for row in &action.headers {
        req = req.header(&row.key, &as_text(&resolve(row)?));
    }
    match &action.auth {
        Some(Auth::Bearer { token }) => {
            req = req.header("authorization", &format!("Bearer {token}"))
        }
        Some(Auth::Basic { username, password }) => {
            let pair = base64(format!("{username}:{password}").as_bytes());
            req = req.header("authorization", &format!("Basic {pair}"));
        }
        None => {}
    }
    if !action.body.is_empty() {
        let mut body = serde_json::Map::new();
        for row in &action.body {
            body.insert(row.key.clone(), resolve(row)?);
        }
        req = req.json(&Value::Object(body))?;
    }
    if let Some(ms) = action.timeout_ms {
        req = req.timeout_ms(ms);
    }
    Ok(req)
}

/// A row's value: static, from the session (JSON type kept; unset is `null`), or a block id.
fn resolve(row: &Row) -> Result<Value, ActionError> {
    Ok(match row.kind {
        RowKind::Text => row.value.clone(),
        RowKind::Dialogstate => Value::String(as_text(&row.value)),
        RowKind::Variable => {
            let path = row.value.as_str().ok_or_else(|| {
                ActionError::new(
                    "invalid_arguments",
                    format!(
                        "row `{}`: a variable row's value is a session path",
                        row.key
                    ),
                )
            })?;
            session::get_value(path).unwrap_or(Value::Null)
        }
    })
}

/// Text for URLs and headers: strings as they are, other JSON as JSON, null as empty.
fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `{user.id}` in the URL becomes the session value, percent-encoded.
fn fill_placeholders(url: &str) -> String {
    let mut out = String::new();
    let mut rest = url;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        out.push_str(&rest[..open]);
        let path = &rest[open + 1..open + close];
        out.push_str(&encode(&as_text(
            &session::get_value(path).unwrap_or(Value::Null),
        )));
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn encodes() {
        assert_eq!(super::base64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(super::base64(b"ab"), "YWI=");
        assert_eq!(super::encode("a b&c"), "a%20b%26c");
    }
}
