//! The cases. Each takes the backend's factory (`max_workers` → executor) and panics on a
//! violation. Every blocking step has a generous limit ([`LIMIT`]) so a broken backend fails a
//! case instead of hanging the suite.

use std::time::Duration;

use super::{Gate, TestTask, block_on};
use crate::{
    Executor, MapError, MapOptions, ResultError, ReturnWhen, ShutdownOptions, State, Waitable,
    as_completed, wait,
};

/// The most any step of a case waits for something that should happen promptly.
pub const LIMIT: Duration = Duration::from_secs(30);

fn value<E: Executor<TestTask>>(pool: &E, v: u64) -> u64 {
    let f = pool.submit(TestTask::Value(v)).expect("submit refused");
    *f.result(Some(LIMIT)).expect("no value")
}

/// G1, C1, C3: `submit` returns a not-yet-done future at once; the value arrives and is the same
/// on every call.
pub fn submit_returns_pending_future_then_value<E, F>(make: &F)
where
    E: Executor<TestTask>,
    F: Fn(usize) -> E,
{
    let pool = make(1);
    let gate = Gate::new();
    let f = pool.submit(gate.task(11)).expect("submit refused");
    assert!(!f.done(), "a blocked task's future is done at once");
    assert!(matches!(f.state(), State::Pending | State::Running));
    gate.release();
    assert_eq!(*f.result(Some(LIMIT)).unwrap(), 11);
    assert_eq!(*f.result(Some(Duration::ZERO)).unwrap(), 11);
    assert_eq!(f.state(), State::Finished);
}

/// J5/L5, C4: a panicking task fails its own future with the message and its identity; the
/// executor keeps serving.
pub fn task_panic_fails_only_its_future<E, F>(make: &F)
where
    E: Executor<TestTask>,
    F: Fn(usize) -> E,
{
    let pool = make(1);
    let f = pool.submit(TestTask::Panic("kaboom".into())).unwrap();
    let e = f.result(Some(LIMIT)).unwrap_err();
    let task_error = e
        .task_error()
        .unwrap_or_else(|| panic!("expected a task failure, got {e}"));
    assert!(task_error.is_panic(), "{task_error:?}");
    assert!(task_error.message().contains("kaboom"), "{task_error:?}");
    assert_eq!(task_error.task_name(), Some(TestTask::NAME));
    assert_eq!(task_error.task_id(), Some(f.id()));
    assert!(f.failed());
    assert_eq!(
        value(&pool, 3),
        3,
        "the executor stopped serving after a panic"
    );
}

/// C1: a task's own error fails its future with that error; `error()` hands it back.
pub fn task_error_fails_only_its_future<E, F>(make: &F)
where
    E: Executor<TestTask>,
    F: Fn(usize) -> E,
{
    let pool = make(2);
    let f = pool.submit(TestTask::Fail("no such blob".into())).unwrap();
    let e = f.error(Some(LIMIT)).unwrap().expect("no error");
    assert!(e.is_error());
    assert_eq!(e.message(), "no such blob");
    assert_eq!(value(&pool, 4), 4);
}

/// A2, L13: a queued task can be cancelled, is done at once, and never runs.
pub fn cancel_queued_task_never_runs<E, F>(make: &F)
where
    E: Executor<TestTask>,
    F: Fn(usize) -> E,
{
    let pool = make(1);
    let gate = Gate::new();
    let blocker = pool.submit(gate.task(1)).unwrap();
    assert!(gate.wait_started(1, LIMIT), "the first task never started");
    let queued = pool.submit(gate.touch_task("queued", 2)).unwrap();
    assert!(queued.cancel(), "cancel of a queued task failed");
    assert!(queued.cancelled() && queued.done());
    assert!(
        queued
            .result(Some(Duration::ZERO))
            .unwrap_err()
            .is_cancelled()
    );
    gate.release();
    assert_eq!(*blocker.result(Some(LIMIT)).unwrap(), 1);
    pool.shutdown(ShutdownOptions::wait());
    assert!(!gate.touched("queued"), "a cancelled task ran");
}

