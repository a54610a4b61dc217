//! `sandbot serve --config FILE`: listen address, data folder, tenants (API
//! tokens stored hashed, sandbox limits) and bots (folder, tenant, version,
//! channels). Without a file: the example bots for a `demo` tenant.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::cli::limit_args::LimitArgs;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServeConfig {
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Where the embedded store keeps its file (relative to the config file).
    #[serde(default = "default_data")]
    pub data: PathBuf,
    /// The store: the embedded file in `data` unless `postgres` is given
    /// (`SANDBOT_DATABASE_URL` sets or overrides its URL).
    #[serde(default)]
    pub store: StoreConfig,
    /// How long failed deliveries are retried.
    #[serde(default)]
    pub delivery: DeliveryConfig,
    /// Days of inactivity after which a session expires (fractions allowed);
    /// the janitor then deletes it and its transcript.
    #[serde(default = "default_idle_days")]
    pub session_idle_days: f64,
    /// Days a channel's message ids (`messageId`, Sinch's message id) and
    /// REST actions' `Idempotency-Key`s are remembered for duplicate
    /// detection (fractions allowed).
    #[serde(default = "default_message_id_days")]
    pub message_id_days: f64,
    /// How often the janitor deletes expired sessions and old message ids,
    /// in seconds.
    #[serde(default = "default_purge_every")]
    pub purge_every_seconds: u64,
    /// How often bot folders are checked for changes, in milliseconds.
    #[serde(default = "default_reload_ms")]
    pub reload_ms: u64,
    /// The key web session tokens are signed with; give every node the same
    /// one (`SANDBOT_WEB_SESSION_SECRET` overrides). Without it a random key
    /// is kept in the data folder (`web-session.key`).
    #[serde(default)]
    pub web_session_secret: Option<String>,
    /// The bearer token `/metrics` asks for (`SANDBOT_METRICS_TOKEN`
    /// overrides). Without one, `/metrics` answers only this machine.
    #[serde(default)]
    pub metrics_token: Option<String>,
    /// The HTTP front's timeouts and connection caps.
    #[serde(default)]
    pub http: super::front::HttpLimits,
    /// How long a minute of *Silence detected* lasts, in milliseconds
    /// (60,000; shorter for tests and demos).
    #[serde(default = "default_silence_minute_ms")]
    pub silence_minute_ms: u64,
    /// Guest code running at once, all tenants (the CPU fair share's slots);
    /// default one less than the cores. `SANDBOT_CPU_SLOTS` overrides.
    #[serde(default)]
    pub cpu_slots: Option<usize>,
    /// The node's async worker threads (HTTP, store, turns); default one per
    /// core (`TOKIO_WORKER_THREADS` sets the default too). Several nodes on
    /// one machine share its cores: fewer threads each wait less on each
    /// other (docs/BENCHMARKS.md).
    #[serde(default)]
    pub threads: Option<usize>,
    /// What the sandbox pool's idle slots may keep resident, all tenants
    /// together, in MiB (default 32); past it they are released.
    #[serde(default)]
    pub idle_memory_mib: Option<u64>,
    pub tenants: Vec<TenantConfig>,
    pub bots: Vec<BotConfig>,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_data() -> PathBuf {
    PathBuf::from("sandbot-data")
}
fn default_silence_minute_ms() -> u64 {
    60_000
}
fn default_idle_days() -> f64 {
    30.0
}
fn default_message_id_days() -> f64 {
    7.0
}
fn default_purge_every() -> u64 {
    600
}
fn default_reload_ms() -> u64 {
    2000
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantConfig {
    pub id: String,
    /// API tokens as `sha256:<hex>` of the token (`sandbot token hash TOKEN`).
    pub tokens: Vec<String>,
    /// Sandbox limits for the tenant's actions (the `sandbot action run` flags).
    #[serde(default)]
    pub limits: LimitArgs,
    /// REST API requests allowed per token and window.
    #[serde(default)]
    pub rate_limit: RateLimit,
    /// Accepted messages waiting for their turn, at most (then 429).
    #[serde(default)]
    pub backlog: BacklogLimit,
    /// Messages accepted per window from all the tenant's channels, per
    /// node (then 429 with `Retry-After`); unlimited when unset.
    #[serde(default)]
    pub inbound_rate: Option<RateLimit>,
    /// The tenant's actions running at once, at most (the process has
    /// `maxInstances` sandbox slots for all tenants); the next one waits
    /// within its own deadline.
    #[serde(default = "default_max_concurrent_actions")]
    pub max_concurrent_actions: usize,
    /// What the tenant's conversations may hold in the store (sessions and
    /// transcripts), in MiB (fractions allowed); past it new messages are
    /// refused (507). 0: no quota.
    #[serde(default = "default_storage_quota_mb")]
    pub storage_quota_mb: f64,
    /// The memory the tenant's actions running at once may hold together,
    /// in MiB; an action whose memory would go past it fails with
    /// `memory_limit`, naming the cap.
    #[serde(default = "default_max_memory_mib")]
    pub max_memory_mib: u64,
}

fn default_max_memory_mib() -> u64 {
    2048
}

fn default_storage_quota_mb() -> f64 {
    1024.0
}

fn default_max_concurrent_actions() -> usize {
    32
}

/// How many accepted messages may wait for their turn: per conversation and
/// per tenant. Past either, channels answer 429 with `Retry-After`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BacklogLimit {
    #[serde(default = "default_conversation_backlog")]
    pub conversation: usize,
    #[serde(default = "default_tenant_backlog")]
    pub tenant: usize,
}

