//! The error family, typed per operation.
//!
//! | operation                                  | error                         |
//! |--------------------------------------------|-------------------------------|
//! | [`FutureHandle::result`](crate::FutureHandle::result) | [`ResultError`]    |
//! | [`FutureHandle::error`](crate::FutureHandle::error)   | [`WaitError`]      |
//! | [`Promise::set_result`](crate::Promise::set_result) and friends | [`InvalidStateError`] |
//! | [`Promise::set_running_or_notify_cancel`](crate::Promise::set_running_or_notify_cancel) | [`NotStarted`] |
//! | [`Executor::submit`](crate::Executor::submit) | [`SubmitError`] (hands the task back) |
//! | [`Executor::map`](crate::Executor::map) (the call) | [`MapError`]           |
//! | a task that panicked or returned an error  | [`TaskError`]                 |
//!
//! Messages are short lowercase phrases that say what happened and to what.

use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::blocking::BlockingRefused;
use crate::state::State;
use crate::task::{TaskId, TaskInfo};

/// Why a task failed: it panicked, returned its own error, or was lost before it could finish.
///
/// Cheap to clone (the same error is handed to every caller of `result`, rule C3). It carries what
/// is needed to debug the failure (rule C4): the message, the task's name and id, and, when a
/// backend knows them, the worker's process id and a backtrace taken in the worker.
///
/// ```
/// use executor_core::{Promise, TaskError};
///
/// let (promise, future) = Promise::<u8>::named("parse");
/// promise.set_error(TaskError::msg("bad header")).unwrap();
/// let error = future.result(None).unwrap_err();
/// assert_eq!(error.to_string(), format!("task `parse` ({}) failed: bad header", future.id()));
/// ```
#[derive(Clone)]
pub struct TaskError(Arc<TaskErrorInner>);

#[derive(Clone)]
struct TaskErrorInner {
    kind: FailureKind,
    message: String,
    task_name: Option<&'static str>,
    task_id: Option<TaskId>,
    source: Option<Arc<dyn Error + Send + Sync + 'static>>,
    broken: Option<BrokenExecutor>,
    worker_pid: Option<u32>,
    backtrace: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FailureKind {
    Panic,
    Error,
    Abandoned,
    Broken,
    Stopped,
}

impl TaskError {
    fn new(kind: FailureKind, message: String) -> Self {
        TaskError(Arc::new(TaskErrorInner {
            kind,
            message,
            task_name: None,
            task_id: None,
            source: None,
            broken: None,
            worker_pid: None,
            backtrace: None,
        }))
    }

    /// A task that panicked with this message.
    ///
    /// ```
    /// let e = executor_core::TaskError::panic("index out of bounds");
    /// assert!(e.is_panic());
    /// assert_eq!(e.message(), "index out of bounds");
    /// ```
    pub fn panic(message: impl Into<String>) -> Self {
        TaskError::new(FailureKind::Panic, message.into())
    }

    /// A task that failed with its own error; the error stays reachable through
    /// [`source`](Error::source) and [`downcast_ref`](TaskError::downcast_ref).
    ///
    /// ```
    /// let io = std::io::Error::new(std::io::ErrorKind::NotFound, "blob missing");
    /// let e = executor_core::TaskError::from_error(io);
    /// assert_eq!(e.downcast_ref::<std::io::Error>().unwrap().kind(), std::io::ErrorKind::NotFound);
    /// ```
    pub fn from_error<E: Error + Send + Sync + 'static>(error: E) -> Self {
        let mut e = TaskError::new(FailureKind::Error, error.to_string());
        Arc::make_mut(&mut e.0).source = Some(Arc::new(error));
        e
    }

    /// A task that failed with a message only (for example, an error that crossed a process
    /// boundary as text).
    ///
    /// ```
    /// assert!(executor_core::TaskError::msg("quota exceeded").is_error());
    /// ```
    pub fn msg(message: impl Into<String>) -> Self {
        TaskError::new(FailureKind::Error, message.into())
    }

