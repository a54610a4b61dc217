//! What the server knows: tenants with their hashed tokens, the deployed bots
//! (each with its engine), the webhook channels, the store and the dispatcher.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use sha2::{Digest, Sha256};

use super::config::{
    BacklogLimit, RateLimit, ServeConfig, SinchChannel, WebChannel, WebhookChannel,
};
use super::dispatch::Dispatcher;
use super::error::AppError;
use super::metrics::Queues;
use super::predecessor::Predecessor;
use super::rate::RateLimiter;
use crate::channels::offloading::Providers;
use crate::channels::sinch::oauth::SinchTokens;
use crate::flow::{Bot, FlowEngine};
use crate::runner::SandboxRunner;
use crate::sandbox::{Sandbox, SandboxConfig};
use crate::store::{EmbeddedStore, PostgresOptions, PostgresStore, Queued, Store, default_parts};

pub struct Tenant {
    pub id: String,
    token_hashes: Vec<[u8; 32]>,
    pub rate_limit: RateLimit,
    pub backlog: BacklogLimit,
    pub inbound_rate: Option<RateLimit>,
    /// What its conversations may hold in the store, in bytes (0: no quota).
    pub storage_quota: u64,
    /// The hosts and networks its actions may call (the studio shows them).
    pub egress: Vec<String>,
}

impl Tenant {
    /// Compares the token's hash with every stored hash in constant time.
    pub fn accepts(&self, token: &str) -> bool {
        let h: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.token_hashes.iter().fold(false, |any, stored| {
            let diff = stored.iter().zip(&h).fold(0u8, |acc, (a, b)| acc | (a ^ b));
            any | (diff == 0)
        })
    }
}

/// One deployed bot.
pub struct Deployment {
    /// The bot as last loaded; swapped by a reload (`reload.rs`).
    bot: RwLock<Arc<Bot>>,
    /// The bot's id.
    pub id: String,
    /// What its conversations are stored under ([`crate::flow::store_key`]):
    /// the key of `state.bots`.
    pub key: String,
    /// The bot folder (the DRAFT; LIVE is its published version, see
    /// [`crate::studio::versions`]).
    pub folder: PathBuf,
    pub tenant: String,
    /// `DRAFT` or `LIVE`.
    pub version: &'static str,
    /// The bot's webhook channel, if any: REST-sent messages go out there too.
    pub webhook: Option<WebhookChannel>,
    /// The web chat (`/chat/{botId}`), if on.
    pub web: Option<WebChannel>,
    pub engine: Arc<FlowEngine>,
}

impl Deployment {
    /// The bot's current version (turns in flight keep the one they started with).
    pub fn bot(&self) -> Arc<Bot> {
        self.bot.read().expect("not poisoned").clone()
    }

    /// Puts a new version in place for the next turns.
    pub fn replace(&self, bot: Bot) {
        *self.bot.write().expect("not poisoned") = Arc::new(bot);
    }

    /// Where this deployment's bot is loaded from: the folder for DRAFT, the
    /// published version for LIVE (the folder until one is published).
    pub fn source(&self) -> PathBuf {
        source(&self.folder, self.version)
    }
}

fn source(folder: &std::path::Path, version: &str) -> PathBuf {
    if version == "LIVE" {
        crate::studio::versions::Versions::of(folder).live_dir()
    } else {
        folder.to_path_buf()
    }
}

/// Each configured bot, loaded from where its deployment serves it (see
/// [`Deployment::source`]), in the config's order.
pub fn load_bots(config: &ServeConfig) -> anyhow::Result<Vec<Bot>> {
    config
        .bots
        .iter()
        .map(|b| {
            let dir = source(&b.folder, b.version.as_str());
            Bot::load(&dir).map_err(|p| anyhow::anyhow!("{}: {p}", dir.display()))
        })
        .collect()
}

/// The store keys (see `flow::store_key`) of the bots `config` serves.
pub fn served_keys(config: &ServeConfig) -> anyhow::Result<Vec<String>> {
    Ok(load_bots(config)?
        .iter()
        .zip(&config.bots)
        .map(|(bot, b)| crate::flow::store_key(bot.id(), b.version.as_str()).into_owned())
        .collect())
}

