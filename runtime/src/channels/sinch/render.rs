//! Type/config messages → Sinch Conversation API messages: rich (choice,
//! card, carousel, media) where the channel shows them, plain text with
//! numbered options on SMS and Telegram (a numbered reply maps back to the
//! choice: see `numbered_choice`).

use serde_json::{Value, json};

use crate::channels::messenger::first_text;

/// Channels that get plain-text fallbacks.
pub fn plain_only(channel: &str) -> bool {
    matches!(channel, "SMS" | "TELEGRAM" | "MMS")
}

fn choice(b: &Value) -> Value {
    let title = b["title"].as_str().unwrap_or_default();
    match b["type"].as_str().unwrap_or("postback") {
        "web_url" => json!({"url_message": {"title": title, "url": b["url"]}}),
        "phone_number" => json!({"call_message": {"title": title, "phone_number": b["payload"]}}),
        _ => json!({"text_message": {"text": title}, "postback_data": b["payload"]}),
    }
}

fn buttons(config: &Value) -> Vec<Value> {
    let mut list: Vec<Value> = config["buttons"].as_array().cloned().unwrap_or_default();
    for q in config["quickReplies"].as_array().into_iter().flatten() {
        list.push(json!({"type": "postback", "title": q["title"], "payload": q["payload"]}));
    }
    list
}

/// The message for `channel` (a Sinch channel identifier).
pub fn render(message: &Value, channel: &str) -> Value {
    let config = &message["config"];
    let kind = message["type"].as_str().unwrap_or("text");
    if plain_only(channel) {
        return json!({"text_message": {"text": plain(message)}});
    }
    match kind {
        "buttons" | "quickReplies" => json!({"choice_message": {
            "text_message": {"text": first_text(config)},
            "choices": buttons(config).iter().map(choice).collect::<Vec<_>>(),
        }}),
        "carousel" => {
            json!({"carousel_message": {"cards": config["elements"].as_array().into_iter().flatten().map(|e| {
            let mut card = json!({"title": e["title"], "description": e.get("subTitle").cloned().unwrap_or(json!("")),
                "choices": e["buttons"].as_array().into_iter().flatten().map(choice).collect::<Vec<_>>()});
            if let Some(url) = e.get("imageUrl") {
                card["media_message"] = json!({"url": url});
            }
            card
        }).collect::<Vec<_>>()}})
        }
        "media" => json!({"media_message": {"url": config["media"]["url"]}}),
        "html" | "iframe" => json!({"text_message": {"text": plain(message)}}),
        _ => json!({"text_message": {"text": first_text(config)}}),
    }
}

/// The plain-text form: the text, then `1. Title` per choice (links and
/// numbers written out), carousels as one numbered list of their buttons.
pub fn plain(message: &Value) -> String {
    let config = &message["config"];
    let mut lines = Vec::new();
    let mut n = 0;
    let mut list = |buttons: &[Value], lines: &mut Vec<String>| {
        for b in buttons {
            n += 1;
            let title = b["title"].as_str().unwrap_or_default();
            lines.push(match b["type"].as_str().unwrap_or("postback") {
                "web_url" => format!("{n}. {title}: {}", b["url"].as_str().unwrap_or_default()),
                "phone_number" => format!(
                    "{n}. {title}: {}",
                    b["payload"].as_str().unwrap_or_default()
                ),
                _ => format!("{n}. {title}"),
            });
        }
    };
    match message["type"].as_str().unwrap_or("text") {
        "carousel" => {
            for e in config["elements"].as_array().into_iter().flatten() {
                let sub = e["subTitle"]
                    .as_str()
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default();
                lines.push(format!("{}{sub}", e["title"].as_str().unwrap_or_default()));
                list(
                    e["buttons"].as_array().map(Vec::as_slice).unwrap_or(&[]),
                    &mut lines,
                );
            }
        }
        "html" | "iframe" => lines.extend(crate::channels::plain_text::fallback(message)),
        "media" => lines.push(
            config["media"]["url"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        ),
        _ => {
            lines.push(first_text(config));
            list(&buttons(config), &mut lines);
        }
    }
    lines.retain(|l| !l.is_empty());
    lines.join("\n")
}

/// The postback payloads of `messages` in the numbered order `plain` shows
/// (links and phone numbers take a number but have no payload).
pub fn numbered_payloads(messages: &[Value]) -> Vec<Option<String>> {
    // `plain` numbers each message's choices from 1, so a reply refers to the
    // last message that offered any.
    messages
        .iter()
        .rev()
        .map(|m| {
            let config = &m["config"];
            let all: Vec<Value> = if m["type"] == "carousel" {
                config["elements"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|e| e["buttons"].as_array().cloned().unwrap_or_default())
                    .collect()
            } else {
                buttons(config)
            };
            all.iter()
                .map(|b| {
                    (b["type"].as_str().unwrap_or("postback") == "postback")
                        .then(|| b["payload"].as_str().unwrap_or_default().to_string())
                })
                .collect::<Vec<_>>()
        })
        .find(|payloads| !payloads.is_empty())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buttons_msg() -> Value {
        json!({"type": "buttons", "config": {"textMessages": [{"text": "Pick"}], "buttons": [
            {"type": "postback", "title": "A", "payload": "pb_a"},
            {"type": "web_url", "title": "Site", "url": "https://x"},
            {"type": "phone_number", "title": "Call", "payload": "+32"}]}})
    }

    #[test]
    fn rich_and_plain() {
        let rich = render(&buttons_msg(), "WHATSAPP");
        assert_eq!(
            rich["choice_message"]["choices"][0],
            json!({"text_message": {"text": "A"}, "postback_data": "pb_a"})
        );
        assert_eq!(
            rich["choice_message"]["choices"][1],
            json!({"url_message": {"title": "Site", "url": "https://x"}})
        );
        assert_eq!(
            rich["choice_message"]["choices"][2],
            json!({"call_message": {"title": "Call", "phone_number": "+32"}})
        );
        let sms = render(&buttons_msg(), "SMS");
        assert_eq!(
            sms,
            json!({"text_message": {"text": "Pick\n1. A\n2. Site: https://x\n3. Call: +32"}})
        );
        assert_eq!(
            numbered_payloads(&[buttons_msg()]),
            [Some("pb_a".to_string()), None, None]
        );
        let carousel = json!({"type": "carousel", "config": {"elements": [{"title": "C", "subTitle": "s", "imageUrl": "https://i", "buttons": [{"type": "postback", "title": "Go", "payload": "pb_c"}]}]}});
        assert_eq!(
            render(&carousel, "MESSENGER")["carousel_message"]["cards"][0]["media_message"]["url"],
            "https://i"
        );
        assert_eq!(plain(&carousel), "C (s)\n1. Go");
        assert_eq!(
            render(
                &json!({"type": "text", "config": {"textMessages": [{"text": "hi"}]}}),
                "SMS"
            ),
            json!({"text_message": {"text": "hi"}})
        );
        // `addHtml` / `addIframe`: their text on SMS and on rich channels
        // (they used to go out as empty texts).
        let html = json!({"type": "html", "config": {"html": "<b>Open</b> at <i>9</i>"}});
        for channel in ["SMS", "WHATSAPP"] {
            assert_eq!(
                render(&html, channel),
                json!({"text_message": {"text": "Open at 9"}})
            );
        }
        let iframe =
            json!({"type": "iframe", "config": {"url": "https://map.example", "height": 200}});
        assert_eq!(
            render(&iframe, "SMS"),
            json!({"text_message": {"text": "https://map.example"}})
        );
    }
}
