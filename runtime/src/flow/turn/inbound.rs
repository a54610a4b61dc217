//! One message from a user, as every channel hands it to the engine.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// What the user did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum InboundKind {
    /// The conversation starts (Introduction).
    Intro,
    /// Free text: intent matching, or the answer to a Collect input.
    Text { text: String },
    /// A button or quick reply: an opaque payload id, or a legacy JSON payload.
    Postback {
        #[serde(default)]
        title: Option<String>,
        payload: String,
    },
    /// An explicit jump (`nextDialogstateId` + `sessionDataToSet`).
    Goto {
        next: String,
        #[serde(default)]
        params: Map<String, Value>,
    },
    /// A file the user sent.
    Upload { url: String },
    /// A location the user shared.
    Location { latitude: f64, longitude: f64 },
    /// No user message since the conversation began waiting: the bot's
    /// *Silence detected* event, due at `due_ms` (stale when a later turn
    /// replaced the timer).
    Silence { due_ms: u64 },
}

impl InboundKind {
    /// `internal.messageType`.
    pub fn message_type(&self) -> &'static str {
        match self {
            InboundKind::Intro => "intro",
            InboundKind::Text { .. } => "text",
            InboundKind::Postback { .. } | InboundKind::Goto { .. } => "postback",
            InboundKind::Upload { .. } => "upload",
            InboundKind::Location { .. } => "location",
            InboundKind::Silence { .. } => "silence",
        }
    }

    /// `internal.messageContent`, and the user's side of the transcript.
    pub fn content(&self) -> Value {
        match self {
            InboundKind::Intro => Value::Null,
            InboundKind::Text { text } => json!(text),
            InboundKind::Postback { title, payload } => {
                json!(title.clone().unwrap_or_else(|| payload.clone()))
            }
            InboundKind::Goto { next, .. } => json!(next),
            InboundKind::Upload { url } => json!(url),
            InboundKind::Location {
                latitude,
                longitude,
            } => json!({"latitude": latitude, "longitude": longitude}),
            InboundKind::Silence { .. } => Value::Null,
        }
    }
}

/// The user as the channel knows them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserInfo {
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub preferred_language: Option<String>,
    #[serde(default)]
    pub locale: Option<String>,
}

/// One inbound message for one conversation of one bot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Inbound {
    pub conversation: String,
    pub kind: InboundKind,
    /// `internal.channel`: `webHook`, `web`, `sinchConversationAPI`, `cli`, …
    pub channel: String,
    #[serde(default)]
    pub user: Option<UserInfo>,
    /// Session data the channel sets before the turn (`internal` is ignored).
    #[serde(default)]
    pub session_data: Map<String, Value>,
    /// Channel variables written under `internal` (e.g. `sinchConversationAPI`).
    #[serde(default)]
    pub internal: Map<String, Value>,
    /// The durable inbox entry this message was accepted as: marked done by
    /// the turn's commit.
    #[serde(skip)]
    pub inbox: Option<crate::store::InboxClaim>,
    /// The conversation's state as the store read it with the inbox entry,
    /// under the lease (`Some(None)`: no session yet): the turn starts from
    /// it instead of reading it again.
    #[serde(skip)]
    pub state: Option<Option<crate::store::ConversationState>>,
}

impl Inbound {
    pub fn new(
        conversation: impl Into<String>,
        channel: impl Into<String>,
        kind: InboundKind,
    ) -> Self {
        Self {
            conversation: conversation.into(),
            kind,
            channel: channel.into(),
            user: None,
            session_data: Map::new(),
            internal: Map::new(),
            inbox: None,
            state: None,
        }
    }

    pub fn text(
        conversation: impl Into<String>,
        channel: impl Into<String>,
        text: impl Into<String>,
    ) -> Self {
        Self::new(
            conversation,
            channel,
            InboundKind::Text { text: text.into() },
        )
    }
}
