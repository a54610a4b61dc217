//! Per-invocation meters kept in the store: host calls, bytes crossing the
//! boundary, HTTP calls, memory. A meter that trips records why, so the runtime
//! classifies the trap that follows with the right kind.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use wasmtime::ResourceLimiter;

use crate::{Failure, FailureKind};

/// Limits enforced inside host calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostLimits {
    /// `http.fetch` calls per invocation; one more stops the invocation.
    pub max_http_calls: u32,
    /// Bytes crossing the boundary in host calls (paths, JSON, messages, logs,
    /// request and response bodies), both directions.
    pub max_boundary_bytes: u64,
    /// Log lines kept per invocation; later ones are counted, not kept.
    pub max_log_lines: usize,
}

impl Default for HostLimits {
    fn default() -> Self {
        Self {
            max_http_calls: 20,
            max_boundary_bytes: 16 << 20,
            max_log_lines: 200,
        }
    }
}

/// Counters of one invocation.
#[derive(Debug, Default)]
pub struct Meter {
    pub host_calls: u64,
    pub http_calls: u32,
    pub boundary_bytes: u64,
    /// The first egress denial the guest saw (it may have handled it).
    pub denied: Option<String>,
    /// A host-side limit that stopped the invocation.
    pub abort: Option<Failure>,
    pub dropped_logs: u64,
}

impl Meter {
    /// Counts one host call moving `bytes` across the boundary; traps past the cap.
    pub fn enter(&mut self, limits: &HostLimits, bytes: usize) -> wasmtime::Result<()> {
        self.host_calls += 1;
        self.cross(limits, bytes)
    }

    /// Counts bytes moving across the boundary; traps past the cap.
    pub fn cross(&mut self, limits: &HostLimits, bytes: usize) -> wasmtime::Result<()> {
        self.boundary_bytes += bytes as u64;
        if self.boundary_bytes > limits.max_boundary_bytes {
            return Err(self.abort(
                FailureKind::OutputTooLarge,
                format!(
                    "more than {} bytes crossed the sandbox boundary in host calls",
                    limits.max_boundary_bytes
                ),
            ));
        }
        Ok(())
    }

    /// Records why the invocation stops and returns the trap that stops it.
    pub fn abort(&mut self, kind: FailureKind, message: String) -> wasmtime::Error {
        let error = wasmtime::Error::msg(message.clone());
        self.abort.get_or_insert(Failure::new(kind, message));
        error
    }
}

/// The memory a tenant's instances may hold together (`maxMemoryMib`),
/// shared by its invocations: each instance's growth is taken from it and
/// given back when the instance ends.
#[derive(Debug)]
pub struct MemoryBudget {
    cap: u64,
    held: AtomicU64,
}

impl MemoryBudget {
    pub fn new(cap: u64) -> Arc<Self> {
        Arc::new(Self {
            cap,
            held: AtomicU64::new(0),
        })
    }

    pub fn cap(&self) -> u64 {
        self.cap
    }

    /// What the tenant's instances hold now.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::SeqCst)
    }

    /// Takes `bytes` if they fit under the cap.
    fn take(&self, bytes: u64) -> bool {
        self.held
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |held| {
                held.checked_add(bytes).filter(|n| *n <= self.cap)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: u64) {
        self.held.fetch_sub(bytes, Ordering::SeqCst);
    }
}

/// The memory limiter: a total across the instance's memories, its peak, and
/// whether the limit was hit (so the resulting trap reads *memory limit*).
#[derive(Debug)]
pub struct MemoryMeter {
    pub limit: u64,
    pub current: u64,
    pub peak: u64,
    pub hit: bool,
    /// What the refused growth would have brought the total to.
    pub wanted: u64,
    /// The refused growth was the instance's initial memory: it cannot start.
    pub hit_at_start: bool,
    pub max_table_elements: usize,
    /// The tenant's budget this instance's memory is taken from, if any.
    pub budget: Option<Arc<MemoryBudget>>,
    /// The growth was refused by the tenant's budget, not the instance's limit.
    pub budget_hit: bool,
}

impl Drop for MemoryMeter {
    fn drop(&mut self) {
        if let Some(b) = &self.budget {
            b.give_back(self.current);
        }
    }
}

impl MemoryMeter {
    pub fn new(limit: u64) -> Self {
        Self {
            limit,
            current: 0,
            peak: 0,
            hit: false,
            wanted: 0,
            hit_at_start: false,
            max_table_elements: 100_000,
            budget: None,
            budget_hit: false,
        }
    }
}

impl ResourceLimiter for MemoryMeter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let grow = (desired - current) as u64;
        if self.current + grow > self.limit {
            self.hit = true;
            self.wanted = self.current + grow;
            self.hit_at_start = current == 0;
            return Ok(false);
        }
        if let Some(b) = &self.budget
            && !b.take(grow)
        {
            self.hit = true;
            self.budget_hit = true;
            self.wanted = b.held() + grow;
            self.hit_at_start = current == 0;
            return Ok(false);
        }
        self.current += grow;
        self.peak = self.peak.max(self.current);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.max_table_elements)
    }
}
