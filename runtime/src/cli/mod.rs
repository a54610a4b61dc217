//! The `sandbot` command line. `main.rs` calls [`main`]; each subcommand lives in
//! its own module and returns an exit code.

mod action_run;
mod component_new;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code for a usage error (bad flag, unreadable file, invalid JSON).
pub const EXIT_USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "sandbot",
    version,
    about = "Conversational bots with sandboxed actions"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Work with actions (code actions, API actions, plugins).
    #[command(subcommand)]
    Action(ActionCommand),
    /// Work with WebAssembly components.
    #[command(subcommand)]
    Component(ComponentCommand),
}

#[derive(Debug, Subcommand)]
enum ActionCommand {
    /// Run one action in the sandbox and print one JSON document with its outcome.
    Run(Box<action_run::Args>),
}

#[derive(Debug, Subcommand)]
enum ComponentCommand {
    /// Turn a wasm32-wasip1 core module into a component (preview1 reactor adapter).
    New(component_new::Args),
}

/// Parses the arguments, runs the command, prints an error once.
pub fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Action(ActionCommand::Run(args)) => action_run::run(*args),
        Command::Component(ComponentCommand::New(args)) => component_new::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sandbot: {e:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SANDBOT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
