//! Per-tenant usage: Prometheus text at `/metrics` (encoded by the
//! `prometheus-client` crate from these figures at each scrape), and the same
//! figures for a tenant at `GET /v1/usage` (REST API, the token's tenant
//! only), kept in the store so they survive a restart.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};

use crate::flow::TurnOutput;
use crate::store::Queued;

/// Upper bounds of the latency histograms, in seconds (then `+Inf`).
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Observations per bucket (not cumulative; the last one is `+Inf`).
#[derive(Debug, Clone, Default, Serialize)]
struct Histogram {
    counts: [u64; BUCKETS.len() + 1],
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        let i = BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(BUCKETS.len());
        self.counts[i] += 1;
        self.sum += seconds;
    }

    fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// One tenant's (and bot's) figures.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub turns: u64,
    pub action_invocations: u64,
    /// Failed actions by kind (`timeout`, `js_error`, …).
    pub action_failures: BTreeMap<String, u64>,
    pub fuel: u64,
    pub action_time_us: u64,
    /// Inbound messages refused because a backlog was full (429).
    pub refused_messages: u64,
    /// Inbound messages refused because the tenant was over its storage
    /// quota (507).
    #[serde(default)]
    pub storage_refused: u64,
    /// Deliveries given up after their retry period (dead letters).
    pub dead_letters: u64,
    /// Changes to the bot's folder refused by hot reload (invalid).
    #[serde(default)]
    pub reloads_refused: u64,
    /// Turns that failed on the store, so were not committed (their
    /// message runs again): a lease lost, the database unreachable.
    #[serde(default)]
    pub turns_not_committed: u64,
    #[serde(skip)]
    turn_latency: Histogram,
    #[serde(skip)]
    action_latency: Histogram,
}

impl Usage {
    /// Adds another node's figures (the counters; histograms stay per node).
    pub fn add(&mut self, other: &Usage) {
        self.turns += other.turns;
        self.action_invocations += other.action_invocations;
        self.fuel += other.fuel;
        self.action_time_us += other.action_time_us;
        self.refused_messages += other.refused_messages;
        self.storage_refused += other.storage_refused;
        self.dead_letters += other.dead_letters;
        self.reloads_refused += other.reloads_refused;
        self.turns_not_committed += other.turns_not_committed;
        for (kind, n) in &other.action_failures {
            *self.action_failures.entry(kind.clone()).or_default() += n;
        }
    }
}

/// A counter's name (without `_total`), help text and reading.
type Counter = (&'static str, &'static str, fn(&Usage) -> u64);
/// A tenant gauge's name, help text and reading.
type GaugeOf<T> = (&'static str, &'static str, fn(&T) -> u64);
/// A histogram's name, help text and reading.
type HistogramOf = (&'static str, &'static str, fn(&Usage) -> &Histogram);

const COUNTERS: [Counter; 9] = [
    ("sandbot_turns", "Turns committed", |u| u.turns),
    (
        "sandbot_turns_not_committed",
        "Turns that failed on the store and were not committed (their message runs again)",
        |u| u.turns_not_committed,
    ),
    (
        "sandbot_action_invocations",
        "Actions run in the sandbox",
        |u| u.action_invocations,
    ),
    ("sandbot_action_fuel", "Fuel used by actions", |u| u.fuel),
    (
        "sandbot_action_time_microseconds",
        "Wall time of actions",
        |u| u.action_time_us,
    ),
    (
        "sandbot_refused_messages",
        "Inbound messages refused with 429: a backlog was full",
        |u| u.refused_messages,
    ),
    (
        "sandbot_storage_refused_messages",
        "Inbound messages refused with 507: the tenant was over its storage quota",
        |u| u.storage_refused,
    ),
    (
        "sandbot_dead_letters",
        "Deliveries given up after their retry period (dead letters)",
        |u| u.dead_letters,
    ),
    (
        "sandbot_bot_reloads_refused",
        "Changes to a bot folder refused by hot reload (the previous version keeps serving)",
        |u| u.reloads_refused,
    ),
];

