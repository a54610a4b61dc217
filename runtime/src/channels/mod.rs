//! The channels: each turns its wire format into an `Inbound` for the engine
//! and the engine's type/config messages into its own. Channels never touch
//! the sandbox.

pub mod delivery;
pub mod messenger;
pub mod offloading;
pub mod plain_text;
pub mod sinch;
pub mod web;
pub mod web_history;
pub mod web_session;
pub mod webhook;
