//! The state a [`FutureHandle`] and its [`Promise`](crate::Promise) share: the state word, the
//! outcome, and whoever must hear about completion.
//!
//! # Who holds the `Arc<Shared<T>>`
//! Exactly one [`FutureHandle`] (it is not `Clone`; share it by reference or `Arc`), the
//! [`Promise`](crate::Promise) until it completes the future, and, while done callbacks run, a
//! temporary handle lent to them. So once a future is done and its callbacks have run
//! ("settled"), the handle is the only holder left and may move the value out
//! ([`FutureHandle::into_result`]) without cloning it.
//!
//! # Completion, step by step
//! 1. Under the lock: check the transition is legal (see [`crate::state`]), store the outcome, store
//!    the new state, take the listeners, mark the future "settling" if it has callbacks.
//! 2. After the lock: wake threads blocked in `result` (condvar), `wait`/`as_completed` notifiers
//!    and async wakers (rule E1: a cancellation is seen at once).
//! 3. Run the callbacks in the order added, each guarded against panics (rules B1, B3).
//! 4. Clear "settling" and wake whoever waits to take the value.
//!
//! # Cancelling a task the producer has handed on (rule L13)
//! A producer that has sent a pending task somewhere it cannot take back by itself (a worker
//! process's queue) sets a [`Revoker`]. `cancel()` on a pending future with a revoker takes it
//! out, marks the future "asking", and calls [`Revoker::revoke`] *without* the lock (it may wait
//! for a pipe round trip); a second `cancel()` meanwhile waits for that answer instead of asking
//! again. On `true` the future is cancelled as usual; on `false` the producer has started the
//! task, and a still-pending future becomes RUNNING, so every `cancel()` agrees and `running()`
//! tells the truth.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use crossbeam_utils::Backoff;
use parking_lot::{Condvar, Mutex};

use crate::deadlock::{InlineJob, InlineRunner, PoolId};
use crate::error::{InvalidStateError, NotStarted, TaskError};
use crate::handle::FutureHandle;
use crate::promise::Revoker;
use crate::state::{AtomicState, State};
use crate::task::TaskInfo;
use crate::unwind;
use crate::wait::Notifier;

/// A done callback: runs once, in the completing thread, with the future it was added to.
pub(crate) type Callback<T> = Box<dyn FnOnce(&FutureHandle<T>) + Send + 'static>;

/// One party to tell when the future is done.
enum Listener<T> {
    Callback(Callback<T>),
    Notifier(Arc<Notifier>),
    Waker(Waker),
}

struct Inner<T> {
    listeners: Vec<Listener<T>>,
    /// How a waiting worker of the same pool may run the task itself (rule K2).
    inline: Option<InlineRunner>,
    /// How `cancel()` asks the producer to withdraw a task it has handed on; cleared when the
    /// future starts or is done.
    revoker: Option<Arc<dyn Revoker>>,
    /// A `cancel()` is waiting for the revoker's answer; other cancels wait for it too.
    asking: bool,
}

pub(crate) struct Shared<T> {
    state: AtomicState,
    info: TaskInfo,
    /// Written once, under the lock, before the state becomes `Finished`.
    outcome: OnceLock<Result<T, TaskError>>,
    inner: Mutex<Inner<T>>,
    /// Done, but callbacks still run with a lent handle: the value may not be moved out yet.
    /// Written under the lock, before the state word says "done" (so a reader that sees "done"
    /// and not "settling" needs no lock); read without it.
    settling: AtomicBool,
    /// Signalled on every change a blocked thread may wait for (done, settled).
    changed: Condvar,
}

/// What a completed transition hands to the notification steps (2–4 above).
struct Fired<T> {
    listeners: Vec<Listener<T>>,
    failed: bool,
    /// Dropped after the lock (a revoker may own the producer's side of this future).
    revoker: Option<Arc<dyn Revoker>>,
}

