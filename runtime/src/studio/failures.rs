//! Failed code actions in production, kept so the studio can replay them:
//! the script that failed, its args, the session it read, the error, and
//! the [`Recording`] (clock, random seed, every fetch answer; never request
//! headers or cookies). Kept in the store, so every node lists them, per
//! tenant and bounded: the newest [`BOUNDS`]`.keep` within
//! [`BOUNDS`]`.max_bytes` and [`BOUNDS`]`.max_age_ms`; at most
//! [`PER_MINUTE`] new ones a minute per tenant and node (a flood of
//! failures is not a flood of writes); a record over [`MAX_RECORD_BYTES`]
//! is not kept.

use std::sync::{Arc, Mutex};

use sandbot_host_api::Failure;
use sandbot_host_api::replay::Recording;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::store::{FailureBounds, Store, StoreError, StoredFailure, now_ms};

pub const BOUNDS: FailureBounds = FailureBounds {
    keep: 50,
    max_bytes: 4 << 20,
    max_age_ms: 24 * 3600 * 1000,
};
/// A record bigger than this is not kept (its answers were huge).
pub const MAX_RECORD_BYTES: usize = 1 << 20;
/// New records a tenant keeps per minute on one node, at most.
pub const PER_MINUTE: u32 = 20;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureRecord {
    pub id: String,
    pub at_ms: u64,
    /// The deployment's store key (`shop`, `shop@DRAFT`).
    pub bot: String,
    pub conversation: String,
    pub action: String,
    /// The script as it failed.
    pub source: String,
    pub args: Value,
    pub session: Value,
    pub error: Failure,
    pub recording: Recording,
}

/// One tenant's failures, in the store.
pub struct FailureLog {
    store: Arc<dyn Store>,
    tenant: String,
    /// (minute, records kept in it) on this node.
    minute: Mutex<(u64, u32)>,
}

impl FailureLog {
    pub fn new(store: Arc<dyn Store>, tenant: &str) -> Self {
        Self {
            store,
            tenant: tenant.to_string(),
            minute: Mutex::new((0, 0)),
        }
    }

    /// Keeps `r` unless it is too big or this minute's records are spent;
    /// a store that fails is logged, never the turn's problem.
    pub async fn push(&self, r: FailureRecord) {
        let now = now_ms();
        {
            let mut m = self.minute.lock().expect("not poisoned");
            if m.0 != now / 60_000 {
                *m = (now / 60_000, 0);
            }
            if m.1 >= PER_MINUTE {
                return;
            }
            m.1 += 1;
        }
        let record = match serde_json::to_value(&r) {
            Ok(v) => v,
            Err(_) => return,
        };
        let bytes = record.to_string().len();
        if bytes > MAX_RECORD_BYTES {
            tracing::info!(
                tenant = self.tenant,
                bot = r.bot,
                action = r.action,
                bytes,
                "a failed invocation is too big to keep for replay"
            );
            return;
        }
        let stored = StoredFailure {
            tenant: self.tenant.clone(),
            id: r.id,
            bot: r.bot,
            at_ms: r.at_ms,
            record,
        };
        if let Err(e) = self.store.put_failure(stored, BOUNDS).await {
            tracing::warn!(tenant = self.tenant, "keeping a failure for replay: {e}");
        }
    }

    /// The failures of the deployments `bots`, newest first.
    pub async fn list(&self, bots: &[String]) -> Result<Vec<FailureRecord>, StoreError> {
        let since = now_ms().saturating_sub(BOUNDS.max_age_ms);
        let rows = self
            .store
            .failures(&self.tenant, bots, since, BOUNDS.keep)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect())
    }

    pub async fn get(&self, id: &str) -> Result<Option<FailureRecord>, StoreError> {
        Ok(self
            .store
            .failure(&self.tenant, id)
            .await?
            .and_then(|v| serde_json::from_value(v).ok()))
    }
}

impl FailureRecord {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        bot: String,
        conversation: String,
        action: String,
        source: &str,
        args: Value,
        session: Value,
        error: Failure,
        recording: Recording,
    ) -> Self {
        FailureRecord {
            id: crate::serve::inbox::random_id(8),
            at_ms: now_ms(),
            bot,
            conversation,
            action,
            source: source.to_string(),
            args,
            session,
            error,
            recording,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::EmbeddedStore;
    use sandbot_host_api::FailureKind;

    fn record(session_bytes: usize) -> FailureRecord {
        FailureRecord::new(
            "b".into(),
            "c".into(),
            "a.js".into(),
            "throw 1",
            Value::Null,
            Value::String("s".repeat(session_bytes)),
            Failure::new(FailureKind::JsError, "boom"),
            Recording::start(),
        )
    }

    #[tokio::test]
    async fn a_minute_keeps_at_most_its_share_and_no_record_too_big() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(
            EmbeddedStore::open(
                &dir.path().join("s.redb"),
                crate::store::DEFAULT_SESSION_TTL,
            )
            .unwrap(),
        );
        let log = FailureLog::new(store.clone(), "t");
        let bots = ["b".to_string()];
        // All of it within one minute.
        while now_ms() % 60_000 > 55_000 {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        // Just under the record size: kept; over it: not.
        log.push(record(MAX_RECORD_BYTES - 1_000)).await;
        assert_eq!(log.list(&bots).await.unwrap().len(), 1);
        log.push(record(MAX_RECORD_BYTES)).await;
        assert_eq!(log.list(&bots).await.unwrap().len(), 1);
        // The minute's share (two are spent above): 20 in all, then none.
        for _ in 0..PER_MINUTE + 5 {
            log.push(record(10)).await;
        }
        let kept = log.list(&bots).await.unwrap();
        assert_eq!(kept.len(), PER_MINUTE as usize - 1);
        let one = log.get(&kept[0].id).await.unwrap().unwrap();
        assert_eq!(one.source, "throw 1");
        // Another tenant's log sees none of them.
        let other = FailureLog::new(store, "u");
        assert!(other.list(&bots).await.unwrap().is_empty());
        assert!(other.get(&kept[0].id).await.unwrap().is_none());
    }
}
