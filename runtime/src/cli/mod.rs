//! The `sandbot` command line. `main.rs` calls [`main`]; each subcommand lives in
//! its own module and returns an exit code.

mod action_run;
mod chat;
mod component_new;
pub mod limit_args;
mod publish;
mod serve;
mod store;
mod store_inbox;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code for a usage error (bad flag, unreadable file, invalid JSON).
pub const EXIT_USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "sandbot",
    version = crate::VERSION,
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
    /// Serve bots over HTTP (channels, health); the example bots without --config.
    Serve(serve::Args),
    /// Tokens for the server's configuration.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Talk to a bot in the terminal, or replay a script of inputs.
    Chat(Box<chat::Args>),
    /// Check a bot folder and report every problem with its file and path.
    Validate(validate::Args),
    /// Make a bot folder as it is the LIVE version (as the studio's Publish).
    Publish(publish::PublishArgs),
    /// List a bot folder's versions (saved by the studio or `publish`).
    Versions(publish::VersionsArgs),
    /// Print the JSON Schema of bot.yaml and flows/*.yaml.
    Schema,
    /// Work with WebAssembly components.
    #[command(subcommand)]
    Component(ComponentCommand),
    /// Work with the embedded store of a stopped server.
    #[command(subcommand)]
    Store(StoreCommand),
}

#[derive(Debug, Subcommand)]
enum StoreCommand {
    /// Copy a data folder's store into a new folder with another part count.
    Copy(store::CopyArgs),
    /// What waits in the store per bot, who serves it; drop a removed bot's
    /// waiting messages.
    Inbox(store_inbox::InboxArgs),
}

#[derive(Debug, Subcommand)]
enum ActionCommand {
    /// Run one action in the sandbox and print one JSON document with its outcome.
    Run(Box<action_run::Args>),
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Print the `sha256:<hex>` form of a token, as the config file stores it.
    Hash { token: String },
}

#[derive(Debug, Subcommand)]
enum ComponentCommand {
    /// Turn a wasm32-wasip1 core module into a component (preview1 reactor adapter).
    New(component_new::Args),
}

/// Parses the arguments, runs the command, prints an error once.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The chat shows turn errors in its transcript; `serve` logs a line per
    // turn (and its own start, reloads, failures); other commands warnings.
    init_tracing(match cli.command {
        Command::Chat(_) => "error",
        Command::Serve(_) => "warn,sandbot=info",
        _ => "warn",
    });
    let result = match cli.command {
        Command::Action(ActionCommand::Run(args)) => action_run::run(*args),
        Command::Component(ComponentCommand::New(args)) => component_new::run(args),
        Command::Chat(args) => chat::run(*args),
        Command::Serve(args) => serve::run(args),
        Command::Token(TokenCommand::Hash { token }) => {
            println!("{}", crate::serve::config::hash_token(&token));
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate(args) => validate::run(args),
        Command::Store(StoreCommand::Copy(args)) => store::copy(args),
        Command::Store(StoreCommand::Inbox(args)) => store_inbox::inbox(args),
        Command::Publish(args) => publish::publish(args),
        Command::Versions(args) => publish::versions(args),
        Command::Schema => {
            println!("{:#}", crate::flow::schema());
            Ok(ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sandbot: {e:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SANDBOT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // SANDBOT_LOG_FORMAT=json: one JSON object per line (tenant, bot and
    // conversation are fields of every turn's line).
    let json = std::env::var("SANDBOT_LOG_FORMAT").is_ok_and(|f| f == "json");
    // Colours only on a terminal (never into files or log collectors).
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
