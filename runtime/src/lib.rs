//! Sandbot: a self-hostable runtime for conversational bots whose custom logic
//! runs in WebAssembly sandboxes.
//!
//! - [`sandbox`]: wasmtime engine, module cache, per-invocation limits and
//!   classification of every failure.
//! - [`cli`]: the `sandbot` command line (the binary in `main.rs` only calls it).

pub mod cli;
pub mod sandbox;
