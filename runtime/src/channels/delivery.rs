//! Delivers the outbox: per conversation strictly in order (a failing
//! message holds back the later ones of its conversation, and only them),
//! every conversation on its own; failures retried with exponential back-off
//! for the retry period (hours by default), then kept as dead letters that
//! can be listed and re-queued. A delivery leaves the queue only once its
//! outcome is recorded, as soon as it is known; shutdown waits for the
//! deliveries in flight. After a crash, only the deliveries that were in
//! flight at that moment can go out again.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc, watch};

use crate::serve::LEFT_FOR_OTHERS;
use crate::store::{Delivery, Store, now_ms};

/// Bearer tokens for deliveries that need one (`Delivery::auth`), such as
/// Sinch's OAuth tokens: fetched, cached, refreshed on demand.
pub trait TokenSource: Send + Sync {
    fn token<'a>(
        &'a self,
        name: &'a str,
        refresh: bool,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>>;
    /// The names this source has tokens for: a node claims the deliveries
    /// that need others only after other nodes had time to take them.
    fn sources(&self) -> Vec<String>;
}

/// No token sources (tests, servers without Sinch channels).
pub struct NoTokens;

impl TokenSource for NoTokens {
    fn token<'a>(
        &'a self,
        name: &'a str,
        _refresh: bool,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>> {
        Box::pin(async move { Err(format!("no token source `{name}`")) })
    }

    fn sources(&self) -> Vec<String> {
        Vec::new()
    }
}

/// How long failed deliveries are retried, and how far apart.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retrying stops once the waits add up to this: the delivery becomes a
    /// dead letter (listed, re-queueable).
    pub give_up_after: Duration,
    /// The first wait; each next one doubles, up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            give_up_after: Duration::from_secs(24 * 3600),
            first_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait after `attempts` failures.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let doubled = self
            .first_backoff
            .saturating_mul(1 << attempts.saturating_sub(1).min(20));
        doubled.min(self.max_backoff)
    }

    /// Time spent waiting between the first `attempts` attempts.
    fn waited(&self, attempts: u32) -> Duration {
        (1..attempts).map(|n| self.backoff(n)).sum()
    }
}

/// Deliveries claimed at once, at most.
const BATCH: usize = 256;

/// Called with every delivery given up.
pub type OnDead = Arc<dyn Fn(&Delivery) + Send + Sync>;

/// Runs until `stop` turns true, then finishes the deliveries in flight.
/// Without news the queue is looked at every `idle` (with several nodes,
/// deliveries queued by others, or released by their claims, are found so).
/// Each delivery runs on its own: a slow or failing receiver holds back only
/// its own conversation; outcomes are settled as they come (those ready
/// together in one transaction).
pub async fn run(
    store: Arc<dyn Store>,
    wake: Arc<Notify>,
    tokens: Arc<dyn TokenSource>,
    policy: RetryPolicy,
    on_dead: OnDead,
    idle: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client");
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(Delivery, Outcome)>();
    let sources = tokens.sources();
    let mut in_flight: HashSet<(String, String)> = HashSet::new();
    let mut finished: Vec<(Delivery, Outcome)> = Vec::new();
    // When the queue was last looked at (None: look at the next round).
    let mut looked: Option<Instant> = None;
    loop {
        while let Ok(f) = done_rx.try_recv() {
            finished.push(f);
        }
        settle(
            &store,
            &policy,
            &on_dead,
            std::mem::take(&mut finished),
            &mut in_flight,
        )
        .await;
        let stopping = *stop.borrow();
        if stopping && in_flight.is_empty() {
            return;
        }
        let mut next_due = None;
        if !stopping {
            let (heads, retry_in) =
                round(&store, &sources, in_flight.len(), &mut looked, idle).await;
            let due = launch(heads, &client, &tokens, &done_tx, &mut in_flight);
            next_due = retry_in.or(due);
        }
        let wait = next_due.unwrap_or(idle).min(idle);
        tokio::select! {
            f = done_rx.recv() => finished.extend(f),
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed(), if !stopping => {}
        }
    }
}

/// Lets go of the deliveries the store claimed on the way that no worker
/// started (at shutdown, once the turns are done and the worker has
/// stopped): another node, or the next start, takes them at once instead of
/// after the claim runs out.
pub async fn give_back(store: &dyn Store) -> Result<(), crate::store::StoreError> {
    let left = store.take_claimed().deliveries;
    let back: Vec<_> = left
        .iter()
        .map(|d| (d.id, d.attempts, d.not_before_ms))
        .collect();
    store.outbox_settle(&[], &back).await
}

