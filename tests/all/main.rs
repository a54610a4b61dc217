//! Sandbot's integration tests: one binary, one module per area; cases kept as
//! data live in `tests/cases/`.

mod common;
mod egress_redirects;
mod example_plugin;
mod flow;
mod fuzz_corpora;
mod js_isolation;
mod peer;
#[path = "../../runtime/tests/support/pg.rs"]
mod pg;
mod readme;
#[path = "../../runtime/tests/support/relay.rs"]
mod relay;
mod sandbox;
mod serve;
mod store;
mod studio;
