//! Many-iteration stress tests of the races in the future's state machine (`shared.rs`): cancel
//! against start, completion against timed and untimed waits, callbacks added while the future
//! completes, many waiters of every kind, `into_result` against the "settling" protocol,
//! `wait`/`as_completed` against concurrent completions, and dropped promises.
//!
//! `loom` cannot model `parking_lot`, so each race is run thousands of times on real threads,
//! lined up with a [`Barrier`] and spread with a per-iteration jitter so that both orders of
//! every race occur. Every assertion is an invariant that must hold in *every* interleaving;
//! none depends on which side wins. A lost wake-up would hang a test, so a [`Watchdog`] aborts
//! the process with the test's name and iteration if one iteration makes no progress for
//! [`HANG_LIMIT`].
//!
//! Scale the iteration counts with `STRESS_SCALE` (a float, default 1), e.g. for a soak run:
//! `STRESS_SCALE=20 cargo test -p executor-core --test stress --release`.

use std::collections::HashSet;
use std::future::{Future, IntoFuture};
use std::hint::spin_loop;
use std::io::Write;
use std::panic::resume_unwind;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use executor_core::{
    FutureHandle, NotStarted, Promise, ResultError, ReturnWhen, State, TaskError, TaskId,
    WaitError, as_completed, wait,
};

/// An iteration that makes no progress for this long is a hang (a lost wake-up): abort.
const HANG_LIMIT: Duration = Duration::from_secs(30);

// ---- helpers ---------------------------------------------------------------------------------

/// `base` iterations, times `STRESS_SCALE` if set.
fn iterations(base: usize) -> usize {
    let scale = std::env::var("STRESS_SCALE")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(1.0);
    ((base as f64 * scale) as usize).max(1)
}

