//! [`FutureHandle`]: the consumer's side of a future (Python's `concurrent.futures.Future`).

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::blocking;
use crate::deadline::{deadline_after, passed};
use crate::deadlock;
use crate::error::{CancelledError, ResultError, TaskError, TimeoutError, WaitError};
use crate::shared::Shared;
use crate::state::State;
use crate::task::{TaskId, TaskInfo};

/// The handle to the eventual outcome of a task (Python's `Future`).
///
/// It is named `FutureHandle` rather than `Future` so that it does not shadow
/// [`std::future::Future`]; it also *is* awaitable: `handle.await` works on any async runtime,
/// for a future from any backend (rule C5).
///
/// A handle is not `Clone`: there is one owner, who may move the value out
/// ([`into_result`](FutureHandle::into_result), `.await`). Share it by reference (it is `Sync`)
/// or behind an `Arc`; every caller of [`result`](FutureHandle::result) gets the same outcome
/// (rule C3). [`wait`](crate::wait) and [`as_completed`](crate::as_completed) take handles by
/// value or by reference, and futures of different output types (from different executors) mix
/// through `&dyn Waitable`.
///
/// ```
/// use std::time::Duration;
/// use executor_core::{Promise, State};
///
/// let (promise, future) = Promise::<String>::named("greet");
/// assert_eq!(future.state(), State::Pending);
/// assert!(future.result(Some(Duration::ZERO)).unwrap_err().is_timeout());
///
/// std::thread::spawn(move || promise.set_result("hello".to_owned()).unwrap());
/// assert_eq!(future.result(None).unwrap(), "hello");
/// assert_eq!(future.result(None).unwrap(), "hello"); // same outcome every time
/// assert_eq!(future.into_result().unwrap(), "hello"); // moved out, not cloned
/// ```
pub struct FutureHandle<T> {
    shared: Arc<Shared<T>>,
}

