//! `setTimeout`/`clearTimeout`: timers kept here and fired by the drive loop,
//! which sleeps (through the host's clock, burning no fuel) until the next one.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use boa_engine::{JsObject, JsValue};

pub struct Timer {
    pub id: u32,
    pub due: Instant,
    pub callback: JsObject,
    pub args: Vec<JsValue>,
}

#[derive(Default)]
struct Timers {
    next_id: u32,
    pending: Vec<Timer>,
}

thread_local! {
    static TIMERS: RefCell<Timers> = RefCell::new(Timers::default());
}

pub fn add(delay: Duration, callback: JsObject, args: Vec<JsValue>) -> u32 {
    TIMERS.with(|t| {
        let mut t = t.borrow_mut();
        t.next_id += 1;
        let id = t.next_id;
        t.pending.push(Timer {
            id,
            due: Instant::now() + delay,
            callback,
            args,
        });
        id
    })
}

pub fn cancel(id: u32) {
    TIMERS.with(|t| t.borrow_mut().pending.retain(|timer| timer.id != id));
}

/// Removes and returns the timer due first (ties: the one set first).
pub fn take_next() -> Option<Timer> {
    TIMERS.with(|t| {
        let mut t = t.borrow_mut();
        let index = (0..t.pending.len()).min_by_key(|&i| (t.pending[i].due, t.pending[i].id))?;
        Some(t.pending.remove(index))
    })
}
