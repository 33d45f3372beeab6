//! Blocking waits made inside async tasks of the tokio backend (SEMANTICS M3, issue #5: "using
//! the blocking calls from inside the runtime is either made safe or refused with a clear error,
//! never a hang").
//!
//! On a multi-thread runtime they run inside tokio's `block_in_place` and work. The tests use a
//! runtime with a *single* worker thread: a wait that parked that thread without telling tokio
//! would leave the awaited sibling no thread to run on, and the test would fail with a timeout.
//! On a current-thread runtime they are refused at once with `Refused`, while `.await` in the
//! same place works.

mod support;

use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use backend_async::AsyncExecutor;
use executor_core::{
    Executor, MapOptions, Promise, ResultError, ReturnWhen, ShutdownOptions, WaitError,
    as_completed, wait,
};
use support::{Gate, LIMIT, current_thread_runtime, recv, within};

/// An executor on a multi-thread runtime of its own with one worker thread.
fn one_worker_thread(max_workers: usize) -> AsyncExecutor {
    AsyncExecutor::builder()
        .max_workers(max_workers)
        .worker_threads(1)
        .build()
        .unwrap()
}

/// An executor on a current-thread runtime of the user's.
fn on_current_thread(runtime: &tokio::runtime::Runtime, max_workers: usize) -> AsyncExecutor {
    AsyncExecutor::builder()
        .max_workers(max_workers)
        .handle(runtime.handle().clone())
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Multi-thread runtime: made safe
// ---------------------------------------------------------------------------------------------

/// `result()` inside an async task waits for a sibling task of the same executor and returns
/// its value; the sibling can only run because the wait gave the one worker thread away.
#[test]
fn blocking_result_inside_an_async_task_returns_the_siblings_value() {
    for round in 0..20u32 {
        let pool = one_worker_thread(4);
        let (gate, opener) = Gate::new();
        let producer = Arc::new(
            pool.submit_async(async move {
                gate.pass().await;
                round
            })
            .unwrap(),
        );
        let (waiting_tx, waiting_rx) = mpsc::channel();
        let consumer = {
            let producer = producer.clone();
            pool.submit_async(async move {
                waiting_tx.send(()).unwrap();
                // Holds the only worker thread until it blocks: the producer cannot finish first.
                producer.result(Some(LIMIT)).map(|v| *v + 1)
            })
            .unwrap()
        };
        recv(&waiting_rx, "the consumer is about to block");
        opener.open();
        let outcome = consumer.result(Some(LIMIT)).unwrap();
        assert_eq!(outcome.as_ref().ok(), Some(&(round + 1)), "{outcome:?}");
        assert_eq!(*producer.result(Some(Duration::ZERO)).unwrap(), round);
    }
}

/// The same for every blocking wait: `into_result`, `error`, `wait`, `as_completed` and `map`
/// iteration inside an async task, all waiting on work of the same executor.
#[test]
fn every_blocking_wait_inside_an_async_task_works_on_a_multi_thread_runtime() {
    let pool = Arc::new(one_worker_thread(8));
    let (gate, opener) = Gate::new();
    let gated = |value: u32| {
        let gate = gate.clone();
        pool.submit_async(async move {
            gate.pass().await;
            value
        })
        .unwrap()
    };
    let (a, b, c, d) = (gated(1), gated(2), gated(3), gated(4));
    let (waiting_tx, waiting_rx) = mpsc::channel();
    let same = pool.clone();
    let checker = pool
        .submit_async(async move {
            waiting_tx.send(()).unwrap();
            let r = wait([&a, &b], Some(LIMIT), ReturnWhen::AllCompleted);
            let waited = (r.done.len(), r.not_done.len());
            let error = c.error(Some(LIMIT)).map(|e| e.is_none());
            let completed: Vec<Result<u32, String>> = as_completed([&c, &d], Some(LIMIT))
                .map(|f| {
                    f.map_err(|e| e.to_string())
                        .map(|f| *f.result(Some(Duration::ZERO)).unwrap())
                })
                .collect();
            let squares: Vec<Result<u32, ResultError>> = same
                .map(
                    (1..=4u32).map(|n| move || n * n),
                    MapOptions::new().timeout(LIMIT),
                )
                .unwrap()
                .collect();
            drop(same);
            // Bounded first, so that a broken wait fails instead of hanging the runtime.
            let moved = match a.result(Some(LIMIT)) {
                Ok(_) => a.into_result(),
                Err(e) => Err(e),
            };
            (waited, error, completed, squares, moved)
        })
        .unwrap();
    recv(&waiting_rx, "the checker is about to block");
    opener.open();
    checker
        .result(Some(5 * LIMIT))
        .expect("the checker returned");
    let (waited, error, mut completed, squares, moved) = checker.into_result().unwrap();
    assert_eq!(waited, (2, 0), "wait(ALL_COMPLETED) saw both done");
    assert!(
        matches!(error, Ok(true)),
        "error() saw c succeed: {error:?}"
    );
    completed.sort();
    assert_eq!(completed, [Ok(3), Ok(4)]);
    let squares: Vec<u32> = squares.into_iter().map(Result::unwrap).collect();
    assert_eq!(squares, [1, 4, 9, 16]);
    assert_eq!(moved.unwrap(), 1);
}

/// K2 for async tasks: an async task of a one-place executor that blocks in `result()` on a
/// task it queued on the same executor holds the only place, so the awaited task can never
/// start. The wait must end — with the value (run inline, as a blocking task would) or with a
/// deadlock error — rather than sit out its whole timeout.
#[test]
fn a_blocking_wait_on_a_queued_task_of_a_one_place_executor_does_not_hang() {
    let pool = Arc::new(AsyncExecutor::new(1).unwrap());
    let same = pool.clone();
    let outer = pool
        .submit_async(async move {
            let queued_async = same.submit_async(async { 5u32 }).unwrap();
            let queued_blocking = same.submit(|| 6u32).unwrap();
            drop(same);
            let started = Instant::now();
            let a = queued_async.result(Some(LIMIT / 2)).copied();
            let b = queued_blocking.result(Some(LIMIT / 2)).copied();
            (a, b, started.elapsed())
        })
        .unwrap();
    outer
        .result(Some(2 * LIMIT))
        .expect("the outer task returned");
    let (a, b, elapsed) = outer.into_result().unwrap();
    assert_values_or_deadlock([("an async task", a, 5), ("a blocking task", b, 6)]);
    assert!(elapsed < LIMIT / 2, "{elapsed:?}");
}

/// K2 from a blocking task: a blocking task of a one-place executor on a multi-thread runtime
/// that blocks on an async and a blocking task it queued on the same executor gets both values
/// (or a deadlock error), not a timeout.
#[test]
fn a_blocking_task_waiting_on_queued_tasks_of_a_one_place_executor_does_not_hang() {
    let pool = Arc::new(AsyncExecutor::new(1).unwrap());
    let same = pool.clone();
    let outer = pool
        .submit(move || {
            let queued_async = same.submit_async(async { 5u32 }).unwrap();
            let queued_blocking = same.submit(|| 6u32).unwrap();
            drop(same);
            let a = queued_async.result(Some(LIMIT / 2)).copied();
            let b = queued_blocking.result(Some(LIMIT / 2)).copied();
            (a, b)
        })
        .unwrap();
    outer
        .result(Some(2 * LIMIT))
        .expect("the outer task returned");
    let (a, b) = outer.into_result().unwrap();
    assert_values_or_deadlock([("an async task", a, 5), ("a blocking task", b, 6)]);
}

/// Each outcome is its value or a deadlock error; lists the others.
#[track_caller]
fn assert_values_or_deadlock<const N: usize>(outcomes: [(&str, Result<u32, ResultError>, u32); N]) {
    let hung: Vec<String> = outcomes
        .into_iter()
        .filter_map(|(what, outcome, value)| match outcome {
            Ok(v) if v == value => None,
            Err(ResultError::Deadlock(_)) => None,
            other => Some(format!(
                "waiting on {what} queued behind the waiter: {other:?}"
            )),
        })
        .collect();
    assert!(hung.is_empty(), "{hung:#?}");
}

// ---------------------------------------------------------------------------------------------
// Current-thread runtime: refused, never a hang
// ---------------------------------------------------------------------------------------------

/// On a current-thread runtime, `result()` (with a 30 s timeout) inside an async task waiting on
/// a sibling that cannot run until the task yields is refused at once with `Refused`; so are
/// `error()` and `into_result()`. `.await` in the same place returns the value, and `result()` on
/// a future that is already done is fine.
#[test]
fn on_a_current_thread_runtime_blocking_results_are_refused_at_once_and_await_works() {
    let runtime = current_thread_runtime();
    let pool = on_current_thread(&runtime, 4);
    let (gate, opener) = Gate::new();
    let gated = |value: u32| {
        let gate = gate.clone();
        pool.submit_async(async move {
            gate.pass().await;
            value
        })
        .unwrap()
    };
    let (producer, consumed) = (gated(41), gated(7));
    let probe = pool
        .submit_async(async move {
            let started = Instant::now();
            let result = producer.result(Some(LIMIT)).copied();
            let error = producer.error(Some(LIMIT)).map(|e| e.is_none());
            // Only once a bounded wait was refused: were blocking allowed here, an unbounded one
            // would hang this runtime's only thread.
            let into_result =
                matches!(result, Err(ResultError::Refused(_))).then(|| consumed.into_result());
            let elapsed = started.elapsed();
            opener.open();
            let awaited = (&producer).await.copied();
            let again = producer.result(Some(LIMIT)).copied();
            (result, error, into_result, elapsed, awaited, again)
        })
        .unwrap();
    let outcome = runtime.block_on(async {
        let outcome = tokio::time::timeout(LIMIT, probe).await;
        // Drive the runtime until every task is done, so that dropping the executor on this
        // thread (which does not drive the runtime) has nothing to wait for.
        tokio::time::timeout(LIMIT, pool.shutdown_async(ShutdownOptions::wait()))
            .await
            .expect("the tasks finished");
        outcome
    });
    let (result, error, into_result, elapsed, awaited, again) = outcome.expect("no hang").unwrap();

    match &result {
        Err(ResultError::Refused(e)) => {
            assert!(e.advice().contains(".await"), "{e}");
            assert!(e.to_string().starts_with("refused to block"), "{e}");
        }
        other => panic!("result(): expected Refused, got {other:?}"),
    }
    assert!(
        matches!(error, Err(WaitError::Refused(_))),
        "error(): {error:?}"
    );
    assert!(
        matches!(into_result, Some(Err(ResultError::Refused(_)))),
        "into_result(): {into_result:?}"
    );
    assert!(
        elapsed < LIMIT / 2,
        "refused at once, not after the timeout: {elapsed:?}"
    );
    assert_eq!(
        awaited.unwrap(),
        41,
        "`.await` works where blocking is refused"
    );
    assert_eq!(
        again.unwrap(),
        41,
        "result() of a done future does not block"
    );
}

/// On a current-thread runtime, `wait` and `as_completed` inside an async task return what is
/// done now instead of blocking (as a timeout would), and `map` iteration yields `Refused` items
/// instead of blocking.
#[test]
fn on_a_current_thread_runtime_wait_as_completed_and_map_return_without_hanging() {
    let runtime = current_thread_runtime();
    let pool = Arc::new(on_current_thread(&runtime, 4));
    let (gate, opener) = Gate::new();
    let pending = {
        let gate = gate.clone();
        pool.submit_async(async move {
            gate.pass().await;
            2u32
        })
        .unwrap()
    };
    let (promise, done) = Promise::<u32>::new();
    promise.set_result(1).unwrap();
    let same = pool.clone();
    let probe = pool
        .submit_async(async move {
            let started = Instant::now();
            let r = wait([&pending, &done], Some(LIMIT), ReturnWhen::AllCompleted);
            let waited = (
                r.done.first().map(|f| f.id()) == Some(done.id()),
                r.done.len(),
                r.not_done.len(),
            );
            let completed: Vec<Result<bool, Option<(usize, usize)>>> =
                as_completed([&done, &pending], Some(LIMIT))
                    .map(|f| f.map(|f| f.id() == done.id()).map_err(|e| e.unfinished()))
                    .collect();
            let mapped: Vec<Result<u32, ResultError>> = {
                let gate = gate.clone();
                let tasks = (0..3u32).map(move |n| {
                    let gate = gate.clone();
                    move || {
                        gate.pass_blocking();
                        n
                    }
                });
                same.map(tasks, MapOptions::new().timeout(LIMIT))
                    .unwrap()
                    .take(1)
                    .collect()
            };
            drop(same);
            let elapsed = started.elapsed();
            opener.open();
            let awaited = (&pending).await.copied();
            (waited, completed, mapped, elapsed, awaited)
        })
        .unwrap();
    let outcome = runtime.block_on(async {
        let outcome = tokio::time::timeout(LIMIT, probe).await;
        // Drive the runtime until every task is done, so that dropping the executor on this
        // thread (which does not drive the runtime) has nothing to wait for.
        tokio::time::timeout(LIMIT, pool.shutdown_async(ShutdownOptions::wait()))
            .await
            .expect("the tasks finished");
        outcome
    });
    let (waited, completed, mapped, elapsed, awaited) = outcome.expect("no hang").unwrap();

    assert_eq!(waited, (true, 1, 1), "wait returned what was done");
    assert_eq!(
        completed,
        [Ok(true), Err(Some((1, 2)))],
        "as_completed yielded the done one, then ended as on a timeout"
    );
    assert!(
        matches!(mapped[..], [Err(ResultError::Refused(_))]),
        "map item: {mapped:?}"
    );
    assert!(
        elapsed < LIMIT / 2,
        "nothing waited for its timeout: {elapsed:?}"
    );
    assert_eq!(awaited.unwrap(), 2);
}

/// The refusal is for code this executor polls on a current-thread runtime; a plain thread that
/// blocks on the same futures is served as usual while the runtime is driven elsewhere.
#[test]
fn on_a_current_thread_runtime_plain_threads_still_block_as_usual() {
    let runtime = Arc::new(current_thread_runtime());
    let pool = on_current_thread(&runtime, 2);
    let (gate, opener) = Gate::new();
    let f = pool
        .submit_async(async move {
            gate.pass().await;
            3u32
        })
        .unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let driver = {
        let runtime = runtime.clone();
        std::thread::spawn(move || {
            runtime.block_on(async {
                let _ = tokio::time::timeout(LIMIT, stop_rx).await;
            });
        })
    };
    opener.open();
    assert_eq!(*f.result(Some(LIMIT)).unwrap(), 3);
    within(
        "dropping the executor while the runtime is driven",
        move || drop(pool),
    );
    stop_tx.send(()).unwrap();
    driver.join().unwrap();
}

/// K2 on a current-thread runtime (driven by `block_on`): a blocking task of a one-place
/// executor (it runs on tokio's blocking pool, where blocking is allowed) that blocks on an async
/// task it queued on the same executor gets the value or a deadlock error, not a timeout.
#[test]
fn on_a_current_thread_runtime_a_blocking_task_waiting_on_a_queued_async_task_does_not_hang() {
    let runtime = current_thread_runtime();
    let pool = Arc::new(on_current_thread(&runtime, 1));
    let same = pool.clone();
    let outer = pool
        .submit(move || {
            let queued = same.submit_async(async { 5u32 }).unwrap();
            drop(same);
            queued.result(Some(LIMIT / 2)).copied()
        })
        .unwrap();
    let outcome = runtime.block_on(async {
        let outcome = tokio::time::timeout(LIMIT, &outer).await;
        tokio::time::timeout(LIMIT, pool.shutdown_async(ShutdownOptions::wait()))
            .await
            .expect("the tasks finished");
        outcome
    });
    let outcome = outcome.expect("no hang").unwrap().clone();
    assert_values_or_deadlock([("an async task", outcome, 5)]);
}
