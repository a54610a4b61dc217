//! CPU shares between tenants. A guest runs in slices: the engine's epoch
//! ticker makes it yield every tick, so each poll of an invocation runs at
//! most about one tick of guest code. Every poll needs one of a few CPU
//! slots; when all are taken, waiting invocations are queued per tenant and
//! a freed slot goes to the waiting tenant that has used the least slot time
//! (start-time fair queueing, like Linux's CFS: a tenant that was idle starts
//! from the least figure among the tenants with work, as a woken task starts
//! from CFS's `min_vruntime` — not with a credit, and a newcomer is not owed
//! what the others used before it came). A
//! tenant with a thousand spinning actions thus gets no more CPU than a
//! tenant with one action that wants it, whatever it queues; the one action
//! waits at most for the slices already running — and not for their full
//! tick: a tenant that starts waiting while others wait and is owed the next
//! slot moves the engine's epoch on, so a running slice that has had half a
//! tick ends at once instead of at the end of its tick.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

thread_local! {
    /// When the poll running on this thread got its slot.
    static SLICE_STARTED: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
}

/// How long the guest running on this thread has had its slot in this poll
/// (`None` outside a [`Sliced`] poll). The epoch callback lets a guest that
/// only just got its slot go on to the next tick instead of yielding at once:
/// a guest that waited for the slot longer than a tick would otherwise find
/// its epoch deadline already passed and give the slot back with no work
/// done, and polls of waiting guests would burn the CPU the others need.
pub fn slice_elapsed() -> Option<std::time::Duration> {
    SLICE_STARTED.with(|s| s.get().map(|t| t.elapsed()))
}

/// Cuts the slices running now short (the engine's epoch moves on, so each
/// running guest reaches its deadline and, past its minimum slice, yields).
pub type Preempt = Box<dyn Fn() + Send + Sync>;

/// The process's CPU slots and the tenants waiting for one.
pub struct FairCpu {
    state: Mutex<State>,
    /// Called when a tenant starts waiting that is owed the next slot, so it
    /// waits for the running slices' minimum, not their full tick.
    preempt: Option<Preempt>,
}

struct State {
    free: usize,
    /// Tenants with waiting polls, each with its waiters in order.
    turns: VecDeque<(Arc<str>, VecDeque<Arc<Waiter>>)>,
    /// Slot time each tenant has used, in nanoseconds (its virtual time).
    used: HashMap<Arc<str>, u64>,
    /// Slots each tenant holds now.
    running: HashMap<Arc<str>, usize>,
    /// The least figure among the tenants holding or waiting for a slot, as
    /// last seen; it never goes back (CFS's `min_vruntime`).
    clock: u64,
}

impl State {
    /// Counts `ns` of slot time against `tenant`.
    fn charge(&mut self, tenant: &Arc<str>, ns: u64) {
        *self.used.entry(tenant.clone()).or_default() += ns;
    }

    /// Moves the clock on to the least figure among the tenants holding or
    /// waiting for a slot.
    fn advance(&mut self) {
        let least = self
            .turns
            .iter()
            .map(|(t, _)| t)
            .chain(self.running.keys())
            .map(|t| self.used.get(t).copied().unwrap_or(0))
            .min();
        if let Some(least) = least {
            self.clock = self.clock.max(least);
        }
    }

    /// A tenant that starts holding or waiting for a slot after none is not
    /// owed the time it was idle, nor, new, the time the others used before
    /// it came: it starts from the clock if that is more than its figure.
    /// (Lifted to the least-served waiting tenant only, a newcomer arriving
    /// while a tenant that had run alone for hours held the slot would have
    /// had the slot to itself until it had used as much: that tenant's
    /// polls waited seconds behind its spinning actions.)
    ///
    /// Called only for a tenant with no waiter queued (the free path needs
    /// an empty queue; the waiting path, no queue of the tenant's own).
    fn wake(&mut self, tenant: &Arc<str>) {
        if self.running.contains_key(tenant) {
            return;
        }
        self.advance();
        let used = self.used.entry(tenant.clone()).or_default();
        *used = (*used).max(self.clock);
    }