    /// A task whose producer went away without completing it (its [`Promise`](crate::Promise)
    /// was dropped), so that no waiter hangs on it forever.
    ///
    /// ```
    /// assert!(executor_core::TaskError::abandoned("worker thread exited").is_abandoned());
    /// ```
    pub fn abandoned(message: impl Into<String>) -> Self {
        TaskError::new(FailureKind::Abandoned, message.into())
    }

    /// A task that could not run because its executor broke (Python sets `BrokenThreadPool` or
    /// `BrokenProcessPool` on every pending future).
    ///
    /// ```
    /// use executor_core::{BrokenExecutor, BrokenKind, TaskError};
    /// let why = BrokenExecutor::new(BrokenKind::ThreadPool, "initializer failed: no config");
    /// let e = TaskError::broken(why.clone());
    /// assert!(e.is_broken());
    /// assert_eq!(e.broken_executor(), Some(&why));
    /// assert_eq!(e.message(), "thread pool is broken: initializer failed: no config");
    /// ```
    pub fn broken(broken: BrokenExecutor) -> Self {
        let mut e = TaskError::new(FailureKind::Broken, broken.to_string());
        Arc::make_mut(&mut e.0).broken = Some(broken);
        e
    }

    /// A running task that was stopped on request (an async task aborted at its next `.await`,
    /// a process worker terminated): an explicitly named operation, distinct from `cancel()`,
    /// which never touches a running task.
    ///
    /// ```
    /// let e = executor_core::TaskError::stopped("stopped at its next await");
    /// assert!(e.is_stopped());
    /// ```
    pub fn stopped(message: impl Into<String>) -> Self {
        TaskError::new(FailureKind::Stopped, message.into())
    }

    /// `true` if the task was stopped while running (see [`TaskError::stopped`]).
    ///
    /// ```
    /// assert!(!executor_core::TaskError::panic("x").is_stopped());
    /// ```
    pub fn is_stopped(&self) -> bool {
        self.0.kind == FailureKind::Stopped
    }

    /// Records which task failed. Executors do this for you.
    ///
    /// ```
    /// let (_pf, f) = executor_core::Promise::<()>::named("thumbnail");
    /// let e = executor_core::TaskError::msg("x").with_task(f.info());
    /// assert_eq!(e.task_name(), Some("thumbnail"));
    /// assert_eq!(e.task_id(), Some(f.id()));
    /// ```
    pub fn with_task(mut self, info: TaskInfo) -> Self {
        let inner = Arc::make_mut(&mut self.0);
        inner.task_name = Some(info.name());
        inner.task_id = Some(info.id());
        self
    }

    /// Records the task's name when there is no future of its own (an item of a chunk).
    ///
    /// ```
    /// let e = executor_core::TaskError::msg("x").with_task_name("resize");
    /// assert_eq!(e.task_name(), Some("resize"));
    /// ```
    pub fn with_task_name(mut self, name: &'static str) -> Self {
        Arc::make_mut(&mut self.0).task_name = Some(name);
        self
    }

    /// Records the process id of the worker the task ran in (process backends).
    ///
    /// ```
    /// let e = executor_core::TaskError::panic("boom").with_worker_pid(4242);
    /// assert_eq!(e.worker_pid(), Some(4242));
    /// ```
    pub fn with_worker_pid(mut self, pid: u32) -> Self {
        Arc::make_mut(&mut self.0).worker_pid = Some(pid);
        self
    }

