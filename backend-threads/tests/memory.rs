//! Issue #3's memory target: a queued no-op task costs under 256 bytes beyond its closure.
//! Measured, not timed: a counting global allocator sums the bytes live after queueing many
//! tasks behind a blocked worker.

#![allow(unsafe_code)] // a counting global allocator; see the SAFETY comments

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::mpsc;

use backend_threads::ThreadPoolExecutor;
use executor_core::{Executor, FutureHandle};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so `System`'s
// guarantees hold; the counter is only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged (see the impl's comment).
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged (see the impl's comment).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[test]
fn a_queued_noop_task_costs_under_256_bytes() {
    const TASKS: usize = 200_000;
    let pool = ThreadPoolExecutor::new(1).unwrap();
    let (release, blocked) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel();
    let blocker = pool
        .submit(move || {
            started_tx.send(()).unwrap();
            blocked.recv().unwrap();
        })
        .unwrap();
    started.recv().unwrap();

    let mut futures: Vec<FutureHandle<()>> = Vec::with_capacity(TASKS);
    let before = LIVE.load(Ordering::Relaxed);
    for _ in 0..TASKS {
        futures.push(pool.submit(|| ()).unwrap());
    }
    let after = LIVE.load(Ordering::Relaxed);
    // The handles' own slots in `futures` were allocated before `before`.
    let per_task = (after - before) as f64 / TASKS as f64;
    eprintln!("bytes per queued no-op task: {per_task:.1}");
    assert!(
        per_task < 256.0,
        "a queued no-op task costs {per_task:.1} bytes"
    );

    release.send(()).unwrap();
    blocker.into_result().unwrap();
    for f in futures {
        f.into_result().unwrap();
    }
}