    /// `tenant` holds one more slot.
    fn hold(&mut self, tenant: &Arc<str>) {
        *self.running.entry(tenant.clone()).or_default() += 1;
    }

    /// `tenant` gives a slot back.
    fn unhold(&mut self, tenant: &Arc<str>) {
        if let Some(n) = self.running.get_mut(tenant) {
            *n -= 1;
            if *n == 0 {
                self.running.remove(tenant);
            }
        }
    }

    /// Whether `tenant` (waiting) is owed the next slot before other
    /// waiting tenants: it has used no more than any of them. Not when it
    /// waits alone (most likely behind its own slices).
    fn is_owed(&self, tenant: &Arc<str>) -> bool {
        let mine = self.used.get(tenant).copied().unwrap_or(0);
        let mut others = self.turns.iter().filter(|(t, _)| t != tenant).peekable();
        others.peek().is_some()
            && others.all(|(t, _)| mine <= self.used.get(t).copied().unwrap_or(0))
    }

    /// The waiting tenant that has used the least (the first of equals).
    fn next_turn(&self) -> Option<usize> {
        (0..self.turns.len()).min_by_key(|&i| self.used.get(&self.turns[i].0).copied().unwrap_or(0))
    }
}

const WAITING: u8 = 0;
const GRANTED: u8 = 1;
const GONE: u8 = 2;

struct Waiter {
    status: AtomicU8,
    waker: Mutex<Waker>,
}

impl FairCpu {
    #[cfg(test)]
    pub fn new(slots: usize) -> Arc<Self> {
        Self::with_preempt(slots, None)
    }

    pub fn with_preempt(slots: usize, preempt: Option<Preempt>) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                free: slots.max(1),
                turns: VecDeque::new(),
                used: HashMap::new(),
                running: HashMap::new(),
                clock: 0,
            }),
            preempt,
        })
    }

    /// Runs `inner` one slice per poll, each with a slot, `tenant`'s turn
    /// among the tenants waiting.
    pub fn run<F: Future>(self: &Arc<Self>, tenant: Arc<str>, inner: F) -> Sliced<F> {
        Sliced {
            cpu: self.clone(),
            tenant,
            waiter: None,
            inner: Box::pin(inner),
        }
    }

    /// A slot is free after `tenant` used it for `ns`: to the waiting tenant
    /// that used the least, or back to the pool.
    fn release(&self, tenant: &Arc<str>, ns: u64) {
        let mut s = self.state.lock().expect("not poisoned");
        s.charge(tenant, ns);
        s.advance();
        s.unhold(tenant);
        while let Some(i) = s.next_turn() {
            let (tenant, mut waiters) = s.turns.remove(i).expect("an index in range");
            let mut granted = None;
            while let Some(w) = waiters.pop_front() {
                if w.status
                    .compare_exchange(WAITING, GRANTED, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    granted = Some(w);
                    break;
                }
            }
            if granted.is_some() {
                s.hold(&tenant);
            }
            if !waiters.is_empty() {
                s.turns.push_back((tenant, waiters));
            }
            if let Some(w) = granted {
                drop(s);
                w.waker.lock().expect("not poisoned").wake_by_ref();
                return;
            }
        }
        s.free += 1;
    }
}

/// An invocation that runs a slice per poll (see [`FairCpu`]).
pub struct Sliced<F: Future> {
    cpu: Arc<FairCpu>,
    tenant: Arc<str>,
    waiter: Option<Arc<Waiter>>,
    inner: Pin<Box<F>>,
}

