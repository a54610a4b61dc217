//! Turns a Message block's messages into Chatlayer's type/config messages,
//! templated from the session in the conversation's language.

use serde_json::{Value, json};

use crate::flow::bot::Bot;
use crate::flow::bot::model::{ButtonSpec, CardSpec, MediaKind, MessageSpec};
use crate::flow::say::template;
use crate::flow::say::text::Text;
use crate::flow::turn::postback::Target;

/// Renders texts: language, random variant, templates.
pub struct Renderer<'a> {
    pub bot: &'a Bot,
    pub session: &'a Value,
    pub language: &'a str,
    /// Picks one of several variants (seeded per conversation and turn).
    pub seed: u64,
}

impl Renderer<'_> {
    pub fn text(&mut self, text: &Text) -> String {
        let variants = text.variants(self.language, self.bot.primary_language());
        let chosen = match variants.len() {
            0 => "",
            n => {
                self.seed = self
                    .seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                &variants[((self.seed >> 33) % n as u64) as usize]
            }
        };
        template::render(chosen, self.session)
    }

    pub fn message(&mut self, m: &MessageSpec) -> Value {
        let text_messages = |r: &mut Self| match &m.text {
            Some(t) => json!([{ "text": r.text(t) }]),
            None => json!([]),
        };
        if !m.buttons.is_empty() {
            let tm = text_messages(self);
            let buttons: Vec<Value> = m.buttons.iter().map(|b| self.button(b)).collect();
            json!({"type": "buttons", "config": {"textMessages": tm, "buttons": buttons}})
        } else if !m.quick_replies.is_empty() {
            let tm = text_messages(self);
            let replies: Vec<Value> = m
                .quick_replies
                .iter()
                .map(|b| json!({"title": self.text(&b.title), "payload": self.postback(b)}))
                .collect();
            json!({"type": "quickReplies", "config": {"textMessages": tm, "quickReplies": replies}})
        } else if !m.carousel.is_empty() {
            let elements: Vec<Value> = m.carousel.iter().map(|c| self.card(c)).collect();
            json!({"type": "carousel", "config": {"elements": elements}})
        } else if let Some(media) = &m.media {
            let kind = match media.kind {
                MediaKind::Image => "image",
                MediaKind::Video => "video",
                MediaKind::Audio => "audio",
                MediaKind::Attachment => "attachment",
            };
            let url = template::render(&media.url, self.session);
            json!({"type": "media", "config": {"media": {"type": kind, "url": url}}})
        } else {
            json!({"type": "text", "config": {"textMessages": text_messages(self)}})
        }
    }

    fn card(&mut self, c: &CardSpec) -> Value {
        let mut card = json!({"title": self.text(&c.title)});
        if let Some(s) = &c.subtitle {
            card["subTitle"] = json!(self.text(s));
        }
        if let Some(u) = &c.image_url {
            card["imageUrl"] = json!(template::render(u, self.session));
        }
        if let Some(u) = &c.url {
            card["webUrl"] = json!(template::render(u, self.session));
        }
        card["buttons"] = Value::Array(c.buttons.iter().map(|b| self.button(b)).collect());
        card
    }

    fn button(&mut self, b: &ButtonSpec) -> Value {
        let title = self.text(&b.title);
        if let Some(url) = &b.url {
            json!({"type": "web_url", "title": title, "url": template::render(url, self.session)})
        } else if let Some(phone) = &b.phone {
            json!({"type": "phone_number", "title": title, "payload": template::render(phone, self.session)})
        } else {
            json!({"type": "postback", "title": title, "payload": self.postback(b)})
        }
    }

    /// `{nextDialogstateId, params}` with the block's id and templated params.
    fn postback(&self, b: &ButtonSpec) -> Value {
        let target = b.goto.as_deref().unwrap_or_default();
        let next = self
            .bot
            .find(target)
            .map(|i| self.bot.blocks[i].id.clone())
            .unwrap_or_else(|| target.to_string());
        Target {
            next,
            params: template::resolve_map(&b.set, self.session),
        }
        .to_json()
    }
}
