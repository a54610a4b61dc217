//! Per-tenant usage: Prometheus text at `/metrics`, and the same figures for
//! a tenant at `GET /v1/usage` (REST API, the token's tenant only).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::flow::TurnOutput;

/// Upper bounds of the latency histograms, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Debug, Clone, Default, Serialize)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
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
    /// Deliveries given up after their retry period (dead letters).
    pub dead_letters: u64,
    /// Changes to the bot's folder refused by hot reload (invalid).
    #[serde(default)]
    pub reloads_refused: u64,
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
        self.dead_letters += other.dead_letters;
        self.reloads_refused += other.reloads_refused;
        for (kind, n) in &other.action_failures {
            *self.action_failures.entry(kind.clone()).or_default() += n;
        }
    }
}

/// A counter's name, help text and reading.
type Counter = (&'static str, &'static str, fn(&Usage) -> u64);
/// A histogram's name, help text and reading.
type HistogramOf = (&'static str, &'static str, fn(&Usage) -> &Histogram);

#[derive(Default)]
pub struct Metrics {
    /// (tenant, bot) → usage.
    usage: Mutex<BTreeMap<(String, String), Usage>>,
}

impl Metrics {
    /// Records one committed turn.
    pub fn turn(&self, tenant: &str, bot: &str, out: &TurnOutput, took: Duration) {
        let mut all = self.usage.lock().expect("not poisoned");
        let u = all
            .entry((tenant.to_string(), bot.to_string()))
            .or_default();
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
    }

    /// Records an inbound message refused with 429 (backlog full).
    pub fn refused(&self, tenant: &str, bot: &str) {
        let mut all = self.usage.lock().expect("not poisoned");
        all.entry((tenant.to_string(), bot.to_string()))
            .or_default()
            .refused_messages += 1;
    }

    /// Records a delivery given up (a dead letter).
    pub fn dead_letter(&self, tenant: &str, bot: &str) {
        let mut all = self.usage.lock().expect("not poisoned");
        all.entry((tenant.to_string(), bot.to_string()))
            .or_default()
            .dead_letters += 1;
    }

    /// Records a change to a bot's folder that hot reload refused.
    pub fn reload_refused(&self, tenant: &str, bot: &str) {
        let mut all = self.usage.lock().expect("not poisoned");
        all.entry((tenant.to_string(), bot.to_string()))
            .or_default()
            .reloads_refused += 1;
    }

    /// Every (tenant, bot)'s figures since this process started.
    pub fn snapshot(&self) -> Vec<(String, String, serde_json::Value)> {
        let all = self.usage.lock().expect("not poisoned");
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
        let all = self.usage.lock().expect("not poisoned");
        all.iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|((_, b), u)| (b.clone(), u.clone()))
            .collect()
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let all = self.usage.lock().expect("not poisoned");
        let mut out = String::new();
        let counters: [Counter; 7] = [
            ("sandbot_turns_total", "Turns committed", |u| u.turns),
            (
                "sandbot_action_invocations_total",
                "Actions run in the sandbox",
                |u| u.action_invocations,
            ),
            ("sandbot_action_fuel_total", "Fuel used by actions", |u| {
                u.fuel
            }),
            (
                "sandbot_action_time_microseconds_total",
                "Wall time of actions",
                |u| u.action_time_us,
            ),
            (
                "sandbot_refused_messages_total",
                "Inbound messages refused with 429: a backlog was full",
                |u| u.refused_messages,
            ),
            (
                "sandbot_dead_letters_total",
                "Deliveries given up after their retry period (dead letters)",
                |u| u.dead_letters,
            ),
            (
                "sandbot_bot_reloads_refused_total",
                "Changes to a bot folder refused by hot reload (the previous version keeps serving)",
                |u| u.reloads_refused,
            ),
        ];
        for (name, help, get) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for ((t, b), u) in all.iter() {
                let _ = writeln!(out, "{name}{{tenant=\"{t}\",bot=\"{b}\"}} {}", get(u));
            }
        }
        let _ = writeln!(
            out,
            "# HELP sandbot_action_failures_total Failed actions by kind\n# TYPE sandbot_action_failures_total counter"
        );
        for ((t, b), u) in all.iter() {
            for (kind, n) in &u.action_failures {
                let _ = writeln!(
                    out,
                    "sandbot_action_failures_total{{tenant=\"{t}\",bot=\"{b}\",kind=\"{kind}\"}} {n}"
                );
            }
        }
        let histograms: [HistogramOf; 2] = [
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
        for (name, help, get) in histograms {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
            for ((t, b), u) in all.iter() {
                let h = get(u);
                for (i, le) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "{name}_bucket{{tenant=\"{t}\",bot=\"{b}\",le=\"{le}\"}} {}",
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "{name}_bucket{{tenant=\"{t}\",bot=\"{b}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(out, "{name}_sum{{tenant=\"{t}\",bot=\"{b}\"}} {}", h.sum);
                let _ = writeln!(
                    out,
                    "{name}_count{{tenant=\"{t}\",bot=\"{b}\"}} {}",
                    h.count
                );
            }
        }
        out
    }
}

/// Records this node's figures in the store every second (and once more at
/// shutdown), so `/v1/usage` adds up every node's figures.
pub async fn record(
    state: std::sync::Arc<super::AppState>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => false,
            _ = stop.wait_for(|s| *s) => true,
        };
        if let Err(e) = state.store.record_usage(&state.metrics.snapshot()).await {
            tracing::warn!(%e, "recording usage figures");
        }
        if stopping {
            return;
        }
    }
}