/// Aborts the whole test process if the test it watches stops making progress, naming the test
/// and the iteration, instead of letting `cargo test` hang.
struct Watchdog {
    tx: Option<mpsc::Sender<usize>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Watchdog {
    fn new(test: &'static str) -> Watchdog {
        let (tx, rx) = mpsc::channel::<usize>();
        let thread = thread::spawn(move || {
            let mut iteration = 0;
            loop {
                match rx.recv_timeout(HANG_LIMIT) {
                    Ok(i) => iteration = i,
                    Err(RecvTimeoutError::Disconnected) => return,
                    Err(RecvTimeoutError::Timeout) => {
                        // Straight to stderr: the test harness's capture would swallow
                        // `eprintln!` when the process aborts.
                        let _ = writeln!(
                            std::io::stderr(),
                            "stress::{test}: iteration {iteration} made no progress for \
                             {HANG_LIMIT:?}: a waiter hangs (lost wake-up?); aborting"
                        );
                        std::process::abort();
                    }
                }
            }
        });
        Watchdog {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    /// Iteration `i` starts.
    fn tick(&self, i: usize) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(i);
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A pseudo-random pause (none, a yield, or up to a few hundred spins), different for each
/// iteration and each party, so that the racing operations land in both orders.
fn jitter(iteration: usize, who: u64) {
    let mut x = (iteration as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ who.wrapping_add(1).wrapping_mul(0xD1B5_4A32_D192_ED03);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 29;
    match x % 8 {
        0 => {}
        1 => thread::yield_now(),
        _ => {
            for _ in 0..(x >> 8) % 400 {
                spin_loop();
            }
        }
    }
}

/// Wakes a thread parked in [`block_on`].
struct Unparker(thread::Thread);

impl Wake for Unparker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// A minimal executor for one future: poll, park until woken, poll again. A lost wake-up parks
/// forever (the watchdog catches it); spurious unparks only cost a poll.
fn block_on<F: IntoFuture>(future: F) -> F::Output {
    let waker = Waker::from(Arc::new(Unparker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future.into_future());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        thread::park();
    }
}

/// What a consumer saw, in a form that compares across waiter kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Value(String),
    Cancelled,
    Timeout,
    /// Failed with an abandoned error stamped with this task id.
    Abandoned(Option<TaskId>),
    /// Failed with this message.
    Failed(String),
    Other(String),
}

fn seen_result<V: ToString>(result: Result<V, ResultError>) -> Seen {
    match result {
        Ok(v) => Seen::Value(v.to_string()),
        Err(e) => seen_error(e),
    }
}

fn seen_error(e: ResultError) -> Seen {
    match e {
        ResultError::Cancelled(_) => Seen::Cancelled,
        ResultError::Timeout(_) => Seen::Timeout,
        ResultError::Failed(e) => seen_task_error(&e),
        other => Seen::Other(format!("{other:?}")),
    }
}

fn seen_task_error(e: &TaskError) -> Seen {
    if e.is_abandoned() {
        Seen::Abandoned(e.task_id())
    } else {
        Seen::Failed(e.message().to_owned())
    }
}

/// `future.error(timeout)`, turned into what `result` would say (Python's `exception()`).
fn seen_via_error(future: &FutureHandle<String>, timeout: Option<Duration>) -> Seen {
    match future.error(timeout) {
        Ok(None) => seen_result(future.result(Some(Duration::ZERO))),
        Ok(Some(e)) => seen_task_error(e),
        Err(WaitError::Cancelled(_)) => Seen::Cancelled,
        Err(WaitError::Timeout(_)) => Seen::Timeout,
        Err(other) => Seen::Other(format!("{other:?}")),
    }
}

/// One way of blocking until a future is done, then reading its outcome.
#[derive(Debug, Clone, Copy)]
enum Waiter {
    Result,
    Error,
    WaitFirstCompleted,
    WaitAllCompleted,
    WaitFirstException,
    AsCompleted,
    AwaitRef,
}

const WAITERS: [Waiter; 7] = [
    Waiter::Result,
    Waiter::Error,
    Waiter::WaitFirstCompleted,
    Waiter::WaitAllCompleted,
    Waiter::WaitFirstException,
    Waiter::AsCompleted,
    Waiter::AwaitRef,
];

impl Waiter {
    /// Blocks (no timeout) until `future` is done and returns its outcome. `wait` and
    /// `as_completed` must report the future done, and then `result` must not block.
    fn block(self, future: &FutureHandle<String>) -> Seen {
        let now = || seen_result(future.result(Some(Duration::ZERO)));
        match self {
            Waiter::Result => seen_result(future.result(None)),
            Waiter::Error => seen_via_error(future, None),
            Waiter::WaitFirstCompleted | Waiter::WaitAllCompleted | Waiter::WaitFirstException => {
                let when = match self {
                    Waiter::WaitFirstCompleted => ReturnWhen::FirstCompleted,
                    Waiter::WaitAllCompleted => ReturnWhen::AllCompleted,
                    _ => ReturnWhen::FirstException,
                };
                let r = wait([future], None, when);
                assert_eq!(
                    r.done.len(),
                    1,
                    "{self:?} returned with the future not done"
                );
                assert!(r.not_done.is_empty());
                assert_eq!(r.done[0].id(), future.id());
                now()
            }
            Waiter::AsCompleted => {
                let mut it = as_completed([future], None);
                let first = it.next().expect("as_completed ended before yielding");
                let first = first.expect("as_completed without a timeout timed out");
                assert_eq!(first.id(), future.id());
                assert!(
                    first.done(),
                    "as_completed yielded a future that is not done"
                );
                assert!(it.next().is_none(), "as_completed yielded twice");
                now()
            }
            Waiter::AwaitRef => seen_result(block_on(future)),
        }
    }
}

// ---- 1. cancel vs start ----------------------------------------------------------------------

/// Two cancellers race the producer's start (`set_running_or_notify_cancel`, or `run`), or, for
/// a bare future (rule A5), its completion straight from PENDING. Exactly one side wins: both
/// `cancel()` calls return `true` (one cancelled it, the other found it cancelled) and the task
/// never runs (a late `set_result` hands the value back, state unchanged), or both return
/// `false` and the task runs and its value arrives. A blocked waiter and a done callback see the
/// same winner; the callback runs exactly once either way.
#[test]
fn cancel_vs_start_exactly_one_wins() {
    let dog = Watchdog::new("cancel_vs_start_exactly_one_wins");
    let (mut cancel_won, mut start_won) = (0usize, 0usize);
    for i in 0..iterations(3000) {
        dog.tick(i);
        let (promise, future) = Promise::<String>::new();
        let callbacks = Arc::new(AtomicUsize::new(0));
        {
            let callbacks = Arc::clone(&callbacks);
            future.add_done_callback(move |_| {
                callbacks.fetch_add(1, SeqCst);
            });
        }
        let ran = Arc::new(AtomicBool::new(false));
        let how = i % 3; // run, set_running_or_notify_cancel + set_result, set_result alone
        let barrier = Barrier::new(4);
        let (cancel1, cancel2, started, waited) = thread::scope(|s| {
            let (future, barrier, ran) = (&future, &barrier, &ran);
            let waiter = s.spawn(move || {
                barrier.wait();
                seen_result(future.result(None))
            });
            let canceller = |who| {
                s.spawn(move || {
                    barrier.wait();
                    jitter(i, who);
                    future.cancel()
                })
            };
            let (c1, c2) = (canceller(1), canceller(2));
            let producer = s.spawn(move || {
                barrier.wait();
                jitter(i, 3);
                if how == 2 {
                    // A bare future completed from PENDING: the completion is the start.
                    match promise.set_result(format!("v{i}")) {
                        Ok(()) => {
                            ran.store(true, SeqCst);
                            true
                        }
                        Err(e) => {
                            assert_eq!(e.state(), State::Cancelled);
                            assert_eq!(e.into_inner(), format!("v{i}"));
                            false
                        }
                    }
                } else if how == 0 {
                    let flag = Arc::clone(ran);
                    promise.run(move || {
                        flag.store(true, SeqCst);
                        format!("v{i}")
                    });
                    // `run` starts the task iff the start won.
                    ran.load(SeqCst)
                } else {
                    match promise.set_running_or_notify_cancel() {
                        Ok(()) => {
                            ran.store(true, SeqCst);
                            promise.set_result(format!("v{i}")).unwrap();
                            true
                        }
                        Err(NotStarted::Cancelled) => {
                            // Completing a cancelled future hands the value back, state unchanged.
                            let e = promise.set_result(format!("v{i}")).unwrap_err();
                            assert_eq!(e.state(), State::Cancelled);
                            assert_eq!(e.into_inner(), format!("v{i}"));
                            false
                        }
                        Err(other) => panic!("iteration {i}: start failed with {other:?}"),
                    }
                }
            });
            (
                c1.join().unwrap(),
                c2.join().unwrap(),
                producer.join().unwrap(),
                waiter.join().unwrap(),
            )
        });
        assert_eq!(
            cancel1, cancel2,
            "iteration {i}: the two cancel() calls disagree about who won"
        );
        assert_ne!(
            cancel1, started,
            "iteration {i}: cancel()={cancel1} and start={started}: exactly one must win"
        );
        assert_eq!(
            callbacks.load(SeqCst),
            1,
            "iteration {i}: done callback runs"
        );
        if cancel1 {
            cancel_won += 1;
            assert!(!ran.load(SeqCst), "iteration {i}: a cancelled task ran");
            assert_eq!(future.state(), State::Cancelled);
            assert_eq!(waited, Seen::Cancelled, "iteration {i}");
            assert!(future.cancel(), "iteration {i}: cancel after cancel");
            assert!(future.into_result().unwrap_err().is_cancelled());
        } else {
            start_won += 1;
            assert!(
                ran.load(SeqCst),
                "iteration {i}: the start won but the task did not run"
            );
            assert_eq!(future.state(), State::Finished);
            assert_eq!(waited, Seen::Value(format!("v{i}")), "iteration {i}");
            assert!(!future.cancel(), "iteration {i}: cancel after finish");
            assert_eq!(future.into_result().unwrap(), format!("v{i}"));
        }
    }
    eprintln!("cancel_vs_start: cancel won {cancel_won}, start won {start_won}");
}

// ---- 2. complete vs a timed wait -------------------------------------------------------------

/// A timed wait (`result`, `error` or `wait`) races the completion. It sees the outcome or a
/// timeout, nothing else; a timeout never comes before the deadline (rule C2); and a second,
/// untimed wait right after a timeout gets the outcome.
#[test]
fn complete_vs_timed_wait() {
    const TIMEOUTS: [Duration; 5] = [
        Duration::ZERO,
        Duration::from_nanos(1),
        Duration::from_micros(5),
        Duration::from_micros(30),
        Duration::from_micros(150),
    ];
    let dog = Watchdog::new("complete_vs_timed_wait");
    let (mut timeouts, mut outcomes) = (0usize, 0usize);
    for i in 0..iterations(6000) {
        dog.tick(i);
        let (promise, future) = Promise::<String>::new();
        let timeout = TIMEOUTS[i % TIMEOUTS.len()];
        let fails = i % 7 == 3;
        let expected = if fails {
            Seen::Failed(format!("e{i}"))
        } else {
            Seen::Value(format!("v{i}"))
        };
        let barrier = Barrier::new(2);
        let (first, elapsed, second) = thread::scope(|s| {
            let (future, barrier) = (&future, &barrier);
            let consumer = s.spawn(move || {
                barrier.wait();
                jitter(i, 1);
                let t0 = Instant::now();
                let first = match (i / TIMEOUTS.len()) % 3 {
                    0 => seen_result(future.result(Some(timeout))),
                    1 => seen_via_error(future, Some(timeout)),
                    _ => {
                        let r = wait([future], Some(timeout), ReturnWhen::FirstCompleted);
                        assert_eq!(r.done.len() + r.not_done.len(), 1);
                        if r.done.is_empty() {
                            Seen::Timeout
                        } else {
                            seen_result(future.result(Some(Duration::ZERO)))
                        }
                    }
                };
                let elapsed = t0.elapsed();
                // The second wait may still race the producer: it must block until the outcome.
                let second = seen_result(future.result(None));
                (first, elapsed, second)
            });
            s.spawn(move || {
                barrier.wait();
                jitter(i, 2);
                if fails {
                    promise.set_error(TaskError::msg(format!("e{i}"))).unwrap();
                } else {
                    promise.set_result(format!("v{i}")).unwrap();
                }
            });
            consumer.join().unwrap()
        });
        if first == Seen::Timeout {
            timeouts += 1;
            assert!(
                elapsed >= timeout,
                "iteration {i}: timed out after {elapsed:?}, before its {timeout:?} deadline"
            );
        } else {
            outcomes += 1;
            assert_eq!(
                first, expected,
                "iteration {i}: the timed wait saw something else"
            );
        }
        assert_eq!(second, expected, "iteration {i}: the untimed wait after it");
        assert_eq!(seen_result(future.result(None)), expected);
    }
    eprintln!("complete_vs_timed_wait: {timeouts} timed out, {outcomes} saw the outcome");
}

// ---- 3. callbacks added while completing -----------------------------------------------------

/// Several threads add done callbacks while the producer completes (or cancels) the future.
/// Every callback runs exactly once, sees the future done with its outcome, and runs either in
/// the completing thread (added before) or at once in the adding thread (added after, rule B2).
/// Per adding thread, those run by the completer are a prefix of its adds and run in the order
/// added (rule B1).
#[test]
fn callbacks_added_while_completing_run_once() {
    const ADDERS: usize = 3;
    const PER_ADDER: usize = 4;
    const RAN_IN_ADDER: u8 = 1;
    const RAN_IN_COMPLETER: u8 = 2;
    let dog = Watchdog::new("callbacks_added_while_completing_run_once");
    let order_inversions = AtomicUsize::new(0);
    let (mut before, mut after) = (0usize, 0usize);
    for i in 0..iterations(2500) {
        dog.tick(i);
        let (promise, future) = Promise::<String>::new();
        let cancel = i % 4 == 3;
        let expected = if cancel {
            Seen::Cancelled
        } else {
            Seen::Value(format!("v{i}"))
        };
        let n = ADDERS * PER_ADDER;
        let runs: Arc<Vec<AtomicUsize>> = Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect());
        let place: Arc<Vec<AtomicU8>> = Arc::new((0..n).map(|_| AtomicU8::new(0)).collect());
        let order: Arc<Vec<AtomicUsize>> = Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect());
        let clock = Arc::new(AtomicUsize::new(1));
        let wrong = Arc::new(AtomicUsize::new(0));
        let barrier = Barrier::new(ADDERS + 1);
        thread::scope(|s| {
            let (future, barrier) = (&future, &barrier);
            for a in 0..ADDERS {
                let (runs, place, order, clock, wrong, expected) = (
                    Arc::clone(&runs),
                    Arc::clone(&place),
                    Arc::clone(&order),
                    Arc::clone(&clock),
                    Arc::clone(&wrong),
                    expected.clone(),
                );
                s.spawn(move || {
                    let me = thread::current().id();
                    barrier.wait();
                    for k in 0..PER_ADDER {
                        jitter(i * PER_ADDER + k, a as u64);
                        let idx = a * PER_ADDER + k;
                        let (runs, place, order, clock, wrong, expected) = (
                            Arc::clone(&runs),
                            Arc::clone(&place),
                            Arc::clone(&order),
                            Arc::clone(&clock),
                            Arc::clone(&wrong),
                            expected.clone(),
                        );
                        // A panic in a callback is only reported, so a callback records what it
                        // saw and the test asserts afterwards.
                        future.add_done_callback(move |f| {
                            order[idx].store(clock.fetch_add(1, SeqCst), SeqCst);
                            runs[idx].fetch_add(1, SeqCst);
                            let here = if thread::current().id() == me {
                                RAN_IN_ADDER
                            } else {
                                RAN_IN_COMPLETER
                            };
                            place[idx].store(here, SeqCst);
                            if !f.done() || seen_result(f.result(Some(Duration::ZERO))) != expected
                            {
                                wrong.fetch_add(1, SeqCst);
                            }
                        });
                    }
                });
            }
            s.spawn(move || {
                barrier.wait();
                jitter(i, 99);
                if cancel {
                    assert!(future.cancel());
                } else {
                    promise.set_result(format!("v{i}")).unwrap();
                }
            });
        });
        for idx in 0..n {
            assert_eq!(
                runs[idx].load(SeqCst),
                1,
                "iteration {i}: callback {idx} ran {} times",
                runs[idx].load(SeqCst)
            );
        }
        assert_eq!(
            wrong.load(SeqCst),
            0,
            "iteration {i}: a callback saw the future not done or with another outcome"
        );
        for a in 0..ADDERS {
            let places: Vec<u8> = (0..PER_ADDER)
                .map(|k| place[a * PER_ADDER + k].load(SeqCst))
                .collect();
            let queued = places
                .iter()
                .take_while(|&&p| p == RAN_IN_COMPLETER)
                .count();
            assert!(
                places[queued..].iter().all(|&p| p == RAN_IN_ADDER),
                "iteration {i}: adder {a}: callbacks ran at {places:?} (2 = completer, \
                 1 = adder): once one runs at once, the future is done and all later ones must"
            );
            before += queued;
            after += PER_ADDER - queued;
            for k in 1..queued {
                let (o1, o2) = (
                    order[a * PER_ADDER + k - 1].load(SeqCst),
                    order[a * PER_ADDER + k].load(SeqCst),
                );
                assert!(
                    o1 < o2,
                    "iteration {i}: adder {a}: the completer ran callback {k} before {}",
                    k - 1
                );
            }
            // Not asserted (CPython does the same): a callback added after completion runs at
            // once in its adder's thread, possibly before one the same thread added earlier that
            // the completer has not reached yet. Counted, to show how often that happens.
            let last_queued = queued
                .checked_sub(1)
                .map(|k| order[a * PER_ADDER + k].load(SeqCst));
            if let (Some(o1), Some(k2)) = (last_queued, (queued < PER_ADDER).then_some(queued)) {
                if order[a * PER_ADDER + k2].load(SeqCst) < o1 {
                    order_inversions.fetch_add(1, SeqCst);
                }
            }
        }
        // The outcome the callbacks saw is still the outcome.
        assert_eq!(seen_result(future.result(Some(Duration::ZERO))), expected);
    }
    eprintln!(
        "callbacks_added_while_completing: {before} run by the completer, {after} run at once \
         by their adder; {} times one ran at once before one its thread had added earlier",
        order_inversions.load(SeqCst)
    );
}

// ---- 4. many waiters, one completion ---------------------------------------------------------

/// How a test ends a future.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    SetResult,
    Cancel,
}

/// Waiters of every kind (`result`, `error`, `wait` in each mode, `as_completed`, `.await`) block
/// on one future; one completion (or one cancel, rule E1) wakes every one, and each sees the
/// outcome. On cancel the promise stays alive until every waiter has returned, so they are woken
/// by the cancellation itself, not by the promise being dropped.
fn many_waiters_woken(ending: Ending, test: &'static str) {
    const PER_KIND: usize = 2;
    let dog = Watchdog::new(test);
    for i in 0..iterations(600) {
        dog.tick(i);
        let (promise, future) = Promise::<String>::new();
        let expected = match ending {
            Ending::SetResult => Seen::Value(format!("v{i}")),
            Ending::Cancel => Seen::Cancelled,
        };
        let waiters = WAITERS.len() * PER_KIND;
        let barrier = Barrier::new(waiters + 1);
        let seen: Vec<(Waiter, Seen)> = thread::scope(|s| {
            let (future, barrier) = (&future, &barrier);
            let joins: Vec<_> = (0..waiters)
                .map(|w| {
                    let kind = WAITERS[w % WAITERS.len()];
                    s.spawn(move || {
                        barrier.wait();
                        (kind, kind.block(future))
                    })
                })
                .collect();
            let producer = s.spawn(move || {
                barrier.wait();
                // Usually the waiters are parked by now; now and then make that near-certain.
                if i % 16 == 0 {
                    thread::sleep(Duration::from_micros(500));
                } else {
                    jitter(i, 1000);
                }
                match ending {
                    Ending::SetResult => {
                        promise.set_result(format!("v{i}")).unwrap();
                        None
                    }
                    Ending::Cancel => {
                        assert!(future.cancel());
                        Some(promise)
                    }
                }
            });
            let seen = joins.into_iter().map(|j| j.join().unwrap()).collect();
            // Joined last: a kept promise is dropped only after every waiter returned.
            drop(producer.join().unwrap());
            seen
        });
        for (kind, seen) in seen {
            assert_eq!(seen, expected, "iteration {i}: waiter {kind:?}");
        }
    }
}

#[test]
fn many_waiters_woken_by_one_completion() {
    many_waiters_woken(Ending::SetResult, "many_waiters_woken_by_one_completion");
}

#[test]
fn many_waiters_woken_by_one_cancel() {
    many_waiters_woken(Ending::Cancel, "many_waiters_woken_by_one_cancel");
}

// ---- 5. into_result racing the producer ------------------------------------------------------

/// A value that counts its drops: `into_result` must move it out, not clone or leak it.
struct Tracked {
    text: String,
    drops: Arc<AtomicUsize>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.drops.fetch_add(1, SeqCst);
    }
}

