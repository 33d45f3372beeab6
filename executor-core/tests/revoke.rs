//! The revoker hook (`Promise::set_revoker`, `Revoker`): how `FutureHandle::cancel` asks a
//! producer that has handed a pending task on (rule L13, with A2's "one atomic decision").
//!
//! - `true` from the revoker: cancelled as usual (waiters wake, callbacks run in the cancelling
//!   thread); `false`: the task started, `cancel` returns false and the future is RUNNING;
//! - `revoke` runs without the future's lock, once; concurrent cancels wait for its answer and
//!   agree;
//! - the revoker is dropped when the future starts, completes or is cancelled;
//! - without a revoker nothing changes; `Promise::cancel` never asks it;
//! - many-iteration races of `cancel` against a remote "claim" of the task: exactly one wins.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex, OnceLock};
use std::thread;
use std::time::Duration;

use executor_core::{FutureHandle, NotStarted, Promise, Revoker, State, TaskError};

/// A test that makes no progress for this long has hung.
const HANG_LIMIT: Duration = Duration::from_secs(30);

/// Runs `f` on a thread and fails the test (instead of hanging) if it does not return in time.
fn within_limit<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(HANG_LIMIT)
        .expect("hung (or panicked): no answer within the limit")
}

/// A revoker that answers a fixed value and counts its calls.
struct Answer {
    revoked: bool,
    calls: Arc<AtomicUsize>,
}

impl Revoker for Answer {
    fn revoke(&self) -> bool {
        self.calls.fetch_add(1, SeqCst);
        self.revoked
    }
}

fn answer(revoked: bool) -> (Arc<dyn Revoker>, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    (
        Arc::new(Answer {
            revoked,
            calls: Arc::clone(&calls),
        }),
        calls,
    )
}

#[test]
fn revoked_task_is_cancelled_waiters_wake_and_callbacks_run_in_the_cancelling_thread() {
    let (promise, future) = Promise::<u32>::named("sent-ahead");
    let future = Arc::new(future);
    let (revoker, calls) = answer(true);
    assert!(promise.set_revoker(revoker));

    let waiter = {
        let future = Arc::clone(&future);
        thread::spawn(move || future.result(Some(HANG_LIMIT)).unwrap_err().is_cancelled())
    };
    let (tx, rx) = mpsc::channel();
    future.add_done_callback(move |f| {
        tx.send((thread::current().id(), f.cancelled())).unwrap();
    });

    assert!(future.cancel());
    assert_eq!(calls.load(SeqCst), 1);
    assert_eq!(future.state(), State::Cancelled);
    assert_eq!(rx.try_recv().unwrap(), (thread::current().id(), true));
    assert!(
        waiter.join().unwrap(),
        "a blocked waiter did not see the cancellation"
    );
    // Cancelled is terminal: cancel again returns true without asking, the producer cannot start.
    assert!(future.cancel());
    assert_eq!(calls.load(SeqCst), 1);
    assert_eq!(
        promise.set_running_or_notify_cancel(),
        Err(NotStarted::Cancelled)
    );
}

#[test]
fn refused_revoke_returns_false_and_the_future_is_running() {
    let (promise, future) = Promise::<u32>::new();
    let (revoker, calls) = answer(false);
    assert!(promise.set_revoker(revoker));
    let (tx, rx) = mpsc::channel::<()>();
    future.add_done_callback(move |_| tx.send(()).unwrap());

    assert!(!future.cancel());
    assert_eq!(future.state(), State::Running);
    assert!(future.running() && !future.done());
    assert!(
        rx.try_recv().is_err(),
        "no callback runs for a refused cancel"
    );
    // Later cancels agree without asking again.
    assert!(!future.cancel());
    assert_eq!(calls.load(SeqCst), 1);
    // The producer's late start notice is an invalid-state answer it tolerates; its value lands.
    assert_eq!(
        promise.set_running_or_notify_cancel(),
        Err(NotStarted::InvalidState(State::Running))
    );
    promise.set_result(11).unwrap();
    assert_eq!(*future.result(Some(HANG_LIMIT)).unwrap(), 11);
    assert!(rx.try_recv().is_ok());
}

