//! Where conversations live: sessions, positions, transcripts and postback
//! payload ids, behind the [`Store`] trait. [`EmbeddedStore`] (one file in a
//! data folder, durable group commits) is the default.

mod embedded;
mod failures;
mod inbox;
mod outcomes;

mod postgres;
mod sizes;
mod usage;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use embedded::{Copied, EmbeddedStore, MAX_PARTS, default_parts};
pub use inbox::{Accepted, Backlog, InboxEntry};
pub use outcomes::KeptOutcome;
pub use postgres::{PostgresOptions, PostgresStore};
pub use sizes::json_len;

/// A bot's queues: messages accepted and not yet run (the inbox), and
/// deliveries queued and not yet delivered (the outbox; dead letters apart).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Queued {
    pub inbox: u64,
    pub outbox: u64,
    /// When the oldest message in the inbox was accepted (none waiting:
    /// `None`): a conversation that does not move, or a bot nothing serves.
    pub oldest_ms: Option<u64>,
}

impl Queued {
    /// Both queues of `self` and `other` together (a bot's DRAFT and LIVE).
    pub fn add(&mut self, other: &Queued) {
        self.inbox += other.inbox;
        self.outbox += other.outbox;
        self.oldest_ms = match (self.oldest_ms, other.oldest_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

/// Idle time after which a session is forgotten (30 days).
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

#[derive(Debug, thiserror::Error)]
#[error("store: {message}")]
pub struct StoreError {
    message: String,
    unavailable: bool,
}

impl StoreError {
    pub fn new(e: impl std::fmt::Display) -> Self {
        Self {
            message: e.to_string(),
            unavailable: false,
        }
    }
    /// The store cannot be reached (its database is down, restarting or
    /// out of connections): nothing was done, and the same request may
    /// succeed later (a channel answers 503 with `Retry-After`).
    pub fn unavailable(e: impl std::fmt::Display) -> Self {
        Self {
            message: e.to_string(),
            unavailable: true,
        }
    }
    pub fn is_unavailable(&self) -> bool {
        self.unavailable
    }
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Where a conversation is waiting: a Collect input block and the invalid
/// answers so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    pub block: String,
    pub attempts: u32,
}

/// Everything the engine keeps about one conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationState {
    pub session: Value,
    #[serde(default)]
    pub waiting: Option<Waiting>,
    /// Bot messages sent so far (the webhook's `messageCounter`).
    #[serde(default)]
    pub message_counter: u64,
    /// Transcript entries so far (the next entry's sequence number).
    #[serde(default)]
    pub transcript_len: u64,
    /// The bot does not answer while paused (REST API, an offload).
    #[serde(default)]
    pub paused: bool,
    /// Handed to a human through an offloading provider, until handed back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offload: Option<Offload>,
    /// When the bot's *Silence detected* event is due (ms since the epoch):
    /// set by a turn that leaves the conversation waiting for input,
    /// replaced by the next turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silence_due_ms: Option<u64>,
    pub created_ms: u64,
    pub updated_ms: u64,
}

impl ConversationState {
    pub fn new(now_ms: u64) -> Self {
        Self {
            session: Value::Object(Default::default()),
            waiting: None,
            message_counter: 0,
            transcript_len: 0,
            paused: false,
            offload: None,
            silence_due_ms: None,
            created_ms: now_ms,
            updated_ms: now_ms,
        }
    }
}

/// A conversation's offload (`internal.offload`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Offload {
    /// The provider's id in the serve config.
    pub provider: String,
    /// When it was opened (ms since the epoch).
    pub since_ms: u64,
    /// The agent who joined (Sinch Contact Pro's agent events), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<Value>,
}

/// One transcript entry: `{"user": …}`, `{"bot": …}`, `{"block": …}` or
/// `{"error": …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscriptEntry {
    pub seq: u64,
    pub at_ms: u64,
    pub event: Value,
}

/// A turn's result, committed atomically: nothing of it is visible until all of it is.
#[derive(Debug, Clone)]
pub struct TurnCommit {
    pub bot: String,
    pub conversation: String,
    pub state: ConversationState,
    /// Numbered from the state's previous `transcript_len`.
    pub transcript: Vec<TranscriptEntry>,
    /// Payload id → `{nextDialogstateId, params}`.
    pub postbacks: Vec<(String, Value)>,
    /// Deliveries to queue with the turn (their `id` is assigned on commit).
    pub outbox: Vec<Delivery>,
    /// The inbox entry this turn answers: done in the same transaction.
    pub inbox: Option<InboxClaim>,
}

