//! Chatlayer's generic offloading webhook (COMPAT §9): the agent desk gets a
//! `messages` event for every user and bot message of the bot's
//! conversations (queued with each turn in the durable outbox: ordered per
//! conversation, retried), an `offload` event when an offload action runs
//! (its answer picks the block and whether the bot pauses), and a health
//! check (`GET`, answer `{"status":"ok"}`) at start and every 30 s. Every
//! call carries `?challenge.verifyToken=…`. Agents answer with the REST API's
//! `sendMessages` and hand back with `unpause` or `goto`. Sinch Contact Pro
//! is the other kind of provider (`contact_pro.rs`).

pub mod contact_pro;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::messenger;
use super::sinch::oauth::SinchTokens;
use crate::flow::{OffloadAnswer, OffloadFuture, OffloadRequest, Offloader};
use crate::serve::config::{OffloadingProvider, OffloadingWebhook, SinchChannel};
use crate::store::{Delivery, Store, TranscriptEntry, now_ms};

/// How often providers are checked.
pub const HEALTH_EVERY: Duration = Duration::from_secs(30);
/// An unhealthy provider is checked again at an offload once its last
/// check is this old.
const RECHECK_AFTER: Duration = Duration::from_millis(500);
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Transcript entries sent with an offload, at most (the latest).
const TRANSCRIPT_MAX: u64 = 500;

struct Provider {
    config: OffloadingProvider,
    /// Healthy, or why not; and when that was found.
    health: Mutex<(Result<(), String>, Instant)>,
}

/// Every bot's providers.
pub struct Providers {
    client: reqwest::Client,
    store: Arc<dyn Store>,
    /// Sinch channels by id, and their OAuth tokens (Contact Pro).
    sinch: HashMap<String, SinchChannel>,
    tokens: Arc<SinchTokens>,
    /// Bot id → its providers by id.
    by_bot: HashMap<String, HashMap<String, Arc<Provider>>>,
}