pub struct AppState {
    pub tenants: HashMap<String, Tenant>,
    pub bots: HashMap<String, Deployment>,
    /// Webhook channel id → (bot id, channel).
    pub webhooks: HashMap<String, (String, WebhookChannel)>,
    /// Sinch channel id → (bot id, channel).
    pub sinch: HashMap<String, (String, SinchChannel)>,
    /// OAuth tokens for the Sinch channels' deliveries.
    pub tokens: Arc<SinchTokens>,
    pub store: Arc<dyn Store>,
    pub dispatcher: Arc<Dispatcher>,
    /// Wakes the delivery worker when a turn queued deliveries.
    pub deliveries: Arc<tokio::sync::Notify>,
    pub rate: RateLimiter,
    pub metrics: super::metrics::Metrics,
    /// Requests waiting for their turn's outcome (the web chat).
    pub replies: super::inbox::Replies,
    /// Inbox entries this node said it leaves to other nodes.
    pub left: super::inbox::LeftLog,
    /// The key web session tokens are signed with.
    pub web_key: Vec<u8>,
    /// What `/metrics` asks for (none: this machine only).
    pub metrics_token: Option<String>,
    /// How long this node's lease on a conversation lasts without renewal.
    pub lease: Duration,
    /// How often the delivery worker looks at the queue without news: often
    /// when other nodes share it.
    pub delivery_idle: Duration,
    /// Every bot's offloading providers (agent desks).
    pub offloading: Arc<Providers>,
    /// How long a minute of *Silence detected* lasts.
    pub silence_minute_ms: u64,
    /// Each tenant's sandbox runner (its limits and cap).
    pub runners: HashMap<String, Arc<SandboxRunner>>,
    /// The process's sandbox (its pool's idle memory for the metrics).
    pub sandbox: Arc<Sandbox>,
    /// With a shared store: the data folder's lock, held while the node runs.
    pub predecessor: Option<Predecessor>,
    /// With a shared store: which one, and this node's name in it (for the
    /// start-up lines; no password). `Some` also tells the inbox that other
    /// nodes may run what this one cannot (see `serve::inbox::wake`).
    pub shared_store: Option<String>,
}

impl AppState {
    /// What waits in the store per (tenant, bot id) — every deployed bot,
    /// DRAFT and LIVE together — and for bots that no running node serves,
    /// for `/metrics`; `None` when the store did not answer within a second
    /// (a scrape does not wait out an outage).
    pub async fn queued(&self) -> Option<Queues> {
        let read = async {
            Ok::<_, crate::store::StoreError>((
                self.store.queued().await?,
                self.store.nodes().await?,
            ))
        };
        let (queued, nodes) = tokio::time::timeout(Duration::from_secs(1), read)
            .await
            .ok()?
            .ok()?;
        let mut out = Queues::default();
        for d in self.bots.values() {
            let q = queued.get(&d.key).copied().unwrap_or_default();
            let sum: &mut Queued = out
                .by_bot
                .entry((d.tenant.clone(), d.id.clone()))
                .or_default();
            sum.add(&q);
        }
        out.unserved = super::metrics::unserved(
            queued,
            |key| self.bots.contains_key(key),
            &nodes,
            crate::store::now_ms(),
        );
        Some(out)
    }