/// A2: a running task cannot be cancelled; its value still arrives.
pub fn cancel_running_task_returns_false<E, F>(make: &F)
where
    E: Executor<TestTask>,
    F: Fn(usize) -> E,
{
    let pool = make(1);
    let gate = Gate::new();
    let f = pool.submit(gate.task(5)).unwrap();
    assert!(gate.wait_started(1, LIMIT));
    assert!(!f.cancel(), "cancel of a running task succeeded");
    assert!(!f.cancelled());
    gate.release();
    assert_eq!(*f.result(Some(LIMIT)).unwrap(), 5);
}

/// C1, C2: a timed `result` on an unfinished task times out; a later one gets the value.
pub fn result_timeout_then_value<E, F>(make: &F)
where
    E: Executor<TestTask>,
    F: Fn(usize) -> E,
{
    let pool = make(1);
    let gate = Gate::new();
    let f = pool.submit(gate.task(8)).unwrap();
    let e = f.result(Some(Duration::from_millis(20))).unwrap_err();
    assert!(e.is_timeout(), "{e}");
    assert!(f.error(Some(Duration::ZERO)).is_err());
    gate.release();
    assert_eq!(*f.result(Some(LIMIT)).unwrap(), 8);
}

/// B1: a done callback runs once, in this process, and sees the value.
pub fn done_callback_runs_in_parent_with_value<E, F>(make: &F)
where
    E: Executor<TestTask>,
    F: Fn(usize) -> E,
{
    let pool = make(1);
    let gate = Gate::new();
    let f = pool.submit(gate.task(21)).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    f.add_done_callback(move |f| {
        tx.send((
            std::process::id(),
            f.result(Some(Duration::ZERO)).ok().copied(),
        ))
        .unwrap();
    });
    gate.release();
    let (pid, seen) = rx.recv_timeout(LIMIT).expect("the callback never ran");
    assert_eq!(
        pid,
        std::process::id(),
        "the callback ran in another process"
    );
    assert_eq!(seen, Some(21));
    assert!(rx.try_recv().is_err(), "the callback ran twice");
}

/// H1: results come back in input order whatever the completion order.
pub fn map_yields_in_input_order<E, F>(make: &F)
where
    E: Executor<TestTask>,
    F: Fn(usize) -> E,
{
    let pool = make(4);
    for chunksize in [1, 3] {
        let tasks = (0..12u64).map(|i| TestTask::Sleep {
            millis: (12 - i) % 4 * 3,
            value: i,
        });
        let results: Vec<u64> = pool
            .map(tasks, MapOptions::new().chunksize(chunksize))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(
            results,
            (0..12).collect::<Vec<_>>(),
            "chunksize {chunksize}"
        );
    }
}

/// H4: a failed item is an error in its own slot; the rest of its chunk still comes back.
pub fn map_failed_item_keeps_its_slot<E, F>(make: &F)
where
    E: Executor<TestTask>,
    F: Fn(usize) -> E,
{
    let pool = make(2);
    for chunksize in [1, 2, 5] {
        let tasks = vec![
            TestTask::Value(0),
            TestTask::Panic("item one".into()),
            TestTask::Value(2),
            TestTask::Fail("item three".into()),
            TestTask::Value(4),
        ];
        let results: Vec<_> = pool
            .map(tasks, MapOptions::new().chunksize(chunksize))
            .unwrap()
            .collect();
        assert_eq!(results.len(), 5, "chunksize {chunksize}");
        assert_eq!(results[0].as_ref().unwrap(), &0);
        let one = results[1].as_ref().unwrap_err().task_error().unwrap();
        assert!(one.is_panic() && one.message().contains("item one"));
        assert_eq!(results[2].as_ref().unwrap(), &2);
        let three = results[3].as_ref().unwrap_err().task_error().unwrap();
        assert!(three.is_error() && three.message() == "item three");
        assert_eq!(results[4].as_ref().unwrap(), &4, "chunksize {chunksize}");
    }
}

/// H5, H7: a zero `chunksize` or `buffersize` is an error at the call naming the field.
pub fn map_rejects_zero_chunksize_and_buffersize<E, F>(make: &F)
where
    E: Executor<TestTask>,
    F: Fn(usize) -> E,
{
    let pool = make(1);
    for (options, field) in [
        (MapOptions::new().chunksize(0), "chunksize"),
        (MapOptions::new().buffersize(0), "buffersize"),
    ] {
        match pool.map([TestTask::Value(1)], options) {
            Err(MapError::InvalidOption { field: f, .. }) => assert_eq!(f, field),
            other => panic!("expected an error naming {field}, got {other:?}"),
        }
    }
}