impl<F: Future> Sliced<F> {
    /// Whether this poll may run: a free slot when nobody waits, or the slot
    /// a release handed over; otherwise it joins its tenant's queue.
    fn acquire(&mut self, cx: &mut Context<'_>) -> bool {
        if let Some(w) = &self.waiter {
            if w.status.load(Ordering::Acquire) == GRANTED {
                self.waiter = None;
                return true;
            }
            w.waker.lock().expect("not poisoned").clone_from(cx.waker());
            // Granted between the check and the new waker: run now.
            if w.status.load(Ordering::Acquire) == GRANTED {
                self.waiter = None;
                return true;
            }
            return false;
        }
        let mut s = self.cpu.state.lock().expect("not poisoned");
        if s.free > 0 && s.turns.is_empty() {
            s.wake(&self.tenant);
            s.hold(&self.tenant);
            s.free -= 1;
            return true;
        }
        let w = Arc::new(Waiter {
            status: AtomicU8::new(WAITING),
            waker: Mutex::new(cx.waker().clone()),
        });
        match s.turns.iter_mut().find(|(t, _)| *t == self.tenant) {
            Some((_, waiters)) => waiters.push_back(w.clone()),
            None => {
                s.wake(&self.tenant);
                s.turns
                    .push_back((self.tenant.clone(), VecDeque::from([w.clone()])));
                if s.is_owed(&self.tenant) {
                    drop(s);
                    if let Some(preempt) = &self.cpu.preempt {
                        preempt();
                    }
                }
            }
        }
        self.waiter = Some(w);
        false
    }
}

impl<F: Future> Future for Sliced<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        if !this.acquire(cx) {
            return Poll::Pending;
        }
        let started = Instant::now();
        let outer = SLICE_STARTED.with(|s| s.replace(Some(started)));
        let polled = this.inner.as_mut().poll(cx);
        SLICE_STARTED.with(|s| s.set(outer));
        let ns = started.elapsed().as_nanos() as u64;
        this.cpu.release(&this.tenant, ns);
        polled
    }
}