    /// Loads every bot (all problems reported) and opens the store.
    pub async fn build(config: &ServeConfig) -> anyhow::Result<Self> {
        let ttl = config.session_ttl();
        let mut data_lock = None;
        let mut shared_web_key = None;
        let mut shared_store = None;
        let (store, lease, delivery_idle): (Arc<dyn Store>, Duration, Duration) =
            match config.store.postgres()? {
                Some(pg) => {
                    let options = pg.options(ttl);
                    let lease = options.lease;
                    let node = OnPostgres::start(config, &options).await?;
                    (data_lock, shared_store, shared_web_key) =
                        (node.predecessor, Some(node.described), node.web_key);
                    (Arc::new(node.store), lease, Duration::from_millis(100))
                }
                None => (
                    Arc::new(EmbeddedStore::open_parts(
                        &config.data.join("sandbot.redb"),
                        ttl,
                        config.store.embedded.parts,
                        default_parts(),
                    )?),
                    Duration::from_secs(30),
                    Duration::from_secs(1),
                ),
            };
        let mut sandbox_config = SandboxConfig::default();
        if std::env::var_os("SANDBOT_CPU_SLOTS").is_none()
            && let Some(slots) = config.cpu_slots
        {
            sandbox_config.cpu_slots = slots;
        }
        if let Some(mib) = config.idle_memory_mib {
            sandbox_config.idle_memory_budget = mib << 20;
        }
        let sandbox = Arc::new(Sandbox::new(sandbox_config)?);
        let mut tenants = HashMap::new();
        let mut runners = HashMap::new();
        for t in &config.tenants {
            let hashes = t
                .tokens
                .iter()
                .map(|h| {
                    let bytes = hex::decode(h.trim_start_matches("sha256:")).expect("checked");
                    <[u8; 32]>::try_from(bytes.as_slice()).expect("checked")
                })
                .collect();
            tenants.insert(
                t.id.clone(),
                Tenant {
                    id: t.id.clone(),
                    token_hashes: hashes,
                    rate_limit: t.rate_limit,
                    backlog: t.backlog,
                    inbound_rate: t.inbound_rate,
                    storage_quota: (t.storage_quota_mb.max(0.0) * 1_048_576.0) as u64,
                    egress: t
                        .limits
                        .allow_hosts
                        .iter()
                        .chain(&t.limits.allow_nets)
                        .cloned()
                        .collect(),
                },
            );
            let mut limits = t
                .limits
                .to_limits()
                .and_then(|l| crate::sandbox::check_builtin_limits(&l).map(|()| l))
                .with_context(|| format!("tenant `{}` limits", t.id))?;
            limits.cpu_share = t.id.as_str().into();
            limits.memory_budget = Some(sandbot_host_api::MemoryBudget::new(
                t.max_memory_mib.saturating_mul(1 << 20),
            ));
            runners.insert(
                t.id.clone(),
                Arc::new(
                    SandboxRunner::new(sandbox.clone(), limits)
                        .with_cap(t.max_concurrent_actions)
                        .with_failures(Arc::new(crate::studio::failures::FailureLog::new(
                            store.clone(),
                            &t.id,
                        ))),
                ),
            );
        }
        let loaded = load_bots(config)?;
        for bot in &loaded {
            if let Some(note) = crate::flow::bot::intl::note(bot) {
                tracing::warn!(bot = bot.id(), "{note}");
            }
        }
        let sinch_channels: HashMap<String, SinchChannel> = config
            .bots
            .iter()
            .flat_map(|b| &b.channels.sinch)
            .map(|c| (c.id.clone(), c.clone()))
            .collect();
        let tokens = Arc::new(SinchTokens::new(sinch_channels.values().cloned()));
        let offloading = Arc::new(Providers::new(
            store.clone(),
            loaded
                .iter()
                .zip(&config.bots)
                .map(|(bot, b)| {
                    let key = crate::flow::store_key(bot.id(), b.version.as_str());
                    (key.into_owned(), b.offloading.clone())
                })
                .collect(),
            sinch_channels,
            tokens.clone(),
        ));
        let mut bots = HashMap::new();
        let mut webhooks = HashMap::new();
        let mut sinch = HashMap::new();
        for (bot, b) in loaded.into_iter().zip(&config.bots) {
            let id = bot.id().to_string();
            let engine = FlowEngine::new(
                store.clone(),
                runners[&b.tenant].clone(),
                b.version.as_str(),
            )
            .with_offloader(offloading.clone())
            .with_minute_ms(config.silence_minute_ms);
            for provider in bot.offload_providers() {
                if !b.offloading.iter().any(|p| p.id == provider) {
                    tracing::warn!(
                        bot = id,
                        provider,
                        "an offload action names a provider the serve config does not list under `offloading`: it goes to offloadingDisabled"
                    );
                }
            }
            let key = crate::flow::store_key(&id, b.version.as_str()).into_owned();
            for w in &b.channels.webhook {
                webhooks.insert(w.id.clone(), (key.clone(), w.clone()));
            }
            for s in &b.channels.sinch {
                sinch.insert(s.id.clone(), (key.clone(), s.clone()));
            }
            if let Some(other) = bots.values().find(|d: &&Deployment| d.id == id)
                && (other.folder != b.folder || other.tenant != b.tenant)
            {
                anyhow::bail!(
                    "bot id `{id}` is deployed twice with another folder or tenant ({} and {}); DRAFT and LIVE of one bot share its folder and tenant",
                    other.folder.display(),
                    b.folder.display()
                );
            }
            let deployment = Deployment {
                bot: RwLock::new(Arc::new(bot)),
                id: id.clone(),
                key: key.clone(),
                folder: b.folder.clone(),
                tenant: b.tenant.clone(),
                version: b.version.as_str(),
                webhook: b.channels.webhook.first().cloned(),
                web: b.channels.web.clone(),
                engine: Arc::new(engine),
            };
            if bots.insert(key, deployment).is_some() {
                anyhow::bail!(
                    "bot id `{id}` is deployed twice as {}; deploy it once per version",
                    b.version.as_str()
                );
            }
        }
        Ok(Self {
            predecessor: data_lock,
            shared_store,
            tenants,
            bots,
            tokens,
            webhooks,
            sinch,
            store,
            dispatcher: Arc::new(Dispatcher::default()),
            deliveries: Arc::new(tokio::sync::Notify::new()),
            rate: RateLimiter::default(),
            metrics: Default::default(),
            replies: Default::default(),
            left: Default::default(),
            web_key: web_key(config, shared_web_key)?,
            offloading,
            silence_minute_ms: config.silence_minute_ms,
            runners,
            sandbox,
            metrics_token: std::env::var("SANDBOT_METRICS_TOKEN")
                .ok()
                .or_else(|| config.metrics_token.clone())
                .filter(|t| !t.is_empty()),
            lease,
            delivery_idle,
        })
    }

