//! `sandbot:action/conversation`: messages and the next block are buffered;
//! logs are kept (bounded) whatever the outcome.

use serde_json::Value;

use crate::bindings::conversation::{Host, Level};
use crate::{ActionState, LogLine};

/// Longer log lines are cut here.
const MAX_LOG_LINE: usize = 4096;

impl Host for ActionState {
    fn say(&mut self, message_json: String) -> wasmtime::Result<Result<(), String>> {
        self.meter.enter(&self.limits, message_json.len())?;
        match serde_json::from_str::<Value>(&message_json) {
            Ok(message @ Value::Object(_)) => {
                self.effects.messages.push(message);
                Ok(Ok(()))
            }
            Ok(_) => Ok(Err("a message must be a JSON object".into())),
            Err(e) => Ok(Err(format!("message is not JSON: {e}"))),
        }
    }

    fn goto(&mut self, block: String) -> wasmtime::Result<()> {
        self.meter.enter(&self.limits, block.len())?;
        self.effects.next = Some(block);
        Ok(())
    }

    fn log(&mut self, level: Level, mut text: String) -> wasmtime::Result<()> {
        self.meter.enter(&self.limits, text.len())?;
        if self.effects.logs.len() >= self.limits.max_log_lines {
            self.meter.dropped_logs += 1;
            return Ok(());
        }
        if text.len() > MAX_LOG_LINE {
            let mut cut = MAX_LOG_LINE;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push('…');
        }
        let level = match level {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        self.effects.logs.push(LogLine {
            level: level.into(),
            text,
        });
        Ok(())
    }
}
