//! *Variables changed*: what a bot watches, and which event a change fires.
//! Used by a turn (before each block) and by the REST API's session writes.

use sandbot_host_api::JsonPath;
use serde_json::Value;

use crate::flow::bot::Bot;

/// Per event, the values of its watched paths.
pub type Watched = Vec<Vec<Option<Value>>>;

impl Bot {
    /// The values of every *Variables changed* event's watched paths.
    pub fn watched(&self, session: &Value) -> Watched {
        self.file
            .events
            .variables_changed
            .iter()
            .map(|e| {
                e.variables
                    .iter()
                    .map(|v| {
                        JsonPath::parse(v)
                            .ok()
                            .and_then(|p| p.get(session).cloned())
                    })
                    .collect()
            })
            .collect()
    }

    /// The first event whose watched values differ between `before` and
    /// `after`: its index and the paths that changed.
    pub fn first_change(&self, before: &Watched, after: &Watched) -> Option<(usize, Vec<String>)> {
        let events = &self.file.events.variables_changed;
        events.iter().enumerate().find_map(|(k, e)| {
            let paths: Vec<String> = e
                .variables
                .iter()
                .enumerate()
                .filter(|(j, _)| before[k][*j] != after[k][*j])
                .map(|(_, p)| p.clone())
                .collect();
            (!paths.is_empty()).then_some((k, paths))
        })
    }
}
