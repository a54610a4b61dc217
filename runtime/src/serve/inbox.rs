//! The durable inbox, server side: channels hand every inbound message to
//! [`accept`], which answers only once the store holds it (or refuses it:
//! duplicate, backlog full → 429). A worker per conversation ([`wake`]) then
//! takes the entries in order and runs each one's turn, whose commit marks
//! the entry done; entries left by a crash are woken at the next start.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::error::AppError;
use super::state::AppState;
use crate::api::actions::{self, RestAction};
use crate::channels::{sinch, webhook};
use crate::flow::{Inbound, InboundKind, TurnOutput};
use crate::store::{
    Accepted, Backlog, ConversationState, InboxClaim, InboxEntry, Next, Store, StoreError, now_ms,
};

/// What a turn runs for an inbox entry, per channel: enough to answer on
/// the same channel after a restart.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "channel", rename_all = "camelCase")]
pub enum Job {
    #[serde(rename_all = "camelCase")]
    Webhook {
        channel_id: String,
        inbound: Inbound,
    },
    #[serde(rename_all = "camelCase")]
    Sinch {
        channel_id: String,
        inbound: Inbound,
        recipient: Value,
        channel_name: String,
    },
    /// The web chat: the request waits for the turn (`reply` names it).
    #[serde(rename_all = "camelCase")]
    Web { inbound: Inbound, reply: String },
    /// A REST conversation action; the request waits for it. Sent with an
    /// `Idempotency-Key`, its outcome is kept under `keep` (a digest of the
    /// key) for the retries.
    #[serde(rename_all = "camelCase")]
    Rest {
        conversation: String,
        action: RestAction,
        reply: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        keep: Option<String>,
    },
    /// The bot's *Silence detected* timer, due at `due_ms`.
    #[serde(rename_all = "camelCase")]
    Silence { conversation: String, due_ms: u64 },
    /// Sinch Contact Pro's agent joined or left, or the conversation stopped.
    #[serde(rename_all = "camelCase")]
    AgentEvent {
        conversation: String,
        kind: String,
        agent: Value,
    },
}

impl Job {
    /// Whether the storage quota applies: messages from outside do; the
    /// bot's own timers, agent events and a REST call that clears the
    /// session (it frees space) do not.
    fn adds_to_storage(&self) -> bool {
        match self {
            Job::Webhook { .. } | Job::Sinch { .. } | Job::Web { .. } => true,
            Job::Rest { action, .. } => !action.clear_session,
            Job::Silence { .. } | Job::AgentEvent { .. } => false,
        }
    }

    fn conversation(&self) -> &str {
        match self {
            Job::Webhook { inbound, .. }
            | Job::Sinch { inbound, .. }
            | Job::Web { inbound, .. } => &inbound.conversation,
            Job::Rest { conversation, .. }
            | Job::Silence { conversation, .. }
            | Job::AgentEvent { conversation, .. } => conversation,
        }
    }
}

/// How long until the page should look for news (a *Silence detected*
/// message), if a timer is armed.
pub fn wake_in(due_ms: Option<u64>) -> Option<u64> {
    due_ms.map(|due| due.saturating_sub(now_ms()))
}

/// How long a request waits for its turn (the message is durable either way).
pub const ANSWER_WITHIN: Duration = Duration::from_secs(30);

/// What a waiting web request gets: the turn's messages and the emulator's
/// data (the request decides whether to show it).
fn web_outcome(out: &TurnOutput) -> Value {
    json!({
        "messages": out.messages,
        "cursor": out.transcript_len,
        // Where this turn's entries start: the page, when it had seen less,
        // gets what came between (an agent's message just before) first.
        "since": out.transcript_len.saturating_sub(out.events.len() as u64),
        "wakeInMs": wake_in(out.silence_due_ms),
        "paused": out.session["internal"]["isPaused"] == true,
        "emulator": {
            "block": out.session["internal"]["currentDialogstate"],
            "waiting": out.waiting,
            "session": out.session,
            "actions": out.actions,
            "errors": out.events.iter().filter_map(|e| e.get("error")).collect::<Vec<_>>(),
            "nlp": out.nlp,
        },
    })
}

