//! What an executor runs: the [`Task`] trait, a task's identity, and two adaptors.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::TaskError;
use crate::unwind;

/// A unit of work an executor can run (Python's "callable plus arguments").
///
/// Every `FnOnce() -> R + Send + 'static` closure is a task whose output is `R`; a panic inside
/// it fails the task's future and nothing else. A task whose own error should fail the future
/// (Python's "the callable raised") is a closure wrapped in [`fallible`], or a type of yours
/// whose [`run`](Task::run) returns `Err`.
///
/// Backends say which tasks they accept through their [`Executor`](crate::Executor) impls: a
/// thread pool runs any `Task`; a process pool runs only tasks that can also cross a process
/// boundary (serde types with a stable name); generic code (the harness) writes its workloads as
/// types that implement both, and drives every backend through one code path.
///
/// ```
/// use executor_core::{Task, TaskError};
///
/// /// A task as a type: what it needs is its data, and it can name itself.
/// struct IsPrime(u64);
///
/// impl Task for IsPrime {
///     type Output = bool;
///     fn run(self) -> Result<bool, TaskError> {
///         let n = self.0;
///         Ok(n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0))
///     }
///     fn name(&self) -> &'static str {
///         "is_prime"
///     }
/// }
///
/// assert_eq!(IsPrime(97).run().unwrap(), true);
/// assert_eq!((|| 6 * 7).run().unwrap(), 42);
/// ```
pub trait Task: Send + 'static {
    /// What the task produces. `Sync` because every holder of a `&FutureHandle` may read it
    /// from its own thread (`result` hands out `&Output`, rule C3).
    type Output: Send + Sync + 'static;

    /// Runs the task to completion. Executors call this through [`Promise::run`](crate::Promise::run),
    /// which also catches a panic and stamps the error with the task's identity.
    fn run(self) -> Result<Self::Output, TaskError>;

    /// A stable, human-readable name for reports and errors. Defaults to the type's name.
    fn name(&self) -> &'static str {
        std::any::type_name::<Self>()
    }
}

impl<F, R> Task for F
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + Sync + 'static,
{
    type Output = R;

    fn run(self) -> Result<R, TaskError> {
        Ok(self())
    }
}

/// Wraps a closure returning `Result<R, E>` so that `Err(e)` fails the future with `e` as the
/// [`TaskError`]'s [`source`](std::error::Error::source), as an exception does in Python.
///
/// ```
/// use executor_core::{Task, fallible};
///
/// let task = fallible(|| "12x".parse::<u32>());
/// let error = task.run().unwrap_err();
/// assert!(error.is_error());
/// assert!(error.downcast_ref::<std::num::ParseIntError>().is_some());
/// ```
pub fn fallible<F, R, E>(f: F) -> Fallible<F>
where
    F: FnOnce() -> Result<R, E> + Send + 'static,
    R: Send + Sync + 'static,
    E: std::error::Error + Send + Sync + 'static,
{
    Fallible(f)
}

/// A closure whose `Err` fails its future; made by [`fallible`].
///
/// ```
/// use executor_core::{Task, fallible};
/// assert_eq!(fallible(|| Ok::<_, std::io::Error>(1)).run().unwrap(), 1);
/// ```
pub struct Fallible<F>(F);

impl<F, R, E> Task for Fallible<F>
where
    F: FnOnce() -> Result<R, E> + Send + 'static,
    R: Send + Sync + 'static,
    E: std::error::Error + Send + Sync + 'static,
{
    type Output = R;

    fn run(self) -> Result<R, TaskError> {
        (self.0)().map_err(TaskError::from_error)
    }

    fn name(&self) -> &'static str {
        std::any::type_name::<F>()
    }
}

impl<F> fmt::Debug for Fallible<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Fallible(..)")
    }
}

/// Several tasks sent to a worker as one unit, the way `map(chunksize = n)` batches its input.
///
/// Each item is run on its own: a panic or error in one item becomes that item's error and the
/// others still run (rule H4), so the output has exactly one entry per input, in order.
///
/// ```
/// use executor_core::{Chunk, Task};
///
/// let chunk = Chunk::new(vec![|| 1, || panic!("two"), || 3]);
/// let outcomes = chunk.run().unwrap();
/// assert_eq!(outcomes.len(), 3);
/// assert_eq!(outcomes[0].as_ref().unwrap(), &1);
/// assert!(outcomes[1].as_ref().unwrap_err().is_panic());
/// assert_eq!(outcomes[2].as_ref().unwrap(), &3);
/// ```
#[derive(Debug, Clone)]
pub struct Chunk<T> {
    items: Vec<T>,
    /// Told how long the run took, for `map`'s automatic chunk size.
    timer: Option<RunTimer>,
}

/// Chunks are equal when their tasks are (whether they are timed does not matter).
impl<T: PartialEq> PartialEq for Chunk<T> {
    fn eq(&self, other: &Self) -> bool {
        self.items == other.items
    }
}

impl<T: Eq> Eq for Chunk<T> {}

impl<T: Task> Chunk<T> {
    /// Makes a chunk of the given tasks.
    ///
    /// ```
    /// assert_eq!(executor_core::Chunk::new(vec![|| ()]).len(), 1);
    /// ```
    pub fn new(items: Vec<T>) -> Self {
        Chunk { items, timer: None }
    }

