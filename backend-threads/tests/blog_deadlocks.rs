//! The two deadlock examples of the motivating blog post (`seed/`, a Korean walk-through of
//! `concurrent.futures`, quoting the Python docs' `ThreadPoolExecutor` section), which must
//! return instead of hanging (SEMANTICS K2, BEYOND):
//!
//! ```python
//! def wait_on_b():
//!     time.sleep(5)
//!     print(b.result())  # b will never complete because it is waiting on a.
//!     return 5
//!
//! def wait_on_a():
//!     time.sleep(5)
//!     print(a.result())  # a will never complete because it is waiting on b.
//!     return 6
//!
//! executor = ThreadPoolExecutor(max_workers=2)
//! a = executor.submit(wait_on_b)
//! b = executor.submit(wait_on_a)
//! ```
//!
//! ```python
//! def wait_on_future():
//!     f = executor.submit(pow, 5, 2)
//!     # This will never complete because there is only one worker thread and
//!     # it is executing this function.
//!     print(f.result())
//!
//! executor = ThreadPoolExecutor(max_workers=1)
//! executor.submit(wait_on_future)
//! ```
//!
//! Example 1 must end with one of the two waits failing with [`ResultError::Deadlock`] naming
//! the cycle (the other task then completes); example 2 must return the value (the waiting
//! worker runs the queued task itself).
//!
//! "Must return" is enforced without any timing assertion: every wait, in the tasks and in the
//! test, is `result(Some(1 s))`, so a hang turns into a `Timeout` failure. Each case runs 100
//! times on a fresh pool to give races a chance to show. Example 1 has two interleavings (both
//! tasks running on their own worker, or `a`'s worker claiming the still-queued `b` and running
//! it inline); besides the example as written, each is also forced on purpose.

use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use backend_threads::ThreadPoolExecutor;
use executor_core::{
    DeadlockError, Executor, FutureHandle, Introspect, ResultError, Shutdown, ShutdownOptions,
    Task, TaskError,
};

/// Every wait in this file: a hang becomes a `Timeout` failure after this long.
const SECOND: Duration = Duration::from_secs(1);

/// How many times each case runs, each on a fresh pool.
const ITERATIONS: usize = 100;

/// A closure with a name, so that errors say `wait_on_a` / `wait_on_b` as the blog's functions do.
struct Named<F> {
    name: &'static str,
    f: F,
}

impl<F, R> Task for Named<F>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + Sync + 'static,
{
    type Output = R;

    fn run(self) -> Result<R, TaskError> {
        Ok((self.f)())
    }

    fn name(&self) -> &'static str {
        self.name
    }
}

/// Holds the blocker of [`Interleaving::BQueued`]: not part of what must return within a
/// second, so as long as the other bounds in this crate's tests.
const BLOCKER_LIMIT: Duration = Duration::from_secs(30);

/// A countdown that every participant waits on, giving up after a limit.
#[derive(Clone, Default)]
struct Rendezvous(Arc<(Mutex<usize>, Condvar)>);

impl Rendezvous {
    /// Arrives and waits until `n` have arrived; `false` if that took longer than [`SECOND`].
    fn arrive_and_wait(&self, n: usize) -> bool {
        self.arrive_and_wait_at_most(n, SECOND)
    }

    /// Arrives and waits until `n` have arrived; `false` if that took longer than `limit`.
    fn arrive_and_wait_at_most(&self, n: usize, limit: Duration) -> bool {
        let (count, changed) = &*self.0;
        let mut count = count.lock().unwrap();
        *count += 1;
        changed.notify_all();
        let (count, _) = changed
            .wait_timeout_while(count, limit, |c| *c < n)
            .unwrap();
        *count >= n
    }
}

/// What each of example 1's tasks hands back: `Ok(its value)` once the future it waited on
/// completed, or the error its own wait failed with.
type Waited = Result<u32, ResultError>;