    /// Records a backtrace taken where the task failed.
    ///
    /// ```
    /// let e = executor_core::TaskError::panic("boom").with_backtrace("0: worker::main");
    /// assert_eq!(e.backtrace(), Some("0: worker::main"));
    /// ```
    pub fn with_backtrace(mut self, backtrace: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.0).backtrace = Some(backtrace.into());
        self
    }

    /// `true` if the task panicked.
    ///
    /// ```
    /// assert!(!executor_core::TaskError::msg("x").is_panic());
    /// ```
    pub fn is_panic(&self) -> bool {
        self.0.kind == FailureKind::Panic
    }

    /// `true` if the task returned its own error.
    ///
    /// ```
    /// assert!(!executor_core::TaskError::panic("x").is_error());
    /// ```
    pub fn is_error(&self) -> bool {
        self.0.kind == FailureKind::Error
    }

    /// `true` if the task was lost before it could finish (see [`TaskError::abandoned`]).
    ///
    /// ```
    /// assert!(!executor_core::TaskError::panic("x").is_abandoned());
    /// ```
    pub fn is_abandoned(&self) -> bool {
        self.0.kind == FailureKind::Abandoned
    }

    /// `true` if the task could not run because its executor broke (see [`TaskError::broken`]).
    ///
    /// ```
    /// assert!(!executor_core::TaskError::panic("x").is_broken());
    /// ```
    pub fn is_broken(&self) -> bool {
        self.0.kind == FailureKind::Broken
    }

    /// Why the executor broke, for a task that failed because of it.
    ///
    /// ```
    /// assert!(executor_core::TaskError::msg("x").broken_executor().is_none());
    /// ```
    pub fn broken_executor(&self) -> Option<&BrokenExecutor> {
        self.0.broken.as_ref()
    }

    /// The panic message or the error's text.
    ///
    /// ```
    /// assert_eq!(executor_core::TaskError::msg("disk full").message(), "disk full");
    /// ```
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The failed task's name, when known.
    ///
    /// ```
    /// assert_eq!(executor_core::TaskError::msg("x").task_name(), None);
    /// ```
    pub fn task_name(&self) -> Option<&'static str> {
        self.0.task_name
    }

    /// The failed task's id, when it had a future of its own.
    ///
    /// ```
    /// assert_eq!(executor_core::TaskError::msg("x").task_id(), None);
    /// ```
    pub fn task_id(&self) -> Option<TaskId> {
        self.0.task_id
    }

    /// The process id of the worker the task ran in, for process backends.
    ///
    /// ```
    /// assert_eq!(executor_core::TaskError::msg("x").worker_pid(), None);
    /// ```
    pub fn worker_pid(&self) -> Option<u32> {
        self.0.worker_pid
    }

    /// A backtrace from where the task failed, when the backend captured one.
    ///
    /// ```
    /// assert_eq!(executor_core::TaskError::msg("x").backtrace(), None);
    /// ```
    pub fn backtrace(&self) -> Option<&str> {
        self.0.backtrace.as_deref()
    }

    /// The task's own error, if it is an `E`.
    ///
    /// ```
    /// let e = executor_core::TaskError::from_error(std::fmt::Error);
    /// assert!(e.downcast_ref::<std::fmt::Error>().is_some());
    /// assert!(e.downcast_ref::<std::io::Error>().is_none());
    /// ```
    pub fn downcast_ref<E: Error + 'static>(&self) -> Option<&E> {
        self.0.source.as_deref()?.downcast_ref::<E>()
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.0;
        f.write_str("task ")?;
        match (inner.task_name, inner.task_id) {
            (Some(name), Some(id)) => write!(f, "`{name}` ({id}) ")?,
            (Some(name), None) => write!(f, "`{name}` ")?,
            (None, Some(id)) => write!(f, "{id} ")?,
            (None, None) => {}
        }
        let verb = match inner.kind {
            FailureKind::Panic => "panicked",
            FailureKind::Error => "failed",
            FailureKind::Abandoned => "was abandoned",
            FailureKind::Broken => "could not run",
            FailureKind::Stopped => "was stopped",
        };
        write!(f, "{verb}")?;
        if let Some(pid) = inner.worker_pid {
            write!(f, " in worker pid {pid}")?;
        }
        write!(f, ": {}", inner.message)
    }
}

impl fmt::Debug for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.0;
        f.debug_struct("TaskError")
            .field("kind", &inner.kind)
            .field("message", &inner.message)
            .field("task_name", &inner.task_name)
            .field("task_id", &inner.task_id)
            .field("worker_pid", &inner.worker_pid)
            .field("has_backtrace", &inner.backtrace.is_some())
            .finish()
    }
}

impl Error for TaskError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|e| e as &(dyn Error + 'static))
    }
}

