//! The WebAssembly sandbox: one engine, cached components, a fresh store per
//! invocation with the tenant's limits, and every failure classified.
//!
//! ```no_run
//! # async fn demo(bytes: Vec<u8>) -> anyhow::Result<()> {
//! use sandbot::sandbox::{Invocation, Limits, Sandbox, SandboxConfig};
//!
//! let sandbox = Sandbox::new(SandboxConfig::default())?;
//! let module = sandbox.load(&bytes)?;
//! let outcome = sandbox
//!     .invoke(&module, Invocation::new(serde_json::json!({"iban": "BE71 0961 2345 6769"})), &Limits::deny_all())
//!     .await;
//! println!("{}", serde_json::to_string(&outcome)?);
//! # Ok(()) }
//! ```

mod builtin;
mod classify;
mod componentize;
mod engine;
mod fair;
mod invoke;
mod limits;
mod memory_image;
mod module_cache;
mod outcome;
mod pool_fit;
mod preinit;
mod trim;

use std::sync::Arc;

use sandbot_host_api::ActionState;
use tokio::sync::Semaphore;
use wasmtime::Engine;
use wasmtime::component::Linker;

pub use builtin::{API_ACTION, JS_RUNNER, check_builtin_limits, initial_memory_bytes};
pub use componentize::{componentize, is_component};
pub use invoke::Invocation;
pub use limits::{
    DEFAULT_FUEL, DEFAULT_MAX_OUTPUT_BYTES, DEFAULT_MEMORY_BYTES, DEFAULT_TIMEOUT, Limits,
    SandboxConfig, default_cache_dir,
};
pub use module_cache::ActionModule;
pub use outcome::{Effects, Failure, FailureKind, FetchRecord, LogLine, Outcome, Stats, Status};
pub use pool_fit::{CORE_INSTANCES_PER_COMPONENT, MEMORIES_PER_COMPONENT, TABLES_PER_COMPONENT};
pub use preinit::preinitialize;

use builtin::Builtins;
use engine::EpochTicker;
use module_cache::ModuleCache;
use trim::{TrimFigures, Trimmer};

/// The process's sandbox. Cheap to share behind an `Arc`.
pub struct Sandbox {
    engine: Engine,
    linker: Linker<ActionState>,
    modules: Arc<ModuleCache>,
    /// One permit per pool slot: invocations wait here, never fail in the pool.
    slots: Arc<Semaphore>,
    /// CPU slots shared fairly between tenants (see [`fair`]).
    cpu: Arc<fair::FairCpu>,
    config: SandboxConfig,
    builtins: Builtins,
    trim: Arc<TrimFigures>,
    ticker: EpochTicker,
    _trimmer: Trimmer,
}

impl Sandbox {
    pub fn new(config: SandboxConfig) -> anyhow::Result<Self> {
        let engine = engine::build_engine(&config).map_err(anyhow::Error::from)?;
        let mut linker = Linker::new(&engine);
        sandbot_host_api::add_to_linker(&mut linker).map_err(anyhow::Error::from)?;
        let modules = Arc::new(ModuleCache::new(&engine, config.cache_dir.clone()));
        let ticker = EpochTicker::start(engine.clone(), config.epoch_tick);
        let trim = Arc::new(TrimFigures::default());
        let trimmer = Trimmer::start(
            engine.clone(),
            linker.clone(),
            modules.clone(),
            config.idle_memory_budget,
            trim.clone(),
        );
        Ok(Self {
            slots: Arc::new(Semaphore::new(config.max_instances as usize)),
            cpu: {
                let engine = engine.clone();
                let preempt: fair::Preempt = Box::new(move || engine.increment_epoch());
                fair::FairCpu::with_preempt(config.cpu_slots, Some(preempt))
            },
            engine,
            linker,
            modules,
            config,
            builtins: Builtins::default(),
            trim,
            ticker,
            _trimmer: trimmer,
        })
    }

    /// Loads an action module (a component, or a wasm32-wasip1 core module that
    /// is turned into one), compiling it at most once per process and once per
    /// cache folder.
    pub fn load(&self, bytes: &[u8]) -> anyhow::Result<Arc<ActionModule>> {
        self.modules.load(&self.engine, &self.linker, bytes)
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Bytes the pool's idle slots keep resident (read each second), and
    /// how many times they were released for being over the budget.
    pub fn idle_memory(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.trim.idle_bytes.load(Relaxed),
            self.trim.releases.load(Relaxed),
        )
    }
}
