use std::fmt;

use crate::bindings;

/// The action's own failure. The host reports it as `guest_error` with this code
/// and message, and the flow goes to the bot's *Error occurred* block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionError {
    pub code: String,
    pub message: String,
}

impl ActionError {
    /// An error with a short machine-readable `code` and a sentence for people.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ActionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ActionError {}

impl From<ActionError> for bindings::ActionError {
    fn from(e: ActionError) -> Self {
        bindings::ActionError {
            code: e.code,
            message: e.message,
        }
    }
}

impl From<serde_json::Error> for ActionError {
    fn from(e: serde_json::Error) -> Self {
        ActionError::new("json", e.to_string())
    }
}

impl From<crate::http::HttpError> for ActionError {
    fn from(e: crate::http::HttpError) -> Self {
        ActionError::new("http", crate::http::describe(&e))
    }
}