/// The consumer moves the value out (`into_result`, or `.await` on the owned handle) while the
/// producer completes the future, with 0–3 done callbacks that read the value through their lent
/// handle (and one more that the consumer itself adds racing the completion). It always gets
/// the outcome, exactly once, never "taken twice" or a hang; and since it waits for the future to
/// settle, every callback has returned by the time it does.
#[test]
fn into_result_races_the_producer() {
    let dog = Watchdog::new("into_result_races_the_producer");
    for i in 0..iterations(4000) {
        dog.tick(i);
        let (promise, future) = Promise::<Tracked>::new();
        let drops = Arc::new(AtomicUsize::new(0));
        let callbacks = i % 4;
        let consumer_adds = (i / 4) % 2 == 1;
        let owned_await = (i / 8) % 2 == 1;
        let how = (i / 16) % 3; // set_result, run, set_error
        let fails = how == 2;
        let expected = if fails {
            Seen::Failed(format!("e{i}"))
        } else {
            Seen::Value(format!("v{i}"))
        };
        let finished = Arc::new(AtomicUsize::new(0));
        let wrong = Arc::new(AtomicUsize::new(0));
        let callback = |expected: Seen| {
            let (finished, wrong) = (Arc::clone(&finished), Arc::clone(&wrong));
            move |f: &FutureHandle<Tracked>| {
                let seen = match f.result(None) {
                    Ok(v) => Seen::Value(v.text.clone()),
                    Err(e) => seen_error(e),
                };
                if seen != expected {
                    wrong.fetch_add(1, SeqCst);
                }
                // Keep the lent handle a little longer: widens the "settling" window.
                thread::yield_now();
                finished.fetch_add(1, SeqCst);
            }
        };
        for _ in 0..callbacks {
            future.add_done_callback(callback(expected.clone()));
        }
        // Now and then a callback that panics (rule B3): it is reported, the others still run,
        // and the future still settles. `resume_unwind` skips the panic hook's message.
        let panics = i % 64 == 63;
        if panics {
            future.add_done_callback(|_| resume_unwind(Box::new("callback failed on purpose")));
            future.add_done_callback(callback(expected.clone()));
        }
        let late_callback = callback(expected.clone());
        let barrier = Barrier::new(2);
        let (seen, finished_at_return, drops_at_return) = thread::scope(|s| {
            let (barrier, finished, drops_seen) = (&barrier, &finished, &drops);
            let consumer = s.spawn(move || {
                barrier.wait();
                jitter(i, 1);
                if consumer_adds {
                    future.add_done_callback(late_callback);
                }
                let outcome = if owned_await {
                    block_on(future)
                } else {
                    future.into_result()
                };
                let finished_at_return = finished.load(SeqCst);
                let drops_at_return = drops_seen.load(SeqCst);
                let seen = match outcome {
                    Ok(t) => Seen::Value(t.text.clone()),
                    Err(e) => seen_error(e),
                };
                (seen, finished_at_return, drops_at_return)
            });
            let drops = Arc::clone(&drops);
            s.spawn(move || {
                barrier.wait();
                jitter(i, 2);
                let value = move || Tracked {
                    text: format!("v{i}"),
                    drops,
                };
                match how {
                    0 => promise.set_result(value()).map_err(drop).unwrap(),
                    1 => {
                        promise.run(value);
                    }
                    _ => promise.set_error(TaskError::msg(format!("e{i}"))).unwrap(),
                }
            });
            consumer.join().unwrap()
        });
        let total = callbacks + usize::from(consumer_adds) + usize::from(panics);
        assert_eq!(seen, expected, "iteration {i} (owned await: {owned_await})");
        assert_eq!(
            finished_at_return, total,
            "iteration {i}: the value was moved out before every callback returned"
        );
        assert_eq!(finished.load(SeqCst), total, "iteration {i}: callbacks ran");
        assert_eq!(
            wrong.load(SeqCst),
            0,
            "iteration {i}: a callback saw another outcome"
        );
        assert_eq!(
            drops_at_return, 0,
            "iteration {i}: the value was dropped early"
        );
        assert_eq!(
            drops.load(SeqCst),
            usize::from(!fails),
            "iteration {i}: the value was dropped more than once, or leaked"
        );
    }
}