/// H5 (beyond Python): with `auto_chunksize`, cheap tasks travel in chunks chosen from their
/// measured cost, results still come back complete and in order; with a buffer the input is
/// still consumed lazily.
pub fn map_auto_chunksize_batches_cheap_tasks<E, F>(make: &F)
where
    E: Executor<TestTask>,
    F: Fn(usize) -> E,
{
    let pool = make(2);
    let results = pool
        .map(
            (0..20_000u64).map(TestTask::Value),
            MapOptions::new().auto_chunksize(),
        )
        .unwrap();
    let chosen = results.chunksize();
    // A value task runs in well under 2 ms / 2,500; the input spreads over four chunks per worker.
    assert!(
        (2..=2_500).contains(&chosen),
        "chose chunksize {chosen} for 20,000 cheap tasks on 2 workers"
    );
    let values: Vec<u64> = results.map(|r| r.unwrap()).collect();
    assert_eq!(values, (0..20_000).collect::<Vec<_>>());

    let pulled = std::cell::Cell::new(0u64);
    let endless = (0u64..).map(|i| {
        pulled.set(pulled.get() + 1);
        TestTask::Value(i)
    });
    let options = MapOptions::new().auto_chunksize().buffersize(3);
    let mut results = pool.map(endless, options).unwrap();
    let first: Vec<u64> = results.by_ref().take(10).map(|r| r.unwrap()).collect();
    assert_eq!(first, (0..10).collect::<Vec<_>>());
    let chunk = results.chunksize() as u64;
    assert!(
        pulled.get() <= 10 + 6 * chunk,
        "pulled {} items of an endless input with chunks of {chunk}",
        pulled.get()
    );
}

/// H5: `auto_chunksize` keeps tasks slower than the chunk target one per chunk, and its probe
/// honours the map's timeout (a probe that never finishes does not hold `map` up).
pub fn map_auto_chunksize_keeps_slow_tasks_apart<E, F>(make: &F)
where
    E: Executor<TestTask>,
    F: Fn(usize) -> E,
{
    let pool = make(2);
    let slow = (0..6u64).map(|value| TestTask::Sleep { millis: 5, value });
    let results = pool.map(slow, MapOptions::new().auto_chunksize()).unwrap();
    assert_eq!(results.chunksize(), 1, "5 ms tasks were chunked");
    let values: Vec<u64> = results.map(|r| r.unwrap()).collect();
    assert_eq!(values, [0, 1, 2, 3, 4, 5]);

    let gate = Gate::new();
    let tasks = vec![gate.task(0), gate.task(1), TestTask::Value(2)];
    let options = MapOptions::new()
        .auto_chunksize()
        .timeout(Duration::from_millis(50));
    let mut results = pool.map(tasks, options).unwrap();
    assert_eq!(
        results.chunksize(),
        1,
        "nothing was measured, yet it chunked"
    );
    let e = results.next().unwrap().unwrap_err();
    assert!(
        matches!(e, ResultError::Timeout(_)),
        "expected a timeout, got {e}"
    );
    gate.release();
    // Before the gate (and its files) goes away.
    pool.shutdown(ShutdownOptions::wait());
}

/// H2: with `buffersize`, the input is consumed lazily (an endless input works) and at most
/// `buffersize` chunks are submitted ahead of the reader.
pub fn map_buffersize_consumes_lazily<E, F>(make: &F)
where
    E: Executor<TestTask>,
    F: Fn(usize) -> E,
{
    let pool = make(2);
    let pulled = std::cell::Cell::new(0u64);
    let input = (0u64..).map(|i| {
        pulled.set(pulled.get() + 1);
        TestTask::Value(i)
    });
    let mut results = pool.map(input, MapOptions::new().buffersize(3)).unwrap();
    assert_eq!(
        pulled.get(),
        3,
        "map() should submit exactly buffersize items up front"
    );
    let first: Vec<u64> = results.by_ref().take(5).map(|r| r.unwrap()).collect();
    assert_eq!(first, [0, 1, 2, 3, 4]);
    assert!(
        pulled.get() <= 5 + 3,
        "pulled {} items for 5 results",
        pulled.get()
    );
}

