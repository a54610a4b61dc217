//! The Wasm sandbox: budgets, caches, cases kept as data, concurrency, idle memory.

pub mod budget;
pub mod cache;
pub mod cases;
pub mod concurrency;
pub mod idle_memory;
