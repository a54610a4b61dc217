//! Delivers the outbox: per conversation strictly in order (a failing
//! message holds back the later ones of its conversation), conversations in
//! parallel; failures retried with exponential back-off, given up after
//! `MAX_ATTEMPTS`. A delivery leaves the queue only after its outcome is
//! known, and shutdown waits for deliveries in flight, so a restart neither
//! loses nor repeats a message.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::store::{Delivery, Store, now_ms};

/// Bearer tokens for deliveries that need one (`Delivery::auth`), such as
/// Sinch's OAuth tokens: fetched, cached, refreshed on demand.
pub trait TokenSource: Send + Sync {
    fn token<'a>(
        &'a self,
        name: &'a str,
        refresh: bool,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>>;
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
}

/// Attempts before a delivery is given up (and logged).
pub const MAX_ATTEMPTS: u32 = 8;

/// Back-off after `attempts` failures: 250 ms, 500 ms, 1 s, … capped at 60 s.
pub fn backoff(attempts: u32) -> Duration {
    Duration::from_millis((250u64 << attempts.saturating_sub(1).min(10)).min(60_000))
}

/// Runs until `stop` turns true; returns after the round in flight.
pub async fn run(
    store: Arc<dyn Store>,
    wake: Arc<Notify>,
    tokens: Arc<dyn TokenSource>,
    mut stop: watch::Receiver<bool>,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client");
    loop {
        let next_due = round(&store, &client, &tokens).await;
        if *stop.borrow() {
            return;
        }
        let wait = next_due.unwrap_or(Duration::from_secs(1));
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => {}
        }
    }
}

/// One pass over the queue; returns how long until the next retry is due.
async fn round(
    store: &Arc<dyn Store>,
    client: &reqwest::Client,
    tokens: &Arc<dyn TokenSource>,
) -> Option<Duration> {
    let pending = match store.outbox(1000).await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(%e, "reading the outbox");
            return Some(Duration::from_secs(1));
        }
    };
    let now = now_ms();
    let mut seen = HashSet::new();
    let mut next_due: Option<u64> = None;
    let mut tasks = tokio::task::JoinSet::new();
    for d in pending {
        // Only the oldest message of each conversation may go.
        if !seen.insert((d.bot.clone(), d.conversation.clone())) {
            continue;
        }
        if d.not_before_ms > now {
            next_due = Some(next_due.map_or(d.not_before_ms, |n| n.min(d.not_before_ms)));
            continue;
        }
        let (client, tokens) = (client.clone(), tokens.clone());
        tasks.spawn(async move { deliver(&client, tokens.as_ref(), d).await });
    }
    let delivered_any = !tasks.is_empty();
    let (mut done, mut retry) = (Vec::new(), Vec::new());
    while let Some(outcome) = tasks.join_next().await {
        match outcome {
            Ok(Settled::Done(id)) => done.push(id),
            Ok(Settled::Retry(id, attempts, at)) => retry.push((id, attempts, at)),
            Err(e) => tracing::error!(%e, "a delivery task failed"),
        }
    }
    // One transaction for the whole round.
    if let Err(e) = store.outbox_settle(&done, &retry).await {
        tracing::error!(%e, "updating the outbox");
    }
    if delivered_any {
        return Some(Duration::ZERO);
    }
    next_due.map(|t| Duration::from_millis(t.saturating_sub(now_ms())))
}

/// What became of one delivery.
enum Settled {
    /// Delivered, or given up.
    Done(u64),
    /// Failed: (id, attempts, not before).
    Retry(u64, u32, u64),
}

async fn deliver(client: &reqwest::Client, tokens: &dyn TokenSource, d: Delivery) -> Settled {
    let mut failure = send(client, tokens, &d, false).await;
    if failure.as_deref() == Some("answered 401 Unauthorized") && d.auth.is_some() {
        // A token the API no longer accepts: refresh it once, right away.
        failure = send(client, tokens, &d, true).await;
    }
    let Some(why) = failure else {
        return Settled::Done(d.id);
    };
    let attempts = d.attempts + 1;
    let (bot, conversation, url) = (&d.bot, &d.conversation, &d.url);
    if attempts >= MAX_ATTEMPTS {
        tracing::error!(
            bot,
            conversation,
            url,
            attempts,
            "giving up a delivery: {why}"
        );
        return Settled::Done(d.id);
    }
    tracing::warn!(bot, conversation, url, attempts, "delivery {why}; retrying");
    Settled::Retry(
        d.id,
        attempts,
        now_ms() + backoff(attempts).as_millis() as u64,
    )
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