/// Seconds a refused sender is asked to wait.
const RETRY_AFTER_S: u64 = 1;

/// Makes `job` durable for `bot_id`, then wakes its conversation. `dedupe`
/// (`scope \0 message id`) makes a channel's retry a `Duplicate`.
pub async fn accept(
    state: &Arc<AppState>,
    bot_id: &str,
    dedupe: Option<String>,
    job: Job,
) -> Result<Accepted, AppError> {
    let d = state
        .bots
        .get(bot_id)
        .ok_or_else(|| AppError::not_found(format!("no bot `{bot_id}`")))?;
    let tenant = &state.tenants[&d.tenant];
    let limit = tenant.backlog;
    if let Some(rate) = tenant.inbound_rate {
        let now = now_ms() / 1000;
        let window = state
            .rate
            .check(&format!("inbound\0{}", d.tenant), rate, now);
        if !window.allowed {
            state.metrics.refused(&d.tenant, bot_id);
            return Err(AppError::too_many(
                format!(
                    "tenant `{}` is past its inbound rate ({} messages per {} s); retry later",
                    d.tenant, rate.requests, rate.seconds
                ),
                window.reset.saturating_sub(now).max(1),
            ));
        }
    }
    if job.adds_to_storage() {
        super::storage::check(state, &d.tenant, bot_id)?;
    }
    let conversation = job.conversation().to_string();
    let entry = InboxEntry {
        id: 0,
        tenant: d.tenant.clone(),
        bot: bot_id.to_string(),
        conversation: conversation.clone(),
        dedupe,
        accepted_ms: now_ms(),
        job: serde_json::to_value(&job).map_err(AppError::internal)?,
    };
    let backlog = Backlog {
        conversation: limit.conversation,
        tenant: limit.tenant,
    };
    let accepted = state
        .store
        .enqueue_and_take(entry, backlog, state.lease)
        .await
        .map_err(AppError::from)?;
    let full = match accepted {
        Accepted::Queued(_) => {
            wake(state, bot_id, &conversation);
            return Ok(accepted);
        }
        // Taken before: maybe by this very request, whose first try's answer
        // was lost (the store tried again), with the conversation's lease
        // for this node — the worker takes it on at once.
        Accepted::Duplicate => {
            wake(state, bot_id, &conversation);
            return Ok(accepted);
        }
        Accepted::Full { conversation: true } => format!(
            "conversation `{conversation}` has {} messages waiting for their turn; retry later",
            limit.conversation
        ),
        Accepted::Full {
            conversation: false,
        } => format!(
            "tenant `{}` has {} messages waiting for their turn; retry later",
            d.tenant, limit.tenant
        ),
    };
    state.metrics.refused(&d.tenant, bot_id);
    Err(AppError::too_many(full, RETRY_AFTER_S))
}

/// Makes sure a worker drains the conversation's inbox.
pub fn wake(state: &Arc<AppState>, bot: &str, conversation: &str) {
    // With a shared store a bot this node does not serve is another node's
    // (bots spread over nodes, a deploy under way): its conversations wait
    // for that node, never dropped here.
    if state.shared_store.is_some() && !state.bots.contains_key(bot) {
        return;
    }
    let key = format!("{bot}\0{conversation}");
    let (s, b, c) = (state.clone(), bot.to_string(), conversation.to_string());
    state
        .dispatcher
        .wake(key, move || drain(s.clone(), b.clone(), c.clone()));
}

/// Wakes every conversation with entries not yet done (at start: what a
/// crash left; then now and then: what a failing store left behind).
pub async fn wake_all(state: &Arc<AppState>) -> Result<usize, StoreError> {
    Ok(wake_each(state, state.store.inbox_conversations().await?))
}