impl<T> Shared<T> {
    pub(crate) fn new(info: TaskInfo, inline: Option<InlineRunner>) -> Self {
        Shared {
            state: AtomicState::new(),
            info,
            outcome: OnceLock::new(),
            inner: Mutex::new(Inner {
                listeners: Vec::new(),
                inline,
                revoker: None,
                asking: false,
            }),
            settling: AtomicBool::new(false),
            changed: Condvar::new(),
        }
    }

    pub(crate) fn info(&self) -> TaskInfo {
        self.info
    }

    pub(crate) fn state(&self) -> State {
        self.state.load()
    }

    /// The outcome, once the state is `Finished`.
    pub(crate) fn outcome(&self) -> Option<&Result<T, TaskError>> {
        self.outcome.get()
    }

    /// Moves the outcome out. Only the sole holder can call it (`&mut`).
    pub(crate) fn take_outcome(&mut self) -> Option<Result<T, TaskError>> {
        self.outcome.take()
    }

    /// `true` when the future finished with an error (not cancelled, not a value).
    pub(crate) fn failed(&self) -> bool {
        self.state() == State::Finished && matches!(self.outcome(), Some(Err(_)))
    }

    /// PENDING → RUNNING (the producer is about to run the task).
    pub(crate) fn start(&self) -> Result<(), NotStarted> {
        let mut inner = self.inner.lock();
        match self.state.load() {
            State::Pending => {
                self.state.store(State::Running);
                inner.inline = None;
                let revoker = inner.revoker.take();
                drop(inner);
                drop(revoker);
                Ok(())
            }
            State::Cancelled => Err(NotStarted::Cancelled),
            other => Err(NotStarted::InvalidState(other)),
        }
    }

    /// Lets `cancel()` ask the producer through `revoker` while the future is pending. `false`
    /// (and nothing kept) if it is no longer pending.
    pub(crate) fn set_revoker(&self, revoker: Arc<dyn Revoker>) -> bool {
        let mut inner = self.inner.lock();
        if self.state.load() != State::Pending {
            return false;
        }
        let old = inner.revoker.replace(revoker);
        drop(inner);
        drop(old);
        true
    }

    /// Takes the revoker back: the producer holds the task again (it took it back from where it
    /// had handed it on). `false` if the future is not pending or a `cancel()` is asking the
    /// revoker now (that cancel then decides).
    pub(crate) fn clear_revoker(&self) -> bool {
        let mut inner = self.inner.lock();
        if self.state.load() != State::Pending || inner.asking {
            return false;
        }
        let old = inner.revoker.take();
        drop(inner);
        drop(old);
        true
    }

