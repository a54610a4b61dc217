//! Per-tenant limits, and the process-wide sandbox configuration. The defaults
//! here are what an operator gets without configuring anything (README: Limits).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sandbot_host_api::egress::{Egress, EgressPolicy};
use sandbot_host_api::{HostLimits, MemoryBudget};

/// What one tenant's invocations may use.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Fuel per invocation (about one unit per WebAssembly instruction).
    pub fuel: u64,
    /// Linear memory per instance, all memories together.
    pub memory_bytes: u64,
    /// Wall-clock deadline around the whole invocation, host calls included.
    pub timeout: Duration,
    /// The value `run` returns, as JSON text.
    pub max_output_bytes: usize,
    /// Call cap, boundary-bytes cap, log lines.
    pub host: HostLimits,
    /// The egress policy with its client (shared by the tenant's invocations).
    pub egress: Arc<Egress>,
    /// Whose share of the CPU these invocations run in (the tenant's id):
    /// a freed CPU slot goes to the next tenant in turn.
    pub cpu_share: Arc<str>,
    /// The memory the tenant's instances may hold together (`maxMemoryMib`),
    /// shared by its invocations; none: only the per-instance limit.
    pub memory_budget: Option<Arc<MemoryBudget>>,
}

/// Default fuel: about a second of straight-line WebAssembly.
pub const DEFAULT_FUEL: u64 = 1_000_000_000;
/// Default memory per instance.
pub const DEFAULT_MEMORY_BYTES: u64 = 128 << 20;
/// Default wall-clock deadline.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default output cap.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 1 << 20;

impl Limits {
    /// Limits with the defaults and `policy` for egress.
    pub fn with_egress(policy: EgressPolicy) -> Result<Self, reqwest::Error> {
        Ok(Self {
            fuel: DEFAULT_FUEL,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            timeout: DEFAULT_TIMEOUT,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
            host: HostLimits::default(),
            egress: Arc::new(Egress::new(policy)?),
            cpu_share: "".into(),
            memory_budget: None,
        })
    }

    /// The defaults with no egress at all.
    pub fn deny_all() -> Self {
        Self::with_egress(EgressPolicy::default()).expect("a client without TLS roots to load")
    }
}

/// Process-wide settings of the one engine.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Instances that may exist at once (pool size and concurrency limit).
    pub max_instances: u32,
    /// The largest memory any tenant may be given (size of a pool slot).
    pub max_memory_bytes: u64,
    /// WebAssembly stack per invocation; deeper recursion is `stack_overflow`.
    pub max_wasm_stack: usize,
    /// Where compiled components are cached; `None` disables the disk cache.
    pub cache_dir: Option<PathBuf>,
    /// Epoch tick: the granularity of deadlines and of yielding to other tasks.
    pub epoch_tick: Duration,
    /// Guest slices running at once; when all are busy, the tenant that used
    /// least goes next (see `cpu_share`). Default: one less than the cores
    /// (at least one), so that guests never hold every core against the
    /// server's own work; `SANDBOT_CPU_SLOTS` sets it.
    pub cpu_slots: usize,
    /// What the pool's idle slots may keep resident, all tenants together;
    /// past it they are released (see `trim`). Needs `cache_dir`.
    pub idle_memory_budget: u64,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            max_instances: 1000,
            max_memory_bytes: 512 << 20,
            max_wasm_stack: 1 << 20,
            cache_dir: default_cache_dir(),
            epoch_tick: Duration::from_millis(1),
            cpu_slots: default_cpu_slots(),
            idle_memory_budget: DEFAULT_IDLE_MEMORY_BUDGET,
        }
    }
}

/// What idle pool slots keep resident by default: about 24 warm JavaScript
/// slots (each keeps ~1.3 MiB of its own besides the shared image).
pub const DEFAULT_IDLE_MEMORY_BUDGET: u64 = 32 << 20;

/// `$SANDBOT_CACHE_DIR`, else `$XDG_CACHE_HOME/sandbot`, else `~/.cache/sandbot`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SANDBOT_CACHE_DIR") {
        return Some(dir.into());
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("sandbot"))
}

/// `bytes` in MiB, for messages ("18.5 MiB").
pub(crate) fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

/// `SANDBOT_CPU_SLOTS`, else one less than the cores (at least one).
pub fn default_cpu_slots() -> usize {
    std::env::var("SANDBOT_CPU_SLOTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            cores.saturating_sub(1).max(1)
        })
}
