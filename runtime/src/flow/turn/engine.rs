//! The flow engine: loads a conversation, runs a [`Turn`], commits the result
//! atomically. Turns of one conversation run one at a time, in order;
//! different conversations run in parallel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::flow::bot::Bot;
use crate::flow::turn::action::ActionRunner;
use crate::flow::turn::inbound::{Inbound, InboundKind};
use crate::flow::turn::offload::Offloader;
use crate::flow::turn::postback::{self, Target};
use crate::flow::turn::{Resolved, Turn, TurnOutput};
use crate::store::{
    ConversationState, Delivery, InboxClaim, Store, StoreError, TranscriptEntry, TurnCommit, now_ms,
};

pub struct FlowEngine {
    store: Arc<dyn Store>,
    runner: Arc<dyn ActionRunner>,
    offloader: Option<Arc<dyn Offloader>>,
    /// Milliseconds in a minute of *Silence detected*.
    minute_ms: u64,
    /// `DRAFT` or `LIVE` (`internal.version`).
    version: String,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl FlowEngine {
    pub fn new(store: Arc<dyn Store>, runner: Arc<dyn ActionRunner>, version: &str) -> Self {
        Self {
            store,
            runner,
            offloader: None,
            minute_ms: 60_000,
            version: version.to_string(),
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// A minute of *Silence detected* lasts `ms` (tests and demos).
    pub fn with_minute_ms(mut self, ms: u64) -> Self {
        self.minute_ms = ms;
        self
    }

    /// Offload actions ask `offloader`.
    pub fn with_offloader(mut self, offloader: Arc<dyn Offloader>) -> Self {
        self.offloader = Some(offloader);
        self
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// What `bot`'s conversations on this engine's version are stored under.
    pub fn key<'b>(&self, bot: &'b Bot) -> std::borrow::Cow<'b, str> {
        crate::flow::store_key(bot.id(), &self.version)
    }

    /// Runs one turn and commits it; returns once it is durable.
    pub async fn turn(&self, bot: &Bot, inbound: Inbound) -> Result<TurnOutput, StoreError> {
        self.turn_with_outbox(bot, inbound, |_, _| Vec::new()).await
    }

    /// Like [`turn`](Self::turn); `outbox` turns the result into deliveries
    /// (given the output and the first message's number) that are committed
    /// in the same transaction as the turn.
    pub async fn turn_with_outbox(
        &self,
        bot: &Bot,
        inbound: Inbound,
        outbox: impl FnOnce(&TurnOutput, &ConversationState) -> Vec<Delivery>,
    ) -> Result<TurnOutput, StoreError> {
        let key = format!("{}\0{}", self.key(bot), inbound.conversation);
        let lock = self.lock(&key);
        let result = {
            let _turn = lock.lock().await;
            self.locked_turn(bot, inbound, outbox).await
        };
        self.unlock(&key, lock);
        result
    }

    async fn locked_turn(
        &self,
        bot: &Bot,
        mut inbound: Inbound,
        outbox: impl FnOnce(&TurnOutput, &ConversationState) -> Vec<Delivery>,
    ) -> Result<TurnOutput, StoreError> {
        let now = now_ms();
        let loaded = match inbound.state.take() {
            Some(read) => read,
            None => {
                self.store
                    .load(&self.key(bot), &inbound.conversation)
                    .await?
            }
        };
        let state = loaded.unwrap_or_else(|| ConversationState::new(now));
        let resolved = match &inbound.kind {
            InboundKind::Postback { payload, .. } => {
                Resolved::Postback(self.postback(bot, payload).await?)
            }
            _ => Resolved::None,
        };
        let mut turn = Turn::new(
            bot,
            self.runner.as_ref(),
            &self.version,
            &inbound.conversation,
            state,
        );
        turn.offloader = self.offloader.as_deref();
        turn.minute_ms = self.minute_ms;
        turn.run(&inbound, resolved).await;
        let (mut state, mut out, postbacks) = turn.finish();
        state.updated_ms = now;
        let transcript = self.number(&mut state, &out.events, now);
        out.transcript_len = state.transcript_len;
        out.silence_due_ms = state.silence_due_ms;
        let outbox = outbox(&out, &state);
        self.store
            .commit(TurnCommit {
                bot: self.key(bot).into_owned(),
                conversation: inbound.conversation.clone(),
                state,
                transcript,
                postbacks,
                outbox,
                inbox: inbound.inbox,
            })
            .await?;
        Ok(out)
    }

    /// Changes a known conversation outside a user's turn (the REST API),
    /// under its lock: `change` edits the state and returns transcript
    /// events; `outbox` turns the result into deliveries; `postbacks` are
    /// payload ids the change shows; one commit. `Ok(None)` when the
    /// conversation is unknown.
    pub async fn update<R>(
        &self,
        bot: &Bot,
        conversation: &str,
        claim: Option<InboxClaim>,
        postbacks: Vec<(String, Value)>,
        change: impl FnOnce(&mut ConversationState) -> (Vec<Value>, R),
        outbox: impl FnOnce(&ConversationState) -> Vec<Delivery>,
    ) -> Result<Option<R>, StoreError> {
        let key = format!("{}\0{}", self.key(bot), conversation);
        let lock = self.lock(&key);
        let result = async {
            let _turn = lock.lock().await;
            let Some(mut state) = self.store.load(&self.key(bot), conversation).await? else {
                return Ok(None);
            };
            let now = now_ms();
            let (events, answer) = change(&mut state);
            let transcript = self.number(&mut state, &events, now);
            state.updated_ms = now;
            let outbox = outbox(&state);
            self.store
                .commit(TurnCommit {
                    bot: self.key(bot).into_owned(),
                    conversation: conversation.to_string(),
                    state,
                    transcript,
                    postbacks,
                    outbox,
                    inbox: claim,
                })
                .await?;
            Ok(Some(answer))
        }
        .await;
        self.unlock(&key, lock);
        result
    }

    /// Transcript entries for `events`, numbered after the state's last.
    fn number(
        &self,
        state: &mut ConversationState,
        events: &[Value],
        now: u64,
    ) -> Vec<TranscriptEntry> {
        let entries: Vec<TranscriptEntry> = events
            .iter()
            .enumerate()
            .map(|(n, event)| TranscriptEntry {
                seq: state.transcript_len + n as u64,
                at_ms: now,
                event: event.clone(),
            })
            .collect();
        state.transcript_len += entries.len() as u64;
        entries
    }

    /// An opaque id from the store, or a legacy JSON payload.
    async fn postback(&self, bot: &Bot, payload: &str) -> Result<Option<Target>, StoreError> {
        if postback::is_id(payload) {
            return Ok(self
                .store
                .postback(&self.key(bot), payload)
                .await?
                .and_then(|v| Target::from_json(&v)));
        }
        Ok(serde_json::from_str::<Value>(payload)
            .ok()
            .and_then(|v| Target::from_json(&v)))
    }

    fn lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().expect("not poisoned");
        locks.entry(key.to_string()).or_default().clone()
    }

    /// Drops the conversation's lock when no other turn holds or waits for it.
    fn unlock(&self, key: &str, lock: Arc<tokio::sync::Mutex<()>>) {
        let mut locks = self.locks.lock().expect("not poisoned");
        if Arc::strong_count(&lock) == 2 {
            locks.remove(key);
        }
    }
}