    /// Runs a turn of `d`'s bot with `outbox`, then records it in the
    /// metrics and the log (tenant, bot, conversation).
    pub async fn turn(
        &self,
        d: &Deployment,
        inbound: crate::flow::Inbound,
        outbox: impl FnOnce(
            &crate::flow::TurnOutput,
            &crate::store::ConversationState,
        ) -> Vec<crate::store::Delivery>,
    ) -> Result<crate::flow::TurnOutput, crate::store::StoreError> {
        let started = std::time::Instant::now();
        let conversation = inbound.conversation.clone();
        let bot = d.bot();
        let offloading = &self.offloading;
        let out = d
            .engine
            .turn_with_outbox(&bot, inbound, |out, st| {
                let mut deliveries = outbox(out, st);
                deliveries.extend(offloading.messages(&st.session, &out.events));
                deliveries
            })
            .await
            .inspect_err(|_| self.metrics.not_committed(&d.tenant, bot.id()))?;
        let took = started.elapsed();
        self.metrics.turn(&d.tenant, bot.id(), &out, took);
        tracing::info!(
            tenant = d.tenant,
            bot = bot.id(),
            conversation,
            block = out.session["internal"]["currentDialogstate"]["id"].as_str(),
            messages = out.messages.len(),
            actions = out.actions.len(),
            failed = out.actions.iter().filter(|a| !a.ok).count(),
            took_us = took.as_micros() as u64,
            "turn"
        );
        Ok(out)
    }

    /// The deployment of bot `bot_id` on `version` (DRAFT or LIVE; without
    /// one, LIVE when it is deployed, else DRAFT). `bot_id` may name the
    /// version itself, as stored (`shop@DRAFT`).
    pub fn resolve(&self, bot_id: &str, version: Option<&str>) -> Result<&Deployment, AppError> {
        let (id, named) = match bot_id.split_once('@') {
            Some((id, v)) => (id, Some(v)),
            None => (bot_id, None),
        };
        let version = match (named, version) {
            (Some(a), Some(b)) if !a.eq_ignore_ascii_case(b) => {
                return Err(AppError::bad_request(format!(
                    "`{bot_id}` names {a}, the request asks for {b}"
                )));
            }
            (a, b) => a.or(b),
        };
        match version {
            Some(v) if !["DRAFT", "LIVE"].iter().any(|k| v.eq_ignore_ascii_case(k)) => Err(
                AppError::bad_request(format!("`version` is DRAFT or LIVE, not `{v}`")),
            ),
            Some(v) => self
                .bots
                .get(crate::flow::store_key(id, v).as_ref())
                .ok_or_else(|| {
                    if self.bots.values().any(|d| d.id == id) {
                        AppError::not_found(format!(
                            "bot `{id}` is not deployed as {}",
                            v.to_ascii_uppercase()
                        ))
                    } else {
                        AppError::not_found(format!("no bot `{id}`"))
                    }
                }),
            None => self
                .bots
                .get(id)
                .or_else(|| self.bots.get(crate::flow::store_key(id, "DRAFT").as_ref()))
                .ok_or_else(|| AppError::not_found(format!("no bot `{id}`"))),
        }
    }

