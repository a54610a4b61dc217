//! The one `wasmtime::Engine` of the process and its epoch ticker.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// Increments the engine's epoch every tick until dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub fn start(engine: Engine, tick: std::time::Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("sandbot-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                }
            })
            .expect("spawn the epoch ticker thread");
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