    /// The consumer's `cancel()` (rule A2; with a revoker, L13): PENDING → CANCELLED if the
    /// producer has not started the task. `true` if the future is (now or already) cancelled.
    pub(crate) fn cancel(self: &Arc<Self>) -> bool {
        let revoker = {
            let mut inner = self.inner.lock();
            loop {
                match self.state.load() {
                    State::Cancelled => return true,
                    State::Running | State::Finished => return false,
                    // Another cancel is asking the producer: its answer is ours too.
                    State::Pending if inner.asking => self.changed.wait(&mut inner),
                    State::Pending => match inner.revoker.take() {
                        Some(revoker) => {
                            inner.asking = true;
                            break revoker;
                        }
                        None => {
                            let fired = self.take_listeners(&mut inner, false);
                            self.state.store(State::Cancelled);
                            drop(inner);
                            self.fire(fired);
                            return true;
                        }
                    },
                }
            }
        };
        // Without the lock: the producer may wait for a round trip, and it may start or complete
        // the future meanwhile.
        let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| revoker.revoke()));
        let mut inner = self.inner.lock();
        inner.asking = false;
        let revoked = match answer {
            Ok(revoked) => revoked,
            Err(payload) => {
                // The next cancel asks again.
                if self.state.load() == State::Pending {
                    inner.revoker = Some(revoker);
                }
                drop(inner);
                self.changed.notify_all();
                std::panic::resume_unwind(payload);
            }
        };
        let (cancelled, fired) = match self.state.load() {
            State::Pending if revoked => {
                let fired = self.take_listeners(&mut inner, false);
                self.state.store(State::Cancelled);
                (true, Some(fired))
            }
            State::Pending => {
                // The producer has started the task (its own start notice may still be on the
                // way): the future is running, for this cancel and every later one.
                self.state.store(State::Running);
                inner.inline = None;
                (false, None)
            }
            State::Cancelled => (true, None),
            State::Running | State::Finished => (false, None),
        };
        drop(inner);
        self.changed.notify_all();
        if let Some(fired) = fired {
            self.fire(fired);
        }
        // Only now: a revoker may own the producer's side, which must not see a pending future.
        drop(revoker);
        cancelled
    }

    /// The producer's cancel: PENDING → CANCELLED without asking any revoker (the producer is
    /// the authority on its own queue). `true` if the future is (now or already) cancelled.
    pub(crate) fn cancel_local(self: &Arc<Self>) -> bool {
        let fired = {
            let mut inner = self.inner.lock();
            match self.state.load() {
                State::Pending => {
                    let fired = self.take_listeners(&mut inner, false);
                    self.state.store(State::Cancelled);
                    fired
                }
                State::Cancelled => return true,
                State::Running | State::Finished => return false,
            }
        };
        self.fire(fired);
        true
    }

    /// PENDING/RUNNING → FINISHED with this outcome; otherwise hands the outcome back.
    pub(crate) fn complete(
        self: &Arc<Self>,
        outcome: Result<T, TaskError>,
    ) -> Result<(), InvalidStateError<Result<T, TaskError>>> {
        let outcome = outcome.map_err(|e| {
            if e.task_id().is_none() {
                e.with_task(self.info)
            } else {
                e
            }
        });
        let fired = {
            let mut inner = self.inner.lock();
            match self.state.load() {
                State::Pending | State::Running => {
                    let failed = outcome.is_err();
                    if self.outcome.set(outcome).is_err() {
                        unreachable!("future {} had an outcome before it finished", self.info);
                    }
                    let fired = self.take_listeners(&mut inner, failed);
                    self.state.store(State::Finished);
                    fired
                }
                done => return Err(InvalidStateError::new(done, self.info.id(), outcome)),
            }
        };
        self.fire(fired);
        Ok(())
    }

    /// Steps 2–4 of completion, outside the lock.
    fn fire(self: &Arc<Self>, fired: Fired<T>) {
        drop(fired.revoker);
        self.changed.notify_all();
        let mut callbacks = Vec::new();
        for listener in fired.listeners {
            match listener {
                Listener::Notifier(n) => n.notify(self.info.id(), fired.failed),
                Listener::Waker(w) => w.wake(),
                Listener::Callback(c) => callbacks.push(c),
            }
        }
        if callbacks.is_empty() {
            return;
        }
        {
            let lent = FutureHandle::from_shared(Arc::clone(self));
            for callback in callbacks {
                unwind::run_callback(&self.info, || callback(&lent));
            }
        }
        let wakers = {
            let mut inner = self.inner.lock();
            // Ordering: `Release` pairs with the `Acquire` in `wait_settled`/`poll_done`, which then
            // see every callback's effects as done.
            self.settling.store(false, Ordering::Release);
            std::mem::take(&mut inner.listeners)
        };
        self.changed.notify_all();
        for listener in wakers {
            if let Listener::Waker(w) = listener {
                w.wake();
            }
        }
    }

    /// Adds a done callback, or runs it now (in this thread) if the future is done (rule B2).
    pub(crate) fn add_callback(&self, callback: Callback<T>, handle: &FutureHandle<T>) {
        {
            let mut inner = self.inner.lock();
            if !self.state.load().is_done() {
                inner.listeners.push(Listener::Callback(callback));
                return;
            }
        }
        unwind::run_callback(&self.info, || callback(handle));
    }

    /// Lets a waiting worker of `pool` run the task inline while it is pending.
    pub(crate) fn set_inline(&self, runner: InlineRunner) {
        let mut inner = self.inner.lock();
        if self.state.load() == State::Pending {
            inner.inline = Some(runner);
        }
    }

    /// The queued job, if the future is pending and belongs to `pool`.
    pub(crate) fn inline_job(&self, pool: PoolId) -> Option<Arc<dyn InlineJob>> {
        let inner = self.inner.lock();
        if self.state.load() != State::Pending {
            return None;
        }
        let runner = inner.inline.as_ref()?;
        (runner.pool == pool)
            .then(|| runner.job.upgrade())
            .flatten()
    }

    /// Registers a `wait`/`as_completed` notifier; `false` if the future is already done (then
    /// nothing is registered and the caller counts it itself).
    pub(crate) fn subscribe(&self, notifier: &Arc<Notifier>) -> bool {
        let mut inner = self.inner.lock();
        if self.state.load().is_done() {
            return false;
        }
        inner
            .listeners
            .push(Listener::Notifier(Arc::clone(notifier)));
        true
    }

    /// Removes a notifier registered by [`Shared::subscribe`], if it is still there.
    pub(crate) fn unsubscribe(&self, notifier: &Arc<Notifier>) {
        let mut inner = self.inner.lock();
        inner
            .listeners
            .retain(|l| !matches!(l, Listener::Notifier(n) if Arc::ptr_eq(n, notifier)));
    }

    /// Blocks until done or until the deadline (`None`: forever). Returns whether it is done.
    /// Spurious wake-ups loop back to the same deadline (rule C2).
    ///
    /// Before parking it spins, then yields, for a few microseconds (crossbeam's `Backoff`, as
    /// its channels do): a short task on another core is usually done by then, and a wake-up
    /// through the condvar costs tens of microseconds.
    pub(crate) fn wait_until(&self, deadline: Option<Instant>) -> bool {
        let backoff = Backoff::new();
        while !backoff.is_completed() {
            if self.state.load().is_done() {
                return true;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            backoff.snooze();
        }
        let mut inner = self.inner.lock();
        while !self.state.load().is_done() {
            match deadline {
                None => self.changed.wait(&mut inner),
                Some(deadline) => {
                    if self.changed.wait_until(&mut inner, deadline).timed_out() {
                        return self.state.load().is_done();
                    }
                }
            }
        }
        true
    }

    /// Done, and no callback holds a lent handle any more.
    fn is_settled(&self) -> bool {
        // Ordering: the state's `Acquire` sees a `settling` written before it (see the field).
        self.state.load().is_done() && !self.settling.load(Ordering::Acquire)
    }

    /// Step 1's tail, under the lock and before the state is stored: hand over the listeners;
    /// keep the future "settling" while callbacks run.
    fn take_listeners(&self, inner: &mut Inner<T>, failed: bool) -> Fired<T> {
        inner.inline = None;
        let revoker = inner.revoker.take();
        let listeners = std::mem::take(&mut inner.listeners);
        let settling = listeners.iter().any(|l| matches!(l, Listener::Callback(_)));
        // Ordering: published by the state word's `Release` store that follows.
        self.settling.store(settling, Ordering::Relaxed);
        Fired {
            listeners,
            failed,
            revoker,
        }
    }

    /// Blocks until done and settled (callbacks have returned their lent handle).
    pub(crate) fn wait_settled(&self) {
        if self.is_settled() {
            return;
        }
        let mut inner = self.inner.lock();
        while !self.is_settled() {
            self.changed.wait(&mut inner);
        }
    }

    /// Async counterpart of [`Shared::wait_until`] (and of [`Shared::wait_settled`] when
    /// `settled` is set): ready when done, else the waker is kept until completion.
    pub(crate) fn poll_done(&self, cx: &mut Context<'_>, settled: bool) -> Poll<()> {
        if !settled && self.state.load().is_done() {
            return Poll::Ready(());
        }
        if settled && self.is_settled() {
            return Poll::Ready(());
        }
        let mut inner = self.inner.lock();
        if self.state.load().is_done() && !(settled && self.settling.load(Ordering::Acquire)) {
            return Poll::Ready(());
        }
        let waker = cx.waker();
        let known = inner
            .listeners
            .iter()
            .any(|l| matches!(l, Listener::Waker(w) if w.will_wake(waker)));
        if !known {
            inner.listeners.push(Listener::Waker(waker.clone()));
        }
        Poll::Pending
    }
}