// ---- 6. wait / as_completed with concurrent completions --------------------------------------

/// Several producers finish a dozen futures concurrently in every way there is (value, error,
/// cancel, dropped promise) while four consumers watch: `as_completed` without a timeout (with
/// duplicates in its input) yields every future exactly once, each already done; a loop of
/// `wait(FIRST_COMPLETED)` sees every future done exactly once and never returns empty-handed;
/// `wait(FIRST_EXCEPTION)` returns only once a failure is done or all are; `as_completed` with a
/// short deadline yields distinct done futures and, on timeout, accounts for every other one.
#[test]
fn wait_and_as_completed_see_every_completion_once() {
    use executor_core::Waitable;
    const PRODUCERS: usize = 3;
    const N: usize = 12;
    const CONSUMERS: usize = 4;
    let dog = Watchdog::new("wait_and_as_completed_see_every_completion_once");
    let mut timeouts = 0usize;
    for i in 0..iterations(1000) {
        dog.tick(i);
        let (promises, futures): (Vec<_>, Vec<_>) = (0..N).map(|_| Promise::<u32>::new()).unzip();
        let mut groups: Vec<Vec<(usize, Promise<u32>)>> =
            (0..PRODUCERS).map(|_| Vec::new()).collect();
        for (k, p) in promises.into_iter().enumerate() {
            groups[(k + i) % PRODUCERS].push((k, p));
        }
        let all_ids: HashSet<TaskId> = futures.iter().map(|f| f.id()).collect();
        let short = Duration::from_micros([0, 20, 100, 400][i % 4]);
        let barrier = Barrier::new(PRODUCERS + CONSUMERS);
        let timed_out = thread::scope(|s| {
            let (futures, barrier, all_ids) = (&futures, &barrier, &all_ids);
            let as_completed_all = s.spawn(move || {
                barrier.wait();
                let mut yielded = HashSet::new();
                let input = futures.iter().chain(futures.iter().rev().take(3));
                for f in as_completed(input, None) {
                    let f = f.expect("as_completed without a timeout timed out");
                    assert!(f.done(), "iteration {i}: yielded a future that is not done");
                    assert!(
                        yielded.insert(f.id()),
                        "iteration {i}: yielded {} twice",
                        f.id()
                    );
                }
                assert_eq!(
                    &yielded, all_ids,
                    "iteration {i}: as_completed lost a future"
                );
            });
            let first_completed = s.spawn(move || {
                barrier.wait();
                let mut remaining: Vec<&FutureHandle<u32>> = futures.iter().collect();
                let mut seen = HashSet::new();
                while !remaining.is_empty() {
                    let before = remaining.len();
                    let r = wait(remaining, None, ReturnWhen::FirstCompleted);
                    assert!(
                        !r.done.is_empty(),
                        "iteration {i}: FIRST_COMPLETED returned none"
                    );
                    assert_eq!(r.done.len() + r.not_done.len(), before);
                    for f in &r.done {
                        assert!(f.done());
                        assert!(seen.insert(f.id()), "iteration {i}: {} done twice", f.id());
                    }
                    remaining = r.not_done;
                }
                assert_eq!(
                    &seen, all_ids,
                    "iteration {i}: FIRST_COMPLETED lost a future"
                );
            });
            let first_exception = s.spawn(move || {
                barrier.wait();
                let r = wait(futures, None, ReturnWhen::FirstException);
                assert!(
                    r.done.iter().any(Waitable::failed) || r.not_done.is_empty(),
                    "iteration {i}: FIRST_EXCEPTION returned with no failure and {} not done",
                    r.not_done.len()
                );
                assert!(r.done.iter().all(|f| f.done()));
                let r = wait(futures, None, ReturnWhen::AllCompleted);
                assert!(
                    r.not_done.is_empty(),
                    "iteration {i}: ALL_COMPLETED left some"
                );
                assert_eq!(r.done.len(), N);
            });
            let as_completed_deadline = s.spawn(move || {
                barrier.wait();
                let mut yielded = HashSet::new();
                let mut it = as_completed(futures, Some(short));
                let mut timed_out = false;
                loop {
                    // Never more unfinished than not yet yielded, also after the end.
                    let unfinished = it.unfinished();
                    assert!(
                        unfinished <= N - yielded.len(),
                        "iteration {i}: unfinished() = {unfinished} with {} of {N} yielded",
                        yielded.len()
                    );
                    let Some(f) = it.next() else { break };
                    match f {
                        Ok(f) => {
                            assert!(f.done(), "iteration {i}: yielded a future not done");
                            assert!(yielded.insert(f.id()), "iteration {i}: yielded twice");
                        }
                        Err(e) => {
                            timed_out = true;
                            let (unfinished, total) =
                                e.unfinished().expect("as_completed's timeout counts");
                            assert_eq!(total, N);
                            assert_eq!(
                                yielded.len() + unfinished,
                                N,
                                "iteration {i}: yielded {} and {unfinished} unfinished of {N}",
                                yielded.len()
                            );
                        }
                    }
                }
                assert!(
                    it.next().is_none(),
                    "iteration {i}: as_completed resumed after ending"
                );
                if !timed_out {
                    assert_eq!(
                        &yielded, all_ids,
                        "iteration {i}: as_completed lost a future"
                    );
                }
                timed_out
            });
            for (p, group) in groups.into_iter().enumerate() {
                s.spawn(move || {
                    barrier.wait();
                    for (k, promise) in group {
                        jitter(i * N + k, p as u64);
                        match (i + k) % 6 {
                            0 | 1 => promise.set_result(k as u32).unwrap(),
                            2 => {
                                promise.run(move || k as u32);
                            }
                            3 => promise.set_error(TaskError::msg("failed")).unwrap(),
                            4 => assert!(promise.cancel()),
                            _ => drop(promise),
                        }
                    }
                });
            }
            as_completed_all.join().unwrap();
            first_completed.join().unwrap();
            first_exception.join().unwrap();
            as_completed_deadline.join().unwrap()
        });
        timeouts += usize::from(timed_out);
        assert!(futures.iter().all(|f| f.done()));
    }
    eprintln!("wait_and_as_completed: the short-deadline as_completed timed out {timeouts} times");
}

