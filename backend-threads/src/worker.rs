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

use crate::pool::Inner;

thread_local! {
    /// The pool this thread works for, so a task run inline is counted in that pool's stats.
    static POOL: RefCell<Option<Arc<Inner>>> = const { RefCell::new(None) };
}

/// `true` on the threads of the pool `id`.
pub(crate) fn is_worker_of(id: PoolId) -> bool {
    current_pool() == Some(id)
}

/// Runs a job inline on this worker (rule K2), counting it like any other.
pub(crate) fn run_inline(run: impl FnOnce() -> bool) {
    let inner = POOL.with(|p| p.borrow().clone());
    let Some(inner) = inner else {
        run();
        return;
    };
    let counters = &inner.counters;
    counters.running.fetch_add(1, Ordering::Relaxed);
    let ran = run();
    counters.running.fetch_sub(1, Ordering::Relaxed);
    if ran {
        counters.completed.fetch_add(1, Ordering::Relaxed);
    }
}

pub(crate) fn run(inner: Arc<Inner>) {
    let _worker = enter_worker(inner.id);
    POOL.with(|p| *p.borrow_mut() = Some(Arc::clone(&inner)));
    work(&inner);
    POOL.with(|p| p.borrow_mut().take());
    inner.counters.alive.fetch_sub(1, Ordering::AcqRel);
}

fn work(inner: &Inner) {
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
    // Ordering: the counters are statistics and hints (see `adjust_workers`).
    let announce_idle = || {
        counters.idle_tokens.fetch_add(1, Ordering::AcqRel);
    };
    loop {
        // IDLE.
        counters.idle.fetch_add(1, Ordering::Relaxed);
        let job = inner.receiver.recv();
        counters.idle.fetch_sub(1, Ordering::Relaxed);
        let Ok(job) = job else { break };
        inner.release_space();
        // BUSY. The worker announces itself idle once the task has returned but before its
        // future completes, so a submitter woken by that completion reuses this thread (J2).
        counters.running.fetch_add(1, Ordering::Relaxed);
        let mut announced = false;
        let ran = job.run(&mut || {
            announced = true;
            announce_idle();
        });
        counters.running.fetch_sub(1, Ordering::Relaxed);
        if ran {
            counters.completed.fetch_add(1, Ordering::Relaxed);
        }
        if !announced {
            announce_idle();
        }
    }
}