/// How example 1 is driven.
#[derive(Clone, Copy, Debug)]
enum Interleaving {
    /// As the blog writes it: whatever the scheduler does.
    AsWritten,
    /// Both tasks are running, each on its own worker, before either waits.
    BothRunning,
    /// `a` waits while `b` is still queued (the pool's other worker is busy), so `a`'s worker
    /// runs `b` inline and `b`'s wait on `a` closes the cycle on one thread.
    BQueued,
}

/// Runs example 1 once and checks its outcome.
fn mutual_wait(interleaving: Interleaving, iteration: usize) {
    let pool = ThreadPoolExecutor::new(2).unwrap();
    let context = format!("{interleaving:?}, iteration {iteration}");

    // In `BQueued`, one of the two workers is kept busy until both futures are resolved.
    let blocker_release = Rendezvous::default();
    let blocker = match interleaving {
        Interleaving::BQueued => {
            let (release, started) = (blocker_release.clone(), Rendezvous::default());
            let started_in_task = started.clone();
            let f = pool
                .submit(move || {
                    started_in_task.arrive_and_wait(1);
                    release.arrive_and_wait_at_most(2, BLOCKER_LIMIT)
                })
                .unwrap();
            // Wait until the blocker occupies its worker, so that `a` gets the other one.
            assert!(
                started.arrive_and_wait_at_most(2, BLOCKER_LIMIT),
                "{context}: blocker did not start"
            );
            Some(f)
        }
        _ => None,
    };

    let both_running = Rendezvous::default();
    let (send_b, recv_b) = mpsc::channel::<Arc<FutureHandle<Waited>>>();
    let (send_a, recv_a) = mpsc::channel::<Arc<FutureHandle<Waited>>>();
    let task = |name: &'static str, value: u32, other: mpsc::Receiver<_>| {
        let both_running = both_running.clone();
        Named {
            name,
            f: move || -> Waited {
                let other: Arc<FutureHandle<Waited>> =
                    other.recv_timeout(SECOND).expect("the other future");
                if matches!(interleaving, Interleaving::BothRunning) {
                    assert!(
                        both_running.arrive_and_wait(2),
                        "the two tasks were not running together"
                    );
                }
                other.result(Some(SECOND))?; // Python: print(b.result())
                Ok(value)
            },
        }
    };
    let a = Arc::new(pool.submit(task("wait_on_b", 5, recv_b)).unwrap());
    let b = Arc::new(pool.submit(task("wait_on_a", 6, recv_a)).unwrap());
    send_b.send(Arc::clone(&b)).unwrap();
    send_a.send(Arc::clone(&a)).unwrap();

    let outcome = |f: &FutureHandle<Waited>| -> Waited {
        match f.result(Some(SECOND)) {
            Ok(waited) => waited.clone(),
            Err(e) => panic!("{context}: task `{}` did not return: {e}", f.info().name()),
        }
    };
    let (from_a, from_b) = (outcome(&a), outcome(&b));
    let deadlock: &DeadlockError = match (&from_a, &from_b) {
        (Ok(5), Err(ResultError::Deadlock(d))) | (Err(ResultError::Deadlock(d)), Ok(6)) => d,
        _ => panic!(
            "{context}: expected one deadlock error and one value, got a = {from_a:?}, b = {from_b:?}"
        ),
    };

    // The error names the cycle: both tasks, by id and by name.
    let mut ids: Vec<_> = deadlock.cycle().iter().map(|t| t.id()).collect();
    ids.sort();
    let mut expected = vec![a.id(), b.id()];
    expected.sort();
    assert_eq!(ids, expected, "{context}: {deadlock}");
    let message = deadlock.to_string();
    assert!(
        message.starts_with("deadlock: task `wait_on_"),
        "{context}: {message}"
    );
    assert!(
        message.contains("`wait_on_a`") && message.contains("`wait_on_b`"),
        "{context}: {message}"
    );
    if matches!(interleaving, Interleaving::BQueued) {
        // `a` waited first, on a queued `b` that its own worker then ran: `b`'s wait failed.
        assert!(from_a.is_ok(), "{context}: a = {from_a:?}");
    }

    if let Some(blocker) = blocker {
        blocker_release.arrive_and_wait(1);
        let released = blocker.result(Some(BLOCKER_LIMIT)).unwrap();
        assert!(
            *released,
            "{context}: the blocker gave up before the example ended"
        );
    }
    pool.shutdown(ShutdownOptions::wait());
}