    /// The same chunk, which records how long its run takes in `timer` (what
    /// [`MapOptions::auto_chunksize`](crate::MapOptions::auto_chunksize) measures).
    ///
    /// ```
    /// use executor_core::{Chunk, RunTimer, Task};
    ///
    /// let timer = RunTimer::new();
    /// Chunk::new(vec![|| 1]).timed(timer.clone()).run().unwrap();
    /// assert!(timer.get().is_some());
    /// ```
    pub fn timed(self, timer: RunTimer) -> Self {
        Chunk {
            timer: Some(timer),
            ..self
        }
    }

    /// How many tasks the chunk holds.
    ///
    /// ```
    /// assert!(executor_core::Chunk::<fn()>::new(Vec::new()).is_empty());
    /// ```
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// `true` when the chunk holds no task.
    ///
    /// ```
    /// assert!(!executor_core::Chunk::new(vec![|| 1]).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Gives the tasks back (a refused submission hands them back this way).
    ///
    /// ```
    /// let tasks = executor_core::Chunk::new(vec![1u8, 2].into_iter().map(|n| move || n).collect()).into_inner();
    /// assert_eq!(tasks.len(), 2);
    /// ```
    pub fn into_inner(self) -> Vec<T> {
        self.items
    }
}

impl<T: Task> Task for Chunk<T> {
    type Output = Vec<Result<T::Output, TaskError>>;

    fn run(self) -> Result<Self::Output, TaskError> {
        let started = self.timer.as_ref().map(|_| Instant::now());
        let outcomes = self
            .items
            .into_iter()
            .map(|item| {
                let name = item.name();
                unwind::catch(|| item.run()).map_err(|e| e.with_task_name(name))
            })
            .collect();
        if let (Some(timer), Some(started)) = (&self.timer, started) {
            timer.record(started.elapsed());
        }
        Ok(outcomes)
    }

    fn name(&self) -> &'static str {
        self.items.first().map_or("chunk", Task::name)
    }
}

/// How long one unit of work ran, told by whoever ran it: a shared cell that a [`Chunk`] (or a
/// backend's worker) fills in and [`map`](crate::Executor::map) reads to choose an automatic
/// chunk size from measured task cost (rule H5). Clones share the cell.
///
/// ```
/// use std::time::Duration;
/// use executor_core::RunTimer;
///
/// let timer = RunTimer::new();
/// assert_eq!(timer.get(), None);
/// timer.clone().record(Duration::from_micros(250));
/// assert_eq!(timer.get(), Some(Duration::from_micros(250)));
/// ```
#[derive(Debug, Clone, Default)]
pub struct RunTimer(Arc<AtomicU64>);

impl RunTimer {
    /// A timer that has recorded nothing.
    ///
    /// ```
    /// assert!(executor_core::RunTimer::new().get().is_none());
    /// ```
    pub fn new() -> Self {
        RunTimer::default()
    }

    /// Records a run time (the last one recorded wins).
    ///
    /// ```
    /// let timer = executor_core::RunTimer::new();
    /// timer.record(std::time::Duration::ZERO);
    /// assert_eq!(timer.get(), Some(std::time::Duration::ZERO));
    /// ```
    pub fn record(&self, ran: Duration) {
        // Stored as nanoseconds + 1, so that 0 means "nothing yet". Ordering: the value travels
        // with the future's completion, which already publishes it (the reader waits on it).
        let nanos = u64::try_from(ran.as_nanos()).unwrap_or(u64::MAX);
        self.0.store(nanos.saturating_add(1), Ordering::Relaxed);
    }

    /// The run time recorded, if any.
    ///
    /// ```
    /// assert_eq!(executor_core::RunTimer::new().get(), None);
    /// ```
    pub fn get(&self) -> Option<Duration> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            n => Some(Duration::from_nanos(n - 1)),
        }
    }
}

/// A future's identity: unique in this process, allocated when the future is made.
///
/// ```
/// let (_pa, a) = executor_core::Promise::<()>::new();
/// let (_pb, b) = executor_core::Promise::<()>::new();
/// assert_ne!(a.id(), b.id());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(u64);

impl TaskId {
    pub(crate) fn next() -> TaskId {
        // Ordering: only uniqueness is needed, which a relaxed read-modify-write gives.
        static NEXT: AtomicU64 = AtomicU64::new(1);
        TaskId(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The number behind the id, for logs and reports.
    ///
    /// ```
    /// let (_pf, f) = executor_core::Promise::<()>::new();
    /// assert!(f.id().as_u64() > 0);
    /// ```
    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Which task a future or an error is about: its [`TaskId`] and its [`Task::name`].
///
/// ```
/// let (_pf, f) = executor_core::Promise::<()>::named("resize");
/// assert_eq!(f.info().name(), "resize");
/// assert_eq!(f.info().to_string(), format!("`resize` ({})", f.id()));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TaskInfo {
    id: TaskId,
    name: &'static str,
}

impl TaskInfo {
    pub(crate) fn new(id: TaskId, name: &'static str) -> Self {
        TaskInfo { id, name }
    }

    /// The future's id.
    ///
    /// ```
    /// let (_pf, f) = executor_core::Promise::<()>::new();
    /// assert_eq!(f.info().id(), f.id());
    /// ```
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// The task's name.
    ///
    /// ```
    /// let (_pf, f) = executor_core::Promise::<()>::new();
    /// assert_eq!(f.info().name(), "future");
    /// ```
    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl fmt::Display for TaskInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` ({})", self.name, self.id)
    }
}