fn default_conversation_backlog() -> usize {
    100
}
fn default_tenant_backlog() -> usize {
    10_000
}

impl Default for BacklogLimit {
    fn default() -> Self {
        Self {
            conversation: default_conversation_backlog(),
            tenant: default_tenant_backlog(),
        }
    }
}

/// A fixed window: `requests` per `seconds` (per API token for the REST
/// API, per tenant for `inboundRate`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimit {
    pub requests: u32,
    pub seconds: u64,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            requests: 600,
            seconds: 60,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Version {
    Draft,
    #[default]
    Live,
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Draft => "DRAFT",
            Version::Live => "LIVE",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BotConfig {
    /// The bot folder (relative to the config file).
    pub folder: PathBuf,
    pub tenant: String,
    #[serde(default)]
    pub version: Version,
    #[serde(default)]
    pub channels: Channels,
    /// Where offload actions hand conversations to humans.
    #[serde(default)]
    pub offloading: Vec<OffloadingProvider>,
}

/// An offloading provider: Chatlayer's generic offloading webhook, or
/// Sinch Contact Pro behind one of the bot's Sinch channels.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OffloadingProvider {
    /// What offload actions name (`offload: { provider: ID }`).
    pub id: String,
    #[serde(default)]
    pub webhook: Option<OffloadingWebhook>,
    #[serde(default)]
    pub sinch_contact_pro: Option<ContactPro>,
}

/// Sinch Contact Pro: agents take Sinch conversations over in the
/// Conversation API app's CONVERSATION processing mode.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContactPro {
    /// The bot's Sinch channel (its app, credentials and API base URL).
    pub channel: String,
    /// What hands the conversation back to the bot: `conversationStop` (the
    /// default) and/or `agentLeft`.
    #[serde(default = "default_resume_on")]
    pub resume_on: Vec<ResumeOn>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ResumeOn {
    ConversationStop,
    AgentLeft,
}

fn default_resume_on() -> Vec<ResumeOn> {
    vec![ResumeOn::ConversationStop]
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OffloadingWebhook {
    pub url: String,
    /// Sent with every call as `?challenge.verifyToken=…`.
    pub verify_token: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Channels {
    #[serde(default)]
    pub webhook: Vec<WebhookChannel>,
    /// The web chat at `/chat/{botId}`: `web: true`, or its options (no
    /// tenant token: it is for the public; the emulator panel's data needs
    /// the tenant's token and a DRAFT bot).
    #[serde(default, deserialize_with = "web_channel")]
    pub web: Option<WebChannel>,
    #[serde(default)]
    pub sinch: Vec<SinchChannel>,
}

/// Retries of failed deliveries: waits from `firstRetryMs`, doubling up to
/// `maxRetryMs`, until they add up to `giveUpAfterSeconds`; then the
/// delivery is a dead letter (`GET /v1/deliveries/dead`, re-queueable).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeliveryConfig {
    #[serde(default = "default_give_up")]
    pub give_up_after_seconds: u64,
    #[serde(default = "default_first_retry")]
    pub first_retry_ms: u64,
    #[serde(default = "default_max_retry")]
    pub max_retry_ms: u64,
}

fn default_give_up() -> u64 {
    24 * 3600
}
fn default_first_retry() -> u64 {
    250
}
fn default_max_retry() -> u64 {
    60_000
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            give_up_after_seconds: default_give_up(),
            first_retry_ms: default_first_retry(),
            max_retry_ms: default_max_retry(),
        }
    }
}