/// `as_completed` with a deadline that passes while a producer is still completing futures one
/// after another, so that completions land in every step of the timeout path, including the
/// moment between "timed out" and "detached from the unfinished futures". The timeout accounts
/// for every future not yielded, and `unfinished()` never counts more futures than are left to
/// yield: not before, not at, and not after the timeout.
#[test]
fn as_completed_deadline_amid_completions() {
    const N: usize = 16;
    let dog = Watchdog::new("as_completed_deadline_amid_completions");
    let mut timeouts = 0usize;
    for i in 0..iterations(3000) {
        dog.tick(i);
        let (promises, futures): (Vec<_>, Vec<_>) = (0..N).map(|_| Promise::<u32>::new()).unzip();
        let deadline = Duration::from_micros(5 + (i % 8) as u64 * 10);
        let barrier = Barrier::new(2);
        let (yielded, reported, after) = thread::scope(|s| {
            let (futures, barrier) = (&futures, &barrier);
            s.spawn(move || {
                barrier.wait();
                for (k, promise) in promises.into_iter().enumerate() {
                    for _ in 0..(k * 7 + i) % 200 {
                        spin_loop();
                    }
                    promise.set_result(k as u32).unwrap();
                }
            });
            barrier.wait();
            let mut it = as_completed(futures, Some(deadline));
            let mut yielded = 0;
            let mut reported = None;
            for item in it.by_ref() {
                match item {
                    Ok(f) => {
                        assert!(f.done(), "iteration {i}: yielded a future not done");
                        yielded += 1;
                    }
                    Err(e) => reported = e.unfinished(),
                }
            }
            (yielded, reported, it.unfinished())
        });
        if let Some((unfinished, total)) = reported {
            timeouts += 1;
            assert_eq!(total, N);
            assert_eq!(
                yielded + unfinished,
                N,
                "iteration {i}: yielded {yielded}, timeout says {unfinished} unfinished of {N}"
            );
        } else {
            assert_eq!(
                yielded, N,
                "iteration {i}: ended without a timeout, futures lost"
            );
        }
        assert!(
            after <= N - yielded,
            "iteration {i}: after the end unfinished() = {after}, with {yielded} of {N} yielded"
        );
    }
    eprintln!("as_completed_deadline_amid_completions: {timeouts} timed out");
}

