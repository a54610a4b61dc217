//! Runs jobs one at a time, in arrival order, per conversation; different
//! conversations run in parallel. Knows how many jobs are in flight so a
//! graceful shutdown can wait for them.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// How long an idle conversation keeps its worker.
const IDLE: Duration = Duration::from_secs(5);

#[derive(Default)]
pub struct Dispatcher {
    queues: Mutex<HashMap<String, mpsc::UnboundedSender<Job>>>,
    in_flight: AtomicUsize,
    idle: Notify,
}

impl Dispatcher {
    /// Queues `job` behind the earlier jobs of `key`.
    pub fn submit(self: &Arc<Self>, key: String, job: impl Future<Output = ()> + Send + 'static) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let job: Job = Box::pin(job);
        let mut queues = self.queues.lock().expect("not poisoned");
        let job = match queues.get(&key) {
            Some(tx) => match tx.send(job) {
                Ok(()) => return,
                Err(mpsc::error::SendError(job)) => job,
            },
            None => job,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        tx.send(job).expect("receiver alive");
        queues.insert(key.clone(), tx);
        tokio::spawn(self.clone().work(key, rx));
    }

    async fn work(self: Arc<Self>, key: String, mut rx: mpsc::UnboundedReceiver<Job>) {
        loop {
            match tokio::time::timeout(IDLE, rx.recv()).await {
                Ok(Some(job)) => {
                    job.await;
                    if self.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
                        self.idle.notify_waiters();
                    }
                }
                _ => {
                    // Leave only if nothing arrived meanwhile (senders hold the lock).
                    let mut queues = self.queues.lock().expect("not poisoned");
                    if rx.is_empty() {
                        queues.remove(&key);
                        return;
                    }
                }
            }
        }
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Resolves once no job is queued or running.
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