/// The future was cancelled before it started (Python's `CancelledError`).
///
/// ```
/// let (_pf, f) = executor_core::Promise::<u8>::named("upload");
/// f.cancel();
/// let e = f.result(None).unwrap_err();
/// assert!(e.is_cancelled());
/// assert_eq!(e.to_string(), format!("task `upload` ({}) was cancelled", f.id()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelledError {
    /// Boxed, like every variant of [`ResultError`], to keep map items small.
    task: Box<TaskInfo>,
}

impl CancelledError {
    pub(crate) fn new(task: TaskInfo) -> Self {
        CancelledError {
            task: Box::new(task),
        }
    }

    /// The cancelled task.
    ///
    /// ```
    /// let (_pf, f) = executor_core::Promise::<u8>::new();
    /// f.cancel();
    /// let executor_core::ResultError::Cancelled(e) = f.result(None).unwrap_err() else { panic!() };
    /// assert_eq!(e.task().id(), f.id());
    /// ```
    pub fn task(&self) -> TaskInfo {
        *self.task
    }
}

impl fmt::Display for CancelledError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task {} was cancelled", self.task)
    }
}

impl Error for CancelledError {}

/// A deadline passed before the awaited thing happened (Python's `TimeoutError`).
///
/// ```
/// use std::time::Duration;
/// let (_promise, f) = executor_core::Promise::<u8>::named("fetch");
/// let e = f.result(Some(Duration::ZERO)).unwrap_err();
/// assert!(e.is_timeout());
/// assert!(e.to_string().starts_with("timed out after"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeoutError(Box<TimeoutInner>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct TimeoutInner {
    after: Duration,
    what: TimeoutWhat,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TimeoutWhat {
    Task(TaskInfo),
    Unfinished { unfinished: usize, total: usize },
}

impl TimeoutError {
    pub(crate) fn task(after: Duration, task: TaskInfo) -> Self {
        TimeoutError(Box::new(TimeoutInner {
            after,
            what: TimeoutWhat::Task(task),
        }))
    }

    pub(crate) fn with_unfinished(after: Duration, unfinished: usize, total: usize) -> Self {
        TimeoutError(Box::new(TimeoutInner {
            after,
            what: TimeoutWhat::Unfinished { unfinished, total },
        }))
    }

    /// How long the caller waited (the timeout it gave).
    ///
    /// ```
    /// use std::time::Duration;
    /// let (_p, f) = executor_core::Promise::<u8>::new();
    /// let executor_core::ResultError::Timeout(e) = f.result(Some(Duration::from_millis(1))).unwrap_err() else { panic!() };
    /// assert_eq!(e.after(), Duration::from_millis(1));
    /// ```
    pub fn after(&self) -> Duration {
        self.0.after
    }

    /// For `as_completed` and `map`: how many of how many were still unfinished.
    ///
    /// ```
    /// use std::time::Duration;
    /// let (_p, f) = executor_core::Promise::<u8>::new();
    /// let mut it = executor_core::as_completed([&f], Some(Duration::ZERO));
    /// let e = it.next().unwrap().unwrap_err();
    /// assert_eq!(e.unfinished(), Some((1, 1)));
    /// ```
    pub fn unfinished(&self) -> Option<(usize, usize)> {
        match self.0.what {
            TimeoutWhat::Unfinished { unfinished, total } => Some((unfinished, total)),
            TimeoutWhat::Task(_) => None,
        }
    }
}

impl fmt::Display for TimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0.what {
            TimeoutWhat::Task(task) => {
                write!(
                    f,
                    "timed out after {:?} waiting for task {task}",
                    self.0.after
                )
            }
            TimeoutWhat::Unfinished { unfinished, total } => write!(
                f,
                "timed out after {:?} with {unfinished} (of {total}) futures unfinished",
                self.0.after
            ),
        }
    }
}

impl Error for TimeoutError {}

