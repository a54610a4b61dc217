//! The durable inbox: every accepted inbound message is an entry here before
//! its channel is answered, and leaves only with the commit of the turn that
//! answers it. The embedded store's tables and backlog counts live here; each
//! part's writer thread (`embedded/part.rs`) is the only one that changes its
//! part's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use redb::{ReadableTable, Table, TableDefinition};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// (`bot \0 conversation`, id) → InboxEntry (JSON).
pub(super) const INBOX: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("inbox");

/// `scope \0 message id` → first-seen time (ms): inbound ids already accepted.
pub(super) const SEEN: TableDefinition<&str, u64> = TableDefinition::new("seen");

/// One accepted inbound message waiting for its turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InboxEntry {
    /// Assigned by the store, increasing in acceptance order.
    #[serde(default)]
    pub id: u64,
    pub tenant: String,
    pub bot: String,
    pub conversation: String,
    /// `scope \0 message id`: a channel's retry with the same id is accepted once.
    #[serde(default)]
    pub dedupe: Option<String>,
    pub accepted_ms: u64,
    /// What the turn runs (the channel's job).
    pub job: Value,
}

/// Entries not yet done that a conversation and a tenant may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    pub conversation: usize,
    pub tenant: usize,
}

/// What became of an inbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Durable, with this id.
    Queued(u64),
    /// Its message id was accepted before: nothing new.
    Duplicate,
    /// Refused: the conversation's (or else the tenant's) backlog is full.
    Full { conversation: bool },
}

/// A tenant's entries not yet done, shared by every part's writer.
pub(super) type TenantCounts = Arc<Mutex<HashMap<String, usize>>>;

/// Entries not yet done, per conversation key (this part's) and per tenant
/// (all parts'), with the changes of the batch being written (undone if its
/// commit fails).
#[derive(Default)]
pub(super) struct Counts {
    conversations: HashMap<String, usize>,
    tenants: TenantCounts,
    /// (key, tenant, added) since the last commit.
    journal: Vec<(String, String, bool)>,
}

impl Counts {
    /// Counts what `table` holds (at open) into this part's conversations
    /// and the shared `tenants`.
    pub(super) fn read(
        table: &impl ReadableTable<(&'static str, u64), &'static [u8]>,
        tenants: TenantCounts,
    ) -> Result<Self, String> {
        let mut counts = Counts {
            tenants,
            ..Counts::default()
        };
        for item in table.iter().map_err(|e| e.to_string())? {
            let (_, v) = item.map_err(|e| e.to_string())?;
            let entry: InboxEntry = serde_json::from_slice(v.value()).map_err(|e| e.to_string())?;
            counts.add(
                &super::embedded::key(&entry.bot, &entry.conversation),
                &entry.tenant,
            );
        }
        Ok(counts)
    }

    /// Counts an entry of conversation `key` if `backlog` has room for it;
    /// otherwise why not. One lock: writers of other parts cannot take the
    /// tenant's last place between the check and the count.
    pub(super) fn take(&mut self, key: &str, tenant: &str, backlog: Backlog) -> Option<Accepted> {
        if self.conversations.get(key).copied().unwrap_or(0) >= backlog.conversation {
            return Some(Accepted::Full { conversation: true });
        }
        {
            let mut tenants = self.tenants.lock().expect("not poisoned");
            let n = tenants.entry(tenant.to_string()).or_default();
            if *n >= backlog.tenant {
                return Some(Accepted::Full {
                    conversation: false,
                });
            }
            *n += 1;
        }
        *self.conversations.entry(key.to_string()).or_default() += 1;
        self.journal
            .push((key.to_string(), tenant.to_string(), true));
        None
    }

    /// An entry of conversation `key` is done (or its batch failed): the
    /// counts drop, and the batch's journal remembers it.
    pub(super) fn remove(&mut self, key: &str, tenant: &str) {
        self.subtract(key, tenant);
        self.journal
            .push((key.to_string(), tenant.to_string(), false));
    }

    /// Counts an entry, unchecked and unjournaled (reading, undoing).
    fn add(&mut self, key: &str, tenant: &str) {
        *self.conversations.entry(key.to_string()).or_default() += 1;
        *self
            .tenants
            .lock()
            .expect("not poisoned")
            .entry(tenant.to_string())
            .or_default() += 1;
    }

    /// Uncounts an entry, unjournaled.
    fn subtract(&mut self, key: &str, tenant: &str) {
        let mut tenants = self.tenants.lock().expect("not poisoned");
        for (map, k) in [(&mut self.conversations, key), (&mut *tenants, tenant)] {
            if let Some(n) = map.get_mut(k) {
                *n -= 1;
                if *n == 0 {
                    map.remove(k);
                }
            }
        }
    }

    /// The batch committed: its changes stay.
    pub(super) fn keep(&mut self) {
        self.journal.clear();
    }

    /// The batch failed: its changes are undone, newest first.
    pub(super) fn undo(&mut self) {
        let journal = std::mem::take(&mut self.journal);
        for (key, tenant, added) in journal.into_iter().rev() {
            if added {
                self.subtract(&key, &tenant);
            } else {
                self.add(&key, &tenant);
            }
        }
    }
}

/// Removes entry `id` of conversation `key` (its turn committed); the
/// counts follow.
pub(super) fn done(
    table: &mut Table<(&str, u64), &[u8]>,
    counts: &mut Counts,
    key: &str,
    id: u64,
) -> Result<(), String> {
    let removed = table.remove((key, id)).map_err(|e| e.to_string())?;
    if let Some(v) = removed {
        let entry: InboxEntry = serde_json::from_slice(v.value()).map_err(|e| e.to_string())?;
        counts.remove(key, &entry.tenant);
    }
    Ok(())
}
