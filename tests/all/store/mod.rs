//! The store: one conformance suite for both backends, PostgreSQL connections.

pub mod conformance;
pub mod postgres_connections;
