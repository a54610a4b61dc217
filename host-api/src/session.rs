//! `sandbot:action/session`: reads see the invocation's own writes; writes are
//! buffered in [`Effects::session`](crate::Effects) and never touch `internal.*`.

use serde_json::Value;

use crate::bindings::session::Host;
use crate::{ActionState, JsonPath};

/// The namespace the runtime alone maintains.
const READ_ONLY_ROOT: &str = "internal";

impl ActionState {
    fn writable_path(&self, path: &str) -> Result<JsonPath, String> {
        let parsed = JsonPath::parse(path).map_err(|e| e.to_string())?;
        if parsed.root_key() == Some(READ_ONLY_ROOT) {
            return Err(format!(
                "`{path}` is read-only: `internal.*` is maintained by the runtime"
            ));
        }
        Ok(parsed)
    }

    fn write(&mut self, path: &str, value: Value) -> Result<(), String> {
        let parsed = self.writable_path(path)?;
        if value.is_null() {
            parsed.remove(&mut self.session);
        } else {
            parsed
                .set(&mut self.session, value.clone())
                .map_err(|e| e.to_string())?;
        }
        // Re-inserted at the end so that replaying the writes in order is exact.
        let key = parsed.to_string();
        self.effects.session.shift_remove(&key);
        self.effects.session.insert(key, value);
        Ok(())
    }
}

impl Host for ActionState {
    fn get(&mut self, path: String) -> wasmtime::Result<Option<String>> {
        self.meter.enter(&self.limits, path.len())?;
        let Ok(parsed) = JsonPath::parse(&path) else {
            return Ok(None);
        };
        let json = parsed.get(&self.session).map(Value::to_string);
        self.meter
            .cross(&self.limits, json.as_ref().map_or(0, String::len))?;
        Ok(json)
    }

    fn set(&mut self, path: String, json: String) -> wasmtime::Result<Result<(), String>> {
        self.meter.enter(&self.limits, path.len() + json.len())?;
        let value = match serde_json::from_str::<Value>(&json) {
            Ok(v) => v,
            Err(e) => return Ok(Err(format!("value for `{path}` is not JSON: {e}"))),
        };
        Ok(self.write(&path, value))
    }

    fn remove(&mut self, path: String) -> wasmtime::Result<Result<(), String>> {
        self.meter.enter(&self.limits, path.len())?;
        Ok(self.write(&path, Value::Null))
    }
}