/// A commit under this node's lease on the conversation: it applies only
/// while that lease (`epoch`) is still this node's, and marks `entry` (the
/// inbox entry it answers, if any) done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboxClaim {
    pub entry: Option<u64>,
    pub epoch: u64,
}

/// One outbound HTTP delivery (a bot message for a channel), queued durably
/// with the turn that produced it and delivered in `id` order per conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// Assigned by the store, increasing.
    #[serde(default)]
    pub id: u64,
    pub bot: String,
    pub conversation: String,
    pub url: String,
    /// Extra request headers.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// A bearer token source (a Sinch channel id) asked at delivery time.
    #[serde(default)]
    pub auth: Option<String>,
    pub body: Value,
    /// Failed attempts so far.
    #[serde(default)]
    pub attempts: u32,
    /// Not before this time (ms since the epoch).
    #[serde(default)]
    pub not_before_ms: u64,
}

/// A delivery given up after its retry period: kept, listed, re-queueable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    pub delivery: Delivery,
    /// The last failure.
    pub reason: String,
    pub dead_ms: u64,
}

/// A node that recorded itself in a shared store ([`Store::heartbeat`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSeen {
    /// Its name in leases and claims (new at every start).
    pub name: String,
    /// The sandbot version it runs.
    pub version: String,
    /// The bots it serves (store keys, see `flow::store_key`).
    pub bots: Vec<String>,
    pub started_ms: u64,
    /// When it last recorded itself (every second while it runs).
    pub seen_ms: u64,
}

impl NodeSeen {
    /// Recorded itself in the last 15 s (it does every second while it
    /// runs; one that died stays listed, as last seen, for a day).
    pub fn is_running(&self, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.seen_ms) <= 15_000
    }
}

/// What [`Store::take_claimed`] hands out.
#[derive(Debug, Default)]
pub struct Claimed {
    pub deliveries: Vec<Delivery>,
    pub look: bool,
}

pub type CommitFuture = Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send>>;
pub type EnqueueFuture = Pin<Box<dyn Future<Output = Result<Accepted, StoreError>> + Send>>;