impl DeliveryConfig {
    pub fn policy(&self) -> crate::channels::delivery::RetryPolicy {
        crate::channels::delivery::RetryPolicy {
            give_up_after: std::time::Duration::from_secs(self.give_up_after_seconds),
            first_backoff: std::time::Duration::from_millis(self.first_retry_ms.max(1)),
            max_backoff: std::time::Duration::from_millis(self.max_retry_ms.max(1)),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StoreConfig {
    #[serde(default)]
    pub postgres: Option<PostgresConfig>,
    #[serde(default)]
    pub embedded: EmbeddedConfig,
}

/// The embedded store (the default, one process).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmbeddedConfig {
    /// Files (each with its own writer) that a new store is split into by
    /// conversation; default one per four cores (1–8). A store keeps the
    /// count it was created with.
    #[serde(default)]
    pub parts: Option<usize>,
}

/// PostgreSQL, shared by every node of a deployment.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PostgresConfig {
    /// `postgres://user:password@host:port/database`.
    #[serde(default)]
    pub url: Option<String>,
    /// Connections in the pool.
    #[serde(default = "default_pool")]
    pub pool: u32,
    /// How long a node holds a conversation (and a delivery) without
    /// renewing: how soon others take over from a node that died.
    #[serde(default = "default_lease_seconds")]
    pub lease_seconds: u64,
    /// How long a node starting waits for a database it cannot reach yet
    /// (or that is starting up) before it gives up.
    #[serde(default = "default_start_wait_seconds")]
    pub start_wait_seconds: u64,
    /// How long a statement waits for a connection and for the server's
    /// answer before it fails as the database unavailable (503): a network
    /// that went silent, a server that hangs, a lock held too long.
    #[serde(default = "default_answer_wait_seconds")]
    pub answer_wait_seconds: u64,
}

impl PostgresConfig {
    /// How the store reaches the database (checked by
    /// [`StoreConfig::postgres`]: the URL is there).
    pub fn options(&self, session_ttl: Duration) -> crate::store::PostgresOptions {
        crate::store::PostgresOptions {
            url: self.url.clone().expect("checked"),
            pool: self.pool,
            lease: Duration::from_secs(self.lease_seconds),
            session_ttl,
            start_wait: Duration::from_secs(self.start_wait_seconds),
            wait: Duration::from_secs(self.answer_wait_seconds),
        }
    }
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            url: None,
            pool: default_pool(),
            lease_seconds: default_lease_seconds(),
            start_wait_seconds: default_start_wait_seconds(),
            answer_wait_seconds: default_answer_wait_seconds(),
        }
    }
}

fn default_pool() -> u32 {
    16
}
fn default_lease_seconds() -> u64 {
    30
}
fn default_start_wait_seconds() -> u64 {
    30
}
fn default_answer_wait_seconds() -> u64 {
    10
}

fn days(days: f64) -> std::time::Duration {
    std::time::Duration::from_secs_f64(days * 24.0 * 3600.0)
}