impl<F: Future> Drop for Sliced<F> {
    fn drop(&mut self) {
        // Dropped while queued: leave the queue; dropped after a slot was
        // handed over but before using it: pass the slot on.
        if let Some(w) = self.waiter.take()
            && w.status.swap(GONE, Ordering::AcqRel) == GRANTED
        {
            self.cpu.release(&self.tenant, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_poll_knows_how_long_it_has_had_its_slot() {
        let cpu = FairCpu::new(1);
        assert!(slice_elapsed().is_none(), "outside a poll");
        let inside = cpu.run("t".into(), async { slice_elapsed() }).await;
        assert!(inside.is_some_and(|e| e < std::time::Duration::from_secs(1)));
        assert!(slice_elapsed().is_none(), "cleared after the poll");
    }

    type Task = Sliced<std::future::Pending<()>>;

    fn task(cpu: &Arc<FairCpu>, tenant: &str) -> Task {
        cpu.run(tenant.into(), std::future::pending())
    }

    fn try_run(t: &mut Task) -> bool {
        t.acquire(&mut Context::from_waker(Waker::noop()))
    }

    fn free(cpu: &FairCpu) -> usize {
        cpu.state.lock().unwrap().free
    }

    /// `tenant`'s poll ends after `ms` of slot time.
    fn done(cpu: &FairCpu, tenant: &str, ms: u64) {
        cpu.release(&tenant.into(), ms * 1_000_000);
    }

    /// `tenant`'s slot time so far, in ms.
    fn used(cpu: &FairCpu, tenant: &str) -> u64 {
        cpu.state
            .lock()
            .unwrap()
            .used
            .get(tenant)
            .copied()
            .unwrap_or(0)
            / 1_000_000
    }

    #[test]
    fn a_freed_slot_goes_to_the_tenant_that_used_least_not_to_whoever_queued_most() {
        let cpu = FairCpu::new(1);
        let mut running = task(&cpu, "a");
        assert!(try_run(&mut running), "a free slot and nobody waiting");
        // Tenant a queues three more, then b one.
        let mut a: Vec<Task> = (0..3).map(|_| task(&cpu, "a")).collect();
        let mut b = task(&cpu, "b");
        for t in a.iter_mut().chain([&mut b]) {
            assert!(!try_run(t), "no slot: it waits");
        }
        // a used 2 ms: b, which used nothing, goes first although it queued last.
        done(&cpu, "a", 2);
        assert!(!try_run(&mut a[0]));
        assert!(try_run(&mut b));
        // Then a's, in their order.
        done(&cpu, "b", 2);
        assert!(try_run(&mut a[0]));
        done(&cpu, "a", 2);
        assert!(try_run(&mut a[1]));
        done(&cpu, "a", 2);
        assert!(try_run(&mut a[2]));
        done(&cpu, "a", 2);
        assert_eq!(free(&cpu), 1, "the slot is back once nobody waits");
    }

    #[test]
    fn a_tenant_owed_the_next_slot_cuts_the_running_slices_short() {
        use std::sync::atomic::AtomicUsize;
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let preempt: Preempt = Box::new(move || {
            counted.fetch_add(1, Ordering::Relaxed);
        });
        let cpu = FairCpu::with_preempt(1, Some(preempt));
        let preempted = || calls.load(Ordering::Relaxed);
        let mut running = task(&cpu, "a");
        assert!(try_run(&mut running));
        // a waits behind its own slice: nothing is cut short.
        let mut a1 = task(&cpu, "a");
        assert!(!try_run(&mut a1));
        assert_eq!(preempted(), 0);
        // b, owed the next slot, starts waiting: the running slice is cut.
        let mut b1 = task(&cpu, "b");
        assert!(!try_run(&mut b1));
        assert_eq!(preempted(), 1);
        // More of a's, or b's, polls waiting do not cut again.
        let (mut a2, mut b2) = (task(&cpu, "a"), task(&cpu, "b"));
        assert!(!try_run(&mut a2) && !try_run(&mut b2));
        assert_eq!(preempted(), 1);
        // Once a's slice ends, b goes first.
        done(&cpu, "a", 1);
        assert!(try_run(&mut b1));
        // c has used more than the others when it comes back: not owed.
        cpu.state.lock().unwrap().charge(&"c".into(), 1_000_000_000);
        let mut c1 = task(&cpu, "c");
        assert!(!try_run(&mut c1));
        assert_eq!(preempted(), 1);
    }

    #[test]
    fn an_idle_tenant_is_not_owed_its_idle_time() {
        let cpu = FairCpu::new(1);
        // b used 10 ms long ago; a has used 100 ms since, alone.
        cpu.state.lock().unwrap().charge(&"b".into(), 10_000_000);
        cpu.state.lock().unwrap().charge(&"a".into(), 100_000_000);
        let mut running = task(&cpu, "a");
        assert!(try_run(&mut running));
        let mut a1 = task(&cpu, "a");
        assert!(!try_run(&mut a1));
        // b comes back: it starts from a's figure, so they alternate from
        // here instead of b taking 90 ms in a row.
        let mut b1 = task(&cpu, "b");
        let mut b2 = task(&cpu, "b");
        assert!(!try_run(&mut b1) && !try_run(&mut b2));
        assert_eq!(used(&cpu, "b"), 100);
        done(&cpu, "a", 2);
        assert!(try_run(&mut b1), "b used less (100 < 102 ms)");
        done(&cpu, "b", 4);
        assert!(try_run(&mut a1), "now a (102 < 104 ms)");
        done(&cpu, "a", 1);
        assert!(try_run(&mut b2));
        done(&cpu, "b", 1);
        assert_eq!(free(&cpu), 1);
    }

    #[test]
    fn a_newcomer_is_not_owed_what_a_tenant_used_alone_before_it_came() {
        let cpu = FairCpu::new(1);
        // b runs alone for a while: 100 polls of 10 ms, never waiting.
        for _ in 0..100 {
            let mut b = task(&cpu, "b");
            assert!(try_run(&mut b));
            done(&cpu, "b", 10);
        }
        // a comes while b is idle, takes the free slot, then b has to wait:
        // a starts from b's 1,000 ms, so they alternate instead of b waiting
        // until a has spun for a second.
        let mut a0 = task(&cpu, "a");
        assert!(try_run(&mut a0));
        assert_eq!(used(&cpu, "a"), 1000);
        let (mut a1, mut b1, mut a2) = (task(&cpu, "a"), task(&cpu, "b"), task(&cpu, "a"));
        assert!(!try_run(&mut a1) && !try_run(&mut b1) && !try_run(&mut a2));
        done(&cpu, "a", 10);
        assert!(try_run(&mut b1), "b (1,000 ms) before a (1,010 ms)");
        done(&cpu, "b", 10);
        assert!(try_run(&mut a1));
        // The same when a newcomer comes while another tenant holds the slot.
        let mut c = task(&cpu, "c");
        assert!(!try_run(&mut c));
        assert_eq!(
            used(&cpu, "c"),
            1010,
            "from the least figure among those with work"
        );
        done(&cpu, "a", 10);
        assert!(try_run(&mut c), "c (1,010 ms) before a (1,020 ms)");
        done(&cpu, "c", 1);
        assert!(try_run(&mut a2));
        done(&cpu, "a", 1);
        assert_eq!(free(&cpu), 1);
    }

    #[test]
    fn a_tenant_back_with_a_large_figure_does_not_lift_the_others() {
        let cpu = FairCpu::new(1);
        // h used a lot long ago; b has work now.
        cpu.state.lock().unwrap().charge(&"h".into(), 5_000_000_000);
        let mut b0 = task(&cpu, "b");
        assert!(try_run(&mut b0));
        let mut b1 = task(&cpu, "b");
        assert!(!try_run(&mut b1));
        // h comes back and waits; then n, new: n starts from b's figure (the
        // least among those with work), not from h's.
        let (mut h, mut n) = (task(&cpu, "h"), task(&cpu, "n"));
        assert!(!try_run(&mut h) && !try_run(&mut n));
        assert_eq!((used(&cpu, "h"), used(&cpu, "n")), (5000, 0));
        done(&cpu, "b", 2);
        assert!(try_run(&mut n), "n (0 ms) first");
        done(&cpu, "n", 1);
        assert!(try_run(&mut b1), "then b (2 ms), h (5 s) last");
        done(&cpu, "b", 1);
        assert!(try_run(&mut h));
        done(&cpu, "h", 1);
        assert_eq!(free(&cpu), 1);
    }

    #[test]
    fn a_waiter_that_goes_away_loses_its_turn_and_keeps_no_slot() {
        let cpu = FairCpu::new(1);
        let mut running = task(&cpu, "a");
        assert!(try_run(&mut running));
        // Dropped while queued: skipped.
        let mut gone = task(&cpu, "b");
        assert!(!try_run(&mut gone));
        let mut next = task(&cpu, "c");
        assert!(!try_run(&mut next));
        drop(gone);
        done(&cpu, "a", 1);
        assert!(try_run(&mut next), "c gets the slot b left");
        // Dropped after the slot was handed over to it: passed on.
        let mut handed = task(&cpu, "d");
        assert!(!try_run(&mut handed));
        done(&cpu, "c", 1);
        assert_eq!(free(&cpu), 0, "handed to d");
        drop(handed);
        assert_eq!(free(&cpu), 1, "d went away: back to the pool");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn invocations_run_to_the_end_through_the_slots() {
        let cpu = FairCpu::new(1);
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let tenant: Arc<str> = if i % 2 == 0 { "a".into() } else { "b".into() };
                tokio::spawn(cpu.run(tenant, async move {
                    for _ in 0..50 {
                        tokio::task::yield_now().await;
                    }
                    i
                }))
            })
            .collect();
        let mut done = Vec::new();
        for t in tasks {
            done.push(t.await.unwrap());
        }
        assert_eq!(done, (0..8).collect::<Vec<_>>());
        assert_eq!(free(&cpu), 1);
    }
}
