//! Rule K1 (BEYOND): an optional bound on queued tasks. With `max_queued = n` at most `n` tasks
//! wait in the queue; `try_submit` hands the task back when it is full, `submit` waits for space
//! and is released (refused) by shutdown; a task of the pool submitting to its own full pool is
//! never held back; a zero bound (or zero workers) is a build error naming the field.
//!
//! Workers are held by an in-process latch, so every "queued"/"blocked" situation below is
//! deterministic. Where a test shows that a submitter is blocked, it waits a short while for a
//! signal that must *not* come: a broken pool fails that check, a correct one can never fail it.

// Each test file is its own crate and uses only part of the shared helpers.
#[allow(dead_code)]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use backend_threads::{ThreadPoolExecutor, TrySubmitError};
use executor_core::{Executor, Introspect, Shutdown, ShutdownOptions};
use support::{LIMIT, Latch};

/// How long a submitter that must be blocked is given to (wrongly) get through.
const BLOCKED_FOR: Duration = Duration::from_millis(200);

fn bounded(workers: usize, max_queued: usize) -> ThreadPoolExecutor {
    ThreadPoolExecutor::builder()
        .max_workers(workers)
        .max_queued(max_queued)
        .build()
        .unwrap()
}

/// With every worker held, exactly `max_queued` tasks are accepted into the queue; the next
/// `try_submit` is `Full` and hands back the very task it was given, which never runs on the pool.
#[test]
fn try_submit_full_hands_the_task_back() {
    for bound in [1, 3] {
        let pool = bounded(1, bound);
        let latch = Latch::new();
        let _open = latch.opener();
        let held = {
            let latch = Arc::clone(&latch);
            pool.submit(move || latch.hold()).unwrap()
        };
        latch.wait_started(1);
        assert_eq!(pool.stats().queued, 0);

        let ran = Arc::new(AtomicUsize::new(0));
        let mut queued = Vec::new();
        for i in 0..bound {
            let ran = Arc::clone(&ran);
            let f = pool
                .try_submit(move || {
                    ran.fetch_add(1, Ordering::SeqCst);
                    i
                })
                .unwrap_or_else(|e| panic!("slot {i} of {bound} refused: {e}"));
            queued.push(f);
            assert_eq!(pool.stats().queued, i + 1);
        }

        let extra_ran = Arc::new(AtomicUsize::new(0));
        let extra = {
            let extra_ran = Arc::clone(&extra_ran);
            move || {
                extra_ran.fetch_add(1, Ordering::SeqCst);
                1000 + bound
            }
        };
        let back = match pool.try_submit(extra) {
            Err(TrySubmitError::Full(task)) => task,
            Err(e) => panic!("expected Full, got {e:?}"),
            Ok(_) => panic!("try_submit accepted a task beyond max_queued = {bound}"),
        };
        assert_eq!(
            pool.stats().queued,
            bound,
            "the refused task was queued anyway"
        );
        // Twice, to see that a refusal does not leak a slot either way.
        let back = match pool.try_submit(back) {
            Err(e @ TrySubmitError::Full(_)) => {
                assert_eq!(e.to_string(), "the thread pool's queue is full");
                e.into_inner()
            }
            other => panic!("expected Full, got {other:?}"),
        };
        assert_eq!(pool.stats().queued, bound);

        latch.open();
        held.result(Some(LIMIT)).unwrap();
        for (i, f) in queued.iter().enumerate() {
            assert_eq!(*f.result(Some(LIMIT)).unwrap(), i);
        }
        pool.shutdown(ShutdownOptions::wait());
        assert_eq!(ran.load(Ordering::SeqCst), bound);
        assert_eq!(
            extra_ran.load(Ordering::SeqCst),
            0,
            "the task handed back was run by the pool"
        );
        // It is the same task, and it is ours to run.
        assert_eq!(back(), 1000 + bound);
        assert_eq!(extra_ran.load(Ordering::SeqCst), 1);
    }
}

