//! The janitor: every `purgeEverySeconds` it deletes the sessions idle past
//! `sessionIdleDays` (with their transcripts, so expiry frees a tenant's
//! storage quota) and forgets message ids older than `messageIdDays`. On a
//! shared PostgreSQL every node runs it; the deletes are idempotent.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::store::{Store, now_ms};

/// Runs until `stop`; the first round a few seconds after the start.
pub async fn run(
    store: Arc<dyn Store>,
    every: Duration,
    message_ids: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut wait = every.min(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        wait = every;
        // The embedded store reads through every conversation here: off the
        // async workers, so a large store's purge never stalls requests.
        let (store, handle) = (store.clone(), tokio::runtime::Handle::current());
        let purge = tokio::task::spawn_blocking(move || {
            handle.block_on(round(store.as_ref(), message_ids));
        });
        if let Err(e) = purge.await {
            tracing::error!(%e, "the janitor's round failed");
        }
    }
}

/// One round: what it deleted is logged, a failure too (the next round
/// tries again).
pub async fn round(store: &dyn Store, message_ids: Duration) {
    match store.purge_expired().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(conversations = n, "deleted expired sessions"),
        Err(e) if e.is_unavailable() => {}
        Err(e) => tracing::error!(%e, "deleting expired sessions"),
    }
    let before = now_ms().saturating_sub(message_ids.as_millis() as u64);
    match store.purge_seen(before).await {
        Ok(0) => {}
        Ok(n) => tracing::debug!(ids = n, "forgot old message ids"),
        Err(e) if e.is_unavailable() => {}
        Err(e) => tracing::error!(%e, "forgetting old message ids"),
    }
}
