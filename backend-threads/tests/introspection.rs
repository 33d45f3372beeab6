//! Rule K3 (BEYOND): `stats()` reports workers, idle, queued, running and completed correctly in
//! situations made deterministic by holding the workers on an in-process latch.
//!
//! The only waiting-for-a-counter below is for `idle`, which a worker bumps after it has
//! completed its task's future; it is polled against a generous deadline, never slept on.

// Each test file is its own crate and uses only part of the shared helpers.
#[allow(dead_code)]
mod support;

use std::sync::Arc;
use std::time::Instant;

use backend_threads::ThreadPoolExecutor;
use executor_core::{Executor, Introspect, PoolStats, Shutdown, ShutdownOptions};
use support::{LIMIT, Latch};

fn stats(workers: usize, idle: usize, queued: usize, running: usize, completed: u64) -> PoolStats {
    PoolStats {
        workers,
        idle,
        queued,
        running,
        completed,
    }
}

/// Polls `stats()` until `want` holds (for counters a worker updates after completing a future);
/// fails, showing the last snapshot, if it does not within [`LIMIT`].
fn wait_for_stats(pool: &ThreadPoolExecutor, want: impl Fn(&PoolStats) -> bool) -> PoolStats {
    let deadline = Instant::now() + LIMIT;
    loop {
        let s = pool.stats();
        if want(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "stats never got there: {s:?}");
        std::thread::yield_now();
    }
}

/// A new pool has started no thread and counted nothing.
#[test]
fn fresh_pool_is_all_zero() {
    let pool = ThreadPoolExecutor::new(4).unwrap();
    assert_eq!(pool.stats(), PoolStats::default());
    pool.shutdown(ShutdownOptions::wait());
    assert_eq!(pool.stats(), PoolStats::default());
}

/// Two workers held plus three queued: running 2, queued 3, idle 0, workers 2. After release and
/// `shutdown(wait)`: completed 5 and everything else 0 (the threads have exited).
#[test]
fn held_workers_and_queue_then_all_completed() {
    let pool = ThreadPoolExecutor::new(2).unwrap();
    let latch = Latch::new();
    let _open = latch.opener();
    let futures: Vec<_> = (0..5u32)
        .map(|i| {
            let latch = Arc::clone(&latch);
            pool.submit(move || {
                latch.hold();
                i
            })
            .unwrap()
        })
        .collect();
    latch.wait_started(2);
    assert_eq!(pool.stats(), stats(2, 0, 3, 2, 0));

    latch.open();
    for (i, f) in futures.iter().enumerate() {
        assert_eq!(*f.result(Some(LIMIT)).unwrap(), i as u32);
    }
    pool.shutdown(ShutdownOptions::wait());
    assert_eq!(pool.stats(), stats(0, 0, 0, 0, 5));
}

/// `workers` never exceeds `max_workers`, however much is submitted.
#[test]
fn workers_capped_at_max_workers() {
    let pool = ThreadPoolExecutor::new(3).unwrap();
    let latch = Latch::new();
    let _open = latch.opener();
    let futures: Vec<_> = (0..10)
        .map(|_| {
            let latch = Arc::clone(&latch);
            pool.submit(move || latch.hold()).unwrap()
        })
        .collect();
    latch.wait_started(3);
    assert_eq!(pool.stats(), stats(3, 0, 7, 3, 0));
    latch.open();
    for f in &futures {
        f.result(Some(LIMIT)).unwrap();
    }
    // Each counter is read on its own; wait until they all settle, which they must.
    wait_for_stats(&pool, |s| *s == stats(3, 3, 0, 0, 10));
}

/// A worker that finished its task and waits for more is idle; it is counted as such and it is
/// not running.
#[test]
fn quiescent_pool_reports_idle_workers() {
    let pool = ThreadPoolExecutor::new(2).unwrap();
    assert_eq!(*pool.submit(|| 1).unwrap().result(Some(LIMIT)).unwrap(), 1);
    let s = wait_for_stats(&pool, |s| {
        s.idle == s.workers && s.completed == 1 && s.running == 0 && s.queued == 0
    });
    assert!(
        (1..=2).contains(&s.workers),
        "one submit started {} workers",
        s.workers
    );

    // Hold one worker: whichever it is, it is no longer idle.
    let latch = Latch::new();
    let _open = latch.opener();
    let held = {
        let latch = Arc::clone(&latch);
        pool.submit(move || latch.hold()).unwrap()
    };
    latch.wait_started(1);
    let s = pool.stats();
    assert_eq!(s.running, 1);
    assert_eq!(s.idle, s.workers - 1, "{s:?}");
    latch.open();
    held.result(Some(LIMIT)).unwrap();
    pool.shutdown(ShutdownOptions::wait());
    assert_eq!(pool.stats(), stats(0, 0, 0, 0, 2));
}