/// H3: past the deadline the iterator yields a timeout error, cancels what has not started, and
/// ends.
pub fn map_timeout_yields_error_and_cancels_rest<E, F>(make: &F)
where
    E: Executor<TestTask>,
    F: Fn(usize) -> E,
{
    let pool = make(1);
    let gate = Gate::new();
    let tasks = vec![
        TestTask::Value(0),
        gate.task(1),
        gate.touch_task("after-timeout", 2),
    ];
    let options = MapOptions::new().timeout(Duration::from_millis(50));
    let mut results = pool.map(tasks, options).unwrap();
    assert_eq!(results.next().unwrap().unwrap(), 0);
    let e = results.next().unwrap().unwrap_err();
    assert!(
        matches!(e, ResultError::Timeout(_)),
        "expected a timeout, got {e}"
    );
    assert!(
        results.next().is_none(),
        "the iterator goes on after its timeout"
    );
    gate.release();
    pool.shutdown(ShutdownOptions::wait());
    assert!(
        !gate.touched("after-timeout"),
        "a task not started by the deadline still ran"
    );
}

/// H6: dropping the iterator cancels every task not yet started, even if never advanced.
pub fn map_drop_cancels_unstarted<E, F>(make: &F)
where
    E: Executor<TestTask>,
    F: Fn(usize) -> E,
{
    let pool = make(1);
    let gate = Gate::new();
    let tasks = vec![
        gate.task(0),
        gate.touch_task("a", 1),
        gate.touch_task("b", 2),
    ];
    let results = pool.map(tasks, MapOptions::new()).unwrap();
    assert!(gate.wait_started(1, LIMIT));
    drop(results);
    gate.release();
    pool.shutdown(ShutdownOptions::wait());
    assert!(
        !gate.touched("a") && !gate.touched("b"),
        "tasks ran after the map was dropped"
    );
}

/// G2, I1: after shutdown, submit is refused and hands the task back; map is refused.
pub fn submit_after_shutdown_hands_task_back<E, F>(make: &F)
where
    E: Executor<TestTask>,
    F: Fn(usize) -> E,
{
    let pool = make(1);
    pool.shutdown(ShutdownOptions::wait());
    let e = pool.submit(TestTask::Value(9)).unwrap_err();
    assert!(e.is_shutdown());
    assert_eq!(e.to_string(), "cannot schedule new futures after shutdown");
    assert_eq!(e.into_inner(), TestTask::Value(9));
    assert!(matches!(
        pool.map([TestTask::Value(1)], MapOptions::new()),
        Err(MapError::Rejected(_))
    ));
}

/// I1: shutdown may be called again, with any options.
pub fn shutdown_is_idempotent<E, F>(make: &F)
where
    E: Executor<TestTask>,
    F: Fn(usize) -> E,
{
    let pool = make(2);
    assert_eq!(value(&pool, 1), 1);
    pool.shutdown(ShutdownOptions::wait());
    pool.shutdown(ShutdownOptions::no_wait());
    pool.shutdown(ShutdownOptions::wait().cancel_futures());
    assert!(pool.submit(TestTask::Value(1)).is_err());
}

/// I2: `shutdown(wait)` returns only when queued and running tasks are done; queued tasks run.
pub fn shutdown_wait_runs_queued_tasks<E, F>(make: &F)
where
    E: Executor<TestTask>,
    F: Fn(usize) -> E,
{
    let pool = make(1);
    let futures: Vec<_> = (0..5)
        .map(|i| {
            pool.submit(TestTask::Sleep {
                millis: 2,
                value: i,
            })
            .unwrap()
        })
        .collect();
    pool.shutdown(ShutdownOptions::wait());
    for (i, f) in futures.iter().enumerate() {
        assert_eq!(
            f.state(),
            State::Finished,
            "future {i} not done after shutdown(wait)"
        );
        assert_eq!(*f.result(Some(Duration::ZERO)).unwrap(), i as u64);
    }
}