impl Providers {
    pub fn new(
        store: Arc<dyn Store>,
        bots: Vec<(String, Vec<OffloadingProvider>)>,
        sinch: HashMap<String, SinchChannel>,
        tokens: Arc<SinchTokens>,
    ) -> Self {
        let by_bot = bots
            .into_iter()
            .map(|(bot, list)| {
                let providers = list
                    .into_iter()
                    .map(|config| {
                        let p = Provider {
                            config,
                            health: Mutex::new((
                                Err("not checked yet".into()),
                                Instant::now()
                                    .checked_sub(RECHECK_AFTER)
                                    .unwrap_or_else(Instant::now),
                            )),
                        };
                        (p.config.id.clone(), Arc::new(p))
                    })
                    .collect();
                (bot, providers)
            })
            .collect();
        let client = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client");
        Providers {
            client,
            store,
            sinch,
            tokens,
            by_bot,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_bot.values().all(HashMap::is_empty)
    }

    /// Checks every provider once; logs the ones that are not healthy.
    pub async fn check_all(&self) {
        for (bot, providers) in &self.by_bot {
            for p in providers.values() {
                if let Err(why) = self.check(p).await {
                    tracing::warn!(bot, provider = p.config.id, %why, "offloading provider unhealthy: offloads go to offloadingDisabled");
                }
            }
        }
    }

    /// The health check: `GET url?challenge.verifyToken=…` → `{"status":"ok"}`
    /// (Contact Pro: its Sinch channel, checked at start).
    async fn check(&self, p: &Provider) -> Result<(), String> {
        let Some(w) = &p.config.webhook else {
            return Ok(());
        };
        let got = async {
            let res = self
                .client
                .get(&w.url)
                .query(&[("challenge.verifyToken", &w.verify_token)])
                .timeout(Duration::from_secs(5))
                .send()
                .await
                .map_err(|e| format!("the health check failed: {e}"))?;
            let status = res.status();
            let body: Value = res
                .bytes()
                .await
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or(Value::Null);
            if status.is_success() && body["status"] == "ok" {
                Ok(())
            } else {
                Err(format!(
                    "the health check answered {status} {body}, not {{\"status\":\"ok\"}}"
                ))
            }
        }
        .await;
        *p.health.lock().expect("not poisoned") = (got.clone(), Instant::now());
        got
    }

    /// The `messages` deliveries of a turn: its user and bot messages, to
    /// every provider of the bot.
    pub fn messages(&self, session: &Value, events: &[Value]) -> Vec<Delivery> {
        let internal = &session["internal"];
        let bot = internal["botId"].as_str().unwrap_or_default();
        let key = crate::flow::session_key(session);
        let Some(providers) = self.by_bot.get(&key).filter(|p| !p.is_empty()) else {
            return Vec::new();
        };
        let conversation = internal["sessionId"].as_str().unwrap_or_default();
        let now = now_ms();
        let messages: Vec<Value> = events
            .iter()
            .filter_map(|e| item(e, conversation, now))
            .collect();
        if messages.is_empty() {
            return Vec::new();
        }
        let body = json!({
            "botId": bot,
            "version": internal["version"],
            "sessionId": conversation,
            "channel": internal["channel"],
            "event": "messages",
            "timestamp": iso(now),
            "messages": messages,
        });
        providers
            .values()
            .filter_map(|p| p.config.webhook.as_ref().map(|w| (p, w)))
            .map(|(p, w)| Delivery {
                id: 0,
                bot: key.clone(),
                // Its own ordered lane: a desk that is down holds back only
                // its own events, never the user's channel.
                conversation: format!("{conversation}#offloading:{}", p.config.id),
                url: url(w),
                headers: Vec::new(),
                auth: None,
                body: body.clone(),
                attempts: 0,
                not_before_ms: 0,
            })
            .collect()
    }

    async fn offload_now(&self, r: OffloadRequest) -> OffloadAnswer {
        let key = crate::flow::store_key(&r.bot, &r.version);
        let Some(p) = self
            .by_bot
            .get(key.as_ref())
            .and_then(|m| m.get(&r.provider))
        else {
            return OffloadAnswer::Disabled(format!(
                "bot `{}` has no offloading provider `{}` in the serve config",
                r.bot, r.provider
            ));
        };
        let (health, at) = p.health.lock().expect("not poisoned").clone();
        let health = match health {
            Err(_) if at.elapsed() >= RECHECK_AFTER => self.check(p).await,
            h => h,
        };
        if let Err(why) = health {
            return OffloadAnswer::Disabled(format!("provider `{}`: {why}", r.provider));
        }
        let w = match (&p.config.webhook, &p.config.sinch_contact_pro) {
            (Some(w), _) => w,
            (None, Some(cp)) => return contact_pro::offload(self, cp, &r).await,
            (None, None) => {
                return OffloadAnswer::Disabled(format!(
                    "provider `{}` has neither `webhook` nor `sinchContactPro`",
                    r.provider
                ));
            }
        };
        let mut transcript = self.transcript(&r).await;
        let now = now_ms();
        transcript.extend(
            r.events
                .iter()
                .filter_map(|e| item(e, &r.conversation, now)),
        );
        let body = json!({
            "botId": r.bot,
            "version": r.version,
            "sessionId": r.conversation,
            "channel": r.channel,
            "timestamp": iso(now),
            "event": "offload",
            "payload": r.payload,
            "transcript": transcript,
        });
        let answer = async {
            let res = self
                .client
                .post(url(w))
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .map_err(|e| format!("the offload call failed: {e}"))?;
            let status = res.status();
            if !status.is_success() {
                return Err(format!("the offload call answered {status}"));
            }
            let bytes = res
                .bytes()
                .await
                .map_err(|e| format!("reading the offload answer: {e}"))?;
            serde_json::from_slice::<Value>(&bytes)
                .map_err(|e| format!("the offload answer is not JSON: {e}"))
        }
        .await;
        match answer {
            Err(why) => OffloadAnswer::Disabled(format!("provider `{}`: {why}", r.provider)),
            Ok(a) if a["offloadSuccess"] == true => OffloadAnswer::Opened {
                pause: a["pauseBot"].as_bool().unwrap_or(true),
            },
            Ok(_) => OffloadAnswer::Closed,
        }
    }

    /// The conversation's committed transcript (the latest entries).
    async fn transcript(&self, r: &OffloadRequest) -> Vec<Value> {
        let from = r.transcript_len.saturating_sub(TRANSCRIPT_MAX);
        let entries: Vec<TranscriptEntry> = self
            .store
            .transcript(&r.bot, &r.conversation, from, TRANSCRIPT_MAX as usize)
            .await
            .unwrap_or_default();
        entries
            .iter()
            .filter_map(|e| item(&e.event, &r.conversation, e.at_ms))
            .collect()
    }
}

impl Offloader for Providers {
    fn offload(&self, request: OffloadRequest) -> OffloadFuture<'_> {
        Box::pin(self.offload_now(request))
    }
}

