//! Sinch Contact Pro (COMPAT §9): agents take over conversations of the
//! bot's Conversation API app (in CONVERSATION processing mode). An offload
//! pauses the bot and writes the `sinchContactPro.*` session variables to
//! the conversation's metadata (Contact Pro's *attached data*, whose keys
//! must be XML element names) with `PATCH …/conversations/{id}
//! ?metadata_update_strategy=MERGE_PATCH`. Agent events (`agent_joined_event`,
//! `agent_left_event`) and `CONVERSATION_STOP` arrive on the Sinch channel's
//! callback; the configured ones hand the conversation back to the bot.

use serde_json::{Map, Value, json};

use super::Providers;
use crate::channels::delivery::TokenSource;
use crate::flow::{OffloadAnswer, OffloadRequest};
use crate::serve::config::{ContactPro, ResumeOn, SinchChannel};

/// The shared session variables Contact Pro gets, besides `customFields.*`.
const SHARED: [&str; 4] = ["firstName", "lastName", "phoneNumber", "email"];

pub async fn offload(p: &Providers, cp: &ContactPro, r: &OffloadRequest) -> OffloadAnswer {
    let disabled = |why: String| OffloadAnswer::Disabled(format!("Sinch Contact Pro: {why}"));
    let sinch = &r.session["internal"]["sinchConversationAPI"];
    let Some(conversation) = sinch["conversationId"].as_str() else {
        return disabled(format!(
            "it takes over conversations of the Sinch channel; this one is on `{}`",
            r.channel
        ));
    };
    let Some(channel) = p.sinch.get(&cp.channel) else {
        return disabled(format!("no Sinch channel `{}`", cp.channel));
    };
    let metadata = match attached_data(&r.session["sinchContactPro"]) {
        Ok(m) => m,
        Err(why) => return disabled(why),
    };
    let url = format!(
        "{}/v1/projects/{}/conversations/{conversation}?metadata_update_strategy=MERGE_PATCH",
        channel.api_url().trim_end_matches('/'),
        channel.project_id
    );
    let body = json!({ "metadata": Value::Object(metadata).to_string() });
    match patch(p, channel, &url, &body).await {
        Ok(()) => OffloadAnswer::Opened { pause: true },
        Err(why) => disabled(why),
    }
}

/// `PATCH url` with the channel's token (fetched again once after a 401).
async fn patch(
    p: &Providers,
    channel: &SinchChannel,
    url: &str,
    body: &Value,
) -> Result<(), String> {
    for refresh in [false, true] {
        let token = p.tokens.token(&channel.id, refresh).await?;
        let res = p
            .client
            .patch(url)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| format!("updating the conversation's metadata failed: {e}"))?;
        let status = res.status();
        if status.is_success() {
            return Ok(());
        }
        if status != reqwest::StatusCode::UNAUTHORIZED || refresh {
            return Err(format!(
                "updating the conversation's metadata answered {status}"
            ));
        }
    }
    Err("updating the conversation's metadata was refused twice".into())
}

/// `sinchContactPro.*` as Contact Pro's attached data: `firstName`,
/// `lastName`, `phoneNumber`, `email` and every `customFields` entry, as
/// text; a key that is no XML element name is refused, saying why.
pub fn attached_data(v: &Value) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for key in SHARED {
        if let Some(x) = v.get(key).filter(|x| !x.is_null()) {
            out.insert(key.into(), json!(text(x)));
        }
    }
    match v.get("customFields") {
        None | Some(Value::Null) => {}
        Some(Value::Object(fields)) => {
            for (k, x) in fields {
                if !xml_name(k) {
                    return Err(format!(
                        "sinchContactPro.customFields: `{k}` is not a valid XML element name, which attached data keys must be (a letter or `_` first, then letters, digits, `-`, `_` or `.`; not `xml…`)"
                    ));
                }
                out.insert(k.clone(), json!(text(x)));
            }
        }
        Some(_) => {
            return Err("sinchContactPro.customFields must be an object of key → value".into());
        }
    }
    Ok(out)
}

fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

fn xml_name(k: &str) -> bool {
    let mut chars = k.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    first_ok
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !k.to_ascii_lowercase().starts_with("xml")
}

/// What a Sinch callback says about a conversation Contact Pro may hold.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentEvent {
    pub conversation: String,
    /// `agentJoined`, `agentLeft` or `conversationStop`.
    pub kind: String,
    /// The agent (`display_name`, `type`, `picture_url`), or null.
    pub agent: Value,
}

/// A `CONVERSATION_STOP` callback, or an event with `agent_joined_event` /
/// `agent_left_event` (in `event` or `app_event`).
pub fn agent_event(v: &Value) -> Option<AgentEvent> {
    if let Some(stop) = v.get("conversation_stop_notification") {
        let conversation = stop["conversation"]["id"].as_str()?;
        return Some(AgentEvent {
            conversation: conversation.into(),
            kind: "conversationStop".into(),
            agent: Value::Null,
        });
    }
    let e = v.get("event").or_else(|| v.get("app_event"))?;
    let conversation = e["conversation_id"].as_str()?.to_string();
    let (kind, body) = if let Some(j) = e.get("agent_joined_event") {
        ("agentJoined", j)
    } else {
        ("agentLeft", e.get("agent_left_event")?)
    };
    Some(AgentEvent {
        conversation,
        kind: kind.into(),
        agent: body.get("agent").cloned().unwrap_or(Value::Null),
    })
}

impl Providers {
    /// Whether `kind` hands a conversation offloaded to `provider` back.
    pub fn resumes(&self, bot: &str, provider: &str, kind: &str) -> bool {
        let Some(cp) = self
            .by_bot
            .get(bot)
            .and_then(|m| m.get(provider))
            .and_then(|p| p.config.sinch_contact_pro.as_ref())
        else {
            return false;
        };
        cp.resume_on.iter().any(|r| match r {
            ResumeOn::ConversationStop => kind == "conversationStop",
            ResumeOn::AgentLeft => kind == "agentLeft",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attached_data_keys_are_xml_names() {
        let v = json!({"firstName": "Ann", "email": "ann@example.com", "phoneNumber": 32470,
                       "customFields": {"orderId": "ORD-1", "vip_level": 2, "a.b-c": true}});
        let data = attached_data(&v).unwrap();
        assert_eq!(
            Value::Object(data),
            json!({"firstName": "Ann", "email": "ann@example.com", "phoneNumber": "32470",
                   "orderId": "ORD-1", "vip_level": "2", "a.b-c": "true"})
        );
        for bad in ["1st", "has space", "xmlThing", "", "-x", "é"] {
            let v = json!({"customFields": {bad: "v"}});
            let e = attached_data(&v).unwrap_err();
            assert!(
                e.contains(&format!("`{bad}` is not a valid XML element name")),
                "{e}"
            );
        }
        assert!(attached_data(&json!({"customFields": [1]})).is_err());
        assert_eq!(attached_data(&Value::Null).unwrap().len(), 0);
    }

    #[test]
    fn agent_events_from_callbacks() {
        let joined = json!({"app_id": "a", "event": {"conversation_id": "c1",
            "agent_joined_event": {"agent": {"display_name": "Ann", "type": "HUMAN"}}}});
        assert_eq!(
            agent_event(&joined),
            Some(AgentEvent {
                conversation: "c1".into(),
                kind: "agentJoined".into(),
                agent: json!({"display_name": "Ann", "type": "HUMAN"})
            })
        );
        let left =
            json!({"app_event": {"conversation_id": "c1", "agent_left_event": {"agent": {}}}});
        assert_eq!(agent_event(&left).unwrap().kind, "agentLeft");
        let stop = json!({"conversation_stop_notification": {"conversation": {"id": "c1"}}});
        assert_eq!(agent_event(&stop).unwrap().kind, "conversationStop");
        assert_eq!(
            agent_event(&json!({"event": {"conversation_id": "c1", "composing_event": {}}})),
            None
        );
    }
}
