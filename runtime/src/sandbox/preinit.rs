//! Pre-initialization with wasmtime-wizer: runs a guest's `wizer-initialize`
//! export once, at build time, and snapshots the resulting memory into a new
//! module, so every invocation starts from the ready state (the JS runner's
//! Boa context with the prelude and lodash loaded).
//!
//! During initialization the guest has WASI with nothing in it (no files, no
//! environment) and every `sandbot:action` import traps: nothing from a
//! conversation can leak into the snapshot. Randomness is seeded and the clocks
//! stand still, so the snapshot is the same bytes on every build (whatever the
//! guest reads of them is frozen; the guest must not keep RNG state or times
//! from initialization — the JS runner's tests check `Math.random`/`Date.now`).

use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use wasmtime::{Engine, Linker, Module, Store};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock};
use wasmtime_wizer::Wizer;

/// Returns `core` (a wasm32-wasip1 module exporting `wizer-initialize`) with its
/// initialized state snapshotted.
pub async fn preinitialize(core: &[u8]) -> anyhow::Result<Vec<u8>> {
    let engine = Engine::default();
    let wasi = WasiCtx::builder()
        .secure_random(StdRng::seed_from_u64(0))
        .insecure_random(StdRng::seed_from_u64(1))
        .insecure_random_seed(2)
        .wall_clock(FrozenClock)
        .monotonic_clock(FrozenClock)
        .build_p1();
    let mut store = Store::new(&engine, wasi);
    let snapshot = Wizer::new()
        .run(
            &mut store,
            core,
            async |store: &mut Store<WasiP1Ctx>, module: &Module| {
                let mut linker = Linker::new(store.engine());
                wasmtime_wasi::p1::add_to_linker_async(&mut linker, |cx| cx)?;
                linker.define_unknown_imports_as_traps(module)?;
                linker.instantiate_async(store, module).await
            },
        )
        .await
        .map_err(anyhow::Error::from)?;
    Ok(snapshot)
}

/// A clock that reads the same instant, for reproducible snapshots.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        0
    }
}