#[test]
fn without_a_revoker_cancel_is_unchanged() {
    let (promise, future) = Promise::<u32>::new();
    assert!(future.cancel());
    assert!(future.cancelled());
    assert!(future.cancel());
    assert_eq!(
        promise.set_running_or_notify_cancel(),
        Err(NotStarted::Cancelled)
    );

    let (promise, future) = Promise::<u32>::new();
    promise.set_running_or_notify_cancel().unwrap();
    assert!(!future.cancel());
    assert_eq!(future.state(), State::Running);
    promise.set_result(1).unwrap();
    assert!(!future.cancel());
    assert_eq!(future.state(), State::Finished);
}

/// `revoke` may take the future's lock itself (here: add a callback, read the state), which only
/// works if `cancel` does not hold it.
#[test]
fn revoke_runs_without_the_future_lock() {
    struct LocksTheFuture {
        future: Arc<OnceLock<Arc<FutureHandle<u32>>>>,
        saw: Arc<Mutex<Option<State>>>,
    }
    impl Revoker for LocksTheFuture {
        fn revoke(&self) -> bool {
            let future = self.future.get().unwrap();
            future.add_done_callback(|_| {});
            *self.saw.lock().unwrap() = Some(future.state());
            true
        }
    }
    let cancelled = within_limit(|| {
        let (promise, future) = Promise::<u32>::new();
        let future = Arc::new(future);
        let slot = Arc::new(OnceLock::new());
        let saw = Arc::new(Mutex::new(None));
        slot.set(Arc::clone(&future)).unwrap();
        let revoker = LocksTheFuture {
            future: slot,
            saw: Arc::clone(&saw),
        };
        assert!(promise.set_revoker(Arc::new(revoker)));
        let cancelled = future.cancel();
        assert_eq!(*saw.lock().unwrap(), Some(State::Pending));
        cancelled
    });
    assert!(cancelled);
}

/// A revoker that blocks until released, so that other cancels arrive while it is asked.
struct Blocking {
    calls: AtomicUsize,
    entered: Barrier,
    release: Mutex<mpsc::Receiver<bool>>,
}

impl Blocking {
    /// The revoker, and the sender whose next value it answers with.
    fn new() -> (Arc<Blocking>, mpsc::Sender<bool>) {
        let (release, released) = mpsc::channel();
        let revoker = Arc::new(Blocking {
            calls: AtomicUsize::new(0),
            entered: Barrier::new(2),
            release: Mutex::new(released),
        });
        (revoker, release)
    }
}

impl Revoker for Blocking {
    fn revoke(&self) -> bool {
        self.calls.fetch_add(1, SeqCst);
        self.entered.wait();
        self.release.lock().unwrap().recv().unwrap()
    }
}

#[test]
fn concurrent_cancels_agree_and_the_producer_is_asked_once() {
    const CANCELLERS: usize = 4;
    for iteration in 0..100 {
        let revoked = iteration % 2 == 0;
        let results = within_limit(move || {
            let (promise, future) = Promise::<u32>::new();
            let future = Arc::new(future);
            let (revoker, release) = Blocking::new();
            assert!(promise.set_revoker(Arc::clone(&revoker) as Arc<dyn Revoker>));
            let start = Arc::new(Barrier::new(CANCELLERS));
            let handles: Vec<_> = (0..CANCELLERS)
                .map(|_| {
                    let future = Arc::clone(&future);
                    let start = Arc::clone(&start);
                    thread::spawn(move || {
                        start.wait();
                        future.cancel()
                    })
                })
                .collect();
            // One cancel is inside `revoke`; the others are waiting for its answer (or have not
            // arrived yet: they must then see the decided state).
            revoker.entered.wait();
            release.send(revoked).unwrap();
            let results: Vec<bool> = handles.into_iter().map(|h| h.join().unwrap()).collect();
            assert_eq!(revoker.calls.load(SeqCst), 1, "asked more than once");
            if !revoked {
                assert_eq!(future.state(), State::Running);
                promise.set_result(1).unwrap();
            }
            results
        });
        assert!(
            results.iter().all(|&r| r == revoked),
            "iteration {iteration}: cancels disagree: {results:?} (revoked: {revoked})"
        );
    }
}

