//! v1 message templates (what agents and integrations send through the REST
//! API) → Chatlayer type/config messages. Postback payloads become opaque ids
//! when the engine records them.

use serde_json::{Value, json};

fn postback_payload(p: &Value) -> Value {
    json!({
        "nextDialogstateId": p["nextDialogstateId"],
        "params": p.get("sessionDataToSet").cloned().unwrap_or(json!([])),
    })
}

fn button(b: &Value) -> Result<Value, String> {
    if let Some(u) = b.get("urlButton") {
        return Ok(json!({"type": "web_url", "title": u["title"], "url": u["url"]}));
    }
    if let Some(p) = b.get("phoneNumberButton") {
        return Ok(
            json!({"type": "phone_number", "title": p["title"], "payload": p["phoneNumber"]}),
        );
    }
    if let Some(p) = b.get("postBackButton") {
        return Ok(
            json!({"type": "postback", "title": p["title"], "payload": postback_payload(&p["payload"])}),
        );
    }
    Err(format!(
        "a button is one of urlButton, phoneNumberButton, postBackButton: {b}"
    ))
}

fn buttons(list: &Value) -> Result<Vec<Value>, String> {
    list.as_array().into_iter().flatten().map(button).collect()
}

fn texts(t: &Value) -> Value {
    json!([{ "text": t.as_str().unwrap_or_default() }])
}

/// One template, or why it is not one.
pub fn to_message(t: &Value) -> Result<Value, String> {
    if let Some(x) = t.get("textMessageTemplate") {
        let text = x["text"]
            .as_str()
            .ok_or("textMessageTemplate.text must be a string")?;
        return Ok(json!({"type": "text", "config": {"textMessages": [{"text": text}]}}));
    }
    if let Some(x) = t.get("buttonTemplate") {
        return Ok(
            json!({"type": "buttons", "config": {"textMessages": texts(&x["text"]), "buttons": buttons(&x["buttons"])?}}),
        );
    }
    if let Some(x) = t.get("quickReplyTemplate") {
        let replies: Vec<Value> = x["quickReplies"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|q| json!({"title": q["title"], "payload": postback_payload(&q["payload"])}))
            .collect();
        return Ok(
            json!({"type": "quickReplies", "config": {"textMessages": texts(&x["text"]), "quickReplies": replies}}),
        );
    }
    if let Some(x) = t.get("attachmentTemplate") {
        let kind = x["type"].as_str().unwrap_or("attachment");
        if !["image", "video", "audio", "attachment"].contains(&kind) {
            return Err(format!(
                "attachmentTemplate.type `{kind}`: image, video, audio or attachment"
            ));
        }
        return Ok(json!({"type": "media", "config": {"media": {"type": kind, "url": x["url"]}}}));
    }
    if let Some(x) = t.get("carouselTemplate").or_else(|| t.get("listTemplate")) {
        let mut elements = Vec::new();
        for e in x["elements"].as_array().into_iter().flatten() {
            let mut card = json!({"title": e["title"], "buttons": buttons(&e["buttons"])?});
            for (from, to) in [
                ("subtitle", "subTitle"),
                ("imageUrl", "imageUrl"),
                ("url", "webUrl"),
            ] {
                if let Some(v) = e.get(from) {
                    card[to] = v.clone();
                }
            }
            elements.push(card);
        }
        return Ok(json!({"type": "carousel", "config": {"elements": elements}}));
    }
    Err(format!(
        "unknown template (textMessageTemplate, buttonTemplate, quickReplyTemplate, attachmentTemplate, carouselTemplate, listTemplate): {t}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template() {
        assert_eq!(
            to_message(&json!({"textMessageTemplate": {"text": "hi"}})).unwrap()["config"]["textMessages"]
                [0]["text"],
            "hi"
        );
        let b = to_message(&json!({"buttonTemplate": {"text": "t", "buttons": [
            {"urlButton": {"title": "U", "url": "https://x"}},
            {"phoneNumberButton": {"title": "P", "phoneNumber": "+32"}},
            {"postBackButton": {"title": "B", "payload": {"nextDialogstateId": "n", "sessionDataToSet": [{"key": "k", "value": 1}]}}}]}})).unwrap();
        assert_eq!(
            b["config"]["buttons"][2]["payload"],
            json!({"nextDialogstateId": "n", "params": [{"key": "k", "value": 1}]})
        );
        assert_eq!(b["config"]["buttons"][1]["payload"], "+32");
        let q = to_message(&json!({"quickReplyTemplate": {"text": "q", "quickReplies": [{"title": "Y", "payload": {"nextDialogstateId": "y"}}]}})).unwrap();
        assert_eq!(q["type"], "quickReplies");
        let a = to_message(&json!({"attachmentTemplate": {"type": "image", "url": "https://i"}}))
            .unwrap();
        assert_eq!(a["config"]["media"]["url"], "https://i");
        let c = to_message(&json!({"carouselTemplate": {"elements": [{"title": "C", "subtitle": "s", "buttons": []}]}})).unwrap();
        assert_eq!(c["config"]["elements"][0]["subTitle"], "s");
        assert!(
            to_message(&json!({"nope": {}}))
                .unwrap_err()
                .contains("unknown template")
        );
        assert!(to_message(&json!({"buttonTemplate": {"buttons": [{"x": 1}]}})).is_err());
    }
}