/// Tasks wait on each other in a cycle, so none of them could ever finish (rule K2).
///
/// ```
/// let e = executor_core::DeadlockError::new(vec![]);
/// assert!(e.cycle().is_empty());
/// assert_eq!(e.to_string(), "deadlock: tasks wait on each other in a cycle");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadlockError {
    cycle: Arc<Vec<TaskInfo>>,
}

impl DeadlockError {
    /// A deadlock through these tasks, each waiting on the next and the last on the first.
    /// Backends that detect deadlocks build it.
    ///
    /// ```
    /// let (_pa, a) = executor_core::Promise::<()>::named("a");
    /// let (_pb, b) = executor_core::Promise::<()>::named("b");
    /// let e = executor_core::DeadlockError::new(vec![a.info(), b.info()]);
    /// assert_eq!(
    ///     e.to_string(),
    ///     format!("deadlock: task `a` ({}) waits on `b` ({}) waits on `a` ({})", a.id(), b.id(), a.id())
    /// );
    /// ```
    pub fn new(cycle: Vec<TaskInfo>) -> Self {
        DeadlockError {
            cycle: Arc::new(cycle),
        }
    }

    /// The tasks of the cycle, in waiting order.
    ///
    /// ```
    /// assert_eq!(executor_core::DeadlockError::new(vec![]).cycle().len(), 0);
    /// ```
    pub fn cycle(&self) -> &[TaskInfo] {
        &self.cycle
    }
}

impl fmt::Display for DeadlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(first) = self.cycle.first() else {
            return f.write_str("deadlock: tasks wait on each other in a cycle");
        };
        write!(f, "deadlock: task {first}")?;
        for task in self.cycle.iter().skip(1).chain(Some(first)) {
            write!(f, " waits on {task}")?;
        }
        Ok(())
    }
}

impl Error for DeadlockError {}

/// Waiting for a future did not end with it done (from [`FutureHandle::error`](crate::FutureHandle::error)).
///
/// ```
/// let (_pf, f) = executor_core::Promise::<u8>::new();
/// f.cancel();
/// assert!(matches!(f.error(None), Err(executor_core::WaitError::Cancelled(_))));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitError {
    /// The future was cancelled.
    Cancelled(CancelledError),
    /// The deadline passed first.
    Timeout(TimeoutError),
    /// The wait would never end: tasks wait on each other in a cycle.
    Deadlock(DeadlockError),
    /// This thread must not block (an async runtime's thread); await the future instead.
    Refused(BlockingRefused),
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitError::Cancelled(e) => e.fmt(f),
            WaitError::Timeout(e) => e.fmt(f),
            WaitError::Deadlock(e) => e.fmt(f),
            WaitError::Refused(e) => e.fmt(f),
        }
    }
}

impl Error for WaitError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            WaitError::Cancelled(e) => Some(e),
            WaitError::Timeout(e) => Some(e),
            WaitError::Deadlock(e) => Some(e),
            WaitError::Refused(e) => Some(e),
        }
    }
}

/// Why there is no value: what [`FutureHandle::result`](crate::FutureHandle::result) and the
/// items of [`MapIter`](crate::MapIter) fail with.
///
/// ```
/// use executor_core::{Promise, ResultError, TaskError};
///
/// let (promise, future) = Promise::<u8>::new();
/// promise.set_error(TaskError::panic("boom")).unwrap();
/// match future.result(None) {
///     Err(ResultError::Failed(e)) => assert!(e.is_panic()),
///     other => panic!("unexpected {other:?}"),
/// }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ResultError {
    /// The future was cancelled (Python's `CancelledError`).
    Cancelled(CancelledError),
    /// The deadline passed first (Python's `TimeoutError`).
    Timeout(TimeoutError),
    /// The task panicked or returned an error (Python: the task's exception).
    Failed(TaskError),
    /// The wait would never end: tasks wait on each other in a cycle.
    Deadlock(DeadlockError),
    /// This thread must not block (an async runtime's thread); await the future instead.
    Refused(BlockingRefused),
    /// Only from `map`: the executor refused to take this item (it was shut down or broke while
    /// the map was still submitting lazily, with `buffersize`).
    Rejected(RejectReason),
}

