//! The flow engine: conversations, blocks, validation, the store under flows.

pub mod conversations;
pub mod engine;
pub mod store;
pub mod support;
pub mod validate;