#[test]
fn the_revoker_is_dropped_when_the_future_starts_completes_or_is_cancelled() {
    // Starts: cancel no longer asks, returns false.
    let (promise, future) = Promise::<u32>::new();
    let (revoker, calls) = answer(true);
    let weak = Arc::downgrade(&revoker);
    assert!(promise.set_revoker(revoker));
    promise.set_running_or_notify_cancel().unwrap();
    assert!(weak.upgrade().is_none(), "kept after the start");
    assert!(!future.cancel());
    assert_eq!(calls.load(SeqCst), 0);
    drop(promise);

    // Completes.
    let (promise, future) = Promise::<u32>::new();
    let (revoker, calls) = answer(true);
    let weak = Arc::downgrade(&revoker);
    assert!(promise.set_revoker(revoker));
    promise.set_result(2).unwrap();
    assert!(weak.upgrade().is_none(), "kept after completion");
    assert!(!future.cancel());
    assert_eq!(calls.load(SeqCst), 0);

    // Cancelled by the producer: dropped, never asked.
    let (promise, future) = Promise::<u32>::new();
    let (revoker, calls) = answer(false);
    let weak = Arc::downgrade(&revoker);
    assert!(promise.set_revoker(revoker));
    assert!(
        promise.cancel(),
        "the producer's cancel does not ask the revoker"
    );
    assert!(weak.upgrade().is_none(), "kept after cancellation");
    assert!(future.cancelled());
    assert_eq!(calls.load(SeqCst), 0);

    // Cancelled through the handle: dropped after the answer.
    let (promise, future) = Promise::<u32>::new();
    let (revoker, _) = answer(true);
    let weak = Arc::downgrade(&revoker);
    assert!(promise.set_revoker(revoker));
    assert!(future.cancel());
    assert!(weak.upgrade().is_none(), "kept after it answered");
}

#[test]
fn set_revoker_on_a_future_that_is_not_pending_keeps_nothing() {
    let (promise, future) = Promise::<u32>::new();
    assert!(future.cancel());
    let (revoker, _) = answer(true);
    let weak = Arc::downgrade(&revoker);
    assert!(!promise.set_revoker(revoker));
    assert!(weak.upgrade().is_none());

    let (promise, _future) = Promise::<u32>::new();
    promise.set_running_or_notify_cancel().unwrap();
    let (revoker, _) = answer(true);
    assert!(!promise.set_revoker(revoker));
}

/// The producer completes (or starts) the future while `revoke` waits: `cancel` reports the
/// state the producer left, and the outcome is kept.
#[test]
fn the_producer_may_finish_the_future_while_revoke_waits() {
    struct CompleteFirst(Mutex<Option<Promise<u32>>>);
    impl Revoker for CompleteFirst {
        fn revoke(&self) -> bool {
            let promise = self.0.lock().unwrap().take().unwrap();
            promise.set_result(5).unwrap();
            false
        }
    }
    let (promise, future) = Promise::<u32>::new();
    let holder = Arc::new(CompleteFirst(Mutex::new(None)));
    // The revoker needs the promise and the promise needs the revoker: set it, then hand over.
    assert!(promise.set_revoker(Arc::clone(&holder) as Arc<dyn Revoker>));
    *holder.0.lock().unwrap() = Some(promise);
    assert!(!future.cancel());
    assert_eq!(future.into_result().unwrap(), 5);

    // A producer that starts the task while answering `true` (a broken producer): the start
    // wins, cancel says false.
    struct StartThenSayYes(Mutex<Option<Promise<u32>>>);
    impl Revoker for StartThenSayYes {
        fn revoke(&self) -> bool {
            let guard = self.0.lock().unwrap();
            guard
                .as_ref()
                .unwrap()
                .set_running_or_notify_cancel()
                .unwrap();
            true
        }
    }
    let (promise, future) = Promise::<u32>::new();
    let holder = Arc::new(StartThenSayYes(Mutex::new(None)));
    assert!(promise.set_revoker(Arc::clone(&holder) as Arc<dyn Revoker>));
    *holder.0.lock().unwrap() = Some(promise);
    assert!(!future.cancel());
    assert_eq!(future.state(), State::Running);
    let promise = holder.0.lock().unwrap().take().unwrap();
    promise.set_error(TaskError::msg("late")).unwrap();
    assert!(future.result(Some(HANG_LIMIT)).is_err());
}

