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

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use executor_core::{PoolId, current_pool, enter_worker, panic_message};

use crate::pool::Inner;

/// `true` on the threads of the pool `id`.
pub(crate) fn is_worker_of(id: PoolId) -> bool {
    current_pool() == Some(id)
}

pub(crate) fn run(inner: Arc<Inner>) {
    let _worker = enter_worker(inner.id);
    let counters = &inner.counters;
    if let Some(init) = &inner.initializer {
        let failure = match catch_unwind(AssertUnwindSafe(|| init())) {
            Ok(Ok(())) => None,
            Ok(Err(message)) => Some(message),
            Err(payload) => Some(format!("panicked: {}", panic_message(&*payload))),
        };
        if let Some(reason) = failure {
            inner.break_pool(format!("initializer failed: {reason}"));
            counters.alive.fetch_sub(1, Ordering::AcqRel);
            return;
        }
    }
    let mut first = true;
    loop {
        // IDLE. Ordering: the counters are statistics and hints (see `adjust_workers`).
        if !first {
            counters.idle_tokens.fetch_add(1, Ordering::AcqRel);
        }
        first = false;
        counters.idle.fetch_add(1, Ordering::Relaxed);
        let job = inner.receiver.recv();
        counters.idle.fetch_sub(1, Ordering::Relaxed);
        let Ok(job) = job else { break };
        inner.release_space();
        // BUSY.
        counters.running.fetch_add(1, Ordering::Relaxed);
        let ran = job.run();
        counters.running.fetch_sub(1, Ordering::Relaxed);
        if ran {
            counters.completed.fetch_add(1, Ordering::Relaxed);
        }
    }
    counters.alive.fetch_sub(1, Ordering::AcqRel);
}