/// Once a worker takes a queued task the slot is free again for `try_submit`.
#[test]
fn try_submit_succeeds_again_once_space_is_freed() {
    let pool = bounded(1, 1);
    let first = Latch::new();
    let second = Latch::new();
    let (_open1, _open2) = (first.opener(), second.opener());
    let a = {
        let first = Arc::clone(&first);
        pool.try_submit(move || first.hold()).unwrap()
    };
    first.wait_started(1);
    let b = {
        let second = Arc::clone(&second);
        pool.try_submit(move || second.hold()).unwrap()
    };
    assert!(matches!(
        pool.try_submit(|| ()),
        Err(TrySubmitError::Full(_))
    ));
    first.open();
    // The worker takes `b` (and frees its slot before running it).
    second.wait_started(1);
    let c = pool
        .try_submit(|| 7)
        .expect("the queue is empty again, yet try_submit was refused");
    assert_eq!(pool.stats().queued, 1);
    second.open();
    a.result(Some(LIMIT)).unwrap();
    b.result(Some(LIMIT)).unwrap();
    assert_eq!(*c.result(Some(LIMIT)).unwrap(), 7);
}

/// A blocking `submit` on a full queue waits, and proceeds exactly when a worker takes a queued
/// task and so frees a slot.
#[test]
fn blocking_submit_waits_for_space() {
    let pool = Arc::new(bounded(1, 1));
    let first = Latch::new();
    let second = Latch::new();
    let (_open1, _open2) = (first.opener(), second.opener());
    let running = {
        let first = Arc::clone(&first);
        pool.submit(move || first.hold()).unwrap()
    };
    first.wait_started(1);
    let queued = {
        let second = Arc::clone(&second);
        pool.submit(move || second.hold()).unwrap()
    };
    assert_eq!(pool.stats().queued, 1);

    let (tx, rx) = mpsc::channel();
    let submitter = {
        let pool = Arc::clone(&pool);
        thread::spawn(move || {
            let f = pool.submit(|| 42).expect("submit refused");
            tx.send(()).unwrap();
            f
        })
    };
    assert_eq!(
        rx.recv_timeout(BLOCKED_FOR),
        Err(mpsc::RecvTimeoutError::Timeout),
        "submit returned although the queue was full"
    );
    assert_eq!(
        pool.stats().queued,
        1,
        "the blocked task got into the queue"
    );

    // The worker finishes the first task and takes the queued one: one slot frees.
    first.open();
    rx.recv_timeout(LIMIT)
        .expect("the blocked submit did not proceed when space was freed");
    second.wait_started(1);
    let late = submitter.join().unwrap();
    assert_eq!(pool.stats().queued, 1, "the late task should now be queued");
    assert!(!late.done());
    second.open();
    running.result(Some(LIMIT)).unwrap();
    queued.result(Some(LIMIT)).unwrap();
    assert_eq!(*late.result(Some(LIMIT)).unwrap(), 42);
}