const HISTOGRAMS: [HistogramOf; 2] = [
    (
        "sandbot_turn_duration_seconds",
        "Time from a message to its committed turn",
        |u| &u.turn_latency,
    ),
    (
        "sandbot_action_duration_seconds",
        "Wall time of one action",
        |u| &u.action_latency,
    ),
];

/// A series' labels, in this order.
type Labels<'a, const N: usize> = [(&'static str, &'a str); N];

fn bot_labels<'a>(tenant: &'a str, bot: &'a str) -> Labels<'a, 2> {
    [("tenant", tenant), ("bot", bot)]
}

/// A tenant's stored bytes and its quota (bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Storage {
    pub bytes: u64,
    pub quota_bytes: u64,
}

#[derive(Debug, Default)]
struct Figures {
    /// (tenant, bot) → usage.
    usage: Mutex<BTreeMap<(String, String), Usage>>,
    /// Tenant → what it stores (refreshed by `serve::storage`).
    storage: Mutex<BTreeMap<String, Storage>>,
}

#[derive(Default)]
pub struct Metrics {
    figures: Arc<Figures>,
}

impl Metrics {
    fn with(&self, tenant: &str, bot: &str, f: impl FnOnce(&mut Usage)) {
        let mut all = self.figures.usage.lock().expect("not poisoned");
        f(all
            .entry((tenant.to_string(), bot.to_string()))
            .or_default());
    }

    /// Records one committed turn.
    pub fn turn(&self, tenant: &str, bot: &str, out: &TurnOutput, took: Duration) {
        self.with(tenant, bot, |u| {
            u.turns += 1;
            u.turn_latency.observe(took.as_secs_f64());
            for a in &out.actions {
                u.action_invocations += 1;
                u.fuel += a.stats.fuel;
                u.action_time_us += a.stats.wall_us;
                u.action_latency.observe(a.stats.wall_us as f64 / 1e6);
                if let Some(e) = &a.error {
                    *u.action_failures.entry(e.kind.clone()).or_default() += 1;
                }
            }
        });
    }

    /// Records a turn that failed on the store (not committed).
    pub fn not_committed(&self, tenant: &str, bot: &str) {
        self.with(tenant, bot, |u| u.turns_not_committed += 1);
    }

    /// Records an inbound message refused with 429 (backlog full).
    pub fn refused(&self, tenant: &str, bot: &str) {
        self.with(tenant, bot, |u| u.refused_messages += 1);
    }

    /// Records an inbound message refused for the tenant's storage quota.
    pub fn storage_refused(&self, tenant: &str, bot: &str) {
        self.with(tenant, bot, |u| u.storage_refused += 1);
    }

    /// Records a delivery given up (a dead letter).
    pub fn dead_letter(&self, tenant: &str, bot: &str) {
        self.with(tenant, bot, |u| u.dead_letters += 1);
    }

    /// Records a change to a bot's folder that hot reload refused.
    pub fn reload_refused(&self, tenant: &str, bot: &str) {
        self.with(tenant, bot, |u| u.reloads_refused += 1);
    }

    /// What `tenant` stores now, against its quota.
    pub fn set_storage(&self, tenant: &str, storage: Storage) {
        let mut all = self.figures.storage.lock().expect("not poisoned");
        all.insert(tenant.to_string(), storage);
    }

    /// What `tenant` stored at the last look.
    pub fn storage(&self, tenant: &str) -> Storage {
        let all = self.figures.storage.lock().expect("not poisoned");
        all.get(tenant).copied().unwrap_or_default()
    }

    /// Every (tenant, bot)'s figures since this process started.
    pub fn snapshot(&self) -> Vec<(String, String, serde_json::Value)> {
        let all = self.figures.usage.lock().expect("not poisoned");
        all.iter()
            .map(|((t, b), u)| {
                (
                    t.clone(),
                    b.clone(),
                    serde_json::to_value(u).expect("figures"),
                )
            })
            .collect()
    }