impl ResultError {
    /// `true` for [`ResultError::Cancelled`].
    ///
    /// ```
    /// let (_pf, f) = executor_core::Promise::<u8>::new();
    /// f.cancel();
    /// assert!(f.result(None).unwrap_err().is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        matches!(self, ResultError::Cancelled(_))
    }

    /// `true` for [`ResultError::Timeout`].
    ///
    /// ```
    /// let (_p, f) = executor_core::Promise::<u8>::new();
    /// assert!(f.result(Some(std::time::Duration::ZERO)).unwrap_err().is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, ResultError::Timeout(_))
    }

    /// The task's failure, for [`ResultError::Failed`].
    ///
    /// ```
    /// let (p, f) = executor_core::Promise::<u8>::new();
    /// p.set_error(executor_core::TaskError::msg("nope")).unwrap();
    /// assert_eq!(f.result(None).unwrap_err().task_error().unwrap().message(), "nope");
    /// ```
    pub fn task_error(&self) -> Option<&TaskError> {
        match self {
            ResultError::Failed(e) => Some(e),
            _ => None,
        }
    }
}

impl From<WaitError> for ResultError {
    fn from(e: WaitError) -> Self {
        match e {
            WaitError::Cancelled(e) => ResultError::Cancelled(e),
            WaitError::Timeout(e) => ResultError::Timeout(e),
            WaitError::Deadlock(e) => ResultError::Deadlock(e),
            WaitError::Refused(e) => ResultError::Refused(e),
        }
    }
}

impl fmt::Display for ResultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResultError::Cancelled(e) => e.fmt(f),
            ResultError::Timeout(e) => e.fmt(f),
            ResultError::Failed(e) => e.fmt(f),
            ResultError::Deadlock(e) => e.fmt(f),
            ResultError::Refused(e) => e.fmt(f),
            ResultError::Rejected(e) => e.fmt(f),
        }
    }
}

impl Error for ResultError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            ResultError::Cancelled(e) => Some(e),
            ResultError::Timeout(e) => Some(e),
            ResultError::Failed(e) => Some(e),
            ResultError::Deadlock(e) => Some(e),
            ResultError::Refused(e) => Some(e),
            ResultError::Rejected(e) => Some(e),
        }
    }
}

/// The future was already done, so it could not be started or completed
/// (Python's `InvalidStateError`). Hands back what could not be stored.
///
/// ```
/// let (promise, future) = executor_core::Promise::<u8>::new();
/// future.cancel();
/// let e = promise.set_result(5).unwrap_err();
/// assert_eq!(e.state(), executor_core::State::Cancelled);
/// assert_eq!(e.to_string(), format!("future {} is already CANCELLED", future.id()));
/// assert_eq!(e.into_inner(), 5);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct InvalidStateError<T = ()> {
    state: State,
    task: TaskId,
    value: T,
}

impl<T> InvalidStateError<T> {
    pub(crate) fn new(state: State, task: TaskId, value: T) -> Self {
        InvalidStateError { state, task, value }
    }

    /// The state the future was in.
    ///
    /// ```
    /// let (p, f) = executor_core::Promise::<u8>::new();
    /// f.cancel();
    /// assert!(p.set_result(1).unwrap_err().state().is_done());
    /// ```
    pub fn state(&self) -> State {
        self.state
    }

    /// Gives back what could not be stored.
    ///
    /// ```
    /// let (p, f) = executor_core::Promise::<String>::new();
    /// f.cancel();
    /// assert_eq!(p.set_result("kept".into()).unwrap_err().into_inner(), "kept");
    /// ```
    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<T> fmt::Debug for InvalidStateError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InvalidStateError")
            .field("state", &self.state)
            .field("task", &self.task)
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Display for InvalidStateError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "future {} is already {}", self.task, self.state)
    }
}

impl<T> Error for InvalidStateError<T> {}

/// Why the producer could not move a future to RUNNING (rule A4).
///
/// ```
/// use executor_core::{NotStarted, Promise};
///
/// let (promise, future) = Promise::<u8>::new();
/// future.cancel();
/// assert_eq!(promise.set_running_or_notify_cancel(), Err(NotStarted::Cancelled));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotStarted {
    /// The future was cancelled: do not run the task.
    Cancelled,
    /// The future was already running or finished: a bug in the producer.
    InvalidState(State),
}

