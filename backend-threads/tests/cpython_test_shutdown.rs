//! Port of the thread-pool parts of CPython's
//! `Lib/test/test_concurrent_futures/test_shutdown.py`
//! (<https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_shutdown.py>):
//! `ExecutorShutdownTest` as run by `ThreadPoolShutdownTest`, and `ThreadPoolShutdownTest`'s own
//! tests, checked against SEMANTICS.md sections G2, I and J.
//!
//! Python's "the interpreter exits" becomes "the pool is dropped" (SEMANTICS I5: dropping is
//! `shutdown(wait = true)`), and Python's `t.join()` on the pool's threads becomes a thread-exit
//! probe (see [`ExitProbe`]): each task leaves a marker in a thread-local of its worker thread,
//! which is released only when that thread exits.
//!
//! Not ported: `ProcessPoolShutdownTest` (process backend), and the subprocess mechanics
//! (`assert_python_ok`, `signal.alarm`) of the interpreter-exit tests, whose intent is ported.
//!
//! Timing: no assertion depends on how long anything takes. Tasks block on [`Event`]s and
//! [`Counter`]s; every wait is bounded by [`LIMIT`] (a hang becomes a failure, see [`within`]).

// Each test file is its own crate and uses only part of the shared helpers.
#[allow(dead_code)]
mod support;

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use backend_threads::ThreadPoolExecutor;
use executor_core::{
    Executor, Introspect, MapError, MapOptions, RejectReason, ReturnWhen, Shutdown,
    ShutdownOptions, wait,
};
use support::{Counter, Event, LIMIT};

/// `ThreadPoolMixin`'s `worker_count`.
const WORKER_COUNT: usize = 5;

thread_local! {
    static HELD: RefCell<Vec<Arc<()>>> = const { RefCell::new(Vec::new()) };
}

/// Tells whether every thread that ran one of its tasks has exited (Python: `t.join()` for each
/// of `executor._threads`). A task calls [`ExitProbe::mark`]; the marker sits in a thread-local
/// of the worker thread and is dropped only when that thread exits. Thread-local destructors run
/// before a thread can be joined, so once the pool has joined its threads the count is exact.
#[derive(Clone, Default)]
struct ExitProbe(Arc<()>);

impl ExitProbe {
    fn mark(&self) {
        let marker = Arc::clone(&self.0);
        HELD.with(|held| held.borrow_mut().push(marker));
    }

    /// Threads that ran a marked task and are still alive.
    fn alive(&self) -> usize {
        Arc::strong_count(&self.0) - 1
    }
}

/// Runs `f` on a helper thread and fails if it does not return within [`LIMIT`] (Python's
/// `signal.alarm`): a hang becomes a test failure instead of a stuck test run.
fn within<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(LIMIT)
        .unwrap_or_else(|_| panic!("{what} did not return within {LIMIT:?}"))
}

fn pool(workers: usize) -> ThreadPoolExecutor {
    ThreadPoolExecutor::new(workers).unwrap()
}

// --- ExecutorShutdownTest, as run for the thread pool -------------------------------------------

/// Ports `test_run_after_shutdown`: submit after shutdown fails (Python: `RuntimeError`). Here
/// (SEMANTICS G2) the error says "cannot schedule new futures after shutdown" and hands the task
/// back; `map` is refused the same way (I1).
#[test]
fn run_after_shutdown() {
    let pool = pool(WORKER_COUNT);
    pool.shutdown(ShutdownOptions::wait());
    let refused = pool.submit(|| 2u64.pow(5)).unwrap_err();
    assert!(refused.is_shutdown());
    assert_eq!(refused.reason(), &RejectReason::Shutdown);
    assert_eq!(
        refused.to_string(),
        "cannot schedule new futures after shutdown"
    );
    let task = refused.into_inner();
    assert_eq!(task(), 32, "the refused task comes back, still runnable");

    match pool.map([|| 1], MapOptions::new()) {
        Err(MapError::Rejected(RejectReason::Shutdown)) => {}
        other => panic!("map after shutdown: {:?}", other.map(|_| ())),
    }
}