// ---- 7. dropped promise ----------------------------------------------------------------------

/// How the producer goes away without completing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Abandon {
    /// Drops the pending promise.
    DropPending,
    /// Starts the task, then drops the promise.
    DropRunning,
    /// The producer's thread dies (unwinds) holding the promise.
    ThreadDies,
    /// Drops the pending promise while another thread cancels the future.
    DropVsCancel,
}

/// A promise dropped on another thread while waiters of every kind block on its future: each
/// waiter gets a `Failed` error that `is_abandoned()` and names the task, never a hang. When a
/// cancel races the drop, `cancel() == true` exactly when the waiters see `Cancelled`.
#[test]
fn dropped_promise_fails_waiters_as_abandoned() {
    const WAYS: [Abandon; 4] = [
        Abandon::DropPending,
        Abandon::DropRunning,
        Abandon::ThreadDies,
        Abandon::DropVsCancel,
    ];
    let dog = Watchdog::new("dropped_promise_fails_waiters_as_abandoned");
    let (mut cancel_won, mut drop_won) = (0usize, 0usize);
    for i in 0..iterations(1500) {
        dog.tick(i);
        let way = WAYS[i % WAYS.len()];
        let (promise, future) = Promise::<String>::new();
        let barrier = Barrier::new(WAITERS.len() + 2);
        let (seen, cancelled) = thread::scope(|s| {
            let (future, barrier) = (&future, &barrier);
            let joins: Vec<_> = WAITERS
                .iter()
                .map(|&kind| {
                    s.spawn(move || {
                        barrier.wait();
                        (kind, kind.block(future))
                    })
                })
                .collect();
            let producer = s.spawn(move || {
                barrier.wait();
                jitter(i, 1);
                match way {
                    Abandon::DropPending | Abandon::DropVsCancel => drop(promise),
                    Abandon::DropRunning => {
                        promise.set_running_or_notify_cancel().unwrap();
                        jitter(i, 2);
                        drop(promise);
                    }
                    Abandon::ThreadDies => {
                        let _promise = promise;
                        // No panic hook runs for `resume_unwind`: nothing is printed.
                        resume_unwind(Box::new("worker died"));
                    }
                }
            });
            let canceller = s.spawn(move || {
                barrier.wait();
                if way == Abandon::DropVsCancel {
                    jitter(i, 3);
                    future.cancel()
                } else {
                    false
                }
            });
            let seen: Vec<_> = joins.into_iter().map(|j| j.join().unwrap()).collect();
            let died = producer.join().is_err();
            assert_eq!(died, way == Abandon::ThreadDies);
            (seen, canceller.join().unwrap())
        });
        let expected = if cancelled {
            cancel_won += 1;
            Seen::Cancelled
        } else {
            drop_won += usize::from(way == Abandon::DropVsCancel);
            Seen::Abandoned(Some(future.id()))
        };
        for (kind, seen) in seen {
            assert_eq!(seen, expected, "iteration {i} ({way:?}): waiter {kind:?}");
        }
        assert_eq!(future.cancelled(), cancelled);
        assert_eq!(seen_result(future.into_result()), expected);
    }
    eprintln!(
        "dropped_promise: in the drop-vs-cancel race cancel won {cancel_won}, drop {drop_won}"
    );
}