    /// A tenant's figures, per bot.
    pub fn tenant(&self, tenant: &str) -> BTreeMap<String, Usage> {
        let all = self.figures.usage.lock().expect("not poisoned");
        all.iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|((_, b), u)| (b.clone(), u.clone()))
            .collect()
    }

    /// The Prometheus (OpenMetrics) text exposition, with the sandbox pool's
    /// idle memory and releases (`Sandbox::idle_memory`) and what waits in
    /// the store — `None` when the store did not answer.
    pub fn render(&self, pool: (u64, u64), queued: Option<Queues>) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Scrape(self.figures.clone(), pool, queued)));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).expect("writing a String");
        out
    }
}

/// (tenant, bot id) → what waits in the store for it.
pub type QueuedByBot = BTreeMap<(String, String), Queued>;

/// What waits in the store, at a scrape.
#[derive(Debug, Default)]
pub struct Queues {
    /// Per bot this node serves.
    pub by_bot: QueuedByBot,
    /// Messages waiting for a bot that neither this node nor any running
    /// node serves, by store key: they wait until a node serves it again.
    pub unserved: BTreeMap<String, u64>,
}

/// The messages waiting (by store key) for bots that neither this node
/// (`here`) nor any running node serves.
pub fn unserved(
    queued: BTreeMap<String, Queued>,
    here: impl Fn(&str) -> bool,
    nodes: &[crate::store::NodeSeen],
    now_ms: u64,
) -> BTreeMap<String, u64> {
    queued
        .into_iter()
        .filter(|(key, q)| {
            q.inbox > 0
                && !here(key)
                && !nodes
                    .iter()
                    .any(|n| n.is_running(now_ms) && n.bots.contains(key))
        })
        .map(|(key, q)| (key, q.inbox))
        .collect()
}

