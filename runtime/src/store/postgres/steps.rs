//! A conversation's next step, taken on the way by this node's accepts
//! (`sandbot_enqueue_take`: an idle conversation's lease and its entry) and
//! commits (`sandbot_commit_next`: the next entry, or the lease given up),
//! kept for the conversation's worker: its next `take_next` needs no round
//! trip.
//!
//! A kept entry the worker already got from the database is stale: the
//! worker asks the database itself when nothing is kept (woken by the
//! sweep, or once more after a run), and an accept on this node can take
//! the idle conversation's lease at that moment — the database then hands
//! the accepted entry to the worker under the same lease while the accept
//! keeps it too. Run from the kept step it would run a second time (its
//! actions again; its commit refused). So the steps also remember the
//! newest entry handed to each conversation's worker, and a kept entry no
//! newer than it is dropped (entry ids follow accept order within a
//! conversation).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::store::Next;

/// (bot, conversation).
type Key = (String, String);

/// How long a kept step is good for (the worker asks for it right after the
/// turn; a turn that failed after its commit leaves it).
const FRESH: Duration = Duration::from_secs(2);

/// How long the newest entry handed to a worker is remembered: far longer
/// than an accept's answer can take to come back after its commit.
const HANDED_FOR: Duration = Duration::from_secs(60);

/// How often what is too old is dropped (a pass over every conversation
/// seen lately: not at every step).
const PRUNE_EVERY: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct Steps {
    kept: HashMap<Key, (Instant, Next)>,
    /// The newest entry id handed to each conversation's worker, and when.
    handed: HashMap<Key, (Instant, u64)>,
    pruned: Option<Instant>,
}

impl Steps {
    /// Keeps `next` for the conversation's worker. An entry is not replaced
    /// by `Empty`: a lease taken by an accept is newer than any commit of
    /// this node that gave it up (the accept could take it only after). An
    /// entry the worker already has is not kept.
    pub fn remember(&mut self, key: Key, next: Next) {
        if self.pruned.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            self.kept.retain(|_, (at, _)| at.elapsed() < FRESH);
            self.handed.retain(|_, (at, _)| at.elapsed() < HANDED_FOR);
            self.pruned = Some(Instant::now());
        }
        if self.stale(&key, &next) {
            return;
        }
        if matches!(next, Next::Empty)
            && matches!(self.kept.get(&key), Some((_, Next::Entry { .. })))
        {
            return;
        }
        self.kept.insert(key, (Instant::now(), next));
    }

    /// The step kept for the conversation's worker, if it is fresh and not
    /// an entry the worker already has; the worker gets it.
    pub fn take(&mut self, key: &Key) -> Option<Next> {
        let (at, next) = self.kept.remove(key)?;
        if at.elapsed() >= FRESH || self.stale(key, &next) {
            return None;
        }
        self.handed(key, &next);
        Some(next)
    }

    /// The conversation's lease of `epoch` is given up: an entry kept under
    /// it would run a turn whose commit is refused (its actions for
    /// nothing, and again under the next lease).
    pub fn forget(&mut self, key: &Key, epoch: u64) {
        if matches!(self.kept.get(key), Some((_, Next::Entry { epoch: e, .. })) if *e == epoch) {
            self.kept.remove(key);
        }
    }

    /// Notes that the conversation's worker got `next` (from the database).
    /// The key is copied only for a conversation not seen lately: this runs
    /// at every message.
    pub fn handed(&mut self, key: &Key, next: &Next) {
        let Next::Entry { entry, .. } = next else {
            return;
        };
        let mark = (Instant::now(), entry.id);
        match self.handed.get_mut(key) {
            Some(newest) => *newest = mark,
            None => {
                self.handed.insert(key.clone(), mark);
            }
        }
    }

    fn stale(&self, key: &Key, next: &Next) -> bool {
        match (next, self.handed.get(key)) {
            (Next::Entry { entry, .. }, Some((_, newest))) => entry.id <= *newest,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::InboxEntry;
    use serde_json::Value;

    fn entry(id: u64) -> Next {
        Next::Entry {
            epoch: 7,
            entry: InboxEntry {
                id,
                tenant: "t".into(),
                bot: "b".into(),
                conversation: "c".into(),
                dedupe: None,
                accepted_ms: 0,
                job: Value::Null,
            },
            state: Some(None),
        }
    }

    fn key() -> Key {
        ("b".to_string(), "c".to_string())
    }

    fn kept(steps: &Steps) -> Option<u64> {
        match steps.kept.get(&key()) {
            Some((_, Next::Entry { entry, .. })) => Some(entry.id),
            Some((_, Next::Empty)) => Some(0),
            _ => None,
        }
    }

    fn took(steps: &mut Steps) -> Option<u64> {
        match steps.take(&key())? {
            Next::Entry { entry, .. } => Some(entry.id),
            _ => Some(0),
        }
    }

    #[test]
    fn an_entry_kept_under_a_lease_given_up_is_forgotten() {
        let mut steps = Steps::default();
        steps.remember(key(), entry(5));
        steps.forget(&key(), 6);
        assert_eq!(kept(&steps), Some(5), "another lease's entry stays");
        steps.forget(&key(), 7);
        assert_eq!(took(&mut steps), None);
    }

    /// A lease an accept took is newer than the `Empty` of a commit that
    /// gave it up before: the worker's next step stays the accepted entry.
    #[test]
    fn a_kept_entry_is_not_replaced_by_an_older_empty() {
        let mut steps = Steps::default();
        steps.remember(key(), Next::Empty);
        assert_eq!(kept(&steps), Some(0), "nothing kept yet: Empty is kept");
        steps.remember(key(), entry(5));
        assert_eq!(kept(&steps), Some(5), "an entry replaces Empty");
        steps.remember(key(), Next::Empty);
        assert_eq!(kept(&steps), Some(5), "Empty does not replace an entry");
        steps.remember(key(), entry(6));
        assert_eq!(kept(&steps), Some(6), "a newer entry does");
    }

    /// The database handed the worker the entry an accept kept, before or
    /// after the accept kept it: the kept one is not run again.
    #[test]
    fn an_entry_the_worker_got_from_the_database_is_not_run_again() {
        // Kept first, then the worker's own look found it.
        let mut steps = Steps::default();
        steps.remember(key(), entry(5));
        steps.handed(&key(), &entry(5));
        steps.remember(key(), Next::Empty);
        assert_eq!(took(&mut steps), None, "5 ran; the step is stale");
        // The worker's look first, then the accept's answer.
        let mut steps = Steps::default();
        steps.handed(&key(), &entry(5));
        steps.remember(key(), entry(5));
        assert_eq!(kept(&steps), None, "not kept");
        assert_eq!(took(&mut steps), None);
        // A newer entry is the worker's next step.
        steps.remember(key(), entry(6));
        assert_eq!(took(&mut steps), Some(6));
        // And once taken, it is handed: kept again, it is stale.
        steps.remember(key(), entry(6));
        assert_eq!(took(&mut steps), None);
    }
}
