//! `{a.b[0]}` interpolation with modifiers (`{count|increment}`,
//! `{name|toUpperCase}`, `{name|toLowerCase}`, `{name|capitalize}`).
//! A missing value renders empty; braces around anything that is not a
//! session path are left as they are.

use sandbot_host_api::JsonPath;
use serde_json::{Map, Value};

/// The modifiers a placeholder may carry, in the order applied.
pub const MODIFIERS: [&str; 4] = ["increment", "toUpperCase", "toLowerCase", "capitalize"];

/// Renders every placeholder in `text` from `session`.
pub fn render(text: &str, session: &Value) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    // Linear in the text (found by fuzzing: `{{{{…}` was quadratic, each `{`
    // searched the rest for its `}`): a `{` with no `}` after it ends the
    // placeholders, and of `{…{…}` only the last `{` can open one.
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push('{');
            out.push_str(after);
            return out;
        };
        let inner = &after[..close];
        if let Some(nested) = inner.rfind('{') {
            out.push('{');
            out.push_str(&inner[..nested]);
            rest = &after[nested..];
            continue;
        }
        match placeholder(inner, session) {
            Some(value) => {
                out.push_str(&value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                out.push_str(inner);
                rest = &after[close..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Like [`render`] for every string inside `value`, except that a string that
/// is exactly one `{path}` placeholder becomes the session value itself (its
/// JSON type kept; `null` when missing), and one that is exactly a
/// `{path|increment}` placeholder becomes a number (a counter stays a
/// number: `2`, not `"2"`).
pub fn resolve(value: &Value, session: &Value) -> Value {
    match value {
        Value::String(s) => match whole_placeholder(s) {
            Some(path) => path.get(session).cloned().unwrap_or(Value::Null),
            None if whole_increment(s) => {
                let text = render(s, session);
                let number = text
                    .parse::<i64>()
                    .map(Value::from)
                    .ok()
                    .or_else(|| text.parse::<f64>().ok().map(Value::from));
                number.unwrap_or(Value::String(text))
            }
            None => Value::String(render(s, session)),
        },
        Value::Array(items) => Value::Array(items.iter().map(|v| resolve(v, session)).collect()),
        Value::Object(map) => Value::Object(resolve_map(map, session)),
        other => other.clone(),
    }
}

pub fn resolve_map(map: &Map<String, Value>, session: &Value) -> Map<String, Value> {
    map.iter()
        .map(|(k, v)| (k.clone(), resolve(v, session)))
        .collect()
}

/// Problems in the placeholders of `text` (unknown modifiers), for validation.
pub fn check(text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        let mut parts = after[..close].split('|');
        if let Some(path) = parts.next()
            && JsonPath::parse(path.trim()).is_ok()
        {
            for m in parts {
                if !MODIFIERS.contains(&m.trim()) {
                    problems.push(format!(
                        "unknown modifier `{}` in `{{{}}}` (known: {})",
                        m.trim(),
                        &after[..close],
                        MODIFIERS.join(", ")
                    ));
                }
            }
        }
        rest = &after[close + 1..];
    }
    problems
}

fn whole_placeholder(s: &str) -> Option<JsonPath> {
    let inner = s.strip_prefix('{')?.strip_suffix('}')?;
    if inner.contains(['{', '}', '|']) {
        return None;
    }
    JsonPath::parse(inner.trim()).ok()
}

/// `{path|…|increment}` and nothing else.
fn whole_increment(s: &str) -> bool {
    s.strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .is_some_and(|inner| {
            !inner.contains(['{', '}'])
                && inner.rsplit('|').next().map(str::trim) == Some("increment")
                && inner.contains('|')
        })
}

fn placeholder(inner: &str, session: &Value) -> Option<String> {
    let mut parts = inner.split('|');
    let path = JsonPath::parse(parts.next()?.trim()).ok()?;
    let mut text = path.get(session).map(to_text).unwrap_or_default();
    for modifier in parts {
        text = match modifier.trim() {
            "increment" => increment(&text),
            "toUpperCase" => text.to_uppercase(),
            "toLowerCase" => text.to_lowercase(),
            "capitalize" => capitalize(&text),
            _ => return None,
        };
    }
    Some(text)
}

/// A session value as text: strings bare, everything else as JSON.
pub fn to_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn increment(text: &str) -> String {
    let t = text.trim();
    if t.is_empty() {
        return "1".into();
    }
    if let Ok(n) = t.parse::<i64>() {
        return (n + 1).to_string();
    }
    match t.parse::<f64>() {
        Ok(x) => (x + 1.0).to_string(),
        Err(_) => text.to_string(),
    }
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_paths_modifiers_and_missing_values() {
        let s = json!({"user": {"name": "ada", "tags": ["x", "y"]}, "n": 4, "w": "hello world"});
        assert_eq!(render("Hi {user.name|capitalize}!", &s), "Hi Ada!");
        assert_eq!(render("{user.tags[1]|toUpperCase}", &s), "Y");
        assert_eq!(render("{n|increment} {missing|increment}", &s), "5 1");
        // A value that is only a counter placeholder stays a number.
        assert_eq!(resolve(&json!("{n|increment}"), &s), json!(5));
        assert_eq!(resolve(&json!("{missing|increment}"), &s), json!(1));
        assert_eq!(resolve(&json!("n={n|increment}"), &s), json!("n=5"));
        assert_eq!(render("[{nope}]", &s), "[]");
        assert_eq!(render("{W|toLowerCase}", &s), "");
        assert_eq!(render("{w|toUpperCase|toLowerCase}", &s), "hello world");
        assert_eq!(render("{user.tags}", &s), r#"["x","y"]"#);
        assert_eq!(render("a { b } {x|shout} {", &s), "a  {x|shout} {");
    }

    #[test]
    fn resolve_keeps_json_types_for_whole_placeholders() {
        let s = json!({"n": 4, "u": {"a": true}});
        let v = resolve(
            &json!({"n": "{n}", "t": "n={n}", "u": ["{u}"], "m": "{missing}"}),
            &s,
        );
        assert_eq!(
            v,
            json!({"n": 4, "t": "n=4", "u": [{"a": true}], "m": null})
        );
    }

    #[test]
    fn render_is_linear_and_keeps_what_is_not_a_placeholder() {
        let s = json!({"a": 1, "b": "x"});
        for (text, want) in [
            ("{a} {b}", "1 x"),
            ("{{a}}", "{1}"),
            ("{x{a}", "{x1"),
            ("{a", "{a"),
            ("a}{b}{", "a}x{"),
            ("{a|nope}{b}", "{a|nope}x"),
            ("{}", "{}"),
        ] {
            assert_eq!(render(text, &s), want, "{text}");
        }
        // 200,000 `{` before one `}`: ~2·10^10 steps before (minutes), one
        // pass now.
        let text = format!("{}a}}", "{".repeat(200_000));
        assert_eq!(render(&text, &s), format!("{}1", "{".repeat(199_999)));
        let open = "{".repeat(200_000);
        assert_eq!(render(&open, &s), open);
    }

    #[test]
    fn check_reports_unknown_modifiers() {
        assert!(check("{a|increment} {b}").is_empty());
        assert_eq!(check("{a|shout}").len(), 1);
    }
}
