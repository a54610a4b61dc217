//! The embedded store's durable outbound queue: deliveries are written in the
//! same transaction as the turn that produced them, and leave the queue only
//! once delivered (or given up), so a restart neither loses nor repeats them.

use redb::{ReadableDatabase, ReadableTable};

use std::collections::HashSet;

use redb::{Table, TableDefinition};

use super::super::{DeadLetter, Delivery, StoreError, now_ms};
use super::{EmbeddedStore, OUTBOX};

/// Delivery id → DeadLetter (JSON): deliveries given up.
pub(super) const DEAD: TableDefinition<u64, &[u8]> = TableDefinition::new("dead_letters");

impl EmbeddedStore {
    /// The first queued delivery of each conversation, in id order (each
    /// part's first `limit`, merged).
    pub(super) fn outbox_items(&self, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        let mut out = Vec::new();
        for part in &self.parts {
            let tx = part.db.begin_read().map_err(StoreError::new)?;
            let table = tx.open_table(OUTBOX).map_err(StoreError::new)?;
            let mut seen = HashSet::new();
            let mut taken = 0;
            for item in table.iter().map_err(StoreError::new)? {
                if taken == limit {
                    break;
                }
                let (k, v) = item.map_err(StoreError::new)?;
                let mut d: Delivery = serde_json::from_slice(v.value()).map_err(StoreError::new)?;
                // Written without it: the key is the id.
                d.id = k.value();
                if seen.insert((d.bot.clone(), d.conversation.clone())) {
                    out.push(d);
                    taken += 1;
                }
            }
        }
        out.sort_unstable_by_key(|d| d.id);
        out.truncate(limit);
        Ok(out)
    }

    /// Moves deliveries given up to their part's dead letters.
    pub(super) fn bury(&self, dead: &[(u64, u32, String)]) -> Result<(), StoreError> {
        for (index, part) in self.parts.iter().enumerate() {
            let mine: Vec<_> = dead
                .iter()
                .filter(|d| self.part_of_delivery(d.0) == index)
                .collect();
            if mine.is_empty() {
                continue;
            }
            let tx = part.db.begin_write().map_err(StoreError::new)?;
            {
                let mut outbox = tx.open_table(OUTBOX).map_err(StoreError::new)?;
                let mut buried = tx.open_table(DEAD).map_err(StoreError::new)?;
                for (id, attempts, reason) in mine {
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
            tx.commit().map_err(StoreError::new)?;
        }
        Ok(())
    }

    /// `bots`' dead letters, in id order (each part's first `limit`, merged).
    pub(super) fn dead_items(
        &self,
        bots: &[String],
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let mut out = Vec::new();
        for part in &self.parts {
            let tx = part.db.begin_read().map_err(StoreError::new)?;
            let table = tx.open_table(DEAD).map_err(StoreError::new)?;
            let mut taken = 0;
            for item in table.iter().map_err(StoreError::new)? {
                if taken == limit {
                    break;
                }
                let (_, v) = item.map_err(StoreError::new)?;
                let letter: DeadLetter =
                    serde_json::from_slice(v.value()).map_err(StoreError::new)?;
                if bots.contains(&letter.delivery.bot) {
                    out.push(letter);
                    taken += 1;
                }
            }
        }
        out.sort_unstable_by_key(|l| l.delivery.id);
        out.truncate(limit);
        Ok(out)
    }

    pub(super) fn revive(&self, bots: &[String], id: u64) -> Result<bool, StoreError> {
        let part = &self.parts[self.part_of_delivery(id)];
        let tx = part.db.begin_write().map_err(StoreError::new)?;
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
