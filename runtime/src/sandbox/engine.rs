//! The one `wasmtime::Engine` of the process and its epoch ticker.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;

use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::SandboxConfig;

use super::pool_fit::{CORE_INSTANCES_PER_COMPONENT, MEMORIES_PER_COMPONENT, TABLES_PER_COMPONENT};

const TABLE_ELEMENTS: usize = 100_000;
/// Bytes of a memory slot kept resident between invocations (the JS runner's
/// snapshot is about 10 MB).
const KEEP_RESIDENT_BYTES: usize = 32 << 20;

/// Builds the engine: pooling allocator sized for `max_instances`, copy-on-write
/// memory images, fuel, epoch interruption and bounded stacks.
pub fn build_engine(cfg: &SandboxConfig) -> wasmtime::Result<Engine> {
    let n = cfg.max_instances;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(n)
        .total_core_instances(n * CORE_INSTANCES_PER_COMPONENT)
        .total_memories(n * MEMORIES_PER_COMPONENT)
        .total_tables(n * TABLES_PER_COMPONENT)
        .total_stacks(n)
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(MEMORIES_PER_COMPONENT)
        .max_tables_per_component(TABLES_PER_COMPONENT)
        .max_memory_size(cfg.max_memory_bytes as usize)
        .table_elements(TABLE_ELEMENTS)
        // Reset only the pages an invocation dirtied (PAGEMAP_SCAN, Linux 6.7+),
        // by copying them back from the image, and keep them resident: the next
        // invocation in the slot takes no page faults. Falls back to madvise.
        .pagemap_scan(Enabled::Auto)
        .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
        .table_keep_resident(64 << 10);

    let mut config = Config::new();
    config
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .memory_init_cow(true)
        .consume_fuel(true)
        .epoch_interruption(true)
        .max_wasm_stack(cfg.max_wasm_stack)
        // Host frames (WASI, HTTP, JSON) run on the same fiber above the wasm stack.
        .async_stack_size(cfg.max_wasm_stack + (512 << 10))
        .wasm_backtrace_max_frames(None);
    if std::env::var_os("SANDBOT_PERFMAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    Engine::new(&config)
}

/// Increments the engine's epoch every tick while a guest runs, until
/// dropped. With no guest running it sleeps (an idle server would otherwise
/// wake a thousand times a second for nothing: ~2.4 % of a core); the
/// first guest to start wakes it, and that guest's epoch deadline, one
/// tick on, comes after a tick as it would have.
pub struct EpochTicker {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    /// Guests running now (see [`EpochTicker::running`]).
    running: AtomicUsize,
    /// Ticks so far (for tests).
    ticks: AtomicU64,
}

/// A guest running: the ticker ticks while one of these lives.
pub struct Running<'a> {
    shared: &'a Shared,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.shared.running.fetch_sub(1, Ordering::AcqRel);
    }
}

impl EpochTicker {
    pub fn start(engine: Engine, tick: std::time::Duration) -> Self {
        let shared = Arc::new(Shared::default());
        let state = shared.clone();
        let thread = std::thread::Builder::new()
            .name("sandbot-epoch".into())
            .spawn(move || {
                while !state.stop.load(Ordering::Acquire) {
                    if state.running.load(Ordering::Acquire) == 0 {
                        // A `running()` since the check left a token: no sleep.
                        std::thread::park();
                        continue;
                    }
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                    state.ticks.fetch_add(1, Ordering::Relaxed);
                }
            })
            .expect("spawn the epoch ticker thread");
        Self {
            shared,
            thread: Some(thread),
        }
    }

    /// Marks a guest as running until the result is dropped, waking the
    /// ticker if it slept.
    pub fn running(&self) -> Running<'_> {
        if self.shared.running.fetch_add(1, Ordering::AcqRel) == 0
            && let Some(t) = &self.thread
        {
            t.thread().unpark();
        }
        Running {
            shared: &self.shared,
        }
    }

    /// Ticks so far.
    #[cfg(test)]
    pub fn ticks(&self) -> u64 {
        self.shared.ticks.load(Ordering::Relaxed)
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Waits up to 5 s for `ok`.
    fn eventually(ok: impl Fn() -> bool) -> bool {
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        ok()
    }

    #[test]
    fn the_ticker_ticks_while_a_guest_runs_and_sleeps_otherwise() {
        let ticker = EpochTicker::start(Engine::default(), Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(ticker.ticks(), 0, "no guest yet: no tick");

        let (one, two) = (ticker.running(), ticker.running());
        assert!(eventually(|| ticker.ticks() >= 5), "ticks while guests run");
        drop(one);
        let before = ticker.ticks();
        assert!(
            eventually(|| ticker.ticks() >= before + 5),
            "still ticks while one runs"
        );
        drop(two);
        // The tick in progress when the last guest ended may still come.
        let last = std::cell::Cell::new(ticker.ticks());
        assert!(eventually(|| {
            std::thread::sleep(Duration::from_millis(20));
            last.replace(ticker.ticks()) == last.get()
        }));
        let after = last.get();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(ticker.ticks(), after, "asleep again once no guest runs");

        let _again = ticker.running();
        assert!(
            eventually(|| ticker.ticks() >= after + 5),
            "woken by the next guest"
        );
    }
}
