//! `sandbot serve`: the HTTP front (channels, health) over the flow engine and
//! the embedded store, with a delivery worker, and a graceful shutdown that
//! finishes the turns and deliveries in flight.

pub mod app;
pub mod config;
pub mod dispatch;
pub mod error;
pub mod front;
pub mod inbox;
pub mod janitor;
pub mod metrics;
pub mod predecessor;
pub mod rate;
pub mod reload;
pub mod state;
pub mod storage;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;

pub use config::ServeConfig;
pub use state::AppState;

use crate::channels::delivery;

/// How long, with a shared store, work this node cannot do is left for a
/// node that can: a message it cannot run (its bot gone from this node, a
/// job from a newer version), a delivery that needs a Sinch channel it lacks.
/// Longer than a deploy; after it, the node does as a lone node does (drops
/// the message, tries the delivery and retries it until it is given up).
pub const LEFT_FOR_OTHERS: Duration = Duration::from_secs(15 * 60);

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    stop: watch::Sender<bool>,
    http: tokio::task::JoinHandle<std::io::Result<()>>,
    worker: tokio::task::JoinHandle<()>,
    reloader: tokio::task::JoinHandle<()>,
    sweeper: tokio::task::JoinHandle<()>,
    recorder: tokio::task::JoinHandle<()>,
    desks: tokio::task::JoinHandle<()>,
    timers: tokio::task::JoinHandle<()>,
    janitor: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Loads the bots, opens the store, binds `config.listen` (or `listen`).
    pub async fn start(config: &ServeConfig) -> anyhow::Result<Server> {
        let state = Arc::new(AppState::build(config).await?);
        storage::refresh(&state).await;
        let listener = tokio::net::TcpListener::bind(&config.listen)
            .await
            .with_context(|| format!("listening on {}", config.listen))?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let router = front::guard(app::app(state.clone()), &config.http);
        let http = tokio::spawn(front::serve(
            listener,
            router,
            config.http.clone(),
            stopped.clone(),
        ));
        let dead_state = state.clone();
        let on_dead: delivery::OnDead = Arc::new(move |d| {
            if let Some(b) = dead_state.bots.get(&d.bot) {
                dead_state.metrics.dead_letter(&b.tenant, &d.bot);
            }
        });
        let worker = tokio::spawn(delivery::run(
            state.store.clone(),
            state.deliveries.clone(),
            state.tokens.clone(),
            config.delivery.policy(),
            on_dead,
            state.delivery_idle,
            stopped.clone(),
        ));
        let every = Duration::from_millis(config.reload_ms);
        let reloader = tokio::spawn(reload::run(state.clone(), every, stopped.clone()));
        let sweeper = tokio::spawn(inbox::sweep(state.clone(), stopped.clone()));
        let timers = tokio::spawn(inbox::silence(state.clone(), stopped.clone()));
        let recorder = tokio::spawn(metrics::record(state.clone(), stopped.clone()));
        let janitor = tokio::spawn(janitor::run(
            state.store.clone(),
            Duration::from_secs(config.purge_every_seconds),
            config.message_id_window(),
            stopped.clone(),
        ));
        let desks = tokio::spawn(crate::channels::offloading::watch(
            state.offloading.clone(),
            stopped,
        ));
        Ok(Server {
            addr,
            state,
            stop,
            http,
            worker,
            reloader,
            sweeper,
            recorder,
            desks,
            timers,
            janitor,
        })
    }

    /// Stops accepting requests, finishes the turns of the accepted
    /// messages (with a shared store: the turns in progress, handing the
    /// conversations on), then the deliveries in flight; what is still
    /// queued is delivered after the next start (or by another node).
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.state.dispatcher.stop();
        self.http.await??;
        self.sweeper.await?;
        self.timers.await?;
        self.state.dispatcher.wait_idle().await;
        self.state.deliveries.notify_one();
        self.worker.await?;
        if let Err(e) = delivery::give_back(self.state.store.as_ref()).await {
            tracing::warn!(%e, "giving back the deliveries claimed and not started");
        }
        self.reloader.await?;
        self.recorder.await?;
        self.janitor.await?;
        self.desks.await?;
        Ok(())
    }
}
