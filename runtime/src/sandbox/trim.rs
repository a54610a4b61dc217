//! The pool's idle memory, held to one budget for the whole process.
//!
//! A pool slot that ran a guest keeps the pages the guest dirtied (reset to
//! the image, up to `KEEP_RESIDENT_BYTES`) so that the next invocation in it
//! takes no page faults. That is per slot: after a burst that used many slots
//! they all stay resident. wasmtime 48 has no call to release an idle slot,
//! but it releases every slot of a module that is dropped (it purges the
//! module's memory images from the pool). So when the idle slots hold more
//! than the budget, each loaded module is given a fresh copy of itself from
//! the compiled-artifact cache; the old copies drop as the invocations using
//! them end, and their slots' pages go with them. The slots warm up again on
//! their next use (a few page faults each).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sandbot_host_api::ActionState;
use wasmtime::Engine;
use wasmtime::component::Linker;

use super::module_cache::ModuleCache;

/// How often the idle memory is read.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// Releases at most this often: the slots in use warm up again after each.
const AT_MOST_EVERY: Duration = Duration::from_secs(10);

/// What the trimmer has done, for metrics and tests.
#[derive(Debug, Default)]
pub struct TrimFigures {
    /// Times the idle slots were released.
    pub releases: AtomicU64,
    /// The idle slots' resident bytes at the last look: the pages they
    /// dirtied and keep, and the memory images' pages mapped (RssShmem).
    pub idle_bytes: AtomicU64,
}

/// The thread that watches the budget; stops when dropped.
pub struct Trimmer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Trimmer {
    pub fn start(
        engine: Engine,
        linker: Linker<ActionState>,
        modules: Arc<ModuleCache>,
        budget: u64,
        figures: Arc<TrimFigures>,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("sandbot-trim".into())
            .spawn(move || {
                lower_priority();
                let Some(pool) = engine.pooling_allocator_metrics() else {
                    return;
                };
                let mut last: Option<Instant> = None;
                while !flag.load(Ordering::Relaxed) {
                    std::thread::park_timeout(CHECK_EVERY);
                    let idle = pool.unused_memory_bytes_resident() as u64 + shared_resident();
                    figures.idle_bytes.store(idle, Ordering::Relaxed);
                    if idle <= budget || last.is_some_and(|l| l.elapsed() < AT_MOST_EVERY) {
                        continue;
                    }
                    last = Some(Instant::now());
                    let replaced = modules.recycle(&engine, &linker);
                    if replaced > 0 {
                        figures.releases.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(
                            idle_mib = idle >> 20,
                            budget_mib = budget >> 20,
                            modules = replaced,
                            "releasing the sandbox pool's idle memory (over its budget)"
                        );
                    }
                }
            })
            .expect("spawn the trimmer thread");
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

/// What the process maps of shared memory (`RssShmem`): the memory images'
/// pages, counted once per slot that maps them (as RSS counts them). The
/// pool's own figure counts only the pages a slot dirtied; a slot whose guest
/// dirtied little still maps a few MiB of its image. Zero where unknown.
fn shared_resident() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssShmem:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib << 10)
}

/// Reloading a module is tens of milliseconds of CPU: at the lowest
/// priority (nice 19) it takes no time from turns on a busy machine.
fn lower_priority() {
    // SAFETY: plain system calls on this thread's own id; a failure only
    // leaves the priority as it was.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 19);
    }
}

impl Drop for Trimmer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}
