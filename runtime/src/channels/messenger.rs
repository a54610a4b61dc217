//! Chatlayer type/config messages rendered in the Messenger-like format the
//! webhook channel POSTs (COMPAT §5).

use serde_json::{Value, json};

/// The first text of a type/config message (several = variants; the engine
/// has usually picked one already).
pub fn first_text(config: &Value) -> String {
    config["textMessages"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn button(b: &Value) -> Value {
    let title = b["title"].clone();
    match b["type"].as_str().unwrap_or("postback") {
        "web_url" => json!({"type": "web_url", "title": title, "url": b["url"]}),
        "phone_number" => json!({"type": "phone_number", "title": title, "payload": b["payload"]}),
        _ => json!({"type": "postback", "title": title, "payload": payload(&b["payload"])}),
    }
}

/// Payloads are opaque ids; anything else is sent as JSON text.
fn payload(p: &Value) -> Value {
    match p {
        Value::String(_) => p.clone(),
        Value::Null => json!(""),
        other => json!(other.to_string()),
    }
}

/// One type/config message as a Messenger-like message.
pub fn render(message: &Value) -> Value {
    let config = &message["config"];
    match message["type"].as_str().unwrap_or("text") {
        "buttons" => {
            let buttons: Vec<Value> = config["buttons"]
                .as_array()
                .into_iter()
                .flatten()
                .map(button)
                .collect();
            json!({"attachment": {"type": "template", "payload": {
                "template_type": "button", "text": first_text(config), "buttons": buttons}}})
        }
        "quickReplies" => {
            let replies: Vec<Value> = config["quickReplies"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|q| json!({"content_type": "text", "title": q["title"], "payload": payload(&q["payload"])}))
                .collect();
            json!({"text": first_text(config), "quick_replies": replies})
        }
        "carousel" => {
            let elements: Vec<Value> = config["elements"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| {
                    let mut el = json!({"title": e["title"]});
                    if let Some(s) = e.get("subTitle").or_else(|| e.get("subtitle")) {
                        el["subtitle"] = s.clone();
                    }
                    if let Some(i) = e.get("imageUrl") {
                        el["image_url"] = i.clone();
                    }
                    if let Some(u) = e.get("webUrl") {
                        el["default_action"] = json!({"type": "web_url", "url": u});
                    }
                    el["buttons"] = Value::Array(
                        e["buttons"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(button)
                            .collect(),
                    );
                    el
                })
                .collect();
            json!({"attachment": {"type": "template", "payload": {"template_type": "generic", "elements": elements}}})
        }
        "media" => {
            let kind = match config["media"]["type"].as_str().unwrap_or("attachment") {
                k @ ("image" | "video" | "audio") => k,
                _ => "file",
            };
            json!({"attachment": {"type": kind, "payload": {"url": config["media"]["url"]}}})
        }
        "html" | "iframe" => json!({"text": super::plain_text::fallback(message)}),
        _ => json!({"text": first_text(config)}),
    }
}

/// A rendered message with nothing in it (no text, no attachment): not sent.
pub fn is_empty(rendered: &Value) -> bool {
    rendered.get("attachment").is_none() && rendered["text"].as_str().unwrap_or_default().is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_type() {
        let t = |text: &str| json!([{ "text": text }]);
        assert_eq!(
            render(&json!({"type": "text", "config": {"textMessages": t("hi")}})),
            json!({"text": "hi"})
        );
        let buttons = render(
            &json!({"type": "buttons", "config": {"textMessages": t("pick"), "buttons": [
            {"type": "postback", "title": "A", "payload": "pb_1"},
            {"type": "web_url", "title": "W", "url": "https://x"},
            {"type": "phone_number", "title": "P", "payload": "+32"}]}}),
        );
        assert_eq!(
            buttons,
            json!({"attachment": {"type": "template", "payload": {"template_type": "button", "text": "pick", "buttons": [
            {"type": "postback", "title": "A", "payload": "pb_1"},
            {"type": "web_url", "title": "W", "url": "https://x"},
            {"type": "phone_number", "title": "P", "payload": "+32"}]}}})
        );
        let quick = render(
            &json!({"type": "quickReplies", "config": {"textMessages": t("q"), "quickReplies": [{"title": "Y", "payload": "pb_2"}]}}),
        );
        assert_eq!(
            quick,
            json!({"text": "q", "quick_replies": [{"content_type": "text", "title": "Y", "payload": "pb_2"}]})
        );
        let carousel = render(
            &json!({"type": "carousel", "config": {"elements": [{"title": "C", "subTitle": "s", "imageUrl": "https://i", "buttons": []}]}}),
        );
        assert_eq!(
            carousel["attachment"]["payload"]["template_type"],
            "generic"
        );
        assert_eq!(
            carousel["attachment"]["payload"]["elements"][0],
            json!({"title": "C", "subtitle": "s", "image_url": "https://i", "buttons": []})
        );
        let media = render(
            &json!({"type": "media", "config": {"media": {"type": "image", "url": "https://m"}}}),
        );
        assert_eq!(
            media,
            json!({"attachment": {"type": "image", "payload": {"url": "https://m"}}})
        );
        // What a text channel cannot show, as text; nothing empty is sent.
        let html = render(&json!({"type": "html", "config": {"html": "<p>Open <b>now</b></p>"}}));
        assert_eq!(html, json!({"text": "Open now"}));
        assert!(!is_empty(&html));
        let iframe = render(&json!({"type": "iframe", "config": {"url": "https://map.example"}}));
        assert_eq!(iframe, json!({"text": "https://map.example"}));
        assert!(is_empty(&render(
            &json!({"type": "html", "config": {"html": "<br>"}})
        )));
    }
}
