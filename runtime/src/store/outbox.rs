//! The embedded store's durable outbound queue: deliveries are written in the
//! same transaction as the turn that produced them, and leave the queue only
//! once delivered (or given up), so a restart neither loses nor repeats them.

use redb::{ReadableDatabase, ReadableTable};

use std::collections::HashSet;

use redb::{Table, TableDefinition};

use super::embedded::{EmbeddedStore, OUTBOX};
use super::{DeadLetter, Delivery, StoreError, now_ms};

/// Delivery id → DeadLetter (JSON): deliveries given up.
pub(super) const DEAD: TableDefinition<u64, &[u8]> = TableDefinition::new("dead_letters");

impl EmbeddedStore {
    /// The first queued delivery of each conversation, in id order.
    pub(super) fn outbox_items(&self, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        let tx = self.db().begin_read().map_err(StoreError::new)?;
        let table = tx.open_table(OUTBOX).map_err(StoreError::new)?;
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for item in table.iter().map_err(StoreError::new)? {
            let (k, v) = item.map_err(StoreError::new)?;
            let mut d: Delivery = serde_json::from_slice(v.value()).map_err(StoreError::new)?;
            // Written without it: the key is the id.
            d.id = k.value();
            if seen.insert((d.bot.clone(), d.conversation.clone())) {
                out.push(d);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    pub(super) fn bury(&self, dead: &[(u64, u32, String)]) -> Result<(), StoreError> {
        if dead.is_empty() {
            return Ok(());
        }
        let tx = self.db().begin_write().map_err(StoreError::new)?;
        {
            let mut outbox = tx.open_table(OUTBOX).map_err(StoreError::new)?;
            let mut buried = tx.open_table(DEAD).map_err(StoreError::new)?;
            for (id, attempts, reason) in dead {
                let Some(v) = outbox.remove(*id).map_err(StoreError::new)? else {
                    continue;
                };
                let mut delivery: Delivery =
                    serde_json::from_slice(v.value()).map_err(StoreError::new)?;
                delivery.id = *id;
                delivery.attempts = *attempts;
                let letter = DeadLetter {
                    delivery,
                    reason: reason.clone(),
                    dead_ms: now_ms(),
                };
                let bytes = serde_json::to_vec(&letter).map_err(StoreError::new)?;
                buried
                    .insert(*id, bytes.as_slice())
                    .map_err(StoreError::new)?;
            }
        }
        tx.commit().map_err(StoreError::new)
    }

    pub(super) fn dead_items(
        &self,
        bots: &[String],
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let tx = self.db().begin_read().map_err(StoreError::new)?;
        let table = tx.open_table(DEAD).map_err(StoreError::new)?;
        let mut out = Vec::new();
        for item in table.iter().map_err(StoreError::new)? {
            let (_, v) = item.map_err(StoreError::new)?;
            let letter: DeadLetter = serde_json::from_slice(v.value()).map_err(StoreError::new)?;
            if bots.contains(&letter.delivery.bot) {
                out.push(letter);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    pub(super) fn revive(&self, bots: &[String], id: u64) -> Result<bool, StoreError> {
        let tx = self.db().begin_write().map_err(StoreError::new)?;
        let found = {
            let mut buried = tx.open_table(DEAD).map_err(StoreError::new)?;
            let letter: Option<DeadLetter> = match buried.get(id).map_err(StoreError::new)? {
                Some(v) => Some(serde_json::from_slice(v.value()).map_err(StoreError::new)?),
                None => None,
            };
            match letter {
                Some(l) if bots.contains(&l.delivery.bot) => {
                    buried.remove(id).map_err(StoreError::new)?;
                    let d = Delivery {
                        attempts: 0,
                        not_before_ms: 0,
                        ..l.delivery
                    };
                    let bytes = serde_json::to_vec(&d).map_err(StoreError::new)?;
                    let mut outbox = tx.open_table(OUTBOX).map_err(StoreError::new)?;
                    outbox
                        .insert(id, bytes.as_slice())
                        .map_err(StoreError::new)?;
                    true
                }
                _ => false,
            }
        };
        tx.commit().map_err(StoreError::new)?;
        Ok(found)
    }
}

/// Removes `done` and reschedules `retry` in the writer's transaction.
pub(super) fn settle(
    table: &mut Table<u64, &[u8]>,
    done: &[u64],
    retry: &[(u64, u32, u64)],
) -> Result<(), String> {
    for id in done {
        table.remove(*id).map_err(|e| e.to_string())?;
    }
    for (id, attempts, not_before_ms) in retry {
        let current: Option<Delivery> = match table.get(*id).map_err(|e| e.to_string())? {
            Some(v) => Some(serde_json::from_slice(v.value()).map_err(|e| e.to_string())?),
            None => None,
        };
        if let Some(mut d) = current {
            d.attempts = *attempts;
            d.not_before_ms = *not_before_ms;
            let bytes = serde_json::to_vec(&d).map_err(|e| e.to_string())?;
            table
                .insert(*id, bytes.as_slice())
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}
