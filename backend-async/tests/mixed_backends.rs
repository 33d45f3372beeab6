//! Futures of the tokio backend together with futures of the thread backend (SEMANTICS D1, F1,
//! C5; issue #5: "a future from this backend can be waited on together with futures from the
//! thread backend"): one `wait`, one `as_completed`, `.await` and blocking waits across them.
//!
//! Completion order is set by gates the test opens one at a time, never by timing.

mod support;

use std::sync::{Arc, mpsc};
use std::time::Duration;

use backend_async::AsyncExecutor;
use backend_threads::ThreadPoolExecutor;
use executor_core::{
    Executor, FutureHandle, Promise, ReturnWhen, State, TaskId, Waitable, as_completed, wait,
};
use support::{Gate, LIMIT, Opener, current_thread_runtime, recv};

/// An async task of `pool` that returns `value` once `gate` opens.
fn gated_async<T: Send + Sync + 'static>(
    pool: &AsyncExecutor,
    gate: &Arc<Gate>,
    value: T,
) -> FutureHandle<T> {
    let gate = gate.clone();
    pool.submit_async(async move {
        gate.pass().await;
        value
    })
    .unwrap()
}

/// A thread-pool task that returns `value` once `gate` opens.
fn gated_thread<T: Send + Sync + 'static>(
    pool: &ThreadPoolExecutor,
    gate: &Arc<Gate>,
    value: T,
) -> FutureHandle<T> {
    let gate = gate.clone();
    pool.submit(move || {
        gate.pass_blocking();
        value
    })
    .unwrap()
}

fn ids<W: Waitable>(futures: &[W]) -> Vec<TaskId> {
    futures.iter().map(|f| f.info().id()).collect()
}

/// D1–D3: one `wait` over an async-backend future, a thread-pool future (of another output
/// type) and a bare future: nothing is done at first; FIRST_COMPLETED returns exactly the one
/// released; ALL_COMPLETED returns all of them; duplicates collapse.
#[test]
fn one_wait_over_async_thread_pool_and_bare_futures() {
    let io = AsyncExecutor::new(4).unwrap();
    let cpu = ThreadPoolExecutor::new(2).unwrap();
    for release_async_first in [true, false] {
        let (async_gate, async_opener) = Gate::new();
        let (thread_gate, thread_opener) = Gate::new();
        let body = gated_async(&io, &async_gate, vec![0u8; 16]);
        let digest = gated_thread(&cpu, &thread_gate, String::from("beef"));
        let (promise, bare) = Promise::<u64>::new();
        let all: [&dyn Waitable; 4] = [&body, &digest, &bare, &body];

        let r = wait(all, Some(Duration::ZERO), ReturnWhen::AllCompleted);
        assert_eq!(
            (r.done.len(), r.not_done.len()),
            (0, 3),
            "duplicates collapse"
        );

        let (first, first_opener, second, second_opener): (&dyn Waitable, _, &dyn Waitable, _) =
            if release_async_first {
                (&body, async_opener, &digest, thread_opener)
            } else {
                (&digest, thread_opener, &body, async_opener)
            };
        first_opener.open();
        let r = wait(all, Some(LIMIT), ReturnWhen::FirstCompleted);
        assert_eq!(ids(&r.done), [first.info().id()], "only the released one");
        assert_eq!(r.not_done.len(), 2);

        second_opener.open();
        promise.set_result(7).unwrap();
        let r = wait(all, Some(LIMIT), ReturnWhen::AllCompleted);
        assert_eq!(
            ids(&r.done),
            [body.id(), digest.id(), bare.id()],
            "all, in input order"
        );
        assert!(r.not_done.is_empty());
        assert_eq!(second.state(), State::Finished);
        assert_eq!(body.result(Some(Duration::ZERO)).unwrap().len(), 16);
        assert_eq!(*digest.result(Some(Duration::ZERO)).unwrap(), "beef");
    }
}

