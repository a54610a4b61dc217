//! `sandbot store inbox`: what waits in a server's store, per bot — messages
//! accepted and not yet run, replies not yet delivered — and who serves each
//! bot: the running nodes (on PostgreSQL every node records itself and its
//! bots each second) and the config given. `--drop BOT` removes the waiting
//! messages of a bot that nothing serves any more; they would otherwise wait
//! for ever and count toward their tenant's backlog.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};

use crate::serve::ServeConfig;
use crate::store::{EmbeddedStore, NodeSeen, PostgresStore, Queued, Store, now_ms};

#[derive(Debug, clap::Args)]
pub struct InboxArgs {
    /// The server's configuration (YAML), as given to `sandbot serve`: its
    /// store, and the bots it serves. Without it, the example bots' data
    /// folder, as `sandbot serve` without a config.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Removes the messages waiting for BOT (as listed: `id`, or `id@DRAFT`
    /// for a DRAFT deployment). Refused while a running node or the config
    /// serves it: they are run, not dropped.
    #[arg(long, value_name = "BOT")]
    drop: Option<String>,
}

pub fn inbox(args: InboxArgs) -> anyhow::Result<ExitCode> {
    let config = ServeConfig::given(args.config.as_deref())?;
    let served: BTreeSet<String> = crate::serve::state::served_keys(&config)?
        .into_iter()
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let (store, described) = open(&config).await?;
        let nodes = store.nodes().await?;
        let now = now_ms();
        let running: Vec<&NodeSeen> = nodes.iter().filter(|n| n.is_running(now)).collect();
        match &args.drop {
            Some(bot) => drop_waiting(store.as_ref(), bot, &served, &running).await,
            None => {
                print!(
                    "{}",
                    report(&described, &store.queued().await?, &served, &nodes, now)
                );
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

/// The store `config` selects, and what it is (for the report's first line).
async fn open(config: &ServeConfig) -> anyhow::Result<(Arc<dyn Store>, String)> {
    let ttl = config.session_ttl();
    if let Some(pg) = config.store.postgres()? {
        let store = PostgresStore::connect(&pg.options(ttl)).await?;
        let described = store.server();
        return Ok((Arc::new(store), described));
    }
    let path = config.data.join("sandbot.redb");
    if !path.is_file() {
        bail!(
            "{} holds no store (no sandbot.redb): nothing waits",
            config.data.display()
        );
    }
    let store = EmbeddedStore::open_parts(&path, ttl, config.store.embedded.parts, 1)?;
    Ok((Arc::new(store), format!("embedded, {}", path.display())))
}

/// Removes the waiting messages of `bot`, unless something serves it.
async fn drop_waiting(
    store: &dyn Store,
    bot: &str,
    served: &BTreeSet<String>,
    running: &[&NodeSeen],
) -> anyhow::Result<ExitCode> {
    if served.contains(bot) {
        bail!(
            "`{bot}` is served by this config: its waiting messages are run, not dropped (remove the bot from the config of every node first)"
        );
    }
    let serving: Vec<&str> = running
        .iter()
        .filter(|n| n.bots.iter().any(|b| b == bot))
        .map(|n| n.name.as_str())
        .collect();
    if !serving.is_empty() {
        bail!(
            "`{bot}` is served by the running node(s) {}: its waiting messages are run, not dropped (remove the bot from the config of every node first)",
            serving.join(", ")
        );
    }
    let mut dropped = 0u64;
    for (b, conversation) in store.inbox_conversations().await? {
        if b != bot {
            continue;
        }
        while let Some(entry) = store.inbox_next(&b, &conversation).await? {
            store.inbox_discard(&b, &conversation, entry.id).await?;
            dropped += 1;
        }
    }
    println!("dropped {dropped} waiting message(s) of `{bot}`");
    Ok(ExitCode::SUCCESS)
}

/// The listing: the store, its nodes, then what waits per bot and who
/// serves it.
fn report(
    described: &str,
    queued: &BTreeMap<String, Queued>,
    served: &BTreeSet<String>,
    nodes: &[NodeSeen],
    now: u64,
) -> String {
    let mut out = format!("store: {described}\n");
    if !nodes.is_empty() {
        out.push_str("nodes:\n");
        for n in nodes {
            let state = if n.is_running(now) {
                format!("running for {}", ago(now, n.started_ms))
            } else {
                format!(
                    "not seen for {} (it died, or cannot reach the database)",
                    ago(now, n.seen_ms)
                )
            };
            out.push_str(&format!(
                "  {}  sandbot {}  {state}  serves: {}\n",
                n.name,
                n.version,
                if n.bots.is_empty() {
                    "nothing".to_string()
                } else {
                    n.bots.join(", ")
                }
            ));
        }
    }
    let waiting: Vec<(&String, &Queued)> = queued
        .iter()
        .filter(|(_, q)| q.inbox > 0 || q.outbox > 0)
        .collect();
    if waiting.is_empty() {
        out.push_str("nothing waits\n");
        return out;
    }
    out.push_str("waiting (messages to run, replies to deliver), per bot:\n");
    let width = waiting.iter().map(|(b, _)| b.len()).max().unwrap_or(0);
    for (bot, q) in waiting {
        let mut by: Vec<String> = nodes
            .iter()
            .filter(|n| n.is_running(now) && n.bots.contains(bot))
            .map(|n| format!("node {}", n.name))
            .collect();
        if served.contains(bot.as_str()) {
            by.push("this config".into());
        }
        let by = if by.is_empty() && q.inbox > 0 {
            "served by nothing: its messages wait until a node serves it again, or `--drop` them"
                .to_string()
        } else if by.is_empty() {
            // A webhook reply carries its URL: any node sends it.
            "served by nothing".to_string()
        } else {
            format!("served by {}", by.join(", "))
        };
        let oldest = q
            .oldest_ms
            .map(|ms| format!(" (the oldest {} old)", ago(now, ms)))
            .unwrap_or_default();
        out.push_str(&format!(
            "  {bot:<width$}  {} message(s){oldest}, {} repl(ies)  {by}\n",
            q.inbox, q.outbox
        ));
    }
    out
}

/// `ms` ago, in the largest whole unit.
fn ago(now: u64, ms: u64) -> String {
    let s = now.saturating_sub(ms) / 1000;
    match s {
        0..120 => format!("{s} s"),
        120..7200 => format!("{} min", s / 60),
        7200..172_800 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, bots: &[&str], started_ms: u64, seen_ms: u64) -> NodeSeen {
        NodeSeen {
            name: name.into(),
            version: "1.0.0".into(),
            bots: bots.iter().map(|b| b.to_string()).collect(),
            started_ms,
            seen_ms,
        }
    }

    fn waiting(inbox: u64, outbox: u64, oldest_ms: Option<u64>) -> Queued {
        Queued {
            inbox,
            outbox,
            oldest_ms,
        }
    }

    #[test]
    fn the_report_says_who_serves_what_waits() {
        let now = 1_000_000_000;
        let queued = BTreeMap::from([
            ("echo".to_string(), waiting(0, 2, None)),
            (
                "gone".to_string(),
                waiting(3, 0, Some(now - 2 * 86_400_000)),
            ),
            ("idle".to_string(), Queued::default()),
            ("left".to_string(), waiting(0, 1, None)),
            ("mine".to_string(), waiting(1, 0, Some(now - 1_000))),
        ]);
        let nodes = [
            node("node-a", &["echo"], now - 300_000, now - 1_000),
            // Died with `gone` three hours ago: it serves nothing now.
            node(
                "node-b",
                &["echo", "gone"],
                now - 9_000_000,
                now - 3 * 3_600_000,
            ),
        ];
        let served = BTreeSet::from(["mine".to_string()]);
        assert_eq!(
            report("PostgreSQL at db:5432", &queued, &served, &nodes, now),
            "store: PostgreSQL at db:5432\n\
             nodes:\n  \
             node-a  sandbot 1.0.0  running for 5 min  serves: echo\n  \
             node-b  sandbot 1.0.0  not seen for 3 h (it died, or cannot reach the database)  serves: echo, gone\n\
             waiting (messages to run, replies to deliver), per bot:\n  \
             echo  0 message(s), 2 repl(ies)  served by node node-a\n  \
             gone  3 message(s) (the oldest 2 d old), 0 repl(ies)  served by nothing: its messages wait until a node serves it again, or `--drop` them\n  \
             left  0 message(s), 1 repl(ies)  served by nothing\n  \
             mine  1 message(s) (the oldest 1 s old), 0 repl(ies)  served by this config\n"
        );
        assert_eq!(
            report("embedded, x", &BTreeMap::new(), &served, &[], now),
            "store: embedded, x\nnothing waits\n"
        );
    }

    #[test]
    fn ages_are_in_whole_units() {
        let now = 1_000_000_000;
        let cases = [
            (0, "0 s"),
            (119_999, "119 s"),
            (120_000, "2 min"),
            (7_200_000, "2 h"),
            (172_800_000, "2 d"),
        ];
        for (ago_ms, text) in cases {
            assert_eq!(ago(now, now - ago_ms), text);
        }
    }
}
