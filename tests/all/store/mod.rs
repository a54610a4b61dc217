//! The store: one conformance suite for both backends, the outcomes kept
//! for retries, PostgreSQL connections.

pub mod conformance;
pub mod outcomes;
pub mod postgres_connections;