/// Ports `test_interpreter_shutdown`: a task still running when the program ends (here: when the
/// pool is dropped, SEMANTICS I5) completes, and its pool's threads are gone afterwards.
///
/// The task is released from a helper thread a moment after it starts, so that the drop most
/// likely begins while it is still running; the assertions hold whatever the interleaving.
#[test]
fn interpreter_shutdown() {
    let (started, release) = (Counter::default(), Event::default());
    let printed = Arc::new(AtomicBool::new(false));
    let probe = ExitProbe::default();
    let pool = pool(5);
    let future = {
        let (started, release, printed, probe) = (
            started.clone(),
            release.clone(),
            Arc::clone(&printed),
            probe.clone(),
        );
        pool.submit(move || {
            probe.mark();
            started.add(1);
            release.wait();
            printed.store(true, Ordering::SeqCst);
            "apple"
        })
        .unwrap()
    };
    started.wait_for(1);
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        release.set();
    });
    within("dropping the pool", move || drop(pool));
    assert!(
        printed.load(Ordering::SeqCst),
        "the pool was dropped before its running task completed"
    );
    assert_eq!(*future.result(Some(Duration::ZERO)).unwrap(), "apple");
    assert_eq!(probe.alive(), 0, "a worker thread outlived its pool");
    releaser.join().unwrap();
}

/// Ports `test_submit_after_interpreter_shutdown`: a submit that comes after shutdown (Python:
/// from an `atexit` hook) fails with "cannot schedule new futures after shutdown". Here it comes
/// from a task of the pool that is still running while the pool shuts down; the task gets its
/// closure back (SEMANTICS G2).
#[test]
fn submit_after_interpreter_shutdown() {
    let pool = Arc::new(pool(5));
    let (started, release) = (Counter::default(), Event::default());
    let future = {
        let (same_pool, started, release) = (Arc::clone(&pool), started.clone(), release.clone());
        pool.submit(move || {
            started.add(1);
            release.wait();
            match same_pool.submit(|| 42) {
                Ok(_) => Err("accepted after shutdown".to_owned()),
                Err(refused) if refused.is_shutdown() => {
                    let handed_back = refused.to_string();
                    Ok((handed_back, refused.into_inner()()))
                }
                Err(refused) => Err(format!("refused for another reason: {refused}")),
            }
        })
        .unwrap()
    };
    started.wait_for(1);
    pool.shutdown(ShutdownOptions::no_wait());
    release.set();
    let (message, value) = future.result(Some(LIMIT)).unwrap().clone().unwrap();
    assert_eq!(message, "cannot schedule new futures after shutdown");
    assert_eq!(value, 42);
    pool.shutdown(ShutdownOptions::wait());
}

/// Ports `test_hang_issue12364`: 50 short tasks, then `shutdown()` (wait) returns only when all
/// have run (SEMANTICS I2), so every result is there without waiting.
#[test]
fn hang_issue12364() {
    let pool = pool(WORKER_COUNT);
    let futures: Vec<_> = (0..50u64)
        .map(|i| {
            pool.submit(move || {
                std::thread::sleep(Duration::from_millis(1));
                i
            })
            .unwrap()
        })
        .collect();
    within("shutdown(wait)", {
        let pool = Arc::new(pool);
        move || pool.shutdown(ShutdownOptions::wait())
    });
    for (i, f) in (0..).zip(&futures) {
        assert_eq!(*f.result(Some(Duration::ZERO)).unwrap(), i);
    }
}

