//! Rule K2 in the core: a task that waits on a queued task of its own pool runs it itself, and
//! tasks that wait on each other in a cycle get a deadlock error naming the cycle instead of
//! hanging. Includes the two examples from the motivating blog post (`shared/seed/`).

mod support;

use std::sync::{Arc, Barrier, OnceLock};
use std::time::Duration;

use executor_core::{Executor, FutureHandle, ResultError};
use support::ReferencePool;

/// The blog's second example: a one-worker pool whose task waits on a future it submitted to the
/// same pool. With inline running it returns instead of hanging.
#[test]
fn one_worker_pool_task_waits_on_its_own_pool() {
    let pool = Arc::new(ReferencePool::new(1));
    let inner_pool = Arc::clone(&pool);
    let outer = pool
        .submit(move || {
            let f = inner_pool
                .submit(|| 5u64.pow(2))
                .expect("submit from a task");
            *f.result(Some(Duration::from_secs(30)))
                .expect("inner result")
        })
        .unwrap();
    assert_eq!(*outer.result(Some(Duration::from_secs(30))).unwrap(), 25);
}

/// The blog's first example: a waits on b while b waits on a, on a two-worker pool. One of the
/// waits fails with a deadlock error naming both tasks; both futures complete.
#[test]
fn two_tasks_waiting_on_each_other_get_a_deadlock_error() {
    for _ in 0..50 {
        let pool = ReferencePool::new(2);
        let a_slot: Arc<OnceLock<FutureHandle<String>>> = Arc::new(OnceLock::new());
        let b_slot: Arc<OnceLock<FutureHandle<String>>> = Arc::new(OnceLock::new());
        let both_running = Arc::new(Barrier::new(2));
        let waits_on = |slot: Arc<OnceLock<FutureHandle<String>>>, barrier: Arc<Barrier>| {
            move || {
                barrier.wait();
                let other = loop {
                    if let Some(f) = slot.get() {
                        break f;
                    }
                    std::thread::yield_now();
                };
                match other.result(Some(Duration::from_secs(30))) {
                    Ok(v) => format!("other said {v}"),
                    Err(e) => e.to_string(),
                }
            }
        };
        let a = pool
            .submit(waits_on(Arc::clone(&b_slot), Arc::clone(&both_running)))
            .unwrap();
        let b = pool
            .submit(waits_on(Arc::clone(&a_slot), Arc::clone(&both_running)))
            .unwrap();
        let (a_id, b_id) = (a.id(), b.id());
        a_slot.set(a).unwrap();
        b_slot.set(b).unwrap();
        let a = a_slot.get().unwrap();
        let b = b_slot.get().unwrap();
        let (ra, rb) = (
            a.result(Some(Duration::from_secs(30))).unwrap().clone(),
            b.result(Some(Duration::from_secs(30))).unwrap().clone(),
        );
        let deadlock = [&ra, &rb]
            .into_iter()
            .find(|r| r.starts_with("deadlock"))
            .unwrap_or_else(|| panic!("no deadlock reported: {ra:?} / {rb:?}"));
        assert!(deadlock.contains(&a_id.to_string()) && deadlock.contains(&b_id.to_string()));
        assert!(
            [&ra, &rb]
                .iter()
                .any(|r| r.starts_with("other said deadlock"))
        );
    }
}

/// A task waiting on its own future is a cycle of one.
#[test]
fn task_waiting_on_itself_is_a_deadlock() {
    let pool = ReferencePool::new(1);
    let slot: Arc<OnceLock<FutureHandle<bool>>> = Arc::new(OnceLock::new());
    let inner = Arc::clone(&slot);
    let f = pool
        .submit(move || {
            let me = loop {
                if let Some(f) = inner.get() {
                    break f;
                }
                std::thread::yield_now();
            };
            matches!(me.result(None), Err(ResultError::Deadlock(_)))
        })
        .unwrap();
    slot.set(f).unwrap();
    assert!(
        *slot
            .get()
            .unwrap()
            .result(Some(Duration::from_secs(30)))
            .unwrap()
    );
}

/// Threads that run no task wait as usual: no inline running, no false deadlock.
#[test]
fn plain_threads_wait_normally() {
    let pool = ReferencePool::new(1);
    let f = pool.submit(|| 1).unwrap();
    assert_eq!(*f.result(Some(Duration::from_secs(30))).unwrap(), 1);
}

/// `map` waits the same way as `result`: a one-worker pool whose task maps over its own pool
/// runs the chunks itself instead of hanging.
#[test]
fn one_worker_pool_task_maps_over_its_own_pool() {
    use executor_core::MapOptions;
    for chunksize in [1, 3] {
        let pool = Arc::new(ReferencePool::new(1));
        let inner_pool = Arc::clone(&pool);
        let outer = pool
            .submit(move || {
                let squares = (1..=7u64).map(|n| move || n * n);
                inner_pool
                    .map(squares, MapOptions::new().chunksize(chunksize))
                    .expect("map from a task")
                    .map(|r| r.expect("item"))
                    .sum::<u64>()
            })
            .unwrap();
        assert_eq!(*outer.result(Some(Duration::from_secs(30))).unwrap(), 140);
    }
}
