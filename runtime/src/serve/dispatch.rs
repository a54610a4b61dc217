//! Wakes one worker per conversation with work in the inbox: the worker
//! drains the conversation's entries one at a time, in inbox order, while
//! different conversations run in parallel. Memory is one flag per active
//! conversation, whatever the backlog (the entries themselves wait in the
//! store). Knows how many workers run, so a graceful shutdown can wait.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

#[derive(Default)]
pub struct Dispatcher {
    /// Conversations with a worker → whether it must drain again.
    active: Mutex<HashMap<String, bool>>,
    in_flight: AtomicUsize,
    idle: Notify,
    /// The node is stopping (`Dispatcher::stop`).
    stopping: AtomicBool,
}

impl Dispatcher {
    /// Runs `drain` for `key` now, or once more after the run in progress
    /// (a wake during a run is never lost; many wakes make one more run).
    pub fn wake<F, Fut>(self: &Arc<Self>, key: String, drain: F)
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        {
            let mut active = self.active.lock().expect("not poisoned");
            if let Some(again) = active.get_mut(&key) {
                *again = true;
                return;
            }
            active.insert(key.clone(), false);
            self.in_flight.fetch_add(1, Ordering::SeqCst);
        }
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                drain().await;
                let mut active = this.active.lock().expect("not poisoned");
                match active.get_mut(&key) {
                    Some(again) if *again => *again = false,
                    _ => {
                        active.remove(&key);
                        break;
                    }
                }
            }
            if this.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
                this.idle.notify_waiters();
            }
        });
    }

    /// Conversations being worked on.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// The node is stopping: a worker may end after the turn in progress
    /// (with a shared store, other nodes take the conversation on).
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Whether [`Dispatcher::stop`] was called.
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Resolves once no conversation is being worked on.
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.in_flight() == 0 {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;
    use std::time::Duration;

    #[tokio::test]
    async fn wakes_during_a_run_make_one_more_run() {
        let d = Arc::new(Dispatcher::default());
        let runs = Arc::new(AtomicU32::new(0));
        let wake = |d: &Arc<Dispatcher>| {
            let runs = runs.clone();
            d.wake("k".into(), move || {
                let runs = runs.clone();
                async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            });
        };
        wake(&d);
        for _ in 0..10 {
            wake(&d);
        }
        d.wait_idle().await;
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        wake(&d);
        d.wait_idle().await;
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }
}
