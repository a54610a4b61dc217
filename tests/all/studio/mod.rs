//! The studio: its REST API and replays.

pub mod api;
pub mod replay;