impl StoreConfig {
    /// The PostgreSQL settings in effect, if any (`SANDBOT_DATABASE_URL`
    /// sets or overrides the URL).
    pub fn postgres(&self) -> anyhow::Result<Option<PostgresConfig>> {
        let env = std::env::var("SANDBOT_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty());
        let mut pg = match (&self.postgres, &env) {
            (None, None) => return Ok(None),
            (Some(p), _) => p.clone(),
            (None, Some(_)) => PostgresConfig::default(),
        };
        if env.is_some() {
            pg.url = env;
        }
        if pg.url.is_none() {
            bail!("store.postgres needs a `url` (or SANDBOT_DATABASE_URL)");
        }
        if pg.lease_seconds == 0 || pg.pool == 0 || pg.answer_wait_seconds == 0 {
            bail!(
                "store.postgres: `pool`, `leaseSeconds` and `answerWaitSeconds` must be at least 1"
            );
        }
        Ok(Some(pg))
    }
}

/// The web chat's options.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebChannel {
    /// The HS256 secret of the embed tokens the bot's own site signs to pass
    /// its user's identity and session data (unsigned data is ignored).
    #[serde(default)]
    pub secret: Option<String>,
    /// Other sites (`https://shop.example.com`, or `*` for any) that may
    /// embed the chat (frame it, call its endpoints); the server's own pages
    /// always may.
    #[serde(default)]
    pub origins: Vec<String>,
    /// How long a web session token holds without a message, in hours.
    #[serde(default = "default_session_hours")]
    pub session_hours: u64,
}

fn default_session_hours() -> u64 {
    24
}

impl Default for WebChannel {
    fn default() -> Self {
        Self {
            secret: None,
            origins: Vec::new(),
            session_hours: default_session_hours(),
        }
    }
}

fn web_channel<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<WebChannel>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Web {
        On(bool),
        With(WebChannel),
    }
    Ok(match Option::<Web>::deserialize(d)? {
        None | Some(Web::On(false)) => None,
        Some(Web::On(true)) => Some(WebChannel::default()),
        Some(Web::With(w)) => Some(w),
    })
}

/// The Sinch Conversation API: callbacks come in at
/// `POST /v1/channels/sinch/{id}/callback`; replies go out with `messages:send`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SinchChannel {
    pub id: String,
    pub project_id: String,
    pub app_id: String,
    pub client_id: String,
    pub client_secret: String,
    /// `us`, `eu` or `br`: picks the default API host.
    #[serde(default = "default_region")]
    pub region: String,
    /// When set, callbacks must be signed with it (else 401).
    #[serde(default)]
    pub webhook_secret: Option<String>,
    /// OAuth2 token endpoint (default `https://auth.sinch.com/oauth2/token`).
    #[serde(default)]
    pub auth_url: Option<String>,
    /// API base (default `https://{region}.conversation.api.sinch.com`).
    #[serde(default)]
    pub api_url: Option<String>,
}

fn default_region() -> String {
    "eu".into()
}

impl SinchChannel {
    pub fn auth_url(&self) -> String {
        self.auth_url
            .clone()
            .unwrap_or_else(|| "https://auth.sinch.com/oauth2/token".into())
    }
    pub fn api_url(&self) -> String {
        self.api_url
            .clone()
            .unwrap_or_else(|| format!("https://{}.conversation.api.sinch.com", self.region))
    }
}

/// Chatlayer's webhook channel: users' messages come in at
/// `POST /v1/channels/webhook/{id}/messages`; bot messages go out to `url`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookChannel {
    pub id: String,
    /// Where bot messages are POSTed; without it they are only kept in the transcript.
    #[serde(default)]
    pub url: Option<String>,
    /// Sent with every outbound message so the receiver can check it.
    #[serde(default)]
    pub verify_token: String,
}

/// `sha256:<hex>` of a token.
pub fn hash_token(token: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(token.as_bytes())))
}

impl ServeConfig {
    /// How long an idle session lasts (`sessionIdleDays`).
    pub fn session_ttl(&self) -> std::time::Duration {
        days(self.session_idle_days)
    }

    /// How long channel message ids are remembered (`messageIdDays`).
    pub fn message_id_window(&self) -> std::time::Duration {
        days(self.message_id_days)
    }