/// Several submitters blocked on one full queue all get through as the workers drain it: no
/// wake-up is lost, and the queue never holds more than its bound.
#[test]
fn many_blocked_submitters_all_proceed() {
    const SUBMITTERS: usize = 4;
    let pool = Arc::new(bounded(1, 1));
    let latch = Latch::new();
    let _open = latch.opener();
    let held = {
        let latch = Arc::clone(&latch);
        pool.submit(move || latch.hold()).unwrap()
    };
    latch.wait_started(1);
    let first = pool.submit(|| usize::MAX).unwrap();

    let (tx, rx) = mpsc::channel();
    let submitters: Vec<_> = (0..SUBMITTERS)
        .map(|i| {
            let pool = Arc::clone(&pool);
            let tx = tx.clone();
            thread::spawn(move || {
                let f = pool.submit(move || i).expect("submit refused");
                tx.send(i).unwrap();
                f
            })
        })
        .collect();
    drop(tx);
    assert_eq!(
        rx.recv_timeout(BLOCKED_FOR),
        Err(mpsc::RecvTimeoutError::Timeout),
        "a submit returned although the queue was full"
    );
    assert!(pool.stats().queued <= 1);

    latch.open();
    let mut through = Vec::new();
    for _ in 0..SUBMITTERS {
        through.push(
            rx.recv_timeout(LIMIT)
                .expect("a blocked submitter was never woken"),
        );
    }
    through.sort_unstable();
    assert_eq!(through, (0..SUBMITTERS).collect::<Vec<_>>());
    held.result(Some(LIMIT)).unwrap();
    assert_eq!(*first.result(Some(LIMIT)).unwrap(), usize::MAX);
    for (i, s) in submitters.into_iter().enumerate() {
        assert_eq!(*s.join().unwrap().result(Some(LIMIT)).unwrap(), i);
    }
}

/// Starts a submitter blocked on a full queue of a one-worker pool whose worker is held. Returns
/// the pool, the held task's future, the queued task's future, and the channel on which the
/// submitter sends its `submit`'s outcome: on refusal, whether it was for shutdown and the value
/// of the task handed back.
#[allow(clippy::type_complexity)]
fn blocked_submitter(
    latch: &Arc<Latch>,
) -> (
    Arc<ThreadPoolExecutor>,
    executor_core::FutureHandle<()>,
    executor_core::FutureHandle<u32>,
    mpsc::Receiver<Result<(), (bool, u32)>>,
) {
    let pool = Arc::new(bounded(1, 1));
    let held = {
        let latch = Arc::clone(latch);
        pool.submit(move || latch.hold()).unwrap()
    };
    latch.wait_started(1);
    let queued = pool.submit(|| 1u32).unwrap();
    let (tx, rx) = mpsc::channel();
    {
        let pool = Arc::clone(&pool);
        thread::spawn(move || {
            let outcome = match pool.submit(|| 77u32) {
                // Report only that it was accepted (wrongly, in every test that uses this).
                Ok(_) => Ok(()),
                Err(e) => Err((e.is_shutdown(), e.into_inner()())),
            };
            let _ = tx.send(outcome);
        });
    }
    assert!(
        matches!(
            rx.recv_timeout(BLOCKED_FOR),
            Err(mpsc::RecvTimeoutError::Timeout)
        ),
        "submit returned although the queue was full"
    );
    (pool, held, queued, rx)
}

/// `shutdown(no_wait)` releases a submitter blocked on a full queue with a Shutdown refusal that
/// hands its task back, while the workers are still held; queued work still runs.
#[test]
fn shutdown_no_wait_refuses_a_blocked_submitter() {
    let latch = Latch::new();
    let _open = latch.opener();
    let (pool, held, queued, rx) = blocked_submitter(&latch);
    pool.shutdown(ShutdownOptions::no_wait());
    match rx.recv_timeout(LIMIT) {
        Ok(Err((is_shutdown, value))) => {
            assert!(is_shutdown, "refused for another reason than shutdown");
            assert_eq!(value, 77, "the task handed back is not the one submitted");
        }
        Ok(Ok(_)) => panic!("a submit blocked before shutdown was accepted"),
        Err(_) => panic!("shutdown left a blocked submitter hanging"),
    }
    assert!(!held.done(), "the worker should still be held");
    latch.open();
    held.result(Some(LIMIT)).unwrap();
    assert_eq!(*queued.result(Some(LIMIT)).unwrap(), 1);
}

