//! Sandbot's integration tests: one binary, one module per area; cases kept as
//! data live in `tests/cases/`.

mod common;
mod egress_redirects;
mod example_plugin;
mod flow_conversations;
mod flow_engine;
mod flow_store;
mod flow_support;
mod flow_validate;
mod fuzz_corpora;
mod js_isolation;
mod peer;
#[path = "../../runtime/tests/support/pg.rs"]
mod pg;
mod readme;
mod sandbox_budget;
mod sandbox_cache;
mod sandbox_cases;
mod sandbox_concurrency;
mod sandbox_idle_memory;
mod serve_api;
mod serve_delivery;
mod serve_events;
mod serve_front;
mod serve_inbox;
mod serve_nodes;
mod serve_offloading;
mod serve_sinch;
mod serve_web;
mod serve_web_security;
mod serve_webhook;
mod store_conformance;
mod store_postgres_connections;
mod studio_api;
mod studio_replay;
