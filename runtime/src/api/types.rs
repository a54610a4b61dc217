//! The REST API's request and response bodies; the OpenAPI document is
//! generated from these types.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `?limit=&after=`: pages of at most `limit` (1–100, default 20) after the
/// cursor `after` (the previous page's `next`).
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Page {
    pub limit: Option<usize>,
    pub after: Option<String>,
    /// `DRAFT` or `LIVE` (default: LIVE when the bot is deployed as LIVE,
    /// else DRAFT).
    pub version: Option<String>,
}

/// `?version=DRAFT` or `LIVE`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct VersionQuery {
    pub version: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConversationSummary {
    pub conversation_id: String,
    /// Last activity, epoch milliseconds.
    pub updated_at: u64,
    pub paused: bool,
    /// The offloading provider an agent has it through, while offloaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offloaded_to: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ConversationList {
    pub data: Vec<ConversationSummary>,
    /// Cursor of the next page, absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Actor {
    User,
    Bot,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct MessageItem {
    /// The user's input, or the bot's message in type/config format.
    pub message: Value,
    /// Epoch milliseconds.
    pub timestamp: u64,
    pub actor: Actor,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct MessageList {
    pub data: Vec<MessageItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SessionData {
    pub data: Value,
}

/// Conversation actions, applied in this order: `setSessionData`,
/// `sendMessages`, `pause`, `goToDialogstate`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActionsRequest {
    /// v1 templates sent as bot messages (README: REST API).
    #[serde(default)]
    pub send_messages: Vec<Value>,
    /// Session paths → values (`internal.*` is refused).
    #[serde(default)]
    pub set_session_data: Option<Map<String, Value>>,
    /// `true` pauses the bot for this conversation (user messages are recorded,
    /// not answered); `false` resumes it.
    #[serde(default)]
    pub pause: Option<bool>,
    /// Runs the flow from this block (id or label), as a postback would.
    #[serde(default)]
    pub go_to_dialogstate: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActionsResponse {
    pub messages_sent: usize,
    pub paused: bool,
    /// Messages the flow produced after `goToDialogstate`.
    pub flow_messages: Vec<Value>,
    /// The request's `Idempotency-Key` was taken before: this action is not
    /// applied again, and the answer is the first request's. (Where that
    /// answer was not kept — its node stopped in between — nothing is
    /// counted: `messagesSent` 0, no `flowMessages`, `paused` as now.)
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtractRequest {
    pub language: Option<String>,
    pub expression: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct IntentItem {
    pub intent: String,
    pub score: f64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct EntityItem {
    pub name: String,
    pub value: Value,
    pub score: f64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Extract {
    pub intents: Vec<IntentItem>,
    pub entities: Vec<EntityItem>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ExtractResponse {
    pub extract: Extract,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ErrorBody {
    pub error: String,
}

/// A delivery given up after its retry period.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetterItem {
    pub id: u64,
    pub bot_id: String,
    pub conversation_id: String,
    pub url: String,
    pub body: Value,
    pub attempts: u32,
    /// The last failure.
    pub reason: String,
    /// Epoch milliseconds.
    pub dead_at: u64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct DeadLetterList {
    pub data: Vec<DeadLetterItem>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Requeued {
    pub requeued: u64,
}
