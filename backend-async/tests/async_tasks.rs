//! Async tasks on the tokio backend (SEMANTICS M1, M2, M4 with G–I; issue #5): the `max_workers`
//! bound, PENDING tasks that `cancel()` still stops, panics, `stop()`, shutdown with tasks
//! mid-await, submit after shutdown, drop, and use from inside and outside a runtime.
//!
//! No assertion depends on timing: tasks park behind a [`Gate`] the test opens, progress is
//! reported over channels, and every wait is bounded by [`LIMIT`] so that a regression fails
//! instead of hanging.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use backend_async::AsyncExecutor;
use executor_core::{
    Executor, FutureHandle, Introspect, ResultError, ReturnWhen, Shutdown, ShutdownOptions, State,
    TaskError, wait,
};
use support::{Gate, LIMIT, Occupancy, current_thread_runtime, recv, until, within};

/// Sends on its channel when dropped: tells the test that a task's state was dropped.
struct OnDrop(mpsc::Sender<()>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// A short look for something that must *not* happen yet. A correct implementation passes it
/// however long it is; a broken one fails it with high probability.
const NOT_YET: Duration = Duration::from_millis(200);

fn flags(n: usize) -> Arc<Vec<AtomicBool>> {
    Arc::new((0..n).map(|_| AtomicBool::new(false)).collect())
}

// ---------------------------------------------------------------------------------------------
// M2: the bound, PENDING and cancellable
// ---------------------------------------------------------------------------------------------

/// M2: exactly `max_workers` async tasks run at once (first come, first served); the rest are
/// PENDING, `cancel()` succeeds on them, and a cancelled one never runs.
#[test]
fn max_workers_bounds_running_async_tasks_the_rest_pending_and_cancellable() {
    for max_workers in [1, 2, 3, 8] {
        for _ in 0..25 {
            bound_round(max_workers, 5);
        }
    }
}

fn bound_round(max_workers: usize, extra: usize) {
    let total = max_workers + extra;
    let pool = AsyncExecutor::new(max_workers).unwrap();
    let (gate, opener) = Gate::new();
    let occupancy = Arc::new(Occupancy::default());
    let ran = flags(total);
    let (started_tx, started_rx) = mpsc::channel();
    let futures: Vec<FutureHandle<usize>> = (0..total)
        .map(|i| {
            let (gate, occupancy, ran) = (gate.clone(), occupancy.clone(), ran.clone());
            let started = started_tx.clone();
            pool.submit_async(async move {
                ran[i].store(true, Ordering::SeqCst);
                let _inside = occupancy.enter();
                started.send(i).unwrap();
                gate.pass().await;
                i
            })
            .unwrap()
        })
        .collect();
    drop(started_tx);

    let mut started: Vec<usize> = (0..max_workers)
        .map(|_| recv(&started_rx, "a task started"))
        .collect();
    started.sort_unstable();
    assert_eq!(
        started,
        (0..max_workers).collect::<Vec<_>>(),
        "the first {max_workers} submitted start first"
    );
    // Every place is held by a task parked behind the gate: nothing else may have started.
    for (i, f) in futures.iter().enumerate() {
        let expected = if i < max_workers {
            State::Running
        } else {
            State::Pending
        };
        assert_eq!(
            f.state(),
            expected,
            "task {i} of {total}, max_workers {max_workers}"
        );
    }
    assert_eq!(occupancy.now(), max_workers);
    let stats = pool.stats();
    assert_eq!(
        (stats.running, stats.queued),
        (max_workers, extra),
        "{stats:?}"
    );
    assert!(
        started_rx.try_recv().is_err(),
        "a task beyond the bound started"
    );

    assert!(!futures[0].cancel(), "a running task is not cancellable");
    let cancelled: Vec<usize> = (max_workers..total).step_by(2).collect();
    for &i in &cancelled {
        assert!(
            futures[i].cancel(),
            "task {i} is PENDING: cancel() succeeds"
        );
        assert!(futures[i].cancelled() && futures[i].done());
    }

    opener.open();
    for (i, f) in futures.iter().enumerate() {
        match f.result(Some(LIMIT)) {
            Ok(&value) => {
                assert!(
                    !cancelled.contains(&i),
                    "cancelled task {i} produced a value"
                );
                assert_eq!(value, i);
            }
            Err(e) => assert!(
                cancelled.contains(&i) && e.is_cancelled(),
                "task {i}: unexpected {e:?}"
            ),
        }
    }
    within("dropping the executor", move || drop(pool));
    for i in 0..total {
        assert_eq!(
            ran[i].load(Ordering::SeqCst),
            !cancelled.contains(&i),
            "task {i}: ran iff not cancelled"
        );
    }
    assert_eq!(
        started_rx.try_iter().count(),
        total - max_workers - cancelled.len()
    );
    assert_eq!(occupancy.max(), max_workers, "most tasks running at once");
    assert_eq!(occupancy.now(), 0);
}

/// M2: blocking and async tasks share the one bound.
#[test]
fn max_workers_is_one_bound_for_blocking_and_async_tasks() {
    let pool = AsyncExecutor::new(2).unwrap();
    let (gate, opener) = Gate::new();
    let (started_tx, started_rx) = mpsc::channel();
    let blocking = {
        let (gate, started) = (gate.clone(), started_tx.clone());
        pool.submit(move || {
            started.send("blocking").unwrap();
            gate.pass_blocking();
            1u32
        })
        .unwrap()
    };
    let asynchronous = {
        let (gate, started) = (gate.clone(), started_tx.clone());
        pool.submit_async(async move {
            started.send("async").unwrap();
            gate.pass().await;
            2u32
        })
        .unwrap()
    };
    let mut seen = [
        recv(&started_rx, "first start"),
        recv(&started_rx, "second start"),
    ];
    seen.sort_unstable();
    assert_eq!(seen, ["async", "blocking"]);

    let queued_async = pool.submit_async(async { 3u32 }).unwrap();
    let queued_blocking = pool.submit(|| 4u32).unwrap();
    assert_eq!(queued_async.state(), State::Pending);
    assert_eq!(queued_blocking.state(), State::Pending);
    let stats = pool.stats();
    assert_eq!((stats.running, stats.queued), (2, 2), "{stats:?}");

    opener.open();
    let all = [&blocking, &asynchronous, &queued_async, &queued_blocking];
    let values: Vec<u32> = all
        .iter()
        .map(|f| *f.result(Some(LIMIT)).unwrap())
        .collect();
    assert_eq!(values, [1, 2, 3, 4]);
}

/// M2 with the blocking hand-off: a blocking-pool thread that finishes a task runs the next
/// queued blocking task itself, with the same place (no wake-up of another thread per task), but
/// the queue's order across kinds is kept — an async task queued between blocking ones starts in
/// its turn — and `max_workers` still bounds what runs at once. 50 rounds.
#[test]
fn queued_tasks_start_in_submission_order_across_kinds() {
    for round in 0..50 {
        let pool = AsyncExecutor::new(1).unwrap();
        let (gate, opener) = Gate::new();
        let (order_tx, order) = mpsc::channel();
        let occupancy = Arc::new(Occupancy::default());
        let first = {
            let (gate, order) = (gate.clone(), order_tx.clone());
            pool.submit(move || {
                order.send("blocking 0".to_owned()).unwrap();
                gate.pass_blocking();
            })
            .unwrap()
        };
        assert_eq!(recv(&order, "the first task starts"), "blocking 0");
        let mut futures = vec![first];
        for (i, blocking) in [true, true, false, true, false, false, true]
            .into_iter()
            .enumerate()
        {
            let (order, occupancy) = (order_tx.clone(), Arc::clone(&occupancy));
            let label = format!("{} {}", if blocking { "blocking" } else { "async" }, i + 1);
            let future = if blocking {
                pool.submit(move || {
                    let _inside = occupancy.enter();
                    order.send(label).unwrap();
                })
                .unwrap()
            } else {
                pool.submit_async(async move {
                    let _inside = occupancy.enter();
                    order.send(label).unwrap();
                })
                .unwrap()
            };
            futures.push(future);
        }
        opener.open();
        for f in &futures {
            f.result(Some(LIMIT)).unwrap();
        }
        let seen: Vec<String> = order.try_iter().collect();
        assert_eq!(
            seen,
            [
                "blocking 1",
                "blocking 2",
                "async 3",
                "blocking 4",
                "async 5",
                "async 6",
                "blocking 7"
            ],
            "round {round}"
        );
        assert_eq!(
            occupancy.max(),
            1,
            "round {round}: more than max_workers ran at once"
        );
    }
}

/// K3 with M2: the counts follow the queue; a cancelled task is no longer queued.
#[test]
fn stats_count_running_and_queued_tasks_but_not_cancelled_ones() {
    let pool = AsyncExecutor::new(2).unwrap();
    let (gate, opener) = Gate::new();
    let futures: Vec<_> = (0..5u32)
        .map(|i| {
            let gate = gate.clone();
            pool.submit_async(async move {
                gate.pass().await;
                i
            })
            .unwrap()
        })
        .collect();
    let stats = pool.stats();
    assert_eq!(
        (stats.workers, stats.idle, stats.running, stats.queued),
        (2, 0, 2, 3),
        "{stats:?}"
    );
    assert!(futures[3].cancel() && futures[4].cancel());
    let stats = pool.stats();
    assert_eq!(
        stats.queued, 1,
        "two of the three queued tasks were cancelled: {stats:?}"
    );

    opener.open();
    for f in &futures[..3] {
        f.result(Some(LIMIT)).unwrap();
    }
    until("every place is free again", || pool.stats().running == 0);
    let stats = pool.stats();
    assert_eq!(
        (stats.idle, stats.queued, stats.completed),
        (2, 0, 3),
        "{stats:?}"
    );
}

/// K3 with K2: tasks a waiting sibling runs inline (async and blocking ones) count as completed
/// like any other.
#[test]
fn stats_count_tasks_run_inline_as_completed() {
    let pool = Arc::new(AsyncExecutor::new(1).unwrap());
    let same = pool.clone();
    let outer = pool
        .submit_async(async move {
            let queued_async = same.submit_async(async { 1u32 }).unwrap();
            let queued_blocking = same.submit(|| 2u32).unwrap();
            drop(same);
            let a = queued_async.result(Some(LIMIT)).copied();
            let b = queued_blocking.result(Some(LIMIT)).copied();
            (a.ok(), b.ok())
        })
        .unwrap();
    assert_eq!(*outer.result(Some(2 * LIMIT)).unwrap(), (Some(1), Some(2)));
    until("the outer task's place is free", || {
        pool.stats().running == 0
    });
    let stats = pool.stats();
    assert_eq!(
        stats.completed, 3,
        "the outer task and the two run inline: {stats:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Panics
// ---------------------------------------------------------------------------------------------

fn explode(at: &str) -> u32 {
    panic!("boom: {at}")
}

#[track_caller]
fn assert_panicked(f: &FutureHandle<u32>, message: &str) {
    let e = f.result(Some(LIMIT)).unwrap_err();
    let task = e
        .task_error()
        .unwrap_or_else(|| panic!("not a task failure: {e:?}"));
    assert!(task.is_panic(), "{e:?}");
    assert_eq!(task.message(), message);
    assert_eq!(task.task_id(), Some(f.id()), "the error names its task");
    assert!(
        e.to_string().contains(&format!("panicked: {message}")),
        "{e}"
    );
    assert_eq!(f.state(), State::Finished);
}

/// A panic in an async task, at its first poll or after an await, fails only its own future
/// with the panic's message; a sibling running alongside and the tasks queued behind it still
/// run, and the executor keeps serving.
#[test]
fn a_panic_in_an_async_task_fails_only_its_future_and_keeps_its_message() {
    let pool = AsyncExecutor::new(2).unwrap();
    let (gate, opener) = Gate::new();
    let (started_tx, started_rx) = mpsc::channel();
    let sibling = {
        let gate = gate.clone();
        pool.submit_async(async move {
            started_tx.send(()).unwrap();
            gate.pass().await;
            100u32
        })
        .unwrap()
    };
    recv(&started_rx, "the sibling started");
    // One place left: these run one after the other on it.
    let at_first_poll = pool.submit_async(async { explode("first poll") }).unwrap();
    let after_await = pool
        .submit_async(async {
            tokio::task::yield_now().await;
            explode("after an await")
        })
        .unwrap();
    let odd_payload = pool
        .submit_async(async {
            tokio::task::yield_now().await;
            std::panic::panic_any(42u64)
        })
        .unwrap();
    let queued_behind = pool.submit_async(async { 7u32 }).unwrap();
    let blocking_panic = pool.submit(|| explode("blocking")).unwrap();

    assert_panicked(&at_first_poll, "boom: first poll");
    assert_panicked(&after_await, "boom: after an await");
    let e = odd_payload.result(Some(LIMIT)).unwrap_err();
    assert!(e.task_error().is_some_and(TaskError::is_panic), "{e:?}");
    assert_eq!(*queued_behind.result(Some(LIMIT)).unwrap(), 7);
    assert_panicked(&blocking_panic, "boom: blocking");

    assert_eq!(sibling.state(), State::Running, "the sibling is unaffected");
    opener.open();
    assert_eq!(*sibling.result(Some(LIMIT)).unwrap(), 100);

    let more: Vec<_> = (0..20u32)
        .map(|i| pool.submit_async(async move { i * 2 }).unwrap())
        .collect();
    for (i, f) in (0u32..).zip(&more) {
        assert_eq!(*f.result(Some(LIMIT)).unwrap(), i * 2);
    }
    until("every place is free again", || pool.stats().running == 0);
}

// ---------------------------------------------------------------------------------------------
// M4: stop()
// ---------------------------------------------------------------------------------------------

/// M4: `stop()` on a running async task ends it at its await: its future fails with a stopped
/// error, its state (and what it captured) is dropped, and its place is freed. `cancel()` does
/// not touch it. Repeated to catch races between starting a task and registering it for `stop`.
#[test]
fn stop_ends_a_running_async_task_with_a_stopped_error() {
    let pool = AsyncExecutor::new(1).unwrap();
    for round in 0..200u32 {
        let (started_tx, started_rx) = mpsc::channel();
        let (dropped_tx, dropped_rx) = mpsc::channel();
        let f = pool
            .submit_async(async move {
                let _state = OnDrop(dropped_tx);
                started_tx.send(()).unwrap();
                // Stands for an await that never ends; bounded so that a failed stop cannot
                // hang the test.
                tokio::time::sleep(LIMIT).await;
                round
            })
            .unwrap();
        recv(&started_rx, "the task started");
        assert!(f.running());
        assert!(!f.cancel(), "cancel() keeps Python's meaning");
        assert!(pool.stop(&f), "round {round}: stop() on a running task");
        let e = f.result(Some(LIMIT)).unwrap_err();
        assert!(
            e.task_error().is_some_and(TaskError::is_stopped),
            "round {round}: {e:?}"
        );
        assert!(!e.is_cancelled(), "stopped is not cancelled");
        recv(&dropped_rx, "the stopped task's state was dropped");
        assert!(!pool.stop(&f), "finished now: nothing to stop");
        assert_eq!(f.state(), State::Finished);
    }
    // The one place was freed every time.
    let last = pool.submit_async(async { 5u32 }).unwrap();
    assert_eq!(*last.result(Some(LIMIT)).unwrap(), 5);
}

/// M4: the stop takes effect at the task's next await, not in the middle of synchronous code:
/// what runs before the await runs, what follows it does not.
#[test]
fn stop_takes_effect_at_the_next_await() {
    let pool = AsyncExecutor::new(2).unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    let (gate, opener) = Gate::new();
    let (before, after) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let f = {
        let (before, after) = (before.clone(), after.clone());
        pool.submit_async(async move {
            started_tx.send(()).unwrap();
            gate.pass_blocking(); // synchronous work: no await point until the gate opens
            before.store(true, Ordering::SeqCst);
            tokio::task::yield_now().await;
            after.store(true, Ordering::SeqCst);
        })
        .unwrap()
    };
    recv(&started_rx, "the task started");
    assert!(pool.stop(&f), "running");
    opener.open();
    let e = f.result(Some(LIMIT)).unwrap_err();
    assert!(e.task_error().is_some_and(TaskError::is_stopped), "{e:?}");
    assert!(
        before.load(Ordering::SeqCst),
        "the code before the await ran"
    );
    assert!(
        !after.load(Ordering::SeqCst),
        "the code after the await did not"
    );
}

/// M4: once a future reports RUNNING, `stop()` must find it. The task is started by another
/// thread (a blocking task that ends frees the one place and starts the queued task from the
/// blocking pool) while this thread spins on `running()` and stops it at once: this exercises
/// the window between the task's start and its registration for `stop`. A race, so repeated.
#[test]
fn stop_succeeds_as_soon_as_the_future_reports_running() {
    const ROUNDS: usize = 3000;
    let pool = AsyncExecutor::new(1).unwrap();
    let mut missed = 0;
    for _ in 0..ROUNDS {
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let blocker = pool
            .submit(move || {
                let _ = release_rx.recv_timeout(LIMIT);
            })
            .unwrap();
        let f = pool
            .submit_async(async { tokio::time::sleep(LIMIT).await })
            .unwrap();
        drop(release_tx);
        // A tight spin: the window is short, and yielding would step over it.
        let deadline = Instant::now() + LIMIT;
        while !f.running() {
            std::hint::spin_loop();
            assert!(Instant::now() < deadline, "the task never started");
        }
        if !pool.stop(&f) {
            missed += 1;
            // Not registered yet: keep trying so the task does not hold its place forever.
            until("stop() finds the task", || pool.stop(&f));
        }
        let e = f.result(Some(LIMIT)).unwrap_err();
        assert!(e.task_error().is_some_and(TaskError::is_stopped), "{e:?}");
        blocker.result(Some(LIMIT)).unwrap();
    }
    assert_eq!(
        missed, 0,
        "stop() returned false for a future in state RUNNING {missed} times out of {ROUNDS}"
    );
}

/// M4: a task that holds a place but has not been polled yet is still PENDING (`cancel()`
/// succeeds on it), so `stop()` must return false and leave it alone. On a current-thread
/// runtime nobody drives yet, every submitted task is in that state, deterministically.
#[test]
fn stop_on_a_started_but_unpolled_task_returns_false_and_it_still_runs() {
    let runtime = current_thread_runtime();
    let pool = AsyncExecutor::builder()
        .max_workers(2)
        .handle(runtime.handle().clone())
        .build()
        .unwrap();
    let f = pool.submit_async(async { 5u32 }).unwrap();
    let other = pool.submit_async(async { 6u32 }).unwrap();
    assert_eq!(f.state(), State::Pending, "nothing drives the runtime yet");
    let stopped = pool.stop(&f);
    let (outcome, other) = runtime.block_on(async {
        let outcome = tokio::time::timeout(LIMIT, &f).await.map(|o| o.copied());
        let other = tokio::time::timeout(LIMIT, other).await;
        tokio::time::timeout(LIMIT, pool.shutdown_async(ShutdownOptions::wait()))
            .await
            .expect("the tasks finished");
        (outcome, other)
    });
    let outcome = outcome.expect("no hang");
    assert!(
        !stopped,
        "stop() returned true for a PENDING future, which then failed with {outcome:?}"
    );
    assert_eq!(outcome.unwrap(), 5);
    assert_eq!(other.expect("no hang").unwrap(), 6);
}

/// A task that holds a place but was cancelled before its first poll is done (CANCELLED): an
/// executor whose every future is done has nothing to wait for when dropped, even on a
/// current-thread runtime that nobody drives any more.
#[test]
fn dropping_the_executor_with_only_cancelled_tasks_on_an_idle_current_thread_runtime() {
    let runtime = current_thread_runtime();
    let pool = AsyncExecutor::builder()
        .max_workers(2)
        .handle(runtime.handle().clone())
        .build()
        .unwrap();
    let f = pool.submit_async(async { 7u32 }).unwrap();
    assert!(f.cancel(), "PENDING: cancel() is the way");
    assert!(f.result(Some(LIMIT)).unwrap_err().is_cancelled());
    within(
        "dropping an executor whose only future is cancelled",
        move || drop(pool),
    );
    drop(runtime);
}

/// M4: `stop()` on a PENDING task returns false and leaves it alone (`cancel()` is the way);
/// it still runs when a place frees up.
#[test]
fn stop_on_a_pending_task_returns_false_and_it_still_runs() {
    let pool = AsyncExecutor::new(1).unwrap();
    let (gate, opener) = Gate::new();
    let blocker = pool
        .submit_async(async move {
            gate.pass().await;
            1u32
        })
        .unwrap();
    let queued = pool.submit_async(async { 2u32 }).unwrap();
    assert_eq!(queued.state(), State::Pending);
    assert!(!pool.stop(&queued), "PENDING: stop() is not the way");
    assert_eq!(queued.state(), State::Pending, "untouched");
    opener.open();
    assert_eq!(*blocker.result(Some(LIMIT)).unwrap(), 1);
    assert_eq!(*queued.result(Some(LIMIT)).unwrap(), 2);
}

/// M4: `stop()` on a finished, a cancelled, a running blocking task, or another executor's
/// future returns false and changes nothing.
#[test]
fn stop_on_anything_but_a_running_async_task_returns_false() {
    let pool = AsyncExecutor::new(1).unwrap();
    let finished = pool.submit_async(async { 3u32 }).unwrap();
    assert_eq!(*finished.result(Some(LIMIT)).unwrap(), 3);
    assert!(!pool.stop(&finished));
    assert_eq!(
        *finished.result(Some(LIMIT)).unwrap(),
        3,
        "outcome unchanged"
    );

    let (gate, opener) = Gate::new();
    let (started_tx, started_rx) = mpsc::channel();
    let blocking = pool
        .submit(move || {
            started_tx.send(()).unwrap();
            gate.pass_blocking();
            4u32
        })
        .unwrap();
    let cancelled = pool.submit_async(async { 5u32 }).unwrap();
    assert!(cancelled.cancel());
    assert!(!pool.stop(&cancelled));
    assert!(cancelled.cancelled());

    recv(&started_rx, "the blocking task started");
    assert!(!pool.stop(&blocking), "a blocking task cannot be stopped");

    let other = AsyncExecutor::new(1).unwrap();
    let (other_started_tx, other_started_rx) = mpsc::channel();
    let foreign = other
        .submit_async(async move {
            other_started_tx.send(()).unwrap();
            tokio::task::yield_now().await;
            6u32
        })
        .unwrap();
    recv(&other_started_rx, "the other executor's task started");
    assert!(!pool.stop(&foreign), "not this executor's task");

    opener.open();
    assert_eq!(*blocking.result(Some(LIMIT)).unwrap(), 4);
    assert_eq!(*foreign.result(Some(LIMIT)).unwrap(), 6);
}

// ---------------------------------------------------------------------------------------------
// Shutdown with tasks mid-await, submit after shutdown, drop
// ---------------------------------------------------------------------------------------------

/// Two tasks mid-await behind the gate and three queued behind them.
fn gated_tasks(
    pool: &AsyncExecutor,
    gate: &Arc<Gate>,
    ran: &Arc<Vec<AtomicBool>>,
) -> Vec<FutureHandle<usize>> {
    let (started_tx, started_rx) = mpsc::channel();
    let futures = (0..ran.len())
        .map(|i| {
            let (gate, ran, started) = (gate.clone(), ran.clone(), started_tx.clone());
            pool.submit_async(async move {
                ran[i].store(true, Ordering::SeqCst);
                let _ = started.send(()); // the test listens only to the first ones
                gate.pass().await;
                i
            })
            .unwrap()
        })
        .collect();
    for _ in 0..pool.max_workers() {
        recv(&started_rx, "a task started");
    }
    futures
}

/// I2: `shutdown(wait)` blocks while tasks are mid-await, until they and the queued ones have
/// run; then submits are refused.
#[test]
fn shutdown_wait_waits_for_tasks_mid_await_and_queued_ones() {
    let pool = Arc::new(AsyncExecutor::new(2).unwrap());
    let (gate, opener) = Gate::new();
    let futures = Arc::new(gated_tasks(&pool, &gate, &flags(5)));
    let (returned_tx, returned_rx) = mpsc::channel();
    let shutter = {
        let (pool, futures) = (pool.clone(), futures.clone());
        thread::spawn(move || {
            pool.shutdown(ShutdownOptions::wait());
            let states: Vec<State> = futures.iter().map(FutureHandle::state).collect();
            returned_tx.send(states).unwrap();
        })
    };
    assert!(
        returned_rx.recv_timeout(NOT_YET).is_err(),
        "shutdown(wait) returned while tasks were mid-await"
    );
    opener.open();
    let states = recv(&returned_rx, "shutdown(wait) returned");
    assert_eq!(
        states,
        [State::Finished; 5],
        "everything ran before it returned"
    );
    shutter.join().unwrap();
    for (i, f) in futures.iter().enumerate() {
        assert_eq!(*f.result(Some(Duration::ZERO)).unwrap(), i);
    }
    assert!(pool.submit_async(async {}).unwrap_err().is_shutdown());
}

/// I3: `shutdown(no_wait)` returns at once; queued and running tasks still complete.
#[test]
fn shutdown_no_wait_returns_at_once_and_everything_still_runs() {
    let pool = Arc::new(AsyncExecutor::new(2).unwrap());
    let (gate, opener) = Gate::new();
    let ran = flags(5);
    let futures = gated_tasks(&pool, &gate, &ran);
    let same = pool.clone();
    within("shutdown(no_wait)", move || {
        same.shutdown(ShutdownOptions::no_wait());
    });
    assert!(
        !gate.is_open(),
        "it returned with the tasks still mid-await"
    );
    assert!(futures.iter().all(|f| !f.done()));
    opener.open();
    for (i, f) in futures.iter().enumerate() {
        assert_eq!(*f.result(Some(LIMIT)).unwrap(), i);
    }
}

/// I4 and E1: `shutdown(no_wait, cancel_futures)` cancels the queued tasks (done for waiters at
/// once) and only them; the tasks mid-await finish with their values.
#[test]
fn shutdown_cancel_futures_cancels_only_queued_tasks_and_running_ones_finish() {
    for _ in 0..20 {
        let pool = Arc::new(AsyncExecutor::new(2).unwrap());
        let (gate, opener) = Gate::new();
        let ran = flags(5);
        let futures = gated_tasks(&pool, &gate, &ran);
        let same = pool.clone();
        within("shutdown(no_wait, cancel_futures)", move || {
            same.shutdown(ShutdownOptions::no_wait().cancel_futures());
        });
        let (running, queued) = futures.split_at(2);
        let r = wait(queued, Some(Duration::ZERO), ReturnWhen::AllCompleted);
        assert_eq!(r.done.len(), 3, "cancelled futures are done at once");
        assert!(queued.iter().all(FutureHandle::cancelled));
        assert!(running.iter().all(FutureHandle::running));
        assert_eq!(pool.stats().queued, 0);

        opener.open();
        for (i, f) in running.iter().enumerate() {
            assert_eq!(*f.result(Some(LIMIT)).unwrap(), i);
        }
        for f in queued {
            assert!(f.result(Some(LIMIT)).unwrap_err().is_cancelled());
        }
        let pool = Arc::try_unwrap(pool).expect("the only handle");
        within("dropping the executor", move || drop(pool));
        let ran: Vec<bool> = ran.iter().map(|r| r.load(Ordering::SeqCst)).collect();
        assert_eq!(ran, [true, true, false, false, false]);
    }
}

/// I2 from async code: `shutdown_async(wait)` awaited on another runtime resolves only once the
/// tasks mid-await and the queued ones have run.
#[test]
fn shutdown_async_waits_for_tasks_mid_await() {
    let pool = Arc::new(AsyncExecutor::new(2).unwrap());
    let (gate, opener) = Gate::new();
    let futures = Arc::new(gated_tasks(&pool, &gate, &flags(4)));
    let (returned_tx, returned_rx) = mpsc::channel();
    let shutter = {
        let (pool, futures) = (pool.clone(), futures.clone());
        thread::spawn(move || {
            current_thread_runtime().block_on(async {
                tokio::time::timeout(LIMIT, pool.shutdown_async(ShutdownOptions::wait()))
                    .await
                    .expect("shutdown_async(wait) resolved");
            });
            let states: Vec<State> = futures.iter().map(FutureHandle::state).collect();
            returned_tx.send(states).unwrap();
        })
    };
    assert!(
        returned_rx.recv_timeout(NOT_YET).is_err(),
        "shutdown_async(wait) resolved while tasks were mid-await"
    );
    opener.open();
    let states = recv(&returned_rx, "shutdown_async(wait) resolved");
    assert_eq!(states, [State::Finished; 4]);
    shutter.join().unwrap();
    assert!(pool.submit_async(async {}).unwrap_err().is_shutdown());
}

/// G2: after any kind of shutdown, `submit_async` and `submit` are refused with "cannot
/// schedule new futures after shutdown", and the task comes back untouched.
#[test]
fn submit_after_shutdown_is_refused_and_hands_the_task_back() {
    let shutdowns: [fn(&AsyncExecutor); 3] = [
        |pool| pool.shutdown(ShutdownOptions::wait()),
        |pool| pool.shutdown(ShutdownOptions::no_wait().cancel_futures()),
        |pool| {
            current_thread_runtime().block_on(pool.shutdown_async(ShutdownOptions::wait()));
        },
    ];
    for shut in shutdowns {
        let pool = AsyncExecutor::new(2).unwrap();
        shut(&pool);
        let polled = Arc::new(AtomicBool::new(false));
        let task = {
            let polled = polled.clone();
            async move {
                polled.store(true, Ordering::SeqCst);
                String::from("mine again")
            }
        };
        let refused = pool.submit_async(task).unwrap_err();
        assert!(refused.is_shutdown());
        assert_eq!(
            refused.to_string(),
            "cannot schedule new futures after shutdown"
        );
        let task = refused.into_inner();
        assert!(!polled.load(Ordering::SeqCst), "handed back unpolled");
        assert_eq!(current_thread_runtime().block_on(task), "mine again");

        let refused = pool.submit(|| 8u32).unwrap_err();
        assert!(refused.is_shutdown());
        assert_eq!((refused.into_inner())(), 8);
    }
}

/// I5: dropping the executor waits for tasks mid-await and queued ones, like Python's `with`.
#[test]
fn dropping_the_executor_waits_for_its_tasks() {
    let pool = AsyncExecutor::new(2).unwrap();
    let (gate, opener) = Gate::new();
    let futures = Arc::new(gated_tasks(&pool, &gate, &flags(5)));
    let (returned_tx, returned_rx) = mpsc::channel();
    let dropper = {
        let futures = futures.clone();
        thread::spawn(move || {
            drop(pool);
            let states: Vec<State> = futures.iter().map(FutureHandle::state).collect();
            returned_tx.send(states).unwrap();
        })
    };
    assert!(
        returned_rx.recv_timeout(NOT_YET).is_err(),
        "drop returned while tasks were mid-await"
    );
    opener.open();
    let states = recv(&returned_rx, "drop returned");
    assert_eq!(states, [State::Finished; 5]);
    dropper.join().unwrap();
    for (i, f) in futures.iter().enumerate() {
        assert_eq!(*f.result(Some(Duration::ZERO)).unwrap(), i);
    }
}

/// I5 and I3 on a current-thread runtime: the executor does not wait there (it would stall
/// that runtime), but dropping it or shutting it down must not kill its tasks either: queued and
/// running tasks still complete.
#[test]
fn shutting_down_on_a_current_thread_runtime_does_not_kill_the_tasks() {
    let shutdowns: [(&str, Shut); 2] = [
        ("drop", drop),
        ("shutdown(wait)", |pool| {
            pool.shutdown(ShutdownOptions::wait())
        }),
    ];
    let outcomes: Vec<_> = shutdowns
        .into_iter()
        .map(|(how, shut)| (how, outcomes_after(shut)))
        .collect();
    let all_ran = vec![Ok(0), Ok(1), Ok(2), Ok(3)];
    assert_eq!(
        outcomes,
        [("drop", all_ran.clone()), ("shutdown(wait)", all_ran)],
        "each way of shutting down on a current-thread runtime"
    );
}

/// A way of shutting an executor down.
type Shut = fn(AsyncExecutor);

/// Two tasks mid-await and two queued, shut down with `shut` inside a current-thread runtime;
/// then the gate opens and every outcome is awaited.
fn outcomes_after(shut: Shut) -> Vec<Result<u32, String>> {
    current_thread_runtime().block_on(async {
        let pool = AsyncExecutor::new(2).unwrap();
        let (gate, opener) = Gate::new();
        let (started_tx, mut started_rx) = tokio::sync::mpsc::unbounded_channel();
        let futures: Vec<_> = (0..4u32)
            .map(|i| {
                let (gate, started) = (gate.clone(), started_tx.clone());
                pool.submit_async(async move {
                    let _ = started.send(());
                    gate.pass().await;
                    i
                })
                .unwrap()
            })
            .collect();
        for _ in 0..2 {
            tokio::time::timeout(LIMIT, started_rx.recv())
                .await
                .expect("a task started");
        }
        shut(pool);
        opener.open();
        let mut outcomes = Vec::new();
        for f in futures {
            let outcome = tokio::time::timeout(LIMIT, f).await.expect("no hang");
            outcomes.push(outcome.map_err(|e| e.to_string()));
        }
        outcomes
    })
}

/// A task of this executor that shuts it down cannot wait for itself; it must return, not hang
/// (the same holds for blocking tasks, see `conformance.rs`).
#[test]
fn shutdown_wait_from_inside_its_own_async_task_returns() {
    let pool = Arc::new(AsyncExecutor::new(2).unwrap());
    let same = pool.clone();
    let f = pool
        .submit_async(async move {
            same.shutdown(ShutdownOptions::wait());
            "returned"
        })
        .unwrap();
    let outcome = f.result(Some(LIMIT));
    assert_eq!(
        outcome.copied().map_err(|e| e.to_string()),
        Ok("returned"),
        "shutdown(wait) inside one of the executor's own async tasks"
    );
    assert!(pool.submit_async(async {}).unwrap_err().is_shutdown());
}

/// Dropping the last handle to the executor from inside one of its async tasks shuts it down
/// from there: it must return, not wait for the very task that is dropping it.
#[test]
fn dropping_the_last_handle_inside_its_own_async_task_returns() {
    let pool = Arc::new(AsyncExecutor::new(2).unwrap());
    let (gate, opener) = Gate::new();
    let (dropped_tx, dropped_rx) = mpsc::channel();
    let same = pool.clone();
    let f = pool
        .submit_async(async move {
            gate.pass().await;
            drop(same); // the last handle by now
            dropped_tx.send(()).unwrap();
            9u32
        })
        .unwrap();
    drop(pool);
    opener.open();
    recv(&dropped_rx, "the task dropped the last handle and went on");
    assert_eq!(*f.result(Some(LIMIT)).unwrap(), 9);
}

// ---------------------------------------------------------------------------------------------
// Use from inside and outside a runtime (M1, M3, C5)
// ---------------------------------------------------------------------------------------------

/// C5 and M3: handles are awaited from a different (current-thread) runtime, by value and by
/// reference, for async and blocking tasks, while the executor's own runtime runs them.
#[tokio::test]
async fn handles_are_awaited_from_a_different_current_thread_runtime() {
    let pool = AsyncExecutor::new(4).unwrap();
    let (gate, opener) = Gate::new();
    let slow = pool
        .submit_async(async move {
            gate.pass().await;
            String::from("slow")
        })
        .unwrap();
    let quick = pool.submit_async(async { 6 * 7 }).unwrap();
    let blocking = pool.submit(|| vec![1u8, 2, 3]).unwrap();

    let by_ref = tokio::time::timeout(LIMIT, &quick).await.expect("no hang");
    assert_eq!(*by_ref.unwrap(), 42);
    assert!(quick.done(), "still usable after `(&f).await`");
    let bytes = tokio::time::timeout(LIMIT, blocking)
        .await
        .expect("no hang");
    assert_eq!(bytes.unwrap(), [1, 2, 3]);
    assert_eq!(slow.state(), State::Running);
    opener.open();
    let slow = tokio::time::timeout(LIMIT, slow).await.expect("no hang");
    assert_eq!(slow.unwrap(), "slow");
}

/// The same from a multi-thread runtime of the user's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handles_are_awaited_from_a_different_multi_thread_runtime() {
    let pool = AsyncExecutor::new(2).unwrap();
    let futures: Vec<_> = (0..16u64)
        .map(|i| {
            pool.submit_async(async move {
                tokio::task::yield_now().await;
                i * i
            })
            .unwrap()
        })
        .collect();
    let mut sum = 0;
    for f in futures {
        sum += tokio::time::timeout(LIMIT, f)
            .await
            .expect("no hang")
            .unwrap();
    }
    assert_eq!(sum, (0..16u64).map(|i| i * i).sum::<u64>());
}

/// C5 and M3 on the executor's own runtime: code spawned there with `pool.handle().spawn`, and
/// the executor's own async tasks, await handles of this executor.
#[test]
fn handles_are_awaited_on_the_executors_own_runtime() {
    let pool = AsyncExecutor::builder()
        .max_workers(2)
        .worker_threads(2)
        .build()
        .unwrap();
    let (gate, opener) = Gate::new();
    let value = pool
        .submit_async(async move {
            gate.pass().await;
            40u32
        })
        .unwrap();
    let blocking = pool.submit(|| 1u32).unwrap();
    let (tx, rx) = mpsc::channel();
    pool.handle().spawn(async move {
        let a = value.await;
        let b = blocking.await;
        tx.send((a, b)).unwrap();
    });
    opener.open();
    let (a, b) = recv(&rx, "the spawned code awaited both handles");
    assert_eq!(a.unwrap() + b.unwrap(), 41);

    let inner = pool.submit_async(async { 1u32 }).unwrap();
    let outer = pool
        .submit_async(async move { inner.await.unwrap() + 41 })
        .unwrap();
    assert_eq!(*outer.result(Some(LIMIT)).unwrap(), 42);
}

/// M3 from plain threads: many threads block in `result` on one future and all see the same
/// outcome (C3); `into_result` moves it out afterwards.
#[test]
fn blocking_waits_from_plain_threads_see_one_outcome() {
    let pool = AsyncExecutor::new(2).unwrap();
    let (gate, opener) = Gate::new();
    let f = Arc::new(
        pool.submit_async(async move {
            gate.pass().await;
            vec![7u8; 3]
        })
        .unwrap(),
    );
    let (ready_tx, ready_rx) = mpsc::channel();
    let waiters: Vec<_> = (0..8)
        .map(|_| {
            let (f, ready) = (f.clone(), ready_tx.clone());
            thread::spawn(move || {
                ready.send(()).unwrap();
                f.result(Some(LIMIT)).cloned()
            })
        })
        .collect();
    for _ in 0..8 {
        recv(&ready_rx, "a waiter is about to block");
    }
    opener.open();
    for w in waiters {
        assert_eq!(w.join().unwrap().unwrap(), [7, 7, 7]);
    }
    let f = Arc::try_unwrap(f).expect("the waiters are gone");
    assert_eq!(f.into_result().unwrap(), [7, 7, 7]);
    let blocking = pool.submit(|| "from a blocking task").unwrap();
    assert_eq!(
        within("into_result on a plain thread", move || blocking
            .into_result()
            .unwrap()),
        "from a blocking task"
    );
}

/// M1 on a current-thread runtime of the user's: nothing runs until the runtime is driven;
/// driven by `block_on`, the tasks run within the bound (two meet at a barrier, never more
/// than two inside), blocking tasks too.
#[test]
fn a_user_current_thread_runtime_runs_the_tasks_when_driven_by_block_on() {
    let runtime = current_thread_runtime();
    let pool = AsyncExecutor::builder()
        .max_workers(2)
        .handle(runtime.handle().clone())
        .build()
        .unwrap();
    let occupancy = Arc::new(Occupancy::default());
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let futures: Vec<_> = (0..6u32)
        .map(|i| {
            let (occupancy, barrier) = (occupancy.clone(), barrier.clone());
            pool.submit_async(async move {
                let _inside = occupancy.enter();
                barrier.wait().await;
                tokio::task::yield_now().await;
                i * 10
            })
            .unwrap()
        })
        .collect();
    assert!(
        futures.iter().all(|f| f.state() == State::Pending),
        "nothing drives the runtime yet"
    );
    let values = runtime.block_on(async {
        let all = async {
            let mut values = Vec::new();
            for f in futures {
                values.push(f.await.unwrap());
            }
            values
        };
        tokio::time::timeout(LIMIT, all).await.expect("no hang")
    });
    assert_eq!(values, [0, 10, 20, 30, 40, 50]);
    assert_eq!(occupancy.max(), 2, "two at once, never more");

    let blocking = pool.submit(|| 5u32).unwrap();
    let five = runtime.block_on(async { tokio::time::timeout(LIMIT, blocking).await });
    assert_eq!(five.expect("no hang").unwrap(), 5);
    within("dropping the executor", move || drop(pool));
}

/// M1 on a current-thread runtime driven by another thread: plain threads block on results,
/// and dropping the executor waits for its tasks.
#[test]
fn a_user_current_thread_runtime_driven_by_another_thread_serves_plain_threads() {
    let runtime = Arc::new(current_thread_runtime());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let driver = {
        let runtime = runtime.clone();
        thread::spawn(move || {
            runtime.block_on(async {
                let _ = tokio::time::timeout(LIMIT, stop_rx).await;
            });
        })
    };
    let pool = AsyncExecutor::builder()
        .max_workers(3)
        .handle(runtime.handle().clone())
        .build()
        .unwrap();
    let (gate, opener) = Gate::new();
    let futures: Vec<_> = (0..10usize)
        .map(|i| {
            let gate = gate.clone();
            pool.submit_async(async move {
                gate.pass().await;
                i
            })
            .unwrap()
        })
        .collect();
    let last = Arc::new(pool.submit_async(async { 10usize }).unwrap());
    let (returned_tx, returned_rx) = mpsc::channel();
    let dropper = {
        let last = last.clone();
        thread::spawn(move || {
            drop(pool);
            returned_tx.send(last.state()).unwrap();
        })
    };
    assert!(
        returned_rx.recv_timeout(NOT_YET).is_err(),
        "drop returned with tasks behind the gate"
    );
    opener.open();
    assert_eq!(recv(&returned_rx, "drop returned"), State::Finished);
    dropper.join().unwrap();
    for (i, f) in futures.iter().enumerate() {
        assert_eq!(*f.result(Some(LIMIT)).unwrap(), i);
    }
    assert_eq!(*last.result(Some(LIMIT)).unwrap(), 10);
    stop_tx.send(()).unwrap();
    driver.join().unwrap();
}

/// M1 on a multi-thread runtime of the user's: the executor runs its tasks there, `stop` works,
/// and the runtime outlives the executor.
#[test]
fn a_user_multi_thread_runtime_runs_the_tasks_and_outlives_the_executor() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let pool = AsyncExecutor::builder()
        .max_workers(4)
        .handle(runtime.handle().clone())
        .build()
        .unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    let endless = pool
        .submit_async(async move {
            started_tx.send(()).unwrap();
            tokio::time::sleep(LIMIT).await;
            0u32
        })
        .unwrap();
    let normal = pool
        .submit_async(async {
            tokio::task::yield_now().await;
            tokio::runtime::Handle::current().runtime_flavor()
        })
        .unwrap();
    assert_eq!(
        *normal.result(Some(LIMIT)).unwrap(),
        tokio::runtime::RuntimeFlavor::MultiThread
    );
    recv(&started_rx, "the endless task started");
    assert!(pool.stop(&endless));
    assert!(
        endless
            .result(Some(LIMIT))
            .unwrap_err()
            .task_error()
            .is_some_and(TaskError::is_stopped)
    );
    within("dropping the executor", move || drop(pool));
    assert_eq!(
        runtime.block_on(async { 5 }),
        5,
        "the user's runtime still runs"
    );
    let spawned = runtime.spawn(async { 6 });
    assert_eq!(runtime.block_on(spawned).unwrap(), 6);
}

/// A `ResultError` is what `result` gives for a cancelled queued task even when awaited.
#[tokio::test]
async fn awaiting_a_cancelled_task_gives_the_cancelled_error() {
    let pool = AsyncExecutor::new(1).unwrap();
    let (gate, opener) = Gate::new();
    let blocker = pool.submit_async(async move { gate.pass().await }).unwrap();
    let queued = pool.submit_async(async { 1u32 }).unwrap();
    assert!(queued.cancel());
    let outcome = tokio::time::timeout(LIMIT, queued).await.expect("no hang");
    assert!(
        matches!(outcome, Err(ResultError::Cancelled(_))),
        "{outcome:?}"
    );
    opener.open();
    tokio::time::timeout(LIMIT, blocker)
        .await
        .expect("no hang")
        .unwrap();
}