/// I4, E1: `cancel_futures` cancels what has not started (done for waiters at once); the
/// running task finishes.
pub fn shutdown_cancel_futures_cancels_queued<E, F>(make: &F)
where
    E: Executor<TestTask>,
    F: Fn(usize) -> E,
{
    let pool = make(1);
    let gate = Gate::new();
    let running = pool.submit(gate.task(1)).unwrap();
    assert!(gate.wait_started(1, LIMIT));
    let queued: Vec<_> = (0..3)
        .map(|i| pool.submit(gate.touch_task(&format!("q{i}"), i)).unwrap())
        .collect();
    pool.shutdown(ShutdownOptions::no_wait().cancel_futures());
    let r = wait(&queued, Some(LIMIT), ReturnWhen::AllCompleted);
    assert_eq!(
        r.done.len(),
        3,
        "cancelled futures were not done for wait at once"
    );
    assert!(queued.iter().all(|f| f.cancelled()));
    gate.release();
    assert_eq!(*running.result(Some(LIMIT)).unwrap(), 1);
    pool.shutdown(ShutdownOptions::wait());
    assert!((0..3).all(|i| !gate.touched(&format!("q{i}"))));
}

/// I5: dropping the executor waits for its tasks.
pub fn drop_waits_for_tasks<E, F>(make: &F)
where
    E: Executor<TestTask>,
    F: Fn(usize) -> E,
{
    let pool = make(2);
    let futures: Vec<_> = (0..4)
        .map(|i| {
            pool.submit(TestTask::Sleep {
                millis: 5,
                value: i,
            })
            .unwrap()
        })
        .collect();
    drop(pool);
    assert!(futures.iter().all(|f| f.state() == State::Finished));
}

/// D, F: `wait` and `as_completed` over an executor's futures.
pub fn wait_and_as_completed_see_executor_futures<E, F>(make: &F)
where
    E: Executor<TestTask>,
    F: Fn(usize) -> E,
{
    let pool = make(2);
    let gate = Gate::new();
    let slow = pool.submit(gate.task(1)).unwrap();
    let fast = pool.submit(TestTask::Value(2)).unwrap();
    let r = wait([&slow, &fast], Some(LIMIT), ReturnWhen::FirstCompleted);
    assert_eq!(r.done.len(), 1);
    assert_eq!(r.done[0].id(), fast.id());
    let failing = pool.submit(TestTask::Fail("x".into())).unwrap();
    let r = wait([&slow, &failing], Some(LIMIT), ReturnWhen::FirstException);
    assert_eq!(r.done.len(), 1);
    assert_eq!(r.not_done[0].id(), slow.id());
    // `slow` is still blocked when `as_completed` starts, so `fast` (done) must come first.
    let completed = as_completed([&slow, &fast], Some(LIMIT));
    gate.release();
    let order: Vec<_> = completed.map(|f| f.unwrap().id()).collect();
    assert_eq!(order, [fast.id(), slow.id()]);
}

/// D1: futures of two executors in one `wait`.
pub fn futures_of_two_executors_in_one_wait<E, F>(make: &F)
where
    E: Executor<TestTask>,
    F: Fn(usize) -> E,
{
    let (one, two) = (make(1), make(1));
    let a = one.submit(TestTask::Value(1)).unwrap();
    let b = two.submit(TestTask::Value(2)).unwrap();
    let all: [&dyn Waitable; 2] = [&a, &b];
    let r = wait(all, Some(LIMIT), ReturnWhen::AllCompleted);
    assert_eq!(r.done.len(), 2);
    assert_eq!(*a.result(None).unwrap() + *b.result(None).unwrap(), 3);
}

/// C5: the handle is awaitable without any particular runtime.
pub fn await_executor_future<E, F>(make: &F)
where
    E: Executor<TestTask>,
    F: Fn(usize) -> E,
{
    let pool = make(1);
    let f = pool
        .submit(TestTask::Sleep {
            millis: 5,
            value: 6,
        })
        .unwrap();
    assert_eq!(block_on(async { (&f).await.copied() }).unwrap(), 6);
    assert_eq!(block_on(async { f.await }).unwrap(), 6);
}