/// D2 across backends: FIRST_EXCEPTION returns when the async task panics while the thread-pool
/// task is still held, and when a thread-pool task fails while an async one is still held.
#[test]
fn first_exception_across_backends() {
    let io = AsyncExecutor::new(2).unwrap();
    let cpu = ThreadPoolExecutor::new(2).unwrap();
    let (gate, opener) = Gate::new();

    let held_thread = gated_thread(&cpu, &gate, 1u32);
    let failing_async = io
        .submit_async(async {
            tokio::task::yield_now().await;
            panic!("async failure")
        })
        .unwrap();
    let both: [&dyn Waitable; 2] = [&held_thread, &failing_async];
    let r = wait(both, Some(LIMIT), ReturnWhen::FirstException);
    assert_eq!(ids(&r.done), [failing_async.id()]);
    assert_eq!(ids(&r.not_done), [held_thread.id()]);
    let e = failing_async.result(Some(Duration::ZERO)).unwrap_err();
    assert_eq!(e.task_error().unwrap().message(), "async failure");

    let held_async = gated_async(&io, &gate, 2u32);
    let failing_thread = cpu.submit(|| -> u32 { panic!("thread failure") }).unwrap();
    let both: [&dyn Waitable; 2] = [&held_async, &failing_thread];
    let r = wait(both, Some(LIMIT), ReturnWhen::FirstException);
    assert_eq!(ids(&r.done), [failing_thread.id()]);
    assert_eq!(ids(&r.not_done), [held_async.id()]);

    opener.open();
    assert_eq!(*held_thread.result(Some(LIMIT)).unwrap(), 1);
    assert_eq!(*held_async.result(Some(LIMIT)).unwrap(), 2);
}

/// F1 and E1 across backends: one `as_completed` over async and thread-pool futures yields the
/// done ones first (a cancelled thread-pool future among them), then each future exactly when
/// its gate is opened, in the order the test opens them.
#[test]
fn one_as_completed_over_async_and_thread_pool_futures_in_completion_order() {
    let io = AsyncExecutor::new(4).unwrap();
    let cpu = ThreadPoolExecutor::new(3).unwrap();
    for round in 0..10 {
        let (blocker_gate, blocker_opener) = Gate::new();
        // Keeps the one-thread pool busy, so that `cancelled` is still queued when cancelled.
        let single = ThreadPoolExecutor::new(1).unwrap();
        let blocker = gated_thread(&single, &blocker_gate, ());
        let cancelled = single.submit(|| 0u32).unwrap();
        assert!(cancelled.cancel());
        let finished = io.submit_async(async { 0u32 }).unwrap();
        finished.result(Some(LIMIT)).unwrap();

        let mut futures = vec![cancelled, finished];
        let mut openers: Vec<(TaskId, Opener)> = Vec::new();
        for i in 0..6u32 {
            let (gate, opener) = Gate::new();
            let f = if i % 2 == 0 {
                gated_async(&io, &gate, i + 1)
            } else {
                gated_thread(&cpu, &gate, i + 1)
            };
            openers.push((f.id(), opener));
            futures.push(f);
        }
        let expected_first = ids(&futures[..2]);
        // A different interleaving of the two backends each round.
        openers.rotate_left(round % 6);
        if round % 2 == 1 {
            openers.reverse();
        }

        let mut completed = as_completed(futures, Some(LIMIT));
        let first: Vec<TaskId> = (0..2)
            .map(|_| completed.next().unwrap().unwrap().id())
            .collect();
        assert_eq!(first, expected_first, "the done ones first, in input order");
        for (id, opener) in openers {
            opener.open();
            let next = completed.next().expect("one more").expect("no timeout");
            assert_eq!(next.id(), id, "round {round}: yielded in completion order");
            assert!(*next.result(Some(Duration::ZERO)).unwrap() > 0);
        }
        assert!(completed.next().is_none());
        blocker_opener.open();
        blocker.result(Some(LIMIT)).unwrap();
    }
}