impl fmt::Display for NotStarted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotStarted::Cancelled => f.write_str("future was cancelled before it started"),
            NotStarted::InvalidState(s) => write!(f, "future is already {s}"),
        }
    }
}

impl Error for NotStarted {}

/// Which kind of executor broke.
///
/// ```
/// let e = executor_core::BrokenExecutor::new(executor_core::BrokenKind::ThreadPool, "initializer failed");
/// assert_eq!(e.kind(), executor_core::BrokenKind::ThreadPool);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BrokenKind {
    /// Python's `BrokenThreadPool`.
    ThreadPool,
    /// Python's `BrokenProcessPool`.
    ProcessPool,
    /// Any other executor (Python's `BrokenExecutor`).
    Other,
}

/// The executor can no longer run tasks (Python's `BrokenExecutor` family): an initializer failed
/// or a worker died. The reason says which and why (for processes: the pid and exit status).
///
/// ```
/// use executor_core::{BrokenExecutor, BrokenKind};
/// let e = BrokenExecutor::new(BrokenKind::ProcessPool, "worker pid 77 was killed by signal 9");
/// assert_eq!(e.to_string(), "process pool is broken: worker pid 77 was killed by signal 9");
/// assert_eq!(e.reason(), "worker pid 77 was killed by signal 9");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenExecutor(Arc<BrokenInner>);

#[derive(Debug, PartialEq, Eq)]
struct BrokenInner {
    kind: BrokenKind,
    reason: String,
}

impl BrokenExecutor {
    /// Makes the error.
    ///
    /// ```
    /// let _ = executor_core::BrokenExecutor::new(executor_core::BrokenKind::Other, "gone");
    /// ```
    pub fn new(kind: BrokenKind, reason: impl Into<String>) -> Self {
        BrokenExecutor(Arc::new(BrokenInner {
            kind,
            reason: reason.into(),
        }))
    }

    /// Which kind of executor broke.
    ///
    /// ```
    /// let e = executor_core::BrokenExecutor::new(executor_core::BrokenKind::Other, "gone");
    /// assert_eq!(e.kind(), executor_core::BrokenKind::Other);
    /// ```
    pub fn kind(&self) -> BrokenKind {
        self.0.kind
    }

    /// Why it broke.
    ///
    /// ```
    /// let e = executor_core::BrokenExecutor::new(executor_core::BrokenKind::Other, "gone");
    /// assert_eq!(e.reason(), "gone");
    /// ```
    pub fn reason(&self) -> &str {
        &self.0.reason
    }
}

impl fmt::Display for BrokenExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.0.kind {
            BrokenKind::ThreadPool => "thread pool",
            BrokenKind::ProcessPool => "process pool",
            BrokenKind::Other => "executor",
        };
        write!(f, "{what} is broken: {}", self.0.reason)
    }
}

impl Error for BrokenExecutor {}

/// Why an executor refused a task: it was shut down, or it is broken (broken wins, rule G2).
///
/// ```
/// let r = executor_core::RejectReason::Shutdown;
/// assert_eq!(r.to_string(), "cannot schedule new futures after shutdown");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectReason {
    /// `shutdown` was called.
    Shutdown,
    /// The executor is broken.
    Broken(BrokenExecutor),
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::Shutdown => f.write_str("cannot schedule new futures after shutdown"),
            RejectReason::Broken(e) => e.fmt(f),
        }
    }
}

impl Error for RejectReason {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            RejectReason::Shutdown => None,
            RejectReason::Broken(e) => Some(e),
        }
    }
}

/// `submit` was refused; the task is handed back (rule G2).
///
/// ```
/// use executor_core::{RejectReason, SubmitError};
/// let e = SubmitError::new(RejectReason::Shutdown, "task");
/// assert!(e.is_shutdown());
/// assert_eq!(e.to_string(), "cannot schedule new futures after shutdown");
/// assert_eq!(e.into_inner(), "task");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SubmitError<T> {
    reason: RejectReason,
    task: T,
}