/// The deliveries a round may start, in id order: those the store claimed
/// on the way and, when the store asks or `idle` has passed since the last
/// look at the queue (`looked`; None: look now), the queue's heads (those
/// needing a token source not in `sources` left to other nodes for a while).
/// After a failed look, when to try again.
async fn round(
    store: &Arc<dyn Store>,
    sources: &[String],
    in_flight: usize,
    looked: &mut Option<Instant>,
    idle: Duration,
) -> (Vec<Delivery>, Option<Duration>) {
    let claimed = store.take_claimed();
    let mut heads = claimed.deliveries;
    let mut retry_in = None;
    if claimed.look || looked.is_none_or(|at| at.elapsed() >= idle) {
        *looked = Some(Instant::now());
        let left_before = now_ms().saturating_sub(LEFT_FOR_OTHERS.as_millis() as u64);
        match store
            .outbox_for(BATCH + in_flight, sources, left_before)
            .await
        {
            Ok(queued) => heads.extend(queued),
            Err(e) => {
                if !e.is_unavailable() {
                    tracing::error!(%e, "reading the outbox");
                }
                (*looked, retry_in) = (None, Some(Duration::from_secs(1)));
            }
        }
    }
    heads.sort_by_key(|d| d.id);
    heads.dedup_by_key(|d| d.id);
    (heads, retry_in)
}

/// Starts every due delivery of `heads` whose conversation has none in
/// flight; how long until the next one is due.
fn launch(
    heads: Vec<Delivery>,
    client: &reqwest::Client,
    tokens: &Arc<dyn TokenSource>,
    done: &mpsc::UnboundedSender<(Delivery, Outcome)>,
    in_flight: &mut HashSet<(String, String)>,
) -> Option<Duration> {
    let now = now_ms();
    let mut next_due: Option<u64> = None;
    for d in heads {
        let key = (d.bot.clone(), d.conversation.clone());
        if in_flight.contains(&key) {
            continue;
        }
        if d.not_before_ms > now {
            next_due = Some(next_due.map_or(d.not_before_ms, |n| n.min(d.not_before_ms)));
            continue;
        }
        in_flight.insert(key);
        let (client, tokens, done) = (client.clone(), tokens.clone(), done.clone());
        tokio::spawn(async move {
            let outcome = deliver(&client, tokens.as_ref(), &d).await;
            let _ = done.send((d, outcome));
        });
    }
    next_due.map(|t| Duration::from_millis(t.saturating_sub(now_ms())))
}

/// Records finished deliveries: delivered ones leave the queue, failed ones
/// wait for their retry or, past the retry period, become dead letters.
async fn settle(
    store: &Arc<dyn Store>,
    policy: &RetryPolicy,
    on_dead: &OnDead,
    finished: Vec<(Delivery, Outcome)>,
    in_flight: &mut HashSet<(String, String)>,
) {
    if finished.is_empty() {
        return;
    }
    let (mut done, mut retry, mut dead) = (Vec::new(), Vec::new(), Vec::new());
    for (d, outcome) in &finished {
        in_flight.remove(&(d.bot.clone(), d.conversation.clone()));
        let Outcome::Failed(why) = outcome else {
            done.push(d.id);
            continue;
        };
        let attempts = d.attempts + 1;
        let (bot, conversation, url) = (&d.bot, &d.conversation, &d.url);
        if policy.waited(attempts) >= policy.give_up_after {
            tracing::error!(
                bot,
                conversation,
                url,
                attempts,
                "giving up a delivery (now a dead letter): {why}"
            );
            on_dead(d);
            dead.push((d.id, attempts, why.clone()));
            continue;
        }
        tracing::warn!(bot, conversation, url, attempts, "delivery {why}; retrying");
        let at = now_ms() + policy.backoff(attempts).as_millis() as u64;
        retry.push((d.id, attempts, at));
    }
    if let Err(e) = store.outbox_settle(&done, &retry).await {
        tracing::error!(%e, "updating the outbox");
    }
    if let Err(e) = store.outbox_dead(&dead).await {
        tracing::error!(%e, "recording dead letters");
    }
}

/// What became of one delivery attempt.
enum Outcome {
    Delivered,
    Failed(String),
}

async fn deliver(client: &reqwest::Client, tokens: &dyn TokenSource, d: &Delivery) -> Outcome {
    let mut failure = send(client, tokens, d, false).await;
    if failure.as_deref() == Some("answered 401 Unauthorized") && d.auth.is_some() {
        // A token the API no longer accepts: refresh it once, right away.
        failure = send(client, tokens, d, true).await;
    }
    match failure {
        None => Outcome::Delivered,
        Some(why) => Outcome::Failed(why),
    }
}

/// One attempt; `None` on a 2xx answer, else why not.
async fn send(
    client: &reqwest::Client,
    tokens: &dyn TokenSource,
    d: &Delivery,
    refresh: bool,
) -> Option<String> {
    let mut request = client
        .post(&d.url)
        .header("content-type", "application/json")
        .body(d.body.to_string());
    for (k, v) in &d.headers {
        request = request.header(k, v);
    }
    if let Some(name) = &d.auth {
        match tokens.token(name, refresh).await {
            Ok(token) => request = request.bearer_auth(token),
            Err(e) => return Some(format!("could not get a token: {e}")),
        }
    }
    match request.send().await {
        Ok(r) if r.status().is_success() => None,
        Ok(r) => Some(format!("answered {}", r.status())),
        Err(e) => Some(format!("failed: {e}")),
    }
}