/// A task that panics or fails has still finished: it counts as completed, and the worker goes
/// back to idle, not running.
#[test]
fn failed_tasks_count_as_completed() {
    let pool = ThreadPoolExecutor::new(1).unwrap();
    let boom = pool.submit(|| -> u8 { panic!("boom") }).unwrap();
    assert!(boom.result(Some(LIMIT)).unwrap_err().task_error().is_some());
    let failed = pool
        .submit(executor_core::fallible(|| "x".parse::<u8>()))
        .unwrap();
    assert!(failed.result(Some(LIMIT)).is_err());
    pool.shutdown(ShutdownOptions::wait());
    assert_eq!(pool.stats(), stats(0, 0, 0, 0, 2));
}

/// Cancelled tasks are not counted as completed (`PoolStats::completed`: "cancelled ones not
/// counted"), whether cancelled by hand while queued or by `shutdown(cancel_futures)`.
#[test]
fn cancelled_tasks_are_not_completed() {
    let pool = ThreadPoolExecutor::new(1).unwrap();
    let latch = Latch::new();
    let _open = latch.opener();
    let held = {
        let latch = Arc::clone(&latch);
        pool.submit(move || latch.hold()).unwrap()
    };
    latch.wait_started(1);
    let queued: Vec<_> = (0..4u8).map(|i| pool.submit(move || i).unwrap()).collect();
    assert_eq!(pool.stats().queued, 4);
    assert!(queued[1].cancel());
    assert!(queued[3].cancel());
    latch.open();
    held.result(Some(LIMIT)).unwrap();
    assert_eq!(*queued[0].result(Some(LIMIT)).unwrap(), 0);
    assert_eq!(*queued[2].result(Some(LIMIT)).unwrap(), 2);
    pool.shutdown(ShutdownOptions::wait());
    let s = pool.stats();
    assert_eq!(
        s.completed, 3,
        "3 tasks ran and 2 were cancelled, yet completed = {}",
        s.completed
    );
    assert_eq!(s, stats(0, 0, 0, 0, 3));
}

/// `shutdown(cancel_futures)` empties the queue at once (queued 0 while the workers are still
/// held), and the cancelled tasks never count as completed.
#[test]
fn shutdown_cancel_futures_empties_the_queue_at_once() {
    let pool = ThreadPoolExecutor::new(2).unwrap();
    let latch = Latch::new();
    let _open = latch.opener();
    let futures: Vec<_> = (0..6)
        .map(|_| {
            let latch = Arc::clone(&latch);
            pool.submit(move || latch.hold()).unwrap()
        })
        .collect();
    latch.wait_started(2);
    assert_eq!(pool.stats(), stats(2, 0, 4, 2, 0));
    pool.shutdown(ShutdownOptions::no_wait().cancel_futures());
    assert_eq!(pool.stats(), stats(2, 0, 0, 2, 0));
    assert_eq!(futures.iter().filter(|f| f.cancelled()).count(), 4);
    latch.open();
    pool.shutdown(ShutdownOptions::wait());
    assert_eq!(pool.stats(), stats(0, 0, 0, 0, 2));
}

/// `queued` counts queue entries: with a bound, it never exceeds `max_queued` while the workers
/// are held, and a `map` chunk is one entry.
#[test]
fn queued_counts_queue_entries() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(1)
        .max_queued(3)
        .build()
        .unwrap();
    let latch = Latch::new();
    let _open = latch.opener();
    let held = {
        let latch = Arc::clone(&latch);
        pool.submit(move || latch.hold()).unwrap()
    };
    latch.wait_started(1);
    let batch = pool
        .submit_batch((0..5u8).map(|i| move || i).collect())
        .unwrap();
    assert_eq!(batch.len(), 5);
    assert_eq!(
        pool.stats().queued,
        1,
        "a batch of 5 should be one queue entry"
    );
    let a = pool.try_submit(|| 10u8).unwrap();
    let b = pool.try_submit(|| 11u8).unwrap();
    assert!(pool.try_submit(|| 12u8).is_err());
    assert_eq!(pool.stats(), stats(1, 0, 3, 1, 0));
    latch.open();
    held.result(Some(LIMIT)).unwrap();
    assert_eq!(*a.result(Some(LIMIT)).unwrap(), 10);
    assert_eq!(*b.result(Some(LIMIT)).unwrap(), 11);
    drop(batch);
    pool.shutdown(ShutdownOptions::wait());
    assert_eq!(pool.stats(), stats(0, 0, 0, 0, 4));
}

/// A queued task that a waiting worker of the same pool runs itself (rule K2) has completed like
/// any other: one worker, whose task waits on a task it queued, counts 2 completed.
#[test]
fn inline_runs_count_as_completed() {
    let pool = Arc::new(ThreadPoolExecutor::new(1).unwrap());
    let same = Arc::clone(&pool);
    let outer = pool
        .submit(move || {
            let inner = same.submit(|| 5u32).unwrap();
            *inner.result(Some(LIMIT)).unwrap() * 2
        })
        .unwrap();
    assert_eq!(*outer.result(Some(LIMIT)).unwrap(), 10);
    pool.shutdown(ShutdownOptions::wait());
    assert_eq!(pool.stats(), stats(0, 0, 0, 0, 2));
}