impl<T> FutureHandle<T> {
    pub(crate) fn from_shared(shared: Arc<Shared<T>>) -> Self {
        FutureHandle { shared }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared<T>> {
        &self.shared
    }

    /// The future's unique id.
    ///
    /// ```
    /// let (_pf, f) = executor_core::Promise::<()>::new();
    /// assert_eq!(f.id(), f.info().id());
    /// ```
    pub fn id(&self) -> TaskId {
        self.shared.info().id()
    }

    /// The task's id and name.
    ///
    /// ```
    /// let (_pf, f) = executor_core::Promise::<()>::named("thumbnail");
    /// assert_eq!(f.info().name(), "thumbnail");
    /// ```
    pub fn info(&self) -> TaskInfo {
        self.shared.info()
    }

    /// The current state.
    ///
    /// ```
    /// let (p, f) = executor_core::Promise::<()>::new();
    /// p.set_running_or_notify_cancel().unwrap();
    /// assert_eq!(f.state(), executor_core::State::Running);
    /// ```
    pub fn state(&self) -> State {
        self.shared.state()
    }

    /// Cancels the task if it has not started (rule A2): returns `true` if the future is now, or
    /// was already, cancelled; `false` if it is running or finished, in which case nothing
    /// changes. A successful cancel wakes every waiter and runs the done callbacks at once.
    ///
    /// If the producer has handed the pending task on (a process pool sends tasks ahead to its
    /// workers) and set a [`Revoker`](crate::Revoker), `cancel` asks it first, without holding
    /// the future's lock, so it may block for a round trip to the worker (rule L13). If the
    /// task has started there, `cancel` returns `false` and the future is RUNNING from then on.
    /// Concurrent cancels of one future agree: the later ones wait for the first one's answer.
    ///
    /// ```
    /// let (promise, future) = executor_core::Promise::<u8>::new();
    /// assert!(future.cancel());
    /// assert!(future.cancel()); // already cancelled: still true, nothing runs again
    /// assert!(future.cancelled() && future.done());
    /// assert!(promise.set_running_or_notify_cancel().is_err()); // the task will not run
    /// ```
    pub fn cancel(&self) -> bool {
        self.shared.cancel()
    }

    /// `true` iff the future was cancelled.
    ///
    /// ```
    /// let (_pf, f) = executor_core::Promise::<()>::new();
    /// assert!(!f.cancelled());
    /// ```
    pub fn cancelled(&self) -> bool {
        self.state() == State::Cancelled
    }

    /// `true` iff the task is running.
    ///
    /// ```
    /// let (_pf, f) = executor_core::Promise::<()>::new();
    /// assert!(!f.running());
    /// ```
    pub fn running(&self) -> bool {
        self.state() == State::Running
    }

    /// `true` iff the future is finished or cancelled.
    ///
    /// ```
    /// let (p, f) = executor_core::Promise::<()>::new();
    /// p.set_result(()).unwrap();
    /// assert!(f.done());
    /// ```
    pub fn done(&self) -> bool {
        self.state().is_done()
    }

    /// Waits for the outcome: the value, the task's error, a cancellation, or a timeout
    /// (rule C1). `None` waits as long as it takes; `Some(Duration::ZERO)` polls. The timeout is a
    /// deadline: spurious wake-ups neither shorten nor lengthen it (rule C2).
    ///
    /// ```
    /// use executor_core::{Promise, TaskError};
    ///
    /// let (p, f) = Promise::<u32>::new();
    /// p.set_error(TaskError::msg("no such blob")).unwrap();
    /// let e = f.result(None).unwrap_err();
    /// assert_eq!(e.task_error().unwrap().message(), "no such blob");
    /// ```
    pub fn result(&self, timeout: Option<Duration>) -> Result<&T, ResultError> {
        self.wait_done(timeout)?;
        match self.outcome() {
            Ok(value) => Ok(value),
            Err(e) => Err(ResultError::Failed(e.clone())),
        }
    }

    /// Waits like [`result`](FutureHandle::result) but hands back the task's error, or `None` if it
    /// produced a value (Python's `exception()`).
    ///
    /// ```
    /// let (p, f) = executor_core::Promise::<u32>::new();
    /// p.set_result(3).unwrap();
    /// assert!(f.error(None).unwrap().is_none());
    /// ```
    pub fn error(&self, timeout: Option<Duration>) -> Result<Option<&TaskError>, WaitError> {
        self.wait_done(timeout)?;
        Ok(self.outcome().as_ref().err())
    }

    /// Waits without a deadline and moves the value out (no `Clone` needed): the owned-value
    /// accessor of rule C3. To wait with a deadline first, call [`result`](FutureHandle::result)
    /// with a timeout, then this.
    ///
    /// ```
    /// let (p, f) = executor_core::Promise::<Vec<u8>>::new();
    /// p.set_result(vec![1, 2, 3]).unwrap();
    /// let bytes: Vec<u8> = f.into_result().unwrap();
    /// assert_eq!(bytes, [1, 2, 3]);
    /// ```
    pub fn into_result(mut self) -> Result<T, ResultError> {
        if let Err(e @ (WaitError::Deadlock(_) | WaitError::Refused(_))) = self.wait_done(None) {
            return Err(e.into());
        }
        self.shared.wait_settled();
        loop {
            if let Some(outcome) = self.try_take() {
                return outcome;
            }
            // The producer has completed and settled the future and is dropping its reference
            // right now; give it the processor for that instant.
            std::thread::yield_now();
        }
    }

    /// Adds a callback to run with this future when it is done, in the thread that completes or
    /// cancels it; if it is already done, runs it now in this thread (rules B1, B2). Callbacks
    /// run in the order added; a panicking callback is reported on stderr and the others still
    /// run (rule B3).
    ///
    /// ```
    /// use std::sync::mpsc;
    ///
    /// let (p, f) = executor_core::Promise::<u32>::new();
    /// let (tx, rx) = mpsc::channel();
    /// f.add_done_callback(move |f| tx.send(*f.result(None).unwrap()).unwrap());
    /// p.set_result(9).unwrap();
    /// assert_eq!(rx.recv().unwrap(), 9);
    /// ```
    pub fn add_done_callback(&self, callback: impl FnOnce(&FutureHandle<T>) + Send + 'static) {
        self.shared.add_callback(Box::new(callback), self);
    }

    /// Blocks until done or the timeout, mapping "not done" and "cancelled" to their errors.
    fn wait_done(&self, timeout: Option<Duration>) -> Result<(), WaitError> {
        if !self.wait_until(deadline_after(timeout))? {
            let waited = timeout.unwrap_or(Duration::MAX);
            return Err(WaitError::Timeout(TimeoutError::task(waited, self.info())));
        }
        self.done_outcome().map(|_| ())
    }

    /// Blocks until done (`Ok(true)`) or the deadline (`Ok(false)`). Inside a task, first runs a
    /// queued task of the same pool inline, and fails at once if the wait closes a cycle (rule
    /// K2, see [`crate::deadlock`]); on a thread with a [blocking policy](crate::blocking), parks
    /// only as the policy allows. Every blocking wait on a single future goes through here.
    pub(crate) fn wait_until(&self, deadline: Option<Instant>) -> Result<bool, WaitError> {
        let edge = match deadlock::current_task() {
            Some(waiter) if !self.done() => {
                Some(deadlock::wait_on(waiter, self.info()).map_err(WaitError::Deadlock)?)
            }
            _ => None,
        };
        if self.done() || passed(deadline) {
            return Ok(self.done());
        }
        // Running a queued task inline blocks this thread as much as waiting does, so both go
        // under the thread's blocking policy.
        blocking::block(|| {
            let inline = edge
                .as_ref()
                .and(deadlock::current_pool())
                .and_then(|pool| self.shared.inline_job(pool));
            if let Some(job) = inline {
                job.run_inline();
            }
            self.shared.wait_until(deadline)
        })
        .map_err(WaitError::Refused)
    }

    /// For a done future: `Err(Cancelled)` or the stored outcome.
    fn done_outcome(&self) -> Result<&Result<T, TaskError>, WaitError> {
        match self.state() {
            State::Cancelled => Err(WaitError::Cancelled(CancelledError::new(self.info()))),
            State::Finished => Ok(self.outcome()),
            other => unreachable!("future {} reported done in state {other}", self.info()),
        }
    }

    fn outcome(&self) -> &Result<T, TaskError> {
        self.shared
            .outcome()
            .unwrap_or_else(|| unreachable!("future {} finished without an outcome", self.info()))
    }

    /// For a done, settled future: moves the outcome out if this handle is the only holder left.
    fn try_take(&mut self) -> Option<Result<T, ResultError>> {
        if self.state() == State::Cancelled {
            return Some(Err(ResultError::Cancelled(CancelledError::new(
                self.info(),
            ))));
        }
        let outcome = Arc::get_mut(&mut self.shared)?.take_outcome();
        Some(match outcome {
            Some(Ok(value)) => Ok(value),
            Some(Err(e)) => Err(ResultError::Failed(e)),
            None => unreachable!("the value of future {} was taken twice", self.info()),
        })
    }
}

impl<T> fmt::Debug for FutureHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FutureHandle")
            .field("task", &format_args!("{}", self.info()))
            .field("state", &self.state())
            .finish()
    }
}