/// C5 across backends: an async task of this backend awaits a thread-pool future without
/// blocking its worker (it stays RUNNING while the other tasks on the runtime go on), on the
/// executor's own runtime and on a current-thread runtime of the user's.
#[test]
fn an_async_task_awaits_a_thread_pool_future() {
    let cpu = ThreadPoolExecutor::new(2).unwrap();

    let io = AsyncExecutor::builder()
        .max_workers(4)
        .worker_threads(1)
        .build()
        .unwrap();
    let (gate, opener) = Gate::new();
    let digest = gated_thread(&cpu, &gate, 41u32);
    let (awaiting_tx, awaiting_rx) = mpsc::channel();
    let waiter = io
        .submit_async(async move {
            awaiting_tx.send(()).unwrap();
            digest.await.unwrap() + 1
        })
        .unwrap();
    recv(&awaiting_rx, "the async task is awaiting");
    // The runtime's one worker thread is free: other tasks still run.
    let other = io.submit_async(async { "not starved" }).unwrap();
    assert_eq!(*other.result(Some(LIMIT)).unwrap(), "not starved");
    assert_eq!(waiter.state(), State::Running);
    opener.open();
    assert_eq!(*waiter.result(Some(LIMIT)).unwrap(), 42);

    let runtime = current_thread_runtime();
    let io = AsyncExecutor::builder()
        .max_workers(2)
        .handle(runtime.handle().clone())
        .build()
        .unwrap();
    let (gate, opener) = Gate::new();
    let digest = gated_thread(&cpu, &gate, 9u32);
    let waiter = io
        .submit_async(async move {
            opener.open();
            let by_value = digest.await.unwrap();
            by_value * 2
        })
        .unwrap();
    let doubled = runtime.block_on(async { tokio::time::timeout(LIMIT, waiter).await });
    assert_eq!(doubled.expect("no hang").unwrap(), 18);
}

/// M3 across backends, in both directions: a thread-pool task blocks on an async-backend future,
/// and an async task (on a multi-thread runtime with one worker thread) blocks in `result`,
/// `wait` and `as_completed` on thread-pool futures; each sees the value.
#[test]
fn blocking_waits_across_backends_from_inside_tasks() {
    let cpu = ThreadPoolExecutor::new(2).unwrap();
    let io = AsyncExecutor::builder()
        .max_workers(4)
        .worker_threads(1)
        .build()
        .unwrap();

    let (gate, opener) = Gate::new();
    let from_io = gated_async(&io, &gate, 20u32);
    let (blocking_tx, blocking_rx) = mpsc::channel();
    let on_thread = cpu
        .submit(move || {
            blocking_tx.send(()).unwrap();
            *from_io.result(Some(LIMIT)).unwrap() + 1
        })
        .unwrap();
    recv(&blocking_rx, "the thread-pool task is about to block");
    opener.open();
    assert_eq!(*on_thread.result(Some(LIMIT)).unwrap(), 21);

    let (gate, opener) = Gate::new();
    let (a, b, c) = (
        gated_thread(&cpu, &gate, 1u32),
        gated_thread(&cpu, &gate, 2u32),
        gated_thread(&cpu, &gate, 3u32),
    );
    let same_runtime = gated_async(&io, &gate, 4u32);
    let (blocking_tx, blocking_rx) = mpsc::channel();
    let on_runtime = io
        .submit_async(async move {
            blocking_tx.send(()).unwrap();
            let mixed: [&dyn Waitable; 3] = [&a, &b, &same_runtime];
            let r = wait(mixed, Some(LIMIT), ReturnWhen::AllCompleted);
            let all_done = r.not_done.is_empty();
            let sum: u32 = as_completed([&b, &c], Some(LIMIT))
                .map(|f| *f.unwrap().result(Some(Duration::ZERO)).unwrap())
                .sum();
            let a = *a.result(Some(LIMIT)).unwrap();
            let d = *same_runtime.result(Some(LIMIT)).unwrap();
            (all_done, a + sum + d)
        })
        .unwrap();
    recv(&blocking_rx, "the async task is about to block");
    opener.open();
    assert_eq!(*on_runtime.result(Some(LIMIT)).unwrap(), (true, 10));
}
