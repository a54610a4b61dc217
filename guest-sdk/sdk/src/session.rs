//! The conversation's session, addressed by paths such as `user.address.city`
//! or `items[0]`. Writes are applied only if the invocation succeeds.

use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::ActionError;
use crate::bindings::sandbot::action::session as wit;

/// The value at `path` converted to `T`; `Ok(None)` when nothing is there.
///
/// Fails with code `session_type` when the value does not convert to `T`.
pub fn get<T: DeserializeOwned>(path: &str) -> Result<Option<T>, ActionError> {
    match wit::get(path) {
        None => Ok(None),
        Some(json) => serde_json::from_str(&json)
            .map(Some)
            .map_err(|e| ActionError::new("session_type", format!("session value `{path}`: {e}"))),
    }
}

/// The raw JSON value at `path`, if any.
pub fn get_value(path: &str) -> Option<Value> {
    wit::get(path).and_then(|json| serde_json::from_str(&json).ok())
}

/// Sets `path` to `value`. Fails with code `session_write` on a bad path or a
/// write under `internal.`.
pub fn set<T: Serialize + ?Sized>(path: &str, value: &T) -> Result<(), ActionError> {
    let json = serde_json::to_string(value)?;
    wit::set(path, &json).map_err(|e| ActionError::new("session_write", e))
}

/// Removes the value at `path`.
pub fn remove(path: &str) -> Result<(), ActionError> {
    wit::remove(path).map_err(|e| ActionError::new("session_write", e))
}