    /// The tenant a token belongs to.
    pub fn tenant_of(&self, token: &str) -> Option<&Tenant> {
        self.tenants.values().find(|t| t.accepts(token))
    }

    /// The tenant owning `bot_id`, if `token` belongs to it.
    pub fn authorized(&self, bot_id: &str, token: Option<&str>) -> bool {
        let Some(d) = self.bots.get(bot_id) else {
            return false;
        };
        token.is_some_and(|t| self.tenants[&d.tenant].accepts(t))
    }
}

/// A node on PostgreSQL, shared with other nodes.
struct OnPostgres {
    store: PostgresStore,
    /// The data folder's lock (`None`: another running node holds it).
    predecessor: Option<Predecessor>,
    /// The store and this node's name in it, for the start-up lines.
    described: String,
    /// The web session key the nodes share (hex), when none is configured.
    web_key: Option<String>,
}

impl OnPostgres {
    /// Connects; gives up at once what this node's last run on the data
    /// folder still held (see [`Predecessor`]), and records this run's name.
    async fn start(config: &ServeConfig, options: &PostgresOptions) -> anyhow::Result<Self> {
        let predecessor = Predecessor::take(&config.data)?;
        let store = PostgresStore::connect(options).await?;
        if let Some(name) = predecessor.as_ref().and_then(|p| p.name()) {
            match store.take_over(name).await {
                Ok((0, 0)) => {}
                Ok((leases, claims)) => tracing::info!(
                    previous = name,
                    leases,
                    claims,
                    "gave up what this node's last run held (conversations' leases, deliveries' claims): others take them at once"
                ),
                Err(e) => tracing::warn!(%e, "giving up what this node's last run held"),
            }
        }
        if let Some(p) = &predecessor {
            p.record(store.node())?;
        }
        let web_key = match configured_web_secret(config) {
            Some(_) => None,
            None => {
                let proposed = super::inbox::random_id(32);
                Some(store.shared_secret("web-session", &proposed).await?)
            }
        };
        Ok(Self {
            described: format!("{}, this node `{}`", store.server(), store.node()),
            store,
            predecessor,
            web_key,
        })
    }
}

/// `SANDBOT_WEB_SESSION_SECRET`, else the config's `webSessionSecret`.
fn configured_web_secret(config: &ServeConfig) -> Option<String> {
    std::env::var("SANDBOT_WEB_SESSION_SECRET")
        .ok()
        .or_else(|| config.web_session_secret.clone())
}

/// The web session key: the configured secret; else, with a shared store,
/// the random key the nodes share through it (`shared`, hex); else a random
/// key kept in the data folder.
fn web_key(config: &ServeConfig, shared: Option<String>) -> anyhow::Result<Vec<u8>> {
    if let Some(s) = configured_web_secret(config) {
        anyhow::ensure!(
            s.len() >= 32,
            "the web session secret must have at least 32 characters"
        );
        return Ok(s.into_bytes());
    }
    if let Some(hex_key) = shared {
        return hex::decode(hex_key).context("the web session key in the database is not hex");
    }
    let path = config.data.join("web-session.key");
    if let Ok(hex_key) = std::fs::read_to_string(&path) {
        return hex::decode(hex_key.trim())
            .with_context(|| format!("{} is not a hex key", path.display()));
    }
    std::fs::create_dir_all(&config.data)
        .with_context(|| format!("creating {}", config.data.display()))?;
    let key = super::inbox::random_id(32);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    use std::io::Write;
    options
        .open(&path)
        .and_then(|mut f| f.write_all(key.as_bytes()))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(hex::decode(key).expect("hex"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::config::hash_token;

    #[test]
    fn tokens_match_only_their_hash() {
        let hash = hash_token("s3cret");
        let bytes = hex::decode(hash.trim_start_matches("sha256:")).unwrap();
        let t = Tenant {
            id: "t".into(),
            token_hashes: vec![bytes.try_into().unwrap()],
            rate_limit: RateLimit::default(),
            backlog: BacklogLimit::default(),
            inbound_rate: None,
            storage_quota: 0,
            egress: Vec::new(),
        };
        assert!(t.accepts("s3cret"));
        assert!(!t.accepts("s3cret "));
        assert!(!t.accepts(""));
    }
}
