//! [`Promise`]: the producer's side of a future, the executor-author API (rule A4).

use std::fmt;
use std::sync::{Arc, Weak};

use crate::deadlock::{self, InlineJob, InlineRunner, PoolId};
use crate::error::{InvalidStateError, NotStarted, TaskError};
use crate::handle::FutureHandle;
use crate::shared::Shared;
use crate::task::{Task, TaskId, TaskInfo};
use crate::unwind;

/// How [`FutureHandle::cancel`] asks a producer to withdraw a pending task it has already handed
/// on (see [`Promise::set_revoker`]; rule L13): the executor-author's side of "cancel versus
/// start is one atomic decision" when the task waits somewhere the future's lock cannot reach
/// (a worker process's queue).
///
/// `revoke` returns `true` if the task will now never start (the producer then must not start or
/// complete the future: the caller cancels it), `false` if it has already started (or cannot be
/// stopped). It is called without the future's lock, from the thread that called `cancel()`,
/// once per future (again only after a panic, which reaches that caller and leaves the future
/// pending), and may block (a round trip to a worker) — but it must always return: a producer
/// whose worker died answers at once. It must not call `cancel()` on the same future (that would
/// wait for its own answer).
///
/// If revoking means dropping the producer's [`Promise`], drop it only after `revoke` returns
/// (for example, move it into the revoker, which the future drops after it is cancelled): a
/// promise dropped while its future is pending fails the future as abandoned.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use executor_core::{Promise, Revoker};
///
/// /// A task sitting in a queue that a worker will claim with `swap(true)`.
/// struct Claim(Arc<AtomicBool>);
/// impl Revoker for Claim {
///     fn revoke(&self) -> bool {
///         !self.0.swap(true, Ordering::AcqRel) // we claimed it first: it will never start
///     }
/// }
///
/// let claimed = Arc::new(AtomicBool::new(false));
/// let (promise, future) = Promise::<u8>::new();
/// assert!(promise.set_revoker(Arc::new(Claim(Arc::clone(&claimed)))));
/// assert!(future.cancel());
/// assert!(claimed.load(Ordering::Acquire)); // a worker's claim now fails: the task never runs
/// ```
pub trait Revoker: Send + Sync {
    /// Withdraws the task if it has not started: `true` if it never will, `false` if it has.
    fn revoke(&self) -> bool;
}

/// The producer's side of a future: the executor (or you, for a bare future, rule A5) starts it
/// and completes it. Python puts these methods (`set_running_or_notify_cancel`, `set_result`,
/// `set_exception`) on the `Future` itself; here they live on a separate, non-`Clone` value, so
/// that only the producer can complete a future and completing it twice does not compile.
///
/// Completing a future that is already done (cancelled, in practice) is an
/// [`InvalidStateError`] that names the state and hands the value back; the stored outcome is
/// unchanged. A promise dropped without completing its future fails it with an
/// [abandoned](TaskError::is_abandoned) error, so no waiter can hang on a lost task.
///
/// A minimal executor, one thread per task:
///
/// ```
/// use executor_core::{FutureHandle, Promise, Task};
///
/// fn spawn<T: Task>(task: T) -> FutureHandle<T::Output> {
///     let (promise, future) = Promise::for_task(&task);
///     std::thread::spawn(move || promise.run(task));
///     future
/// }
///
/// assert_eq!(spawn(|| 2 + 2).into_result().unwrap(), 4);
/// assert!(spawn(|| -> u8 { panic!("boom") }).into_result().unwrap_err().task_error().unwrap().is_panic());
/// ```
pub struct Promise<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Promise<T> {
    /// A new pending future named `"future"`, and the promise that completes it.
    ///
    /// ```
    /// let (promise, future) = executor_core::Promise::<u8>::new();
    /// promise.set_result(1).unwrap();
    /// assert_eq!(future.into_result().unwrap(), 1);
    /// ```
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> (Promise<T>, FutureHandle<T>) {
        Promise::named("future")
    }

    /// A new pending future with this task name (shown in errors and reports).
    ///
    /// ```
    /// let (_pf, f) = executor_core::Promise::<u8>::named("download");
    /// assert_eq!(f.info().name(), "download");
    /// ```
    pub fn named(name: &'static str) -> (Promise<T>, FutureHandle<T>) {
        Promise::make(name, None)
    }

    fn make(name: &'static str, inline: Option<InlineRunner>) -> (Promise<T>, FutureHandle<T>) {
        let shared = Arc::new(Shared::new(TaskInfo::new(TaskId::next(), name), inline));
        let future = FutureHandle::from_shared(Arc::clone(&shared));
        (Promise { shared }, future)
    }