/// Ports `test_cancel_futures`: `shutdown(cancel_futures=True)` cancels what has not started and
/// lets the rest finish without error (SEMANTICS I4). Python can only say "more than 20 of 50
/// were cancelled, at least one finished"; here the 5 workers are held busy until the
/// cancellation has happened (the last queued future's done callback, which runs in the
/// cancelling thread, opens the gate), so exactly 45 are cancelled and 5 finish. The cancelled
/// futures are done for `wait` at once (SEMANTICS E1, FIX of gh-92001).
#[test]
fn cancel_futures() {
    let pool = pool(WORKER_COUNT);
    let (started, release) = (Counter::default(), Event::default());
    let running: Vec<_> = (0..WORKER_COUNT)
        .map(|_| {
            let (started, release) = (started.clone(), release.clone());
            pool.submit(move || {
                started.add(1);
                release.wait();
            })
            .unwrap()
        })
        .collect();
    started.wait_for(WORKER_COUNT);
    let queued: Vec<_> = (0..50 - WORKER_COUNT)
        .map(|_| pool.submit(|| ()).unwrap())
        .collect();
    // Shutdown cancels the queue in order: once the last is cancelled, so are all the others.
    queued[queued.len() - 1].add_done_callback(move |_| release.set());

    pool.shutdown(ShutdownOptions::wait().cancel_futures());

    let cancelled = queued.iter().filter(|f| f.cancelled()).count();
    assert_eq!(cancelled, 45);
    for f in &running {
        assert!(f.done());
        assert!(f.error(Some(Duration::ZERO)).unwrap().is_none());
    }
    let all_done = wait(&queued, Some(Duration::ZERO), ReturnWhen::AllCompleted);
    assert_eq!(all_done.done.len(), queued.len());
}

/// Ports `test_hang_gh83386`: `shutdown(wait=False)` with a running task returns at once, and the
/// task still completes in the background (SEMANTICS I3). The task is released only after
/// `shutdown` has returned, so `shutdown` cannot have waited for it.
#[test]
fn hang_gh83386() {
    let pool = Arc::new(pool(3));
    let release = Event::default();
    let probe = ExitProbe::default();
    let future = {
        let (release, probe) = (release.clone(), probe.clone());
        pool.submit(move || {
            probe.mark();
            release.wait();
            "apple"
        })
        .unwrap()
    };
    within("shutdown(wait=False)", {
        let pool = Arc::clone(&pool);
        move || pool.shutdown(ShutdownOptions::no_wait())
    });
    release.set();
    assert_eq!(*future.result(Some(LIMIT)).unwrap(), "apple");
    within("dropping the pool", move || drop(pool));
    assert_eq!(probe.alive(), 0, "a worker thread outlived its pool");
}

/// Ports `test_hang_gh94440`: `shutdown(wait=True)` does not hang when a future was submitted and
/// cancelled right before it.
#[test]
fn hang_gh94440() {
    for _ in 0..20 {
        let pool = Arc::new(pool(1));
        pool.submit(|| 0).unwrap().result(Some(LIMIT)).unwrap();
        pool.submit(|| 0).unwrap().cancel();
        within("shutdown(wait) after a cancelled submit", move || {
            pool.shutdown(ShutdownOptions::wait())
        });
    }
}

// --- ThreadPoolShutdownTest -----------------------------------------------------------------

/// Ports `test_threads_terminate`: three blocked tasks start three threads; after `shutdown()`
/// (wait) every thread has exited (SEMANTICS I2).
#[test]
fn threads_terminate() {
    let pool = pool(WORKER_COUNT);
    let (sem, probe) = (Counter::default(), ExitProbe::default());
    for _ in 0..3 {
        let (sem, probe) = (sem.clone(), probe.clone());
        pool.submit(move || {
            probe.mark();
            sem.acquire();
        })
        .unwrap();
    }
    assert_eq!(pool.stats().workers, 3);
    sem.add(3);
    pool.shutdown(ShutdownOptions::wait());
    assert_eq!(pool.stats().workers, 0);
    assert_eq!(probe.alive(), 0, "a worker thread outlived shutdown(wait)");
}

/// Ports `test_context_manager_shutdown`: leaving the `with` block (dropping the pool, SEMANTICS
/// I5) joins the threads; `map` gives the results in order (H1).
#[test]
fn context_manager_shutdown() {
    let probe = ExitProbe::default();
    {
        let pool = pool(5);
        let tasks = (-5i32..5).map(|x| {
            let probe = probe.clone();
            move || {
                probe.mark();
                x.abs()
            }
        });
        let results: Vec<i32> = pool
            .map(tasks, MapOptions::new())
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(results, [5, 4, 3, 2, 1, 0, 1, 2, 3, 4]);
    }
    assert_eq!(probe.alive(), 0, "a worker thread outlived its pool");
}

