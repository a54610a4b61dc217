//! The embedded store's durable outbound queue: deliveries are written in the
//! same transaction as the turn that produced them, and leave the queue only
//! once delivered (or given up), so a restart neither loses nor repeats them.

use redb::{ReadableDatabase, ReadableTable};

use super::embedded::{EmbeddedStore, OUTBOX};
use super::{Delivery, StoreError};

impl EmbeddedStore {
    pub(super) fn outbox_items(&self, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        let tx = self.db().begin_read().map_err(StoreError::new)?;
        let table = tx.open_table(OUTBOX).map_err(StoreError::new)?;
        let mut out = Vec::new();
        for item in table.iter().map_err(StoreError::new)?.take(limit) {
            let (_, v) = item.map_err(StoreError::new)?;
            out.push(serde_json::from_slice(v.value()).map_err(StoreError::new)?);
        }
        Ok(out)
    }

    /// Removes `done` and reschedules `retry` in one transaction.
    pub(super) fn settle(&self, done: &[u64], retry: &[(u64, u32, u64)]) -> Result<(), StoreError> {
        if done.is_empty() && retry.is_empty() {
            return Ok(());
        }
        let tx = self.db().begin_write().map_err(StoreError::new)?;
        {
            let mut table = tx.open_table(OUTBOX).map_err(StoreError::new)?;
            for id in done {
                table.remove(*id).map_err(StoreError::new)?;
            }
            for (id, attempts, not_before_ms) in retry {
                let current: Option<Delivery> = match table.get(*id).map_err(StoreError::new)? {
                    Some(v) => Some(serde_json::from_slice(v.value()).map_err(StoreError::new)?),
                    None => None,
                };
                if let Some(mut d) = current {
                    d.attempts = *attempts;
                    d.not_before_ms = *not_before_ms;
                    let bytes = serde_json::to_vec(&d).map_err(StoreError::new)?;
                    table
                        .insert(*id, bytes.as_slice())
                        .map_err(StoreError::new)?;
                }
            }
        }
        tx.commit().map_err(StoreError::new)
    }
}