/// `shutdown(wait)`, called while the worker is held, refuses the blocked submitter before it
/// returns (it cannot return before the latch opens, yet the refusal must come first).
#[test]
fn shutdown_wait_refuses_a_blocked_submitter_before_the_workers_finish() {
    let latch = Latch::new();
    let _open = latch.opener();
    let (pool, held, queued, rx) = blocked_submitter(&latch);
    let (done_tx, done_rx) = mpsc::channel();
    let shutter = {
        let pool = Arc::clone(&pool);
        thread::spawn(move || {
            pool.shutdown(ShutdownOptions::wait());
            done_tx.send(()).unwrap();
        })
    };
    match rx.recv_timeout(LIMIT) {
        Ok(Err((true, 77))) => {}
        Ok(other) => panic!("expected a shutdown refusal handing back 77, got {other:?}"),
        Err(_) => panic!("shutdown(wait) left a blocked submitter hanging"),
    }
    assert!(
        done_rx.try_recv().is_err(),
        "shutdown(wait) returned while a task was still held"
    );
    latch.open();
    done_rx
        .recv_timeout(LIMIT)
        .expect("shutdown(wait) never returned");
    shutter.join().unwrap();
    assert!(
        held.done() && queued.done(),
        "shutdown(wait) returned early"
    );
    assert_eq!(*queued.result(Some(LIMIT)).unwrap(), 1);
}

/// `shutdown(cancel_futures)` frees the queue (cancelling what is queued) and still refuses the
/// blocked submitter: freed space must not let it in after shutdown.
#[test]
fn shutdown_cancel_futures_refuses_a_blocked_submitter() {
    let latch = Latch::new();
    let _open = latch.opener();
    let (pool, held, queued, rx) = blocked_submitter(&latch);
    pool.shutdown(ShutdownOptions::no_wait().cancel_futures());
    assert!(queued.cancelled(), "the queued task was not cancelled");
    match rx.recv_timeout(LIMIT) {
        Ok(Err((true, 77))) => {}
        Ok(other) => panic!("expected a shutdown refusal handing back 77, got {other:?}"),
        Err(_) => panic!("shutdown(cancel_futures) left a blocked submitter hanging"),
    }
    latch.open();
    held.result(Some(LIMIT)).unwrap();
    assert_eq!(pool.stats().queued, 0);
}

/// After shutdown, a submit to a full queue is refused at once rather than waiting for space.
#[test]
fn submit_after_shutdown_on_a_full_queue_is_refused_at_once() {
    let pool = bounded(1, 1);
    let latch = Latch::new();
    let _open = latch.opener();
    let held = {
        let latch = Arc::clone(&latch);
        pool.submit(move || latch.hold()).unwrap()
    };
    latch.wait_started(1);
    let queued = pool.submit(|| 1).unwrap();
    pool.shutdown(ShutdownOptions::no_wait());
    // Runs on this thread: if it waited for space it would wait for the latch, which only this
    // thread opens (the latch gives up after LIMIT, so even then nothing hangs for good).
    let started = Instant::now();
    let e = pool.submit(|| 5).unwrap_err();
    assert!(e.is_shutdown());
    assert_eq!(e.into_inner()(), 5);
    assert!(started.elapsed() < LIMIT, "submit waited for space");
    assert!(!held.done());
    latch.open();
    assert_eq!(*queued.result(Some(LIMIT)).unwrap(), 1);
}

/// After shutdown, `try_submit` to a full queue is refused for shutdown (G2), not `Full`: `Full`
/// invites a retry that can never succeed, and the blocking `submit` is refused in the same
/// situation. (Broken already wins over shut down; shut down should win over full.)
#[test]
fn try_submit_after_shutdown_on_a_full_queue_is_refused_not_full() {
    let pool = bounded(1, 1);
    let latch = Latch::new();
    let _open = latch.opener();
    let held = {
        let latch = Arc::clone(&latch);
        pool.submit(move || latch.hold()).unwrap()
    };
    latch.wait_started(1);
    let queued = pool.submit(|| 1).unwrap();
    pool.shutdown(ShutdownOptions::no_wait());
    match pool.try_submit(|| 6) {
        Err(TrySubmitError::Refused(e)) => {
            assert!(e.is_shutdown());
            assert_eq!(e.into_inner()(), 6);
        }
        other => panic!("expected a shutdown refusal, got {other:?}"),
    }
    latch.open();
    held.result(Some(LIMIT)).unwrap();
    assert_eq!(*queued.result(Some(LIMIT)).unwrap(), 1);
}