/// Ports `test_del_shutdown`: deleting the executor with results unread waits for the tasks and
/// joins the threads; the results were all computed.
///
/// Difference: a `map` iterator borrows its pool (SEMANTICS H6: it keeps the executor alive), so
/// the Rust compiler forbids dropping the pool while it lives; the port uses the futures of
/// `submit`, which do not borrow the pool.
#[test]
fn del_shutdown() {
    let probe = ExitProbe::default();
    let pool = pool(5);
    let futures: Vec<_> = (-5i32..5)
        .map(|x| {
            let probe = probe.clone();
            pool.submit(move || {
                probe.mark();
                x.abs()
            })
            .unwrap()
        })
        .collect();
    within("dropping the pool", move || drop(pool));
    assert_eq!(probe.alive(), 0, "a worker thread outlived its pool");
    for (x, f) in (-5i32..5).zip(&futures) {
        assert_eq!(*f.result(Some(Duration::ZERO)).unwrap(), x.abs());
    }
}

/// Ports `test_shutdown_no_wait`: after `shutdown(wait=False)` the threads still finish the work
/// and exit; the `map` results are all there (SEMANTICS I3).
#[test]
fn shutdown_no_wait() {
    let probe = ExitProbe::default();
    let pool = Arc::new(pool(5));
    let tasks = (-5i32..5).map(|x| {
        let probe = probe.clone();
        move || {
            probe.mark();
            x.abs()
        }
    });
    let results = pool.map(tasks, MapOptions::new()).unwrap();
    within("shutdown(wait=False)", {
        let pool = Arc::clone(&pool);
        move || pool.shutdown(ShutdownOptions::no_wait())
    });
    let results: Vec<i32> = results.map(Result::unwrap).collect();
    assert_eq!(results, [5, 4, 3, 2, 1, 0, 1, 2, 3, 4]);
    within("dropping the pool", move || drop(pool));
    assert_eq!(probe.alive(), 0, "a worker thread outlived its pool");
}

/// Ports `test_thread_names_assigned`: with `thread_name_prefix='SpecialPool'` the threads are
/// named `SpecialPool_0` .. `SpecialPool_4` (SEMANTICS J3).
#[test]
fn thread_names_assigned() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(5)
        .thread_name_prefix("SpecialPool")
        .build()
        .unwrap();
    let names: Vec<String> = pool
        .map(
            (0..10).map(|_| || std::thread::current().name().map(str::to_owned)),
            MapOptions::new(),
        )
        .unwrap()
        .map(|name| name.unwrap().expect("a pool thread has a name"))
        .collect();
    drop(pool);
    for name in &names {
        let index = name
            .strip_prefix("SpecialPool_")
            .unwrap_or_else(|| panic!("{name:?} does not match ^SpecialPool_[0-4]$"));
        assert!(
            matches!(index, "0" | "1" | "2" | "3" | "4"),
            "{name:?} does not match ^SpecialPool_[0-4]$"
        );
    }
}

/// Ports `test_thread_names_default`: without a prefix the names match
/// `ThreadPoolExecutor-\d+_[0-4]$`, and (the test's comment) are unique to the pool: two pools
/// get different prefixes.
#[test]
fn thread_names_default() {
    fn default_prefix(name: &str) -> &str {
        let (prefix, index) = name
            .rsplit_once('_')
            .unwrap_or_else(|| panic!("{name:?} has no `_index`"));
        assert!(
            matches!(index, "0" | "1" | "2" | "3" | "4"),
            "{name:?} does not match ThreadPoolExecutor-\\d+_[0-4]$"
        );
        let number = prefix
            .strip_prefix("ThreadPoolExecutor-")
            .unwrap_or_else(|| panic!("{name:?} does not match ThreadPoolExecutor-\\d+_[0-4]$"));
        assert!(
            !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()),
            "{name:?} does not match ThreadPoolExecutor-\\d+_[0-4]$"
        );
        prefix
    }

    let mut prefixes = Vec::new();
    for _ in 0..2 {
        let pool = pool(5);
        let names: Vec<String> = pool
            .map(
                (0..10).map(|_| || std::thread::current().name().map(str::to_owned)),
                MapOptions::new(),
            )
            .unwrap()
            .map(|name| name.unwrap().expect("a pool thread has a name"))
            .collect();
        let mut own: Vec<&str> = names.iter().map(|n| default_prefix(n)).collect();
        own.dedup();
        assert_eq!(own.len(), 1, "one pool, several prefixes: {names:?}");
        prefixes.push(own[0].to_owned());
    }
    assert_ne!(prefixes[0], prefixes[1], "two pools share a default prefix");
}

