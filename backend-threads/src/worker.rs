//! The worker thread: run the initializer, then take jobs until the queue disconnects.
//!
//! ```text
//! start ── initializer ──(Err/panic)──▶ break the pool, exit
//!              │ ok
//!              ▼
//!   ┌──▶ IDLE: recv() ──(disconnected: shut down or broken, queue drained)──▶ exit
//!   │          │ job
//!   │          ▼
//!   └─── BUSY: run the job (panics are caught inside `Promise::run`)
//! ```

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use executor_core::{PoolId, current_pool, enter_worker, panic_message};

use crate::pool::{Inner, WorkerSlot};

thread_local! {
    /// The pool this thread works for and its slot, so that a task run inline is counted there.
    static POOL: RefCell<Option<(Arc<Inner>, usize)>> = const { RefCell::new(None) };
}

/// `true` on the threads of the pool `id`.
pub(crate) fn is_worker_of(id: PoolId) -> bool {
    current_pool() == Some(id)
}

/// Runs a job inline on this worker (rule K2), counting it like any other.
pub(crate) fn run_inline(run: impl FnOnce() -> bool) {
    let worker = POOL.with(|p| p.borrow().clone());
    match worker {
        Some((inner, index)) => count(&inner.counters.slots[index], run),
        None => {
            run();
        }
    }
}

/// Runs a job, counting it as running, then (if it ran) completed.
fn count(slot: &WorkerSlot, run: impl FnOnce() -> bool) {
    WorkerSlot::bump(&slot.running, 1);
    let ran = run();
    WorkerSlot::bump(&slot.running, -1);
    if ran {
        slot.count_completed();
    }
}

pub(crate) fn run(inner: Arc<Inner>, index: usize) {
    let _worker = enter_worker(inner.id);
    POOL.with(|p| *p.borrow_mut() = Some((Arc::clone(&inner), index)));
    work(&inner, &inner.counters.slots[index]);
    POOL.with(|p| p.borrow_mut().take());
    inner.counters.alive.fetch_sub(1, Ordering::AcqRel);
}

fn work(inner: &Inner, slot: &WorkerSlot) {
    let counters = &inner.counters;
    if let Some(init) = &inner.initializer {
        let failure = match catch_unwind(AssertUnwindSafe(|| init())) {
            Ok(Ok(())) => None,
            Ok(Err(message)) => Some(message),
            Err(payload) => Some(format!("panicked: {}", panic_message(&*payload))),
        };
        if let Some(reason) = failure {
            inner.break_pool(format!("initializer failed: {reason}"));
            return;
        }
    }
    // Ordering: the token count is a hint (see `adjust_workers`).
    let announce_idle = || {
        if !counters.all_started() {
            counters.idle_tokens.fetch_add(1, Ordering::AcqRel);
        }
    };
    loop {
        // IDLE.
        WorkerSlot::bump(&slot.idle, 1);
        let job = inner.receiver.recv();
        WorkerSlot::bump(&slot.idle, -1);
        let Ok(job) = job else { break };
        inner.release_space();
        // BUSY. The worker announces itself idle once the task has returned but before its
        // future completes, so a submitter woken by that completion reuses this thread (J2).
        let mut announced = false;
        count(slot, || {
            job.run(&mut || {
                announced = true;
                announce_idle();
            })
        });
        if !announced {
            announce_idle();
        }
    }
}
