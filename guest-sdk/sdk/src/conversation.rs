//! Messages, navigation and logs. Messages and the next block are applied only
//! if the invocation succeeds; logs are kept either way.

use serde_json::{Value, json};

use crate::ActionError;
use crate::bindings::sandbot::action::conversation as wit;

pub use wit::Level;

/// Sends one message in Chatlayer's type/config format.
pub fn say(message: &Value) -> Result<(), ActionError> {
    wit::say(&message.to_string()).map_err(|e| ActionError::new("invalid_message", e))
}

/// Sends a plain text message.
pub fn say_text(text: &str) -> Result<(), ActionError> {
    say(&json!({"type": "text", "config": {"textMessages": [{"text": text}]}}))
}

/// Continues the flow with `block` (an id or a label) after this action.
pub fn goto(block: &str) {
    wit::goto(block)
}

/// Writes a log line.
pub fn log(level: Level, text: &str) {
    wit::log(level, text)
}

/// Writes an `info` log line.
pub fn info(text: &str) {
    log(Level::Info, text)
}

/// Writes a `warn` log line.
pub fn warn(text: &str) {
    log(Level::Warn, text)
}