impl<T> SubmitError<T> {
    /// Makes the error (for executor authors).
    ///
    /// ```
    /// let _ = executor_core::SubmitError::new(executor_core::RejectReason::Shutdown, ());
    /// ```
    pub fn new(reason: RejectReason, task: T) -> Self {
        SubmitError { reason, task }
    }

    /// Why the task was refused.
    ///
    /// ```
    /// let e = executor_core::SubmitError::new(executor_core::RejectReason::Shutdown, ());
    /// assert_eq!(e.reason(), &executor_core::RejectReason::Shutdown);
    /// ```
    pub fn reason(&self) -> &RejectReason {
        &self.reason
    }

    /// `true` if the executor was shut down.
    ///
    /// ```
    /// assert!(executor_core::SubmitError::new(executor_core::RejectReason::Shutdown, ()).is_shutdown());
    /// ```
    pub fn is_shutdown(&self) -> bool {
        matches!(self.reason, RejectReason::Shutdown)
    }

    /// The broken-executor error, if that is why.
    ///
    /// ```
    /// use executor_core::*;
    /// let broken = BrokenExecutor::new(BrokenKind::ThreadPool, "initializer failed");
    /// let e = SubmitError::new(RejectReason::Broken(broken.clone()), ());
    /// assert_eq!(e.broken(), Some(&broken));
    /// ```
    pub fn broken(&self) -> Option<&BrokenExecutor> {
        match &self.reason {
            RejectReason::Broken(b) => Some(b),
            RejectReason::Shutdown => None,
        }
    }

    /// Gives the task back.
    ///
    /// ```
    /// let e = executor_core::SubmitError::new(executor_core::RejectReason::Shutdown, 7);
    /// assert_eq!(e.into_inner(), 7);
    /// ```
    pub fn into_inner(self) -> T {
        self.task
    }

    /// Splits into the reason and the task.
    ///
    /// ```
    /// let (reason, task) = executor_core::SubmitError::new(executor_core::RejectReason::Shutdown, 7).into_parts();
    /// assert_eq!((reason, task), (executor_core::RejectReason::Shutdown, 7));
    /// ```
    pub fn into_parts(self) -> (RejectReason, T) {
        (self.reason, self.task)
    }
}

impl<T> fmt::Debug for SubmitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubmitError")
            .field("reason", &self.reason)
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Display for SubmitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.reason.fmt(f)
    }
}

impl<T> Error for SubmitError<T> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.reason.source()
    }
}

/// `map` refused the call: an option is out of range (rule H7), or the executor refused the first
/// submission.
///
/// ```
/// let e = executor_core::MapError::invalid("chunksize", 0, "must be at least 1");
/// assert_eq!(e.to_string(), "invalid map option `chunksize` = 0: must be at least 1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MapError {
    /// An option had a value out of range.
    InvalidOption {
        /// The option's name (`"chunksize"`, `"buffersize"`).
        field: &'static str,
        /// The value given.
        value: i64,
        /// What it must be.
        expected: &'static str,
    },
    /// The executor refused the first submission.
    Rejected(RejectReason),
}

impl MapError {
    /// An option with a value out of range.
    ///
    /// ```
    /// assert!(matches!(
    ///     executor_core::MapError::invalid("buffersize", -1, "must be at least 1"),
    ///     executor_core::MapError::InvalidOption { field: "buffersize", .. }
    /// ));
    /// ```
    pub fn invalid(field: &'static str, value: i64, expected: &'static str) -> Self {
        MapError::InvalidOption {
            field,
            value,
            expected,
        }
    }
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapError::InvalidOption {
                field,
                value,
                expected,
            } => write!(f, "invalid map option `{field}` = {value}: {expected}"),
            MapError::Rejected(r) => r.fmt(f),
        }
    }
}

impl Error for MapError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            MapError::InvalidOption { .. } => None,
            MapError::Rejected(r) => Some(r),
        }
    }
}