    /// A new pending future for this task, named after [`Task::name`].
    ///
    /// ```
    /// use executor_core::{Promise, Task};
    /// let task = || 1;
    /// let (promise, future) = Promise::for_task(&task);
    /// assert_eq!(future.info().name(), task.name());
    /// promise.run(task);
    /// assert_eq!(future.into_result().unwrap(), 1);
    /// ```
    pub fn for_task<K: Task<Output = T>>(task: &K) -> (Promise<T>, FutureHandle<T>) {
        Promise::named(task.name())
    }

    /// [`for_task`](Promise::for_task) and [`allow_inline`](Promise::allow_inline) in one step,
    /// without taking the future's lock: the form for a pool's hot path, typically inside
    /// `Arc::new_cyclic` so that the job can name itself.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use executor_core::{FutureHandle, InlineJob, PoolId, Promise, Task};
    ///
    /// struct Queued<T: Task>(Mutex<Option<(Promise<T::Output>, T)>>);
    /// impl<T: Task> InlineJob for Queued<T> {
    ///     fn run_inline(&self) {
    ///         let taken = self.0.lock().unwrap().take();
    ///         if let Some((promise, task)) = taken {
    ///             promise.run(task);
    ///         }
    ///     }
    /// }
    ///
    /// let task = || 3;
    /// let mut future: Option<FutureHandle<i32>> = None;
    /// let job = Arc::new_cyclic(|me| {
    ///     let (promise, f) = Promise::for_task_inline(&task, PoolId::new(), me.clone());
    ///     future = Some(f);
    ///     Queued(Mutex::new(Some((promise, task))))
    /// });
    /// job.run_inline();
    /// assert_eq!(future.unwrap().into_result().unwrap(), 3);
    /// ```
    pub fn for_task_inline<K, J>(
        task: &K,
        pool: PoolId,
        job: Weak<J>,
    ) -> (Promise<T>, FutureHandle<T>)
    where
        K: Task<Output = T>,
        J: InlineJob + 'static,
    {
        Promise::make(task.name(), Some(InlineRunner { pool, job }))
    }

    /// The future's id and task name.
    ///
    /// ```
    /// let (p, f) = executor_core::Promise::<u8>::new();
    /// assert_eq!(p.info(), f.info());
    /// ```
    pub fn info(&self) -> TaskInfo {
        self.shared.info()
    }

