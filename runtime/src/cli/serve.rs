//! `sandbot serve [--config FILE] [--listen ADDR]`. Without a config file it
//! serves the example bots (tenant `demo`, token `demo-token`) from a
//! repository checkout. Ctrl-C (or SIGTERM) shuts down gracefully.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::serve::{ServeConfig, Server};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The server's configuration (YAML): listen, data, tenants, bots.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Overrides the configured listen address.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut config = ServeConfig::given(args.config.as_deref())?;
    if let Some(l) = args.listen {
        config.listen = l;
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = config.threads {
        builder.worker_threads(n);
    }
    let runtime = builder
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let threads = runtime.metrics().num_workers();
    runtime.block_on(async {
        if args.config.is_none() {
            start_example_backend().await;
        }
        let server = Server::start(&config).await?;
        eprintln!(
            "sandbot serving {} bot(s) on http://{} (data in {})",
            server.state.bots.len(),
            server.addr,
            config.data.display()
        );
        if args.config.is_none() {
            eprintln!("  no --config: example bots for tenant `demo`, bearer token `demo-token`");
        }
        if let Some(store) = &server.state.shared_store {
            eprintln!("  store: {store}");
        }
        eprintln!("  threads: {threads} async worker(s)");
        let mut deployed: Vec<_> = server.state.bots.values().collect();
        deployed.sort_by_key(|d| (&d.id, d.version));
        for d in deployed {
            let id = &d.id;
            let query = if d.version == "DRAFT" {
                "?version=DRAFT"
            } else {
                ""
            };
            if d.web.is_some() {
                eprintln!(
                    "  web chat for bot `{id}` ({}): http://{}/chat/{id}{query}",
                    d.version, server.addr
                );
            }
        }
        eprintln!(
            "  studio (code editor, versions, publishing): http://{}/studio",
            server.addr
        );
        for (id, (bot, _)) in &server.state.sinch {
            eprintln!(
                "  sinch channel `{id}` → bot `{bot}`: POST /v1/channels/sinch/{id}/callback"
            );
        }
        for (id, (bot, _)) in &server.state.webhooks {
            eprintln!(
                "  webhook channel `{id}` → bot `{bot}`: POST /v1/channels/webhook/{id}/messages"
            );
        }
        shutdown_signal().await;
        eprintln!("shutting down: finishing turns and deliveries in flight");
        server.shutdown().await?;
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

/// The backend the example bots call, on its fixed address (unless something
/// already listens there, such as a running `sandbot-example-backend`).
async fn start_example_backend() {
    let addr = sandbot_example_backend::DEFAULT_ADDR;
    match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => {
            eprintln!("  example backend on http://{addr}");
            tokio::spawn(sandbot_example_backend::serve(listener));
        }
        Err(e) => eprintln!("  example backend: {addr} is taken ({e}); using what listens there"),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