#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// The conversation, unless unknown or idle past the session expiry.
    async fn load(
        &self,
        bot: &str,
        conversation: &str,
    ) -> Result<Option<ConversationState>, StoreError>;
    /// Commits a turn; resolves once it is durable.
    fn commit(&self, commit: TurnCommit) -> CommitFuture;
    /// The target of an opaque postback payload id of `bot`.
    async fn postback(&self, bot: &str, id: &str) -> Result<Option<Value>, StoreError>;
    /// Transcript entries with `seq >= from`, at most `limit`.
    async fn transcript(
        &self,
        bot: &str,
        conversation: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<TranscriptEntry>, StoreError>;
    /// Conversation ids of `bot` after `after` (exclusive), in order, at most `limit`.
    async fn conversations(
        &self,
        bot: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError>;
    /// Forgets a conversation's state and transcript; false if unknown.
    async fn delete(&self, bot: &str, conversation: &str) -> Result<bool, StoreError>;
    /// The bytes the conversations of `bots` (deployments as stored) hold:
    /// the JSON of each state and transcript entry (storage quotas).
    async fn stored_bytes(&self, bots: &[String]) -> Result<u64, StoreError>;
    /// Deletes conversations idle past the expiry (sessions and
    /// transcripts); returns how many.
    async fn purge_expired(&self) -> Result<usize, StoreError>;
    /// Forgets the inbound message ids (duplicate detection) first seen
    /// before `before_ms`, the outcomes kept for retries before it, and
    /// request-count windows that ended before it; returns how many ids.
    async fn purge_seen(&self, before_ms: u64) -> Result<usize, StoreError>;
    /// The oldest queued delivery of each conversation (only it may go), in
    /// `id` order, at most `limit` (on PostgreSQL: the due ones, claimed for
    /// this node for its lease time).
    async fn outbox(&self, limit: usize) -> Result<Vec<Delivery>, StoreError>;
    /// [`Store::outbox`] for a node that gets bearer tokens only from
    /// `sources` (its Sinch channels): with several nodes, a delivery that
    /// needs another source ([`Delivery::auth`]) is left for a node that has
    /// it, unless it was queued before `left_before_ms` (then this node takes
    /// it too, so that it ends as a lone node's would: retried, then a dead
    /// letter). A store only one node uses has no one to leave it for.
    async fn outbox_for(
        &self,
        limit: usize,
        sources: &[String],
        left_before_ms: u64,
    ) -> Result<Vec<Delivery>, StoreError> {
        let _ = (sources, left_before_ms);
        self.outbox(limit).await
    }
    /// Deliveries this node claimed on its way (a turn's commit claims the
    /// delivery it queued, a settlement the conversation's next one), each
    /// handed out once, and whether [`Store::outbox`] must look for others
    /// (deliveries left unclaimed, re-queued, or given back). A store that
    /// claims nothing on its way hands out none and always asks for a look.
    fn take_claimed(&self) -> Claimed {
        Claimed {
            deliveries: Vec::new(),
            look: true,
        }
    }
    /// Records a round of delivery outcomes in one transaction: `done`
    /// (delivered or given up) leave the queue; `retry` are
    /// `(id, attempts, not_before_ms)` of failed ones.
    async fn outbox_settle(
        &self,
        done: &[u64],
        retry: &[(u64, u32, u64)],
    ) -> Result<(), StoreError>;
    /// Moves given-up deliveries (`id`, attempts, why) to the dead letters.
    async fn outbox_dead(&self, dead: &[(u64, u32, String)]) -> Result<(), StoreError>;
    /// Dead letters of `bots`, oldest first, at most `limit`.
    async fn dead_letters(
        &self,
        bots: &[String],
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError>;
    /// Puts a dead letter of one of `bots` back in the queue (attempts
    /// reset, its place in its conversation kept); false if there is none.
    async fn requeue(&self, bots: &[String], id: u64) -> Result<bool, StoreError>;
    /// Accepts an inbound message into the durable inbox; resolves once it
    /// is durable (group-committed like turns). A `dedupe` key seen before
    /// is a `Duplicate`; past `backlog` the entry is refused (`Full`).
    fn enqueue(&self, entry: InboxEntry, backlog: Backlog) -> EnqueueFuture;
    /// [`Store::enqueue`] for a node that runs the conversation's worker
    /// after `Queued` (it must): a store where steps are round trips may
    /// take the idle conversation's lease for this node (for `ttl`) in the
    /// same step, so that the worker's [`Store::take_next`] needs none.
    fn enqueue_and_take(
        &self,
        entry: InboxEntry,
        backlog: Backlog,
        _ttl: Duration,
    ) -> EnqueueFuture {
        self.enqueue(entry, backlog)
    }
    /// The conversation's oldest entry not yet done.
    async fn inbox_next(
        &self,
        bot: &str,
        conversation: &str,
    ) -> Result<Option<InboxEntry>, StoreError>;
    /// `(bot, conversation)` of every conversation with entries not yet done.
    async fn inbox_conversations(&self) -> Result<Vec<(String, String)>, StoreError>;
    /// Those of them no node holds the lease of (none taken, or it ran out:
    /// its node died). Looked for every second, so that a dead node's
    /// conversations go on soon after its leases run out. The embedded store
    /// has no leases between nodes (one process holds it): none.
    async fn inbox_unheld(&self) -> Result<Vec<(String, String)>, StoreError>;
    /// What waits, per bot (store key, see `flow::store_key`): for
    /// `/metrics`. With a shared store every node sees the same.
    async fn queued(&self) -> Result<std::collections::BTreeMap<String, Queued>, StoreError>;
    /// Marks an entry done without a turn (its bot is no longer deployed).
    fn inbox_discard(&self, bot: &str, conversation: &str, id: u64) -> CommitFuture;
    /// Takes (or renews) this node's lease on a conversation for `ttl`: its
    /// epoch, or `None` while another node holds it. Turns of a conversation
    /// run only under its lease, so one at a time across all nodes.
    async fn lease(
        &self,
        bot: &str,
        conversation: &str,
        ttl: Duration,
    ) -> Result<Option<u64>, StoreError>;
    /// Gives the lease up (another node may take the conversation at once);
    /// whether the conversation has entries waiting (accepted meanwhile,
    /// perhaps on a node that found the lease taken).
    async fn release(&self, bot: &str, conversation: &str, epoch: u64) -> Result<bool, StoreError>;
    /// The step a conversation's worker takes before each turn: takes (or
    /// renews) the lease and returns the oldest waiting entry; when none is
    /// waiting, gives the lease up (`Empty`; a message accepted at the same
    /// moment, on any node, is then taken by that node's worker). `Busy`
    /// while another node holds the lease. Stores where these are separate
    /// round trips can do it in one.
    async fn take_next(
        &self,
        bot: &str,
        conversation: &str,
        ttl: Duration,
    ) -> Result<Next, StoreError> {
        loop {
            let Some(epoch) = self.lease(bot, conversation, ttl).await? else {
                return Ok(Next::Busy);
            };
            if let Some(entry) = self.inbox_next(bot, conversation).await? {
                return Ok(Next::Entry {
                    epoch,
                    entry,
                    state: None,
                });
            }
            if !self.release(bot, conversation, epoch).await? {
                return Ok(Next::Empty);
            }
        }
    }
    /// Counts one request against the fixed window `key` (a hash) starting
    /// at `window` (epoch seconds): the count so far, this one included, so
    /// a limit holds across nodes. `None` when the store keeps no shared
    /// counts (one process counts in memory).
    async fn count_request(&self, key: &str, window: u64) -> Result<Option<u64>, StoreError>;
    /// Records this node's figures (since it started) per (tenant, bot, figures);
    /// nothing where one process owns the store.
    async fn record_usage(&self, figures: &[(String, String, Value)]) -> Result<(), StoreError>;
    /// Every node's recorded figures of `tenant` as (bot, figures) rows, or
    /// `None` where one process owns the store (its own figures are all).
    async fn usage(&self, tenant: &str) -> Result<Option<Vec<(String, Value)>>, StoreError>;
    /// Leaves a turn's outcome for a request waiting on another node.
    async fn put_reply(&self, key: &str, outcome: &Value) -> Result<(), StoreError>;
    /// Takes the outcome left for `key`, if any (nothing where one process
    /// owns the store: its requests get theirs directly).
    async fn take_reply(&self, key: &str) -> Result<Option<Value>, StoreError>;
    /// Keeps the outcome of a REST action sent with an `Idempotency-Key`
    /// under `kept` (a digest of the key) for its retries, until the
    /// message ids seen with it are forgotten; the first outcome kept stays.
    async fn keep_outcome(
        &self,
        bot: &str,
        conversation: &str,
        kept: &str,
        outcome: &Value,
    ) -> Result<(), StoreError>;
    /// The outcome kept under `kept`, or whether the conversation's inbox
    /// still holds the entry that keeps it there (its job's `keep`).
    async fn kept_outcome(
        &self,
        bot: &str,
        conversation: &str,
        kept: &str,
    ) -> Result<KeptOutcome, StoreError>;
    /// Whether the store answers (`/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;
    /// Records that this node runs and serves `bots` (store keys); called
    /// every second while it runs. A store one process uses has no other
    /// node to tell: nothing.
    async fn heartbeat(&self, _bots: &[String]) -> Result<(), StoreError> {
        Ok(())
    }
    /// Takes this node out of [`Store::nodes`]: it stops.
    async fn leave(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// The nodes that recorded themselves and have not left, by name (a
    /// node that died stays until a day after it was last seen). None where
    /// one process uses the store.
    async fn nodes(&self) -> Result<Vec<NodeSeen>, StoreError> {
        Ok(Vec::new())
    }
    /// Keeps a failed invocation for replay, then drops the tenant's oldest
    /// past `bounds` (shared by every node on a shared store).
    async fn put_failure(&self, f: StoredFailure, bounds: FailureBounds) -> Result<(), StoreError>;
    /// The tenant's kept failures of `bots` since `since_ms`, newest first,
    /// at most `limit`.
    async fn failures(
        &self,
        tenant: &str,
        bots: &[String],
        since_ms: u64,
        limit: usize,
    ) -> Result<Vec<Value>, StoreError>;
    /// One of the tenant's kept failures.
    async fn failure(&self, tenant: &str, id: &str) -> Result<Option<Value>, StoreError>;
    /// Conversations whose `silence_due_ms` is at or before `now_ms`, as
    /// (bot, conversation, due), at most `limit`.
    async fn silence_due(
        &self,
        now_ms: u64,
        limit: usize,
    ) -> Result<Vec<(String, String, u64)>, StoreError>;
}

/// A failed invocation kept for replay: its tenant, id, deployment (`bot`),
/// time, and the whole record (JSON, with `bot` in it).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFailure {
    pub tenant: String,
    pub id: String,
    pub bot: String,
    pub at_ms: u64,
    pub record: Value,
}

/// How many failures a tenant keeps: the newest `keep`, within `max_bytes`
/// together, none older than `max_age_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureBounds {
    pub keep: usize,
    pub max_bytes: usize,
    pub max_age_ms: u64,
}

/// What a conversation's worker finds before a turn ([`Store::take_next`]).
/// (Returned once per turn and taken apart at once: not boxed.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Next {
    /// Another node holds the conversation's lease (and runs its entries).
    Busy,
    /// Nothing waiting; the lease is given up.
    Empty,
    /// The oldest waiting entry, to run under the lease `epoch`; `state`
    /// is the conversation's state when the store read it in the same step
    /// (`Some(None)`: no session yet), so the turn need not read it again.
    Entry {
        epoch: u64,
        entry: InboxEntry,
        state: Option<Option<ConversationState>>,
    },
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