    /// `true` if the future was cancelled (a worker may skip the task without starting it).
    ///
    /// ```
    /// let (p, f) = executor_core::Promise::<u8>::new();
    /// f.cancel();
    /// assert!(p.is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.shared.state() == crate::State::Cancelled
    }

    /// Cancels the future if it has not started, as [`FutureHandle::cancel`] does; for executors
    /// that cancel queued work (`shutdown(cancel_futures)`, a dropped `map`). The producer is the
    /// authority here: a [`Revoker`] set with [`set_revoker`](Promise::set_revoker) is not asked
    /// (use this only for a task the producer knows will not start).
    ///
    /// ```
    /// let (p, f) = executor_core::Promise::<u8>::new();
    /// assert!(p.cancel());
    /// assert!(f.cancelled());
    /// ```
    pub fn cancel(&self) -> bool {
        self.shared.cancel_local()
    }

    /// Makes [`FutureHandle::cancel`] ask `revoker` while the future is pending: for a producer
    /// that hands a task on before it starts (a process pool sends it ahead to a worker) and
    /// cannot take it back by itself (rule L13). Returns `false`, and keeps nothing, if the
    /// future is no longer pending (it was cancelled: do not hand the task on). The revoker is
    /// dropped when the future starts, completes or is cancelled; setting another replaces it.
    ///
    /// Once a revoker is set, `cancel()` on the pending future calls [`Revoker::revoke`] without
    /// holding the future's lock, and:
    /// - `true`: the task will never start; the future is cancelled as usual (waiters wake,
    ///   callbacks run in the cancelling thread) and `cancel()` returns `true`;
    /// - `false`: the task has started; `cancel()` returns `false` and the future, if still
    ///   pending, becomes RUNNING at once. The producer's own start notice may come later:
    ///   [`set_running_or_notify_cancel`](Promise::set_running_or_notify_cancel) then answers
    ///   `Err(NotStarted::InvalidState(State::Running))`, which such a producer must tolerate.
    ///
    /// Concurrent `cancel()` calls agree: while one asks, the others wait for its answer.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use executor_core::{NotStarted, Promise, Revoker, State};
    ///
    /// /// The place a handed-on task waits to start: whoever takes the lock first decides.
    /// #[derive(Default)]
    /// struct Remote { started: bool, withdrawn: bool }
    ///
    /// struct Withdraw(Arc<Mutex<Remote>>);
    /// impl Revoker for Withdraw {
    ///     fn revoke(&self) -> bool {
    ///         let mut remote = self.0.lock().unwrap();
    ///         remote.withdrawn = !remote.started;
    ///         remote.withdrawn
    ///     }
    /// }
    ///
    /// // Handed on, not started: cancel() asks, the task is withdrawn, the future is cancelled.
    /// let remote = Arc::new(Mutex::new(Remote::default()));
    /// let (promise, future) = Promise::<u32>::new();
    /// assert!(promise.set_revoker(Arc::new(Withdraw(Arc::clone(&remote)))));
    /// assert!(future.cancel());
    /// assert!(future.cancelled() && remote.lock().unwrap().withdrawn);
    /// assert_eq!(promise.set_running_or_notify_cancel(), Err(NotStarted::Cancelled));
    ///
    /// // Already started remotely: cancel() returns false and the future is running.
    /// let remote = Arc::new(Mutex::new(Remote { started: true, withdrawn: false }));
    /// let (promise, future) = Promise::<u32>::new();
    /// assert!(promise.set_revoker(Arc::new(Withdraw(remote))));
    /// assert!(!future.cancel());
    /// assert_eq!(future.state(), State::Running);
    /// // The producer's start notice arrives late: tolerated, then the value.
    /// assert_eq!(promise.set_running_or_notify_cancel(), Err(NotStarted::InvalidState(State::Running)));
    /// promise.set_result(7).unwrap();
    /// assert_eq!(future.into_result().unwrap(), 7);
    /// ```
    #[must_use = "`false` means the future was cancelled: the task must not be handed on"]
    pub fn set_revoker(&self, revoker: Arc<dyn Revoker>) -> bool {
        self.shared.set_revoker(revoker)
    }

    /// Takes back the [`Revoker`] set with [`set_revoker`](Promise::set_revoker): the producer
    /// holds the task again (it withdrew it from where it had handed it on, to hand it on
    /// elsewhere), so `cancel()` goes back to cancelling the pending future at once. Returns
    /// `false`, and changes nothing, if the future is not pending, or if a `cancel()` is asking
    /// the revoker at this moment: that cancel's answer decides, and the producer must answer it
    /// as a withdrawn task (the future is then cancelled) rather than hand the task on.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use executor_core::{Promise, Revoker};
    ///
    /// struct Refuse;
    /// impl Revoker for Refuse {
    ///     fn revoke(&self) -> bool { false }
    /// }
    ///
    /// let (promise, future) = Promise::<u32>::new();
    /// assert!(promise.set_revoker(Arc::new(Refuse)));
    /// // Taken back before anyone asked: cancel() no longer asks the revoker.
    /// assert!(promise.clear_revoker());
    /// assert!(future.cancel());
    /// // Not pending any more: nothing to take back.
    /// assert!(!promise.clear_revoker());
    /// ```
    #[must_use = "`false` means the task must not be handed on elsewhere"]
    pub fn clear_revoker(&self) -> bool {
        self.shared.clear_revoker()
    }

    /// Lets a worker of `pool` that blocks on this future while it is still queued claim `job`
    /// and run the task itself, instead of waiting for a free worker (rule K2; see
    /// [`InlineJob`] for an example). The future keeps only a weak reference: the queue owns the
    /// job.
    ///
    /// ```
    /// use std::sync::{Arc, Weak};
    /// use executor_core::{InlineJob, PoolId, Promise};
    ///
    /// struct Nothing;
    /// impl InlineJob for Nothing { fn run_inline(&self) {} }
    ///
    /// let job: Arc<dyn InlineJob> = Arc::new(Nothing);
    /// let (promise, _future) = Promise::<u8>::new();
    /// promise.allow_inline(PoolId::new(), Arc::downgrade(&job));
    /// ```
    pub fn allow_inline(&self, pool: PoolId, job: Weak<dyn InlineJob>) {
        self.shared.set_inline(InlineRunner { pool, job });
    }

    /// PENDING → RUNNING: call it right before running the task. `Err(NotStarted::Cancelled)`
    /// means the future was cancelled and the task must not run; the choice between "started" and
    /// "cancelled" is one atomic decision (rule A2).
    ///
    /// ```
    /// use executor_core::{NotStarted, Promise, State};
    /// let (p, f) = Promise::<u8>::new();
    /// assert_eq!(p.set_running_or_notify_cancel(), Ok(()));
    /// assert!(!f.cancel()); // too late
    /// assert_eq!(p.set_running_or_notify_cancel(), Err(NotStarted::InvalidState(State::Running)));
    /// ```
    pub fn set_running_or_notify_cancel(&self) -> Result<(), NotStarted> {
        self.shared.start()
    }

    /// Completes the future with a value. Hands the value back if the future is already done.
    ///
    /// ```
    /// let (p, f) = executor_core::Promise::<&str>::new();
    /// p.set_result("done").unwrap();
    /// assert_eq!(*f.result(None).unwrap(), "done");
    /// ```
    pub fn set_result(self, value: T) -> Result<(), InvalidStateError<T>> {
        let task = self.info().id();
        self.complete(Ok(value)).map_err(|e| {
            let state = e.state();
            match e.into_inner() {
                Ok(value) => InvalidStateError::new(state, task, value),
                Err(_) => unreachable!("a value came back as an error"),
            }
        })
    }

    /// Completes the future with an error (Python's `set_exception`). The error is stamped with
    /// this task's identity if it has none.
    ///
    /// ```
    /// let (p, f) = executor_core::Promise::<u8>::named("fetch");
    /// p.set_error(executor_core::TaskError::msg("404")).unwrap();
    /// assert_eq!(f.error(None).unwrap().unwrap().task_name(), Some("fetch"));
    /// ```
    pub fn set_error(self, error: TaskError) -> Result<(), InvalidStateError<TaskError>> {
        let task = self.info().id();
        self.complete(Err(error)).map_err(|e| {
            let state = e.state();
            match e.into_inner() {
                Err(error) => InvalidStateError::new(state, task, error),
                Ok(_) => unreachable!("an error came back as a value"),
            }
        })
    }

    /// Completes the future with an outcome; the general form of `set_result` / `set_error`.
    ///
    /// ```
    /// let (p, f) = executor_core::Promise::<u8>::new();
    /// p.complete(Ok(4)).unwrap();
    /// assert_eq!(f.into_result().unwrap(), 4);
    /// ```
    pub fn complete(
        self,
        outcome: Result<T, TaskError>,
    ) -> Result<(), InvalidStateError<Result<T, TaskError>>> {
        self.shared.complete(outcome)
    }

    /// Runs `task` as an executor's worker does: start the future (or, if it was cancelled, drop
    /// the task unrun), run the task with panics caught, and complete the future with its
    /// outcome. The task and what it captured are dropped as soon as it has run (rule G3).
    /// Returns `true` if the task ran, `false` if the future was cancelled first.
    ///
    /// ```
    /// let (p, f) = executor_core::Promise::for_task(&|| "ran");
    /// assert!(p.run(|| "ran"));
    /// assert_eq!(f.into_result().unwrap(), "ran");
    /// ```
    pub fn run<K: Task<Output = T>>(self, task: K) -> bool {
        self.run_with(task, || {})
    }

    /// [`run`](Promise::run), calling `before_complete` after the task returns and before its
    /// future completes (not at all if the task did not run). A pool uses it to mark its worker
    /// idle before the completion wakes the submitter, so that the submitter's next task reuses
    /// this worker instead of starting a new one (rule J2).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// let idle = AtomicBool::new(false);
    /// let (p, f) = executor_core::Promise::for_task(&|| 1);
    /// p.run_with(|| 1, || idle.store(true, Ordering::SeqCst));
    /// assert!(idle.load(Ordering::SeqCst) && f.done());
    /// ```
    pub fn run_with<K: Task<Output = T>>(self, task: K, before_complete: impl FnOnce()) -> bool {
        if self.set_running_or_notify_cancel().is_err() {
            return false;
        }
        let outcome = {
            let _running = deadlock::running(self.info());
            unwind::catch(|| task.run())
        };
        before_complete();
        // Cannot fail: this promise moved the future to RUNNING and only it can finish it.
        let _ = self.complete(outcome);
        true
    }
}

impl<T> Drop for Promise<T> {
    fn drop(&mut self) {
        if !self.shared.state().is_done() {
            let _ = self.shared.complete(Err(TaskError::abandoned(
                "its promise was dropped before the task completed",
            )));
        }
    }
}

impl<T> fmt::Debug for Promise<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Promise")
            .field("task", &format_args!("{}", self.info()))
            .field("state", &self.shared.state())
            .finish()
    }
}
