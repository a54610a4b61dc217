//! Sandbot: a self-hostable runtime for conversational bots whose custom logic
//! runs in WebAssembly sandboxes.
//!
//! - [`sandbox`]: wasmtime engine, module cache, per-invocation limits and
//!   classification of every failure.
//! - [`flow`]: bots on disk and the turn engine (never imports wasmtime).
//! - [`store`]: sessions, transcripts, postbacks; the embedded default store.
//! - [`runner`]: the sandbox behind the flow engine's `ActionRunner`.
//! - [`cli`]: the `sandbot` command line (the binary in `main.rs` only calls it).

pub mod api;
pub mod channels;
pub mod cli;
pub mod flow;
#[doc(hidden)]
pub mod fuzz;
pub mod runner;
pub mod sandbox;
pub mod serve;
pub mod store;
pub mod studio;

/// This build: the crate's version and, when built from a git checkout, its
/// commit (`0.1.0 (1a2b3c4d5e6f)`). Shown by `sandbot --version` and kept
/// in a shared store's list of nodes.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), env!("SANDBOT_COMMIT_SUFFIX"));