fn wake_each(state: &Arc<AppState>, pending: Vec<(String, String)>) -> usize {
    for (bot, conversation) in &pending {
        wake(state, bot, conversation);
    }
    pending.len()
}

/// Fires the *Silence detected* timers that are due, each once (the inbox
/// dedupes it across nodes), until `stop`.
pub async fn silence(state: Arc<AppState>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let every = Duration::from_millis((state.silence_minute_ms / 10).clamp(20, 5_000));
    loop {
        match state.store.silence_due(now_ms(), 500).await {
            Ok(due) => {
                for (bot, conversation, due_ms) in due {
                    let dedupe = Some(format!("silence\0{bot}\0{conversation}\0{due_ms}"));
                    let job = Job::Silence {
                        conversation,
                        due_ms,
                    };
                    if let Err(e) = accept(&state, &bot, dedupe, job).await {
                        tracing::warn!(bot, error = e.message, "firing a silence timer");
                    }
                }
            }
            Err(e) if e.is_unavailable() => {}
            Err(e) => tracing::error!(%e, "reading the silence timers"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// How often every conversation left with work is woken again (at most).
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// How often the conversations with work that no node holds are woken: a
/// dead node's, once its leases run out (the others go on with them within
/// about this much), and any whose worker gave up.
const UNHELD_EVERY: Duration = Duration::from_secs(1);

/// Wakes what a crash left at once, then every conversation with work now
/// and then and those nobody holds every second, until `stop`.
pub async fn sweep(state: Arc<AppState>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut all_at = Instant::now();
    loop {
        let woken = if Instant::now() >= all_at {
            all_at = Instant::now() + SWEEP_EVERY.min(state.lease);
            wake_all(&state).await
        } else {
            let unheld = state.store.inbox_unheld().await;
            unheld.map(|pending| wake_each(&state, pending))
        };
        match woken {
            Ok(0) => {}
            Ok(n) => tracing::debug!(
                conversations = n,
                "woke conversations with waiting messages"
            ),
            Err(e) if e.is_unavailable() => {}
            Err(e) => tracing::error!(%e, "reading the inbox"),
        }
        tokio::select! {
            _ = tokio::time::sleep(UNHELD_EVERY) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Store failures in a row after which a worker leaves its conversation to
/// the next sweep.
const MAX_FAILURES: u32 = 3;

/// Runs the conversation's entries in order, each under the lease (taken
/// or renewed before each turn; a commit checks it anyway), until none is
/// waiting, another node holds the lease, or the store keeps failing (the
/// lease is then given up and the next sweep tries again).
async fn drain(state: Arc<AppState>, bot: String, conversation: String) {
    let mut failures = 0;
    loop {
        let (epoch, entry, read) = match state
            .store
            .take_next(&bot, &conversation, state.lease)
            .await
        {
            Ok(Next::Entry {
                epoch,
                entry,
                state: read,
            }) => (epoch, entry, read),
            // Done; or another node runs this conversation (and what we accepted).
            Ok(Next::Empty | Next::Busy) => return,
            Err(e) => {
                if !e.is_unavailable() {
                    tracing::error!(bot, conversation, %e, "taking the conversation's next message");
                }
                return;
            }
        };
        let turn = run(&state, entry, epoch, read);
        let e = match renewing(&state, &bot, &conversation, epoch, turn).await {
            // A stopping node with a shared store hands the conversation on
            // after the turn in progress: the other nodes go on accepting its
            // messages, so draining it to the end could hold the stop for as
            // long as they come. (Alone, nothing new comes: it drains.)
            Ok(Ran::Done) if state.shared_store.is_some() && state.dispatcher.stopping() => {
                return release(&state, &bot, &conversation, epoch).await;
            }
            Ok(Ran::Done) => {
                failures = 0;
                continue;
            }
            Ok(Ran::Left) => return release(&state, &bot, &conversation, epoch).await,
            Err(e) => e,
        };
        failures += 1;
        if !e.is_unavailable() {
            tracing::error!(bot, conversation, %e, failures, "turn not committed");
        }
        if failures >= MAX_FAILURES {
            return release(&state, &bot, &conversation, epoch).await;
        }
        tokio::time::sleep(Duration::from_millis(200 << failures)).await;
    }
}

/// Gives the conversation's lease up, so another node (or the next sweep
/// here) takes it at once.
async fn release(state: &AppState, bot: &str, conversation: &str, epoch: u64) {
    if let Err(e) = state.store.release(bot, conversation, epoch).await {
        tracing::warn!(bot, conversation, %e, "releasing the conversation's lease");
    }
}

/// Runs `turn`, renewing the conversation's lease every third of its length
/// meanwhile: a turn longer than the lease (slow actions one after another)
/// still commits, and another node takes the conversation only from a node
/// that stopped renewing (died, or cut off from the database).
async fn renewing<T>(
    state: &AppState,
    bot: &str,
    conversation: &str,
    epoch: u64,
    turn: impl Future<Output = T>,
) -> T {
    let renew = async {
        loop {
            tokio::time::sleep(state.lease / 3).await;
            match state.store.lease(bot, conversation, state.lease).await {
                Ok(Some(renewed)) if renewed == epoch => {}
                // Its commit will be refused; the message runs again.
                Ok(_) => tracing::warn!(
                    bot,
                    conversation,
                    "the conversation's lease ran out during its turn"
                ),
                Err(e) => {
                    tracing::warn!(bot, conversation, %e, "renewing the conversation's lease")
                }
            }
        }
    };
    tokio::select! {
        done = turn => done,
        _ = renew => unreachable!("the renewal never ends"),
    }
}

/// What became of an inbox entry this node took.
enum Ran {
    /// Its turn committed (or it was dropped): the next one may run.
    Done,
    /// Left for a node that can run it: the conversation waits for it.
    Left,
}

/// An entry this node cannot run: with a shared store, left for a node that
/// can, for up to [`super::LEFT_FOR_OTHERS`] after it was accepted; else marked
/// done without a turn. Either way saying why in the log.
async fn cannot_run(state: &AppState, e: &InboxEntry, why: &str) -> Result<Ran, StoreError> {
    let (bot, conversation) = (&e.bot, &e.conversation);
    let waited = Duration::from_millis(now_ms().saturating_sub(e.accepted_ms));
    if state.shared_store.is_some() && waited < super::LEFT_FOR_OTHERS {
        // Looked at again each second until another node runs it: said once.
        if state.left.first(e.id) {
            tracing::warn!(
                bot,
                conversation,
                "leaving a message for a node that can run it: {why}"
            );
        }
        return Ok(Ran::Left);
    }
    state.left.forget(e.id);
    drop_entry(state, e, why).await
}

/// The inbox entries this node said it leaves to other nodes, so that it
/// says so once per entry, not at every look. Bounded: past `LeftLog::MAX`
/// entries it starts afresh (some are said again).
#[derive(Default)]
pub struct LeftLog(Mutex<std::collections::HashSet<u64>>);

impl LeftLog {
    const MAX: usize = 10_000;

    /// Whether entry `id` is new here (and now noted).
    pub fn first(&self, id: u64) -> bool {
        let mut seen = self.0.lock().expect("not poisoned");
        if seen.len() >= Self::MAX {
            seen.clear();
        }
        seen.insert(id)
    }

    pub fn forget(&self, id: u64) {
        self.0.lock().expect("not poisoned").remove(&id);
    }
}

/// Marks an entry done without a turn, saying why in the log.
async fn drop_entry(state: &AppState, e: &InboxEntry, why: &str) -> Result<Ran, StoreError> {
    let (bot, conversation) = (&e.bot, &e.conversation);
    tracing::error!(bot, conversation, "dropping a message: {why}");
    state.store.inbox_discard(bot, conversation, e.id).await?;
    Ok(Ran::Done)
}

/// Runs the entry's turn; its commit marks the entry done.
async fn run(
    state: &Arc<AppState>,
    entry: InboxEntry,
    epoch: u64,
    read: Option<Option<ConversationState>>,
) -> Result<Ran, StoreError> {
    let (bot, conversation, id) = (&entry.bot, &entry.conversation, entry.id);
    let claim = InboxClaim {
        entry: Some(id),
        epoch,
    };
    let Some(d) = state.bots.get(bot) else {
        return cannot_run(state, &entry, "the bot is not deployed on this node").await;
    };
    let job: Job = match serde_json::from_value(entry.job.clone()) {
        Ok(j) => j,
        Err(e) => {
            let why = format!("this version cannot read it ({e})");
            return cannot_run(state, &entry, &why).await;
        }
    };
    match job {
        Job::Webhook {
            channel_id,
            mut inbound,
        } => {
            inbound.inbox = Some(claim);
            inbound.state = read;
            let Some((_, channel)) = state.webhooks.get(&channel_id) else {
                return cannot_run(state, &entry, "its channel is not on this node").await;
            };
            state
                .turn(d, inbound, |out, st| webhook::outbound(channel, out, st))
                .await?;
        }
        Job::Sinch {
            channel_id,
            mut inbound,
            recipient,
            channel_name,
        } => {
            inbound.inbox = Some(claim);
            inbound.state = read;
            let Some((_, channel)) = state.sinch.get(&channel_id) else {
                return cannot_run(state, &entry, "its channel is not on this node").await;
            };
            inbound.kind = sinch::numbered_reply(
                state.store.as_ref(),
                bot,
                conversation,
                &channel_name,
                inbound.kind,
            )
            .await;
            state
                .turn(d, inbound, |out, _| {
                    sinch::outbound(
                        channel,
                        &out.messages,
                        &recipient,
                        &channel_name,
                        bot,
                        conversation,
                    )
                })
                .await?;
        }
        Job::Web { mut inbound, reply } => {
            inbound.inbox = Some(claim);
            inbound.state = read;
            let out = state.turn(d, inbound, |_, _| Vec::new()).await?;
            answer(state, &reply, web_outcome(&out)).await;
        }
        Job::Silence {
            conversation,
            due_ms,
        } => {
            let stored = match read {
                Some(r) => r,
                None => state.store.load(bot, &conversation).await?,
            };
            let Some(stored) = stored else {
                return drop_entry(state, &entry, "the conversation is gone").await;
            };
            let channel = stored.session["internal"]["channel"]
                .as_str()
                .unwrap_or("event")
                .to_string();
            let mut inbound =
                Inbound::new(&conversation, &channel, InboundKind::Silence { due_ms });
            inbound.inbox = Some(claim);
            inbound.state = Some(Some(stored));
            state
                .turn(d, inbound, |out, s| {
                    actions::own_channel(state, bot, &out.messages, out.first_message_number, s)
                })
                .await?;
        }
        Job::AgentEvent {
            conversation,
            kind,
            agent,
        } => {
            let bot_now = d.bot();
            let offloading = &state.offloading;
            let done = d
                .engine
                .update(
                    &bot_now,
                    &conversation,
                    Some(claim),
                    Vec::new(),
                    |s| agent_event(offloading, bot, s, &kind, agent),
                    |_| Vec::new(),
                )
                .await?;
            if done.is_none() {
                state.store.inbox_discard(bot, &conversation, id).await?;
            }
        }
        Job::Rest {
            conversation,
            action,
            reply,
            keep,
        } => {
            let done = actions::apply(state, d, &conversation, action, claim).await?;
            if done.is_none() {
                state.store.inbox_discard(bot, &conversation, id).await?;
            }
            let outcome = match done {
                Some(done) => json!({ "done": done }),
                None => json!({ "gone": true }),
            };
            // Kept before the answer: a retry after it always finds it.
            if let Some(kept) = keep
                && let Err(e) = state
                    .store
                    .keep_outcome(bot, &conversation, &kept, &outcome)
                    .await
            {
                tracing::warn!(%e, "keeping a REST action's outcome for its retries");
            }
            answer(state, &reply, outcome).await;
        }
    }
    state.deliveries.notify_one();
    Ok(Ran::Done)
}

/// Applies a Contact Pro agent event to the conversation: the agent is
/// noted while it is offloaded; the configured events hand it back to the
/// bot. One transcript event either way.
fn agent_event(
    offloading: &crate::channels::offloading::Providers,
    bot: &str,
    s: &mut ConversationState,
    kind: &str,
    agent: Value,
) -> (Vec<Value>, ()) {
    let event = json!({"agent": {"event": kind, "agent": agent}});
    let Some(offload) = s.offload.as_mut() else {
        return (vec![event], ());
    };
    if kind == "agentJoined" {
        offload.agent = Some(agent);
    }
    if offloading.resumes(bot, &offload.provider, kind) {
        s.offload = None;
        s.paused = false;
    }
    let (paused, offload) = (s.paused, crate::flow::offload_json(&s.offload));
    if let Some(internal) = s.session.get_mut("internal") {
        internal["isPaused"] = json!(paused);
        internal["offload"] = offload;
    }
    (vec![event], ())
}

/// Hands a turn's outcome to the request waiting for it: here, or through
/// the store when the request waits on another node.
async fn answer(state: &AppState, key: &str, outcome: Value) {
    if let Some(outcome) = state.replies.send(key, outcome)
        && let Err(e) = state.store.put_reply(key, &outcome).await
    {
        tracing::warn!(%e, "leaving a reply for another node");
    }
}

/// Requests waiting for the outcome of their turn (web chat, REST
/// actions), by key.
#[derive(Default)]
pub struct Replies(Mutex<HashMap<String, oneshot::Sender<Value>>>);

/// Stops waiting when dropped (the request ended).
pub struct Waiting<'a> {
    replies: &'a Replies,
    pub key: String,
    answer: oneshot::Receiver<Value>,
}

impl Waiting<'_> {
    /// The outcome, from this node or (several nodes) another one that ran
    /// the turn; `None` after `within`.
    pub async fn outcome(&mut self, store: &dyn Store, within: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            tokio::select! {
                got = &mut self.answer => return got.ok(),
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
            if let Ok(Some(v)) = store.take_reply(&self.key).await {
                return Some(v);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.replies
            .0
            .lock()
            .expect("not poisoned")
            .remove(&self.key);
    }
}

impl Replies {
    /// Registers a fresh, unguessable key to wait on.
    pub fn wait(&self) -> Waiting<'_> {
        let key = random_id(16);
        let (tx, answer) = oneshot::channel();
        self.0.lock().expect("not poisoned").insert(key.clone(), tx);
        Waiting {
            replies: self,
            key,
            answer,
        }
    }

    /// Gives `out` to the request waiting here; back when none does.
    fn send(&self, key: &str, out: Value) -> Option<Value> {
        let waiting = self.0.lock().expect("not poisoned").remove(key);
        match waiting {
            Some(tx) => tx.send(out).err(),
            None => Some(out),
        }
    }
}

/// `bytes` random bytes, hex.
pub fn random_id(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the OS random source");
    hex::encode(buf)
}

#[cfg(test)]
mod tests {
    use super::LeftLog;

    #[test]
    fn a_left_entry_is_said_once_until_forgotten() {
        let log = LeftLog::default();
        assert!(log.first(7));
        assert!(!log.first(7), "the next looks say nothing");
        assert!(log.first(8), "another entry");
        log.forget(7);
        assert!(log.first(7), "forgotten: new again");
    }

    #[test]
    fn the_left_log_stays_bounded() {
        let log = LeftLog::default();
        for id in 0..LeftLog::MAX as u64 {
            assert!(log.first(id));
        }
        assert!(log.first(u64::MAX), "full: starts afresh");
        assert!(log.first(0), "said again after the fresh start");
        assert!(log.0.lock().unwrap().len() <= 2);
    }
}