/// `handle.await`: the value, moved out (or the error). Works on any async runtime.
///
/// ```
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     let waker = std::task::Waker::noop();
/// #     let mut cx = std::task::Context::from_waker(&waker);
/// #     let mut f = std::pin::pin!(f);
/// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } std::thread::yield_now(); }
/// # }
/// let (promise, future) = executor_core::Promise::<u32>::new();
/// std::thread::spawn(move || promise.set_result(5).unwrap());
/// assert_eq!(block_on(async { future.await }).unwrap(), 5);
/// ```
impl<T> IntoFuture for FutureHandle<T> {
    type Output = Result<T, ResultError>;
    type IntoFuture = Outcome<T>;

    fn into_future(self) -> Outcome<T> {
        Outcome { handle: Some(self) }
    }
}

/// `(&handle).await`: the value by reference; the handle stays usable.
///
/// ```
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     let waker = std::task::Waker::noop();
/// #     let mut cx = std::task::Context::from_waker(&waker);
/// #     let mut f = std::pin::pin!(f);
/// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } std::thread::yield_now(); }
/// # }
/// let (promise, future) = executor_core::Promise::<u32>::new();
/// promise.set_result(5).unwrap();
/// assert_eq!(*block_on(async { (&future).await }).unwrap(), 5);
/// assert!(future.done());
/// ```
impl<'a, T> IntoFuture for &'a FutureHandle<T> {
    type Output = Result<&'a T, ResultError>;
    type IntoFuture = OutcomeRef<'a, T>;

    fn into_future(self) -> OutcomeRef<'a, T> {
        OutcomeRef { handle: self }
    }
}

/// The [`std::future::Future`] behind `handle.await` (see [`FutureHandle`]'s `IntoFuture`).
///
/// ```
/// use std::future::IntoFuture;
/// let (p, f) = executor_core::Promise::<u8>::new();
/// let outcome: executor_core::Outcome<u8> = f.into_future();
/// # drop((p, outcome));
/// ```
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Outcome<T> {
    handle: Option<FutureHandle<T>>,
}

impl<T> Future for Outcome<T> {
    type Output = Result<T, ResultError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let handle = self
            .handle
            .as_mut()
            .expect("`Outcome` polled after it returned its value");
        if handle.shared.poll_done(cx, true).is_pending() {
            return Poll::Pending;
        }
        match handle.try_take() {
            Some(outcome) => {
                self.handle = None;
                Poll::Ready(outcome)
            }
            None => {
                // The producer is dropping its reference this instant (see `into_result`).
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }
}

/// The [`std::future::Future`] behind `(&handle).await`.
///
/// ```
/// use std::future::IntoFuture;
/// let (_p, f) = executor_core::Promise::<u8>::new();
/// let _pending: executor_core::OutcomeRef<'_, u8> = (&f).into_future();
/// ```
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct OutcomeRef<'a, T> {
    handle: &'a FutureHandle<T>,
}

impl<'a, T> Future for OutcomeRef<'a, T> {
    type Output = Result<&'a T, ResultError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let handle = self.handle;
        if handle.shared.poll_done(cx, false).is_pending() {
            return Poll::Pending;
        }
        Poll::Ready(handle.result(Some(Duration::ZERO)))
    }
}
