//! Postback payloads. Buttons and quick replies carry opaque ids
//! (`pb_` + 20 hex digits) that map back to `{nextDialogstateId, params}`,
//! scoped to the bot; the legacy JSON-string payloads are accepted too.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// A postback's target.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub next: String,
    /// Session path → value.
    pub params: Map<String, Value>,
}

impl Target {
    pub fn to_json(&self) -> Value {
        let params: Vec<Value> = self
            .params
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
        json!({"nextDialogstateId": self.next, "params": params})
    }

    /// From `{nextDialogstateId, params: [{key, value}]}` (also accepting
    /// `sessionDataToSet` for `params`, and an object of key → value).
    pub fn from_json(v: &Value) -> Option<Target> {
        let next = v.get("nextDialogstateId")?.as_str()?.to_string();
        let mut params = Map::new();
        let list = v.get("params").or_else(|| v.get("sessionDataToSet"));
        match list {
            Some(Value::Array(items)) => {
                for item in items {
                    let key = item.get("key")?.as_str()?;
                    params.insert(
                        key.to_string(),
                        item.get("value").cloned().unwrap_or(Value::Null),
                    );
                }
            }
            Some(Value::Object(map)) => params.extend(map.clone()),
            _ => {}
        }
        Some(Target { next, params })
    }
}

/// The opaque id of `target` in `bot`: the same target always gets the same id.
pub fn id_for(bot: &str, target: &Value) -> String {
    let mut h = Sha256::new();
    h.update(bot.as_bytes());
    h.update([0]);
    h.update(target.to_string().as_bytes());
    format!("pb_{}", &hex::encode(h.finalize())[..20])
}

pub fn is_id(payload: &str) -> bool {
    payload.len() == 23 && payload.starts_with("pb_")
}

/// Replaces every postback payload object in `message` (buttons, quick
/// replies, carousel buttons) by its opaque id; returns the new ids.
pub fn make_opaque(bot: &str, message: &mut Value) -> Vec<(String, Value)> {
    let mut found = Vec::new();
    let Some(config) = message.get_mut("config") else {
        return found;
    };
    let mut visit = |buttons: Option<&mut Value>| {
        for b in buttons.and_then(Value::as_array_mut).into_iter().flatten() {
            let kind = b.get("type").and_then(Value::as_str).unwrap_or("postback");
            if kind != "postback" {
                continue;
            }
            let Some(payload) = b.get_mut("payload") else {
                continue;
            };
            let target = match payload {
                Value::Object(_) => Target::from_json(payload),
                Value::String(s) if !is_id(s) => serde_json::from_str(s)
                    .ok()
                    .and_then(|v| Target::from_json(&v)),
                _ => None,
            };
            if let Some(t) = target {
                let value = t.to_json();
                let id = id_for(bot, &value);
                *payload = Value::String(id.clone());
                found.push((id, value));
            }
        }
    };
    visit(config.get_mut("buttons"));
    visit(config.get_mut("quickReplies"));
    if let Some(elements) = config.get_mut("elements").and_then(Value::as_array_mut) {
        for e in elements {
            visit(e.get_mut("buttons"));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_become_stable_bot_scoped_ids() {
        let mut m = json!({"type": "quickReplies", "config": {"quickReplies": [
            {"title": "A", "payload": {"nextDialogstateId": "b1", "params": [{"key": "size", "value": "L"}]}},
            {"title": "B", "payload": "{\"nextDialogstateId\":\"b2\"}"}
        ]}});
        let ids = make_opaque("bot", &mut m);
        assert_eq!(ids.len(), 2);
        let first = m["config"]["quickReplies"][0]["payload"].as_str().unwrap();
        assert!(is_id(first));
        assert_eq!(
            Target::from_json(&ids[0].1).unwrap().params["size"],
            json!("L")
        );
        assert_eq!(id_for("bot", &ids[0].1), first);
        assert_ne!(id_for("other", &ids[0].1), first);
    }
}