/// A revoker may own the producer's promise and drop it when it revokes the task: the future is
/// cancelled, not abandoned.
#[test]
fn a_revoker_that_owns_the_promise_cancels_without_abandoning() {
    struct Owns(Mutex<Option<Promise<u32>>>);
    impl Revoker for Owns {
        fn revoke(&self) -> bool {
            // Keep the promise until the revoker itself is dropped.
            self.0.lock().unwrap().is_some()
        }
    }
    let (promise, future) = Promise::<u32>::new();
    let owns = Arc::new(Owns(Mutex::new(None)));
    assert!(promise.set_revoker(Arc::clone(&owns) as Arc<dyn Revoker>));
    *owns.0.lock().unwrap() = Some(promise);
    drop(owns);
    assert!(future.cancel());
    assert!(
        future.cancelled(),
        "the dropped promise abandoned the future"
    );
}

#[test]
fn a_panicking_revoker_propagates_and_the_next_cancel_asks_again() {
    struct PanicsOnce(AtomicBool);
    impl Revoker for PanicsOnce {
        fn revoke(&self) -> bool {
            if !self.0.swap(true, SeqCst) {
                panic!("revoker failed");
            }
            true
        }
    }
    let (promise, future) = Promise::<u32>::new();
    assert!(promise.set_revoker(Arc::new(PanicsOnce(AtomicBool::new(false)))));
    let future = Arc::new(future);
    let f = Arc::clone(&future);
    assert!(thread::spawn(move || f.cancel()).join().is_err());
    assert_eq!(future.state(), State::Pending);
    assert!(within_limit(move || future.cancel()));
    drop(promise);
}

/// Rule L13 in miniature, many times: a "worker" claims the handed-on task while `cancel` races
/// it through the revoker. Every time exactly one wins: either `cancel` returned true and the
/// task never ran, or it returned false and the task ran to completion.
#[test]
fn cancel_races_a_remote_claim_and_exactly_one_wins() {
    struct Claim(Arc<AtomicBool>);
    impl Revoker for Claim {
        fn revoke(&self) -> bool {
            !self.0.swap(true, SeqCst)
        }
    }
    for iteration in 0..2_000 {
        let claimed = Arc::new(AtomicBool::new(false));
        let ran = Arc::new(AtomicBool::new(false));
        let (promise, future) = Promise::<u32>::new();
        assert!(promise.set_revoker(Arc::new(Claim(Arc::clone(&claimed)))));
        let start = Arc::new(Barrier::new(2));
        let worker = {
            let (claimed, ran, start) =
                (Arc::clone(&claimed), Arc::clone(&ran), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                if claimed.swap(true, SeqCst) {
                    // Revoked: never runs. The promise goes back to be dropped after `cancel`
                    // returns, as `Revoker` asks.
                    return Some(promise);
                }
                match promise.set_running_or_notify_cancel() {
                    Ok(()) | Err(NotStarted::InvalidState(State::Running)) => {}
                    Err(e) => panic!("a claimed task could not start: {e:?}"),
                }
                ran.store(true, SeqCst);
                promise.set_result(iteration).unwrap();
                None
            })
        };
        start.wait();
        let cancelled = future.cancel();
        drop(worker.join().unwrap());
        let ran = ran.load(SeqCst);
        assert_ne!(
            cancelled, ran,
            "iteration {iteration}: cancelled {cancelled}, ran {ran}"
        );
        if cancelled {
            assert!(future.cancelled());
        } else {
            assert_eq!(*future.result(Some(HANG_LIMIT)).unwrap(), iteration);
        }
    }
}