/// Checks the providers every [`HEALTH_EVERY`] until `stop`.
pub async fn watch(providers: Arc<Providers>, mut stop: tokio::sync::watch::Receiver<bool>) {
    if providers.is_empty() {
        return;
    }
    loop {
        providers.check_all().await;
        tokio::select! {
            _ = tokio::time::sleep(HEALTH_EVERY) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

fn url(w: &OffloadingWebhook) -> String {
    let mut url = reqwest::Url::parse(&w.url).expect("checked at start");
    url.query_pairs_mut()
        .append_pair("challenge.verifyToken", &w.verify_token);
    url.into()
}

/// A transcript event as the desk sees it: `{actor, message, timestamp}`;
/// bot messages in the webhook channel's Messenger-like format, user
/// messages as Chatlayer stores them. Other events are not messages.
fn item(event: &Value, conversation: &str, at_ms: u64) -> Option<Value> {
    let sender = json!({"id": conversation});
    let (actor, message) = if let Some(b) = event.get("bot") {
        let rendered = messenger::render(b);
        if messenger::is_empty(&rendered) {
            return None;
        }
        ("bot", rendered)
    } else if let Some(u) = event.get("user") {
        let message = match u {
            Value::String(text) => json!({"messageType": "text", "text": text}),
            u if u.get("intro").is_some() => json!({"messageType": "intro"}),
            u if u.get("postback").is_some() => {
                json!({"messageType": "postback", "text": u["postback"]})
            }
            u if u.get("location").is_some() => {
                json!({"messageType": "location", "location": u["location"]})
            }
            u if u.get("upload").is_some() => {
                json!({"messageType": "fileUploadInputResult", "url": u["upload"]})
            }
            _ => return None,
        };
        let mut message = message;
        message["sender"] = sender;
        ("user", message)
    } else {
        return None;
    };
    Some(json!({"actor": actor, "message": message, "timestamp": iso(at_ms)}))
}

/// `2021-11-15T07:38:31.387Z`.
pub fn iso(ms: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcript_items_and_timestamps() {
        assert_eq!(iso(1_636_961_911_387), "2021-11-15T07:38:31.387Z");
        let user = item(&json!({"user": "hi"}), "c1", 0).unwrap();
        assert_eq!(
            user,
            json!({"actor": "user", "message": {"messageType": "text", "text": "hi", "sender": {"id": "c1"}}, "timestamp": "1970-01-01T00:00:00.000Z"})
        );
        let bot = item(
            &json!({"bot": {"type": "text", "config": {"textMessages": [{"text": "Hello"}]}}}),
            "c1",
            0,
        );
        assert_eq!(bot.unwrap()["message"]["text"], "Hello");
        assert_eq!(item(&json!({"block": "intro"}), "c1", 0), None);
        assert_eq!(item(&json!({"user": {"goto": "b"}}), "c1", 0), None);
    }
}