/// A task running on the pool that submits to its own full pool is not held back (otherwise a
/// one-worker pool would wait for itself for ever); the tasks it queued run after it.
#[test]
fn own_worker_submitting_to_its_full_pool_does_not_block() {
    let pool = Arc::new(bounded(1, 1));
    let (tx, rx) = mpsc::channel();
    let outer = {
        let same = Arc::clone(&pool);
        pool.submit(move || {
            // The single worker is this task, so nothing drains the queue until it returns.
            let inner: Vec<_> = (0..4u32)
                .map(|i| same.submit(move || i * 10).expect("refused"))
                .collect();
            tx.send(()).unwrap();
            inner
        })
        .unwrap()
    };
    rx.recv_timeout(LIMIT)
        .expect("a task submitting to its own full pool was blocked");
    let inner = outer.into_result().unwrap();
    for (i, f) in inner.iter().enumerate() {
        assert_eq!(*f.result(Some(LIMIT)).unwrap(), i as u32 * 10);
    }
    pool.shutdown(ShutdownOptions::wait());
    assert_eq!(pool.stats().completed, 5);
}

/// The bypass is for the pool's own workers only: a task of *another* pool submitting to a full
/// queue is held back like any other submitter.
#[test]
fn other_pools_worker_is_held_back() {
    let target = Arc::new(bounded(1, 1));
    let other = ThreadPoolExecutor::new(1).unwrap();
    let latch = Latch::new();
    let _open = latch.opener();
    let held = {
        let latch = Arc::clone(&latch);
        target.submit(move || latch.hold()).unwrap()
    };
    latch.wait_started(1);
    let queued = target.submit(|| 1u32).unwrap();

    let (tx, rx) = mpsc::channel();
    let via_other = {
        let target = Arc::clone(&target);
        other
            .submit(move || {
                let f = target.submit(|| 2u32).expect("refused");
                tx.send(()).unwrap();
                *f.result(Some(LIMIT)).unwrap()
            })
            .unwrap()
    };
    assert_eq!(
        rx.recv_timeout(BLOCKED_FOR),
        Err(mpsc::RecvTimeoutError::Timeout),
        "another pool's worker bypassed the queue bound"
    );
    assert_eq!(target.stats().queued, 1);
    latch.open();
    rx.recv_timeout(LIMIT).expect("the submit never proceeded");
    held.result(Some(LIMIT)).unwrap();
    assert_eq!(*queued.result(Some(LIMIT)).unwrap(), 1);
    assert_eq!(*via_other.result(Some(LIMIT)).unwrap(), 2);
}

/// `max_queued(0)` and `max_workers(0)` are build errors naming the field.
#[test]
fn zero_bounds_are_build_errors_naming_the_field() {
    let e = ThreadPoolExecutor::builder()
        .max_queued(0)
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "max_queued");
    assert!(e.to_string().contains("`max_queued` = 0"), "{e}");

    let e = ThreadPoolExecutor::builder()
        .max_workers(0)
        .max_queued(4)
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "max_workers");
    assert!(e.to_string().contains("`max_workers` = 0"), "{e}");

    let e = ThreadPoolExecutor::new(0).unwrap_err();
    assert_eq!(e.field(), "max_workers");

    let ok = ThreadPoolExecutor::builder()
        .max_workers(1)
        .max_queued(1)
        .build()
        .unwrap();
    assert_eq!(ok.max_queued(), Some(1));
    assert_eq!(ThreadPoolExecutor::new(1).unwrap().max_queued(), None);
}