/// Blog example 1 as written: `max_workers=2`, `a` waits on `b` while `b` waits on `a`. It
/// returns, with one of the waits failing with a deadlock error naming the cycle.
#[test]
fn mutual_wait_returns_with_a_deadlock_error() {
    for i in 0..ITERATIONS {
        mutual_wait(Interleaving::AsWritten, i);
    }
}

/// Blog example 1 with Python's `time.sleep(5)` made exact: both tasks are running on their own
/// worker before either waits, so the cycle spans two threads.
#[test]
fn mutual_wait_across_two_running_workers() {
    for i in 0..ITERATIONS {
        mutual_wait(Interleaving::BothRunning, i);
    }
}

/// Blog example 1 with `b` still queued when `a` waits: `a`'s worker runs `b` inline, and `b`'s
/// wait on `a` (which is below it on the same thread) is the deadlock.
#[test]
fn mutual_wait_with_the_other_task_queued() {
    for i in 0..ITERATIONS {
        mutual_wait(Interleaving::BQueued, i);
    }
}

/// Blog example 2: `max_workers=1`, the only worker's task submits `pow(5, 2)` to its own pool
/// and waits on it. It returns 25: the waiting worker runs the queued task itself.
#[test]
fn waiting_on_own_pool_with_one_worker_returns_the_value() {
    for i in 0..ITERATIONS {
        let pool = Arc::new(ThreadPoolExecutor::new(1).unwrap());
        let executor = Arc::clone(&pool);
        let outer = pool
            .submit(Named {
                name: "wait_on_future",
                f: move || -> Result<u32, ResultError> {
                    let f = executor
                        .submit(Named {
                            name: "pow",
                            f: || 5u32.pow(2),
                        })
                        .unwrap();
                    f.result(Some(SECOND)).copied() // Python: print(f.result())
                },
            })
            .unwrap();
        match outer.result(Some(SECOND)) {
            Ok(Ok(25)) => {}
            other => panic!("iteration {i}: expected 25, got {other:?}"),
        }
        assert_eq!(
            pool.stats().workers,
            1,
            "iteration {i}: a second thread started"
        );
        pool.shutdown(ShutdownOptions::wait());
    }
}

/// Blog example 2, deeper: with one worker, a chain of tasks each waiting on one it submits to
/// the same pool still returns (every level runs the next inline).
#[test]
fn nested_waits_on_own_pool_with_one_worker_return() {
    fn level(pool: Arc<ThreadPoolExecutor>, depth: u32) -> Result<u32, ResultError> {
        if depth == 0 {
            return Ok(0);
        }
        let same = Arc::clone(&pool);
        let f = pool.submit(move || level(same, depth - 1)).unwrap();
        match f.result(Some(SECOND))? {
            Ok(below) => Ok(below + 1),
            Err(e) => Err(e.clone()),
        }
    }

    for i in 0..ITERATIONS {
        let pool = Arc::new(ThreadPoolExecutor::new(1).unwrap());
        let same = Arc::clone(&pool);
        let outer = pool.submit(move || level(same, 8)).unwrap();
        match outer.result(Some(SECOND)) {
            Ok(Ok(8)) => {}
            other => panic!("iteration {i}: expected 8, got {other:?}"),
        }
        pool.shutdown(ShutdownOptions::wait());
    }
}