/// Ports `test_cancel_futures_wait_false`: `shutdown(wait=False, cancel_futures=True)` returns at
/// once; the running task completes ("apple"), the queued one is cancelled (Python accepts either
/// outcome for its single task, gh-116682; here one task is known to be running and one queued),
/// and the end of the program (the drop) reports no error and does not hang.
#[test]
fn cancel_futures_wait_false() {
    let pool = Arc::new(pool(1));
    let (started, release) = (Counter::default(), Event::default());
    let running = {
        let (started, release) = (started.clone(), release.clone());
        pool.submit(move || {
            started.add(1);
            release.wait();
            "apple"
        })
        .unwrap()
    };
    started.wait_for(1);
    let queued = pool.submit(|| "banana").unwrap();
    within("shutdown(wait=False, cancel_futures=True)", {
        let pool = Arc::clone(&pool);
        move || pool.shutdown(ShutdownOptions::no_wait().cancel_futures())
    });
    assert!(queued.cancelled(), "the queued task was not cancelled");
    release.set();
    assert_eq!(*running.result(Some(LIMIT)).unwrap(), "apple");
    within("dropping the pool", move || drop(pool));
}

// --- Shutdown rules without a Python test of their own ----------------------------------------

/// SEMANTICS I5 (no Python counterpart: Python's executor is never dropped by its own thread): a
/// task that drops the last handle to its own pool does not hang: the drop shuts the pool down
/// from one of its own threads, which must not wait to join itself.
#[test]
fn task_dropping_the_last_handle_to_its_pool_does_not_hang() {
    for workers in [1, 2] {
        let pool = Arc::new(pool(workers));
        let release = Event::default();
        let probe = ExitProbe::default();
        let last = Arc::clone(&pool);
        let future = {
            let (release, probe) = (release.clone(), probe.clone());
            pool.submit(move || {
                probe.mark();
                release.wait();
                let handles = Arc::strong_count(&last);
                drop(last); // the pool's drop runs here, on the pool's own thread
                handles
            })
            .unwrap()
        };
        drop(pool);
        release.set();
        assert_eq!(
            *future.result(Some(LIMIT)).unwrap(),
            1,
            "the task did not hold the last handle"
        );
        // The worker exits on its own once the task has returned; nothing joins it.
        let deadline = std::time::Instant::now() + LIMIT;
        while probe.alive() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the worker that dropped its pool never exited"
            );
            std::thread::yield_now();
        }
    }
}

/// SEMANTICS I2 and I5 together: queued (not only running) tasks still run when the pool is
/// dropped, in the default (no cancellation) mode.
#[test]
fn dropping_the_pool_runs_queued_tasks() {
    let pool = pool(1);
    let (started, release) = (Counter::default(), Event::default());
    let first = {
        let (started, release) = (started.clone(), release.clone());
        pool.submit(move || {
            started.add(1);
            release.wait();
            1
        })
        .unwrap()
    };
    started.wait_for(1);
    let queued: Vec<_> = (2..=10).map(|i| pool.submit(move || i).unwrap()).collect();
    release.set();
    within("dropping the pool", move || drop(pool));
    assert_eq!(*first.result(Some(Duration::ZERO)).unwrap(), 1);
    for (i, f) in (2..).zip(&queued) {
        assert_eq!(*f.result(Some(Duration::ZERO)).unwrap(), i);
    }
}