#[test]
fn a_revoker_taken_back_is_not_asked_and_cancel_is_immediate_again() {
    let (promise, future) = Promise::<u32>::new();
    let (revoker, calls) = answer(false);
    let weak = Arc::downgrade(&revoker);
    assert!(promise.set_revoker(revoker));
    assert!(promise.clear_revoker());
    assert!(weak.upgrade().is_none(), "kept after it was taken back");
    // The producer holds the task again: a cancel takes effect at once, without asking.
    assert!(future.cancel());
    assert_eq!(calls.load(SeqCst), 0);
    assert_eq!(
        promise.set_running_or_notify_cancel(),
        Err(NotStarted::Cancelled)
    );
    // Nothing to take back from a future that is no longer pending.
    assert!(!promise.clear_revoker());
}

/// The producer takes its task back while a `cancel()` asks the revoker: it must not hand the
/// task on (`clear_revoker` says `false`), and the cancel's answer stands.
#[test]
fn taking_a_revoker_back_while_a_cancel_asks_it_fails_and_the_cancel_decides() {
    for iteration in 0..100 {
        let revoked = iteration % 2 == 0;
        within_limit(move || {
            let (promise, future) = Promise::<u32>::new();
            let future = Arc::new(future);
            let (revoker, release) = Blocking::new();
            assert!(promise.set_revoker(Arc::clone(&revoker) as Arc<dyn Revoker>));
            let canceller = {
                let future = Arc::clone(&future);
                thread::spawn(move || future.cancel())
            };
            revoker.entered.wait();
            assert!(
                !promise.clear_revoker(),
                "taken back while a cancel was asking"
            );
            release.send(revoked).unwrap();
            assert_eq!(canceller.join().unwrap(), revoked);
            let state = if revoked {
                State::Cancelled
            } else {
                State::Running
            };
            assert_eq!(future.state(), state);
        });
    }
}

/// Many iterations of a cancel racing the producer taking its task back: exactly one of them
/// has the task. Either the producer took it back first (the cancel then cancels the pending
/// future without asking), or the cancel asked first (the producer may not hand it on, and
/// answers as the revoker: withdrawn).
#[test]
fn cancel_racing_a_revoker_taken_back_leaves_exactly_one_owner() {
    struct Withdrawn(Arc<AtomicBool>);
    impl Revoker for Withdrawn {
        fn revoke(&self) -> bool {
            self.0.store(true, SeqCst);
            true
        }
    }
    for iteration in 0..2000 {
        let (promise, future) = Promise::<u32>::new();
        let asked = Arc::new(AtomicBool::new(false));
        assert!(promise.set_revoker(Arc::new(Withdrawn(Arc::clone(&asked)))));
        let start = Arc::new(Barrier::new(2));
        let canceller = {
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
                future.cancel()
            })
        };
        start.wait();
        let taken_back = promise.clear_revoker();
        assert!(canceller.join().unwrap(), "iteration {iteration}");
        // The future is cancelled either way; the producer must hand the task on only if it
        // took it back before the cancel asked, and then the revoker was never asked.
        assert!(promise.is_cancelled());
        if taken_back {
            assert!(
                !asked.load(SeqCst),
                "iteration {iteration}: asked after it was taken back"
            );
        }
        assert_eq!(
            promise.set_running_or_notify_cancel(),
            Err(NotStarted::Cancelled)
        );
    }
}
