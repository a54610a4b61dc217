//! Failed code actions in production, kept so the studio can replay them:
//! the script that failed, its args, the session it read, the error, and
//! the [`Recording`] (clock, random seed, every fetch answer; never request
//! headers or cookies). Per tenant and per node, in memory, bounded: the
//! latest [`MAX_RECORDS`] within [`MAX_BYTES`] and [`MAX_AGE_MS`].

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use sandbot_host_api::Failure;
use sandbot_host_api::replay::Recording;
use serde::Serialize;
use serde_json::Value;

use crate::store::now_ms;

pub const MAX_RECORDS: usize = 50;
pub const MAX_BYTES: usize = 4 << 20;
/// A record bigger than this is not kept (its answers were huge).
pub const MAX_RECORD_BYTES: usize = 1 << 20;
pub const MAX_AGE_MS: u64 = 24 * 3600 * 1000;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureRecord {
    pub id: String,
    pub at_ms: u64,
    /// The deployment's store key (`shop`, `shop@DRAFT`).
    pub bot: String,
    pub conversation: String,
    pub action: String,
    /// The script as it failed.
    pub source: Arc<str>,
    pub args: Value,
    pub session: Value,
    pub error: Failure,
    pub recording: Recording,
    #[serde(skip)]
    bytes: usize,
}

impl FailureRecord {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        bot: String,
        conversation: String,
        action: String,
        source: Arc<str>,
        args: Value,
        session: Value,
        error: Failure,
        recording: Recording,
    ) -> Self {
        let mut r = FailureRecord {
            id: crate::serve::inbox::random_id(8),
            at_ms: now_ms(),
            bot,
            conversation,
            action,
            source,
            args,
            session,
            error,
            recording,
            bytes: 0,
        };
        r.bytes = serde_json::to_vec(&r).map_or(usize::MAX, |v| v.len());
        r
    }
}

/// One tenant's recent failures.
#[derive(Default)]
pub struct FailureLog {
    records: Mutex<(VecDeque<FailureRecord>, usize)>,
}

impl FailureLog {
    /// Keeps `r` (unless it is too big), dropping the oldest past the bounds.
    pub fn push(&self, r: FailureRecord) {
        if r.bytes > MAX_RECORD_BYTES {
            tracing::info!(
                bot = r.bot,
                action = r.action,
                bytes = r.bytes,
                "a failed invocation is too big to keep for replay"
            );
            return;
        }
        let mut guard = self.records.lock().expect("not poisoned");
        let (list, bytes) = &mut *guard;
        *bytes += r.bytes;
        list.push_back(r);
        let now = now_ms();
        while list.len() > MAX_RECORDS
            || *bytes > MAX_BYTES
            || list
                .front()
                .is_some_and(|f| now.saturating_sub(f.at_ms) > MAX_AGE_MS)
        {
            let Some(old) = list.pop_front() else { break };
            *bytes -= old.bytes;
        }
    }

    /// The failures of deployment `bot`, newest first.
    pub fn list(&self, bots: &[&str]) -> Vec<FailureRecord> {
        let now = now_ms();
        let guard = self.records.lock().expect("not poisoned");
        guard
            .0
            .iter()
            .rev()
            .filter(|r| bots.contains(&r.bot.as_str()))
            .filter(|r| now.saturating_sub(r.at_ms) <= MAX_AGE_MS)
            .cloned()
            .collect()
    }

    pub fn get(&self, id: &str) -> Option<FailureRecord> {
        let guard = self.records.lock().expect("not poisoned");
        guard.0.iter().find(|r| r.id == id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sandbot_host_api::FailureKind;

    fn record(bot: &str, body: usize) -> FailureRecord {
        FailureRecord::new(
            bot.into(),
            "c".into(),
            "a.js".into(),
            Arc::from("x"),
            Value::Null,
            Value::String("s".repeat(body)),
            Failure::new(FailureKind::JsError, "boom"),
            Recording::start(),
        )
    }

    #[test]
    fn bounded_by_count_bytes_and_record_size() {
        let log = FailureLog::default();
        for _ in 0..MAX_RECORDS + 5 {
            log.push(record("b", 10));
        }
        assert_eq!(log.list(&["b"]).len(), MAX_RECORDS);
        assert!(log.list(&["other"]).is_empty());
        // Big records push the oldest out by bytes.
        for _ in 0..6 {
            log.push(record("b", 900_000));
        }
        let kept = log.list(&["b"]);
        assert!(kept.iter().map(|r| r.bytes).sum::<usize>() <= MAX_BYTES);
        assert!(kept.len() < MAX_RECORDS);
        // One over the record limit is not kept.
        let n = log.list(&["b"]).len();
        log.push(record("b", MAX_RECORD_BYTES));
        assert_eq!(log.list(&["b"]).len(), n);
        let newest = &kept[0];
        assert_eq!(log.get(&newest.id).unwrap().id, newest.id);
    }
}