/// Encodes the figures (and the sandbox pool's idle memory and releases,
/// and the store's queues) at a scrape.
#[derive(Debug)]
struct Scrape(Arc<Figures>, (u64, u64), Option<Queues>);

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let usage = self.0.usage.lock().expect("not poisoned");
        for (name, help, get) in COUNTERS {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for ((tenant, bot), u) in usage.iter() {
                let labels = bot_labels(tenant, bot);
                ConstCounter::new(get(u)).encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "sandbot_action_failures",
            "Failed actions by kind",
            None,
            MetricType::Counter,
        )?;
        for ((tenant, bot), u) in usage.iter() {
            for (kind, n) in &u.action_failures {
                let labels: Labels<3> = [("tenant", tenant), ("bot", bot), ("kind", kind)];
                ConstCounter::new(*n).encode(family.encode_family(&labels)?)?;
            }
        }
        for (name, help, get) in HISTOGRAMS {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
            for ((tenant, bot), u) in usage.iter() {
                let h = get(u);
                let buckets: Vec<(f64, u64)> = BUCKETS
                    .iter()
                    .copied()
                    .chain([f64::INFINITY])
                    .zip(h.counts)
                    .collect();
                family
                    .encode_family(&bot_labels(tenant, bot))?
                    .encode_histogram::<Labels<0>>(h.sum, h.count(), &buckets, None)?;
            }
        }
        drop(usage);
        let storage = self.0.storage.lock().expect("not poisoned");
        let gauges: [GaugeOf<Storage>; 2] = [
            (
                "sandbot_tenant_stored_bytes",
                "What the tenant's conversations hold in the store (sessions and transcripts)",
                |s| s.bytes,
            ),
            (
                "sandbot_tenant_storage_quota_bytes",
                "The tenant's storage quota",
                |s| s.quota_bytes,
            ),
        ];
        for (name, help, get) in gauges {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (tenant, s) in storage.iter() {
                ConstGauge::new(get(s) as i64)
                    .encode(family.encode_family(&[("tenant", tenant.as_str())])?)?;
            }
        }
        drop(storage);
        let up = encoder.encode_descriptor(
            "sandbot_store_up",
            "1 when the store answered this scrape's reads, 0 when it did not (the database unavailable)",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(i64::from(self.2.is_some())).encode(up)?;
        let queues: [GaugeOf<Queued>; 3] = [
            (
                "sandbot_inbox_messages",
                "Messages accepted and not yet run (the durable inbox; the same on every node of a shared store)",
                |q| q.inbox,
            ),
            (
                "sandbot_outbox_deliveries",
                "Replies queued and not yet delivered, retries included, dead letters apart (the same on every node of a shared store)",
                |q| q.outbox,
            ),
            (
                "sandbot_inbox_oldest_seconds",
                "How long the oldest message in the inbox has waited (0: none waits); alert on it to find a conversation that does not move",
                |q| {
                    q.oldest_ms
                        .map_or(0, |ms| crate::store::now_ms().saturating_sub(ms) / 1000)
                },
            ),
        ];
        for (name, help, get) in queues {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for ((tenant, bot), q) in self.2.iter().flat_map(|q| &q.by_bot) {
                ConstGauge::new(get(q) as i64)
                    .encode(family.encode_family(&bot_labels(tenant, bot))?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "sandbot_inbox_unserved_messages",
            "Messages waiting for a bot that no running node serves (by store key; `sandbot store inbox` lists them, `--drop` removes them)",
            None,
            MetricType::Gauge,
        )?;
        for (bot, n) in self.2.iter().flat_map(|q| &q.unserved) {
            ConstGauge::new(*n as i64).encode(family.encode_family(&[("bot", bot.as_str())])?)?;
        }
        let (idle, releases) = self.1;
        ConstGauge::new(idle as i64).encode(encoder.encode_descriptor(
            "sandbot_sandbox_idle_resident_bytes",
            "What the sandbox pool's idle slots keep resident (all tenants; held to idleMemoryMib)",
            None,
            MetricType::Gauge,
        )?)?;
        ConstCounter::new(releases).encode(encoder.encode_descriptor(
            "sandbot_sandbox_idle_releases",
            "Times the sandbox pool's idle slots were released for being over idleMemoryMib",
            None,
            MetricType::Counter,
        )?)?;
        Ok(())
    }
}

/// Records this node's figures in the store every second (and once more at
/// shutdown), so `/v1/usage` adds up every node's figures, and the node
/// itself with the bots it serves (`Store::heartbeat`, left at shutdown);
/// reads what each tenant stores (storage quotas) at the same pace.
pub async fn record(
    state: std::sync::Arc<super::AppState>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    // Reading what tenants store scans their conversations' rows on
    // PostgreSQL: at most 1 % of the time goes to it on a large database.
    let mut storage_due = std::time::Instant::now();
    // The bots this node serves (hot reload changes a bot, not the set).
    let mut bots: Vec<String> = state.bots.keys().cloned().collect();
    bots.sort();
    loop {
        // On a shared store, other nodes and `sandbot store inbox` see this
        // node and what it serves; it leaves when it stops.
        if let Err(e) = state.store.heartbeat(&bots).await
            && !e.is_unavailable()
        {
            tracing::warn!(%e, "recording this node in the store");
        }
        let stopping = tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => false,
            _ = stop.wait_for(|s| *s) => true,
        };
        if let Err(e) = state.store.record_usage(&state.metrics.snapshot()).await
            && !e.is_unavailable()
        {
            tracing::warn!(%e, "recording usage figures");
        }
        if std::time::Instant::now() >= storage_due {
            let started = std::time::Instant::now();
            super::storage::refresh(&state).await;
            storage_due = std::time::Instant::now() + started.elapsed() * 100;
        }
        if stopping {
            if let Err(e) = state.store.leave().await {
                tracing::warn!(%e, "taking this node out of the store's list of nodes");
            }
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_each_series_with_its_labels() {
        let m = Metrics::default();
        m.refused("acme", "shop");
        m.refused("acme", "shop");
        m.storage_refused("acme", "shop");
        m.reload_refused("o\"dd", "x\\y");
        {
            let mut all = m.figures.usage.lock().unwrap();
            let u = all.get_mut(&("acme".into(), "shop".into())).unwrap();
            u.turn_latency.observe(0.0004);
            u.turn_latency.observe(0.003);
            u.turn_latency.observe(9.0);
            u.action_failures.insert("timeout".into(), 4);
        }
        m.set_storage(
            "acme",
            Storage {
                bytes: 1200,
                quota_bytes: 1 << 20,
            },
        );
        let text = m.render((3 << 20, 2), None);
        for line in [
            "# TYPE sandbot_refused_messages counter",
            "sandbot_refused_messages_total{tenant=\"acme\",bot=\"shop\"} 2",
            "sandbot_storage_refused_messages_total{tenant=\"acme\",bot=\"shop\"} 1",
            "sandbot_bot_reloads_refused_total{tenant=\"o\\\"dd\",bot=\"x\\\\y\"} 1",
            "sandbot_action_failures_total{tenant=\"acme\",bot=\"shop\",kind=\"timeout\"} 4",
            "sandbot_turn_duration_seconds_bucket{le=\"0.0005\",tenant=\"acme\",bot=\"shop\"} 1",
            "sandbot_turn_duration_seconds_bucket{le=\"0.005\",tenant=\"acme\",bot=\"shop\"} 2",
            "sandbot_turn_duration_seconds_bucket{le=\"5.0\",tenant=\"acme\",bot=\"shop\"} 2",
            "sandbot_turn_duration_seconds_bucket{le=\"+Inf\",tenant=\"acme\",bot=\"shop\"} 3",
            "sandbot_turn_duration_seconds_count{tenant=\"acme\",bot=\"shop\"} 3",
            "sandbot_tenant_stored_bytes{tenant=\"acme\"} 1200",
            "sandbot_tenant_storage_quota_bytes{tenant=\"acme\"} 1048576",
            "sandbot_sandbox_idle_resident_bytes 3145728",
            "sandbot_sandbox_idle_releases_total 2",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
        }
    }

    #[test]
    fn unserved_messages_are_those_of_bots_no_running_node_serves() {
        let waiting = |inbox| Queued {
            inbox,
            ..Queued::default()
        };
        let queued = BTreeMap::from([
            ("here".to_string(), waiting(1)),
            ("there".to_string(), waiting(2)),
            ("dead".to_string(), waiting(3)),
            ("gone".to_string(), waiting(4)),
            (
                "replies-only".to_string(),
                Queued {
                    outbox: 5,
                    ..Queued::default()
                },
            ),
        ]);
        let now = 1_000_000;
        let node = |bots: &[&str], seen_ms| crate::store::NodeSeen {
            name: "n".into(),
            version: "v".into(),
            bots: bots.iter().map(|b| b.to_string()).collect(),
            started_ms: 0,
            seen_ms,
        };
        // Another node serves `there` and runs; the one that served `dead`
        // was last seen 16 s ago.
        let nodes = [node(&["there"], now - 1_000), node(&["dead"], now - 16_000)];
        assert_eq!(
            unserved(queued, |k| k == "here", &nodes, now),
            BTreeMap::from([("dead".to_string(), 3), ("gone".to_string(), 4)])
        );
    }

    #[test]
    fn what_waits_shows_with_the_age_of_the_oldest_message() {
        let by_bot = QueuedByBot::from([
            (
                ("acme".to_string(), "shop".to_string()),
                Queued {
                    inbox: 3,
                    outbox: 1,
                    oldest_ms: Some(crate::store::now_ms() - 75_500),
                },
            ),
            (("acme".to_string(), "idle".to_string()), Queued::default()),
        ]);
        let unserved = BTreeMap::from([("old-faq".to_string(), 12)]);
        let text = Metrics::default().render((0, 0), Some(Queues { by_bot, unserved }));
        for line in [
            "sandbot_store_up 1",
            "sandbot_inbox_messages{tenant=\"acme\",bot=\"shop\"} 3",
            "sandbot_outbox_deliveries{tenant=\"acme\",bot=\"shop\"} 1",
            "sandbot_inbox_oldest_seconds{tenant=\"acme\",bot=\"shop\"} 75",
            "sandbot_inbox_oldest_seconds{tenant=\"acme\",bot=\"idle\"} 0",
            "sandbot_inbox_unserved_messages{bot=\"old-faq\"} 12",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
        }
    }
}