/// The sole owner moves the value out (`into_result` or owned `.await`) while the promise is
/// dropped, pending or running, with and without done callbacks: it gets the abandoned error.
#[test]
fn dropped_promise_fails_into_result_as_abandoned() {
    let dog = Watchdog::new("dropped_promise_fails_into_result_as_abandoned");
    for i in 0..iterations(3000) {
        dog.tick(i);
        let (promise, future) = Promise::<String>::new();
        let id = future.id();
        let calls = Arc::new(AtomicUsize::new(0));
        if i % 2 == 1 {
            let calls = Arc::clone(&calls);
            future.add_done_callback(move |f| {
                if matches!(f.result(None), Err(ResultError::Failed(e)) if e.is_abandoned()) {
                    calls.fetch_add(1, SeqCst);
                }
            });
        }
        let barrier = Barrier::new(2);
        let seen = thread::scope(|s| {
            let barrier = &barrier;
            let consumer = s.spawn(move || {
                barrier.wait();
                if (i / 2) % 2 == 0 {
                    seen_result(future.into_result())
                } else {
                    seen_result(block_on(future))
                }
            });
            s.spawn(move || {
                barrier.wait();
                if (i / 4) % 2 == 0 {
                    promise.set_running_or_notify_cancel().unwrap();
                }
                jitter(i, 1);
                drop(promise);
            });
            consumer.join().unwrap()
        });
        assert_eq!(seen, Seen::Abandoned(Some(id)), "iteration {i}");
        assert_eq!(
            calls.load(SeqCst),
            i % 2,
            "iteration {i}: the callback ran once"
        );
    }
}
