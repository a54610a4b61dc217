//! Drives a conversation from a script: one input per line (plain text,
//! `/intro`, `/postback TITLE`; `#` comments), producing the transcript as
//! events. `sandbot chat --script` and the conversation tests use it.

use serde_json::{Value, json};

use crate::flow::{Bot, FlowEngine, Inbound, InboundKind, TurnOutput, UserInfo};
use crate::store::StoreError;

/// What one input line asks for.
pub enum Line {
    Send(InboundKind),
    Postback(String),
    Nothing,
}

pub fn parse_line(line: &str) -> Line {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Line::Nothing;
    }
    if line == "/intro" {
        return Line::Send(InboundKind::Intro);
    }
    if let Some(title) = line.strip_prefix("/postback ") {
        return Line::Postback(title.trim().to_string());
    }
    Line::Send(InboundKind::Text {
        text: line.to_string(),
    })
}

/// One conversation with one bot, remembering the last answer's choices.
pub struct Conversation<'e> {
    pub engine: &'e FlowEngine,
    pub bot: &'e Bot,
    pub id: String,
    pub channel: String,
    pub language: Option<String>,
    /// Postback buttons and quick replies of the last turn: (title, payload).
    pub choices: Vec<(String, String)>,
}

impl<'e> Conversation<'e> {
    pub fn new(engine: &'e FlowEngine, bot: &'e Bot, id: &str) -> Self {
        Self {
            engine,
            bot,
            id: id.to_string(),
            channel: "cli".into(),
            language: None,
            choices: Vec::new(),
        }
    }

    pub async fn send(&mut self, kind: InboundKind) -> Result<TurnOutput, StoreError> {
        let mut inbound = Inbound::new(&self.id, &self.channel, kind);
        if let Some(l) = &self.language {
            inbound.user = Some(UserInfo {
                preferred_language: Some(l.clone()),
                ..Default::default()
            });
        }
        let out = self.engine.turn(self.bot, inbound).await?;
        self.choices = choices(&out.messages);
        Ok(out)
    }

    /// The postback of the last answer's choice titled `title` (any case).
    pub fn postback(&self, title: &str) -> Option<InboundKind> {
        self.choices
            .iter()
            .find(|(t, _)| t.eq_ignore_ascii_case(title))
            .map(|(t, payload)| InboundKind::Postback {
                title: Some(t.clone()),
                payload: payload.clone(),
            })
    }

    /// Runs every line of `script`; returns the transcript events. A
    /// `/postback` naming no offered choice yields an `{"error"}` event.
    pub async fn run_script(&mut self, script: &str) -> Result<Vec<Value>, StoreError> {
        let mut events = Vec::new();
        for (n, line) in script.lines().enumerate() {
            let kind = match parse_line(line) {
                Line::Nothing => continue,
                Line::Send(kind) => kind,
                Line::Postback(title) => match self.postback(&title) {
                    Some(kind) => kind,
                    None => {
                        let offered: Vec<&str> =
                            self.choices.iter().map(|c| c.0.as_str()).collect();
                        events.push(json!({"error": {"kind": "script", "message": format!(
                            "line {}: no button or quick reply titled `{title}` in the last answer (offered: {})",
                            n + 1, offered.join(", "))}}));
                        continue;
                    }
                },
            };
            events.extend(self.send(kind).await?.events);
        }
        Ok(events)
    }
}

/// Postback buttons and quick replies, in the order shown.
pub fn choices(messages: &[Value]) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut take = |list: &Value| {
        for b in list.as_array().into_iter().flatten() {
            let postback =
                b.get("type").and_then(Value::as_str).unwrap_or("postback") == "postback";
            if let (true, Some(t), Some(p)) = (postback, b["title"].as_str(), b["payload"].as_str())
            {
                found.push((t.to_string(), p.to_string()));
            }
        }
    };
    for m in messages {
        let c = &m["config"];
        take(&c["buttons"]);
        take(&c["quickReplies"]);
        for e in c["elements"].as_array().into_iter().flatten() {
            take(&e["buttons"]);
        }
    }
    found
}