    /// Reads `path`; relative folders are resolved against its folder.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut config: ServeConfig =
            serde_norway::from_str(&text).with_context(|| format!("{}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.data = base.join(&config.data);
        for bot in &mut config.bots {
            bot.folder = base.join(&bot.folder);
        }
        config.check()?;
        Ok(config)
    }

    /// The config of a command's `--config FILE`; without one, the example
    /// bots of the repository checkout in the current folder.
    pub fn given(path: Option<&Path>) -> anyhow::Result<Self> {
        match path {
            Some(path) => Self::load(path),
            None => Self::examples(&std::env::current_dir()?),
        }
    }

    /// The example bots for a `demo` tenant whose token is `demo-token`,
    /// allowed to call the example backend on 127.0.0.1:8787.
    pub fn examples(repo: &Path) -> anyhow::Result<Self> {
        let bots = ["meetups", "shop"];
        if !repo.join("examples/bots/meetups/bot.yaml").is_file() {
            bail!(
                "no --config given and no example bots under {} (run from the repository, or pass --config FILE)",
                repo.join("examples/bots").display()
            );
        }
        Ok(ServeConfig {
            listen: default_listen(),
            data: repo.join(default_data()),
            session_idle_days: default_idle_days(),
            message_id_days: default_message_id_days(),
            purge_every_seconds: default_purge_every(),
            reload_ms: default_reload_ms(),
            web_session_secret: None,
            metrics_token: None,
            http: Default::default(),
            silence_minute_ms: default_silence_minute_ms(),
            cpu_slots: None,
            threads: None,
            idle_memory_mib: None,
            store: StoreConfig::default(),
            delivery: DeliveryConfig::default(),
            tenants: vec![TenantConfig {
                id: "demo".into(),
                tokens: vec![hash_token("demo-token")],
                limits: LimitArgs {
                    allow_hosts: vec!["http://127.0.0.1:8787".into()],
                    ..LimitArgs::default()
                },
                rate_limit: RateLimit::default(),
                backlog: BacklogLimit::default(),
                inbound_rate: None,
                max_concurrent_actions: default_max_concurrent_actions(),
                storage_quota_mb: default_storage_quota_mb(),
                max_memory_mib: default_max_memory_mib(),
            }],
            // Each example bot twice, from one folder: LIVE (its webhook
            // channel and the public web chat at /chat/{id}) and DRAFT (the
            // web chat with the emulator at /chat/{id}?version=DRAFT; what
            // the studio saves).
            bots: bots
                .iter()
                .flat_map(|b| [Version::Live, Version::Draft].map(|v| (b, v)))
                .map(|(b, version)| BotConfig {
                    folder: repo.join("examples/bots").join(b),
                    tenant: "demo".into(),
                    version,
                    channels: Channels {
                        webhook: match version {
                            Version::Live => vec![WebhookChannel {
                                id: b.to_string(),
                                url: None,
                                verify_token: String::new(),
                            }],
                            Version::Draft => Vec::new(),
                        },
                        // The demo may be embedded anywhere (widget.js).
                        web: Some(WebChannel {
                            origins: vec!["*".into()],
                            ..WebChannel::default()
                        }),
                        sinch: Vec::new(),
                    },
                    // The shop's "talk to a human" goes to the example backend's desk.
                    offloading: match *b {
                        "shop" => vec![OffloadingProvider {
                            id: "desk".into(),
                            webhook: Some(OffloadingWebhook {
                                url: "http://127.0.0.1:8787/desk".into(),
                                verify_token: sandbot_example_backend::DESK_TOKEN.into(),
                            }),
                            sinch_contact_pro: None,
                        }],
                        _ => Vec::new(),
                    },
                })
                .collect(),
        })
    }

    fn check(&self) -> anyhow::Result<()> {
        self.http.check()?;
        if self.silence_minute_ms == 0 {
            bail!("silenceMinuteMs must be at least 1");
        }
        for (name, days) in [
            ("sessionIdleDays", self.session_idle_days),
            ("messageIdDays", self.message_id_days),
        ] {
            // At most about 100 years: the figure becomes milliseconds.
            if !(days > 0.0 && days <= 36_500.0) {
                bail!("{name} must be more than 0 and at most 36500 (got {days})");
            }
        }
        if self.purge_every_seconds == 0 {
            bail!("purgeEverySeconds must be at least 1");
        }
        for b in &self.bots {
            let mut ids = std::collections::HashSet::new();
            for p in &b.offloading {
                if !ids.insert(&p.id) {
                    bail!(
                        "{}: offloading provider `{}` is listed twice",
                        b.folder.display(),
                        p.id
                    );
                }
                let at = format!("{}: offloading provider `{}`", b.folder.display(), p.id);
                match (&p.webhook, &p.sinch_contact_pro) {
                    (Some(w), None) => {
                        let url = reqwest::Url::parse(&w.url)
                            .map_err(|e| anyhow::anyhow!("{at}: url `{}`: {e}", w.url))?;
                        if !matches!(url.scheme(), "http" | "https") {
                            bail!("{at}: the url must be http(s)");
                        }
                    }
                    (None, Some(cp)) => {
                        if !b.channels.sinch.iter().any(|s| s.id == cp.channel) {
                            bail!(
                                "{at}: sinchContactPro.channel `{}` is not one of this bot's Sinch channels",
                                cp.channel
                            );
                        }
                    }
                    _ => bail!("{at}: give exactly one of `webhook` and `sinchContactPro`"),
                }
            }
        }
        if self.cpu_slots == Some(0) {
            bail!("cpuSlots must be at least 1 (guest code needs a slot to run)");
        }
        if self.threads == Some(0) {
            bail!("threads must be at least 1 (the node's async work needs a thread)");
        }
        for t in &self.tenants {
            if t.max_concurrent_actions == 0 {
                bail!("tenant `{}`: maxConcurrentActions must be at least 1", t.id);
            }
            let instance_mib = t
                .limits
                .memory_mib
                .unwrap_or(crate::sandbox::DEFAULT_MEMORY_BYTES >> 20);
            if t.max_memory_mib < instance_mib {
                bail!(
                    "tenant `{}`: maxMemoryMib ({}) is below one action's memory limit ({instance_mib} MiB): raise it or lower limits.memoryMib",
                    t.id,
                    t.max_memory_mib
                );
            }
            if !(t.storage_quota_mb >= 0.0 && t.storage_quota_mb.is_finite()) {
                bail!(
                    "tenant `{}`: storageQuotaMb must be a number of MiB, 0 or more (0: no quota)",
                    t.id
                );
            }
            for token in &t.tokens {
                let ok = token
                    .strip_prefix("sha256:")
                    .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
                if !ok {
                    bail!(
                        "tenant `{}`: tokens are stored hashed as `sha256:<64 hex digits>` (see `sandbot token hash`)",
                        t.id
                    );
                }
            }
        }
        for t in &self.tenants {
            if t.backlog.conversation == 0 || t.backlog.tenant == 0 {
                bail!(
                    "tenant `{}`: backlog limits must be at least 1 (conversation: {}, tenant: {})",
                    t.id,
                    t.backlog.conversation,
                    t.backlog.tenant
                );
            }
        }
        for b in &self.bots {
            if !self.tenants.iter().any(|t| t.id == b.tenant) {
                bail!("bot {}: unknown tenant `{}`", b.folder.display(), b.tenant);
            }
        }
        for s in self.bots.iter().flat_map(|b| &b.channels.sinch) {
            if !["us", "eu", "br"].contains(&s.region.as_str()) {
                bail!(
                    "sinch channel `{}`: region `{}` is not us, eu or br",
                    s.id,
                    s.region
                );
            }
        }
        let mut ids: Vec<&str> = self
            .bots
            .iter()
            .flat_map(|b| {
                let webhook = b.channels.webhook.iter().map(|w| w.id.as_str());
                webhook.chain(b.channels.sinch.iter().map(|s| s.id.as_str()))
            })
            .collect();
        ids.sort();
        if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
            bail!("channel id `{}` is used twice", w[0]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(extra: &str, tenant: &str) -> anyhow::Result<ServeConfig> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serve.yaml");
        let yaml = format!(
            "{extra}\ntenants:\n  - {{ id: t, tokens: [\"{}\"]{tenant} }}\nbots: []\n",
            hash_token("x")
        );
        std::fs::write(&path, yaml).unwrap();
        ServeConfig::load(&path)
    }

    #[test]
    fn cpu_slots_memory_cap_and_storage_quota_are_checked() {
        let c = load(
            "cpuSlots: 3\nidleMemoryMib: 8",
            ", storageQuotaMb: 0.5, maxMemoryMib: 128",
        )
        .unwrap();
        assert_eq!(c.tenants[0].max_memory_mib, 128);
        assert_eq!((c.cpu_slots, c.idle_memory_mib), (Some(3), Some(8)));
        assert_eq!(c.tenants[0].storage_quota_mb, 0.5);
        let c = load("", "").unwrap();
        assert_eq!(
            (
                c.cpu_slots,
                c.idle_memory_mib,
                c.tenants[0].storage_quota_mb
            ),
            (None, None, 1024.0)
        );
        assert_eq!(
            load("cpuSlots: 0", "").unwrap_err().to_string(),
            "cpuSlots must be at least 1 (guest code needs a slot to run)"
        );
        assert_eq!(load("threads: 1", "").unwrap().threads, Some(1));
        assert_eq!(
            load("threads: 0", "").unwrap_err().to_string(),
            "threads must be at least 1 (the node's async work needs a thread)"
        );
        assert_eq!(
            load("", ", maxMemoryMib: 127").unwrap_err().to_string(),
            "tenant `t`: maxMemoryMib (127) is below one action's memory limit (128 MiB): raise it or lower limits.memoryMib"
        );
        assert_eq!(
            load("", ", storageQuotaMb: -1").unwrap_err().to_string(),
            "tenant `t`: storageQuotaMb must be a number of MiB, 0 or more (0: no quota)"
        );
    }

    #[test]
    fn retention_and_store_parts_are_checked() {
        let c = load("", "").unwrap();
        assert_eq!(
            (
                c.session_idle_days,
                c.message_id_days,
                c.purge_every_seconds
            ),
            (30.0, 7.0, 600)
        );
        assert_eq!(c.store.embedded.parts, None);
        let c = load(
            "sessionIdleDays: 0.5\nmessageIdDays: 2\npurgeEverySeconds: 60\nstore: { embedded: { parts: 4 } }",
            "",
        )
        .unwrap();
        assert_eq!(
            (
                c.session_idle_days,
                c.message_id_days,
                c.purge_every_seconds
            ),
            (0.5, 2.0, 60)
        );
        assert_eq!(c.store.embedded.parts, Some(4));
        for (yaml, error) in [
            (
                "sessionIdleDays: 0",
                "sessionIdleDays must be more than 0 and at most 36500 (got 0)",
            ),
            (
                "messageIdDays: -1",
                "messageIdDays must be more than 0 and at most 36500 (got -1)",
            ),
            (
                "messageIdDays: 40000",
                "messageIdDays must be more than 0 and at most 36500 (got 40000)",
            ),
            (
                "purgeEverySeconds: 0",
                "purgeEverySeconds must be at least 1",
            ),
        ] {
            assert_eq!(load(yaml, "").unwrap_err().to_string(), error, "{yaml}");
        }
    }

    #[test]
    fn postgres_settings_have_defaults_and_are_checked() {
        let pg = |settings: &str| {
            load(
                &format!("store: {{ postgres: {{ url: \"postgres://db/x\"{settings} }} }}"),
                "",
            )
            .unwrap()
            .store
            .postgres()
        };
        let d = pg("").unwrap().unwrap();
        assert_eq!(
            (
                d.pool,
                d.lease_seconds,
                d.start_wait_seconds,
                d.answer_wait_seconds
            ),
            (16, 30, 30, 10)
        );
        let c = pg(", pool: 4, leaseSeconds: 5, startWaitSeconds: 0, answerWaitSeconds: 1")
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                c.pool,
                c.lease_seconds,
                c.start_wait_seconds,
                c.answer_wait_seconds
            ),
            (4, 5, 0, 1)
        );
        for zero in ["pool", "leaseSeconds", "answerWaitSeconds"] {
            assert_eq!(
                pg(&format!(", {zero}: 0")).unwrap_err().to_string(),
                "store.postgres: `pool`, `leaseSeconds` and `answerWaitSeconds` must be at least 1",
                "{zero}"
            );
        }
    }
}
