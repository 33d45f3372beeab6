//! No silent deadlocks (rule K2): which task each thread is running, which pool it works for,
//! and who waits on whom.
//!
//! - [`Promise::run`](crate::Promise::run) records, for the running thread, the task it runs
//!   (a stack, because a waiting thread may run another task inline).
//! - A backend's worker thread declares its pool with [`enter_worker`], and lets a queued task be
//!   run by a waiter with [`Promise::allow_inline`](crate::Promise::allow_inline).
//! - When a thread that runs task X blocks in `result` on future Y:
//!   1. if Y has not started and belongs to the pool this thread works for, the thread claims
//!      Y and runs it itself (as Java's `ForkJoinPool` does), so a pool whose every worker waits on
//!      queued work still makes progress;
//!   2. the edge X → Y enters a process-wide wait-for graph; if Y (transitively) waits on X, the
//!      wait fails at once with a [`DeadlockError`] naming the cycle, instead of hanging.
//!
//! Threads that run no task (your `main`) skip all of this: the cost is one thread-local read.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Weak};

use parking_lot::Mutex;

use crate::error::DeadlockError;
use crate::task::{TaskId, TaskInfo};

/// Identifies one executor instance, so that a waiter only runs queued tasks of its own pool.
///
/// ```
/// use executor_core::PoolId;
/// assert_ne!(PoolId::new(), PoolId::new());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PoolId(u64);

impl PoolId {
    /// A new, process-unique id.
    ///
    /// ```
    /// let id = executor_core::PoolId::new();
    /// assert_eq!(id, id);
    /// ```
    #[allow(clippy::new_without_default)]
    pub fn new() -> PoolId {
        // Ordering: only uniqueness is needed.
        static NEXT: AtomicU64 = AtomicU64::new(1);
        PoolId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// A queued task that a waiting worker of the same pool may claim and run on its own thread.
/// Running it must be a no-op if the pool's worker (or another waiter) already took it.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use executor_core::{InlineJob, Promise, Task};
///
/// struct Queued<T: Task>(Mutex<Option<(Promise<T::Output>, T)>>);
///
/// impl<T: Task> InlineJob for Queued<T> {
///     fn run_inline(&self) {
///         let taken = self.0.lock().unwrap().take();
///         if let Some((promise, task)) = taken {
///             promise.run(task);
///         }
///     }
/// }
///
/// let task = || 5;
/// let (promise, future) = Promise::for_task(&task);
/// let job = Arc::new(Queued(Mutex::new(Some((promise, task)))));
/// job.run_inline();
/// job.run_inline(); // already taken: nothing happens
/// assert_eq!(future.into_result().unwrap(), 5);
/// ```
pub trait InlineJob: Send + Sync {
    /// Runs the task here and now, unless it was already taken.
    fn run_inline(&self);
}

/// What a future knows about running it inline: its pool, and its queued job (weak, so that a
/// future never keeps its own job alive; the queue owns it).
pub(crate) struct InlineRunner {
    pub(crate) pool: PoolId,
    pub(crate) job: Weak<dyn InlineJob>,
}

#[derive(Default)]
struct Context {
    pool: Option<PoolId>,
    /// The tasks this thread is running, innermost last.
    tasks: Vec<TaskInfo>,
}

thread_local! {
    static CONTEXT: RefCell<Context> = RefCell::new(Context::default());
}

/// Marks this thread as a worker of `pool` until the guard is dropped. Backends call it at the
/// top of each worker thread.
///
/// ```
/// let pool = executor_core::PoolId::new();
/// let _guard = executor_core::enter_worker(pool);
/// ```
pub fn enter_worker(pool: PoolId) -> WorkerGuard {
    let previous = CONTEXT.with(|c| c.borrow_mut().pool.replace(pool));
    WorkerGuard { previous }
}

/// Restores the thread's previous pool when dropped; see [`enter_worker`].
///
/// ```
/// drop(executor_core::enter_worker(executor_core::PoolId::new()));
/// ```
#[derive(Debug)]
#[must_use = "the thread stops being a worker when the guard is dropped"]
pub struct WorkerGuard {
    previous: Option<PoolId>,
}

impl Drop for WorkerGuard {
    fn drop(&mut self) {
        CONTEXT.with(|c| c.borrow_mut().pool = self.previous);
    }
}

/// The pool this thread works for, if it is a worker (see [`enter_worker`]).
///
/// ```
/// use executor_core::{PoolId, current_pool, enter_worker};
/// assert_eq!(current_pool(), None);
/// let pool = PoolId::new();
/// let _guard = enter_worker(pool);
/// assert_eq!(current_pool(), Some(pool));
/// ```
pub fn current_pool() -> Option<PoolId> {
    CONTEXT.with(|c| c.borrow().pool)
}

pub(crate) fn current_task() -> Option<TaskInfo> {
    CONTEXT.with(|c| c.borrow().tasks.last().copied())
}

/// Records that this thread runs `task` until the guard drops, so that a blocking wait made by
/// the task takes part in inline running and cycle detection. [`Promise::run`](crate::Promise::run)
/// does this itself; an executor that runs tasks another way (an async one, polling a task piece
/// by piece) calls it around each piece.
///
/// ```
/// let (promise, _future) = executor_core::Promise::<u8>::named("poll");
/// let _running = executor_core::deadlock::running(promise.info());
/// ```
pub fn running(task: TaskInfo) -> RunningGuard {
    CONTEXT.with(|c| c.borrow_mut().tasks.push(task));
    RunningGuard
}

/// Ends what [`running`] recorded when dropped.
///
/// ```
/// let (promise, _future) = executor_core::Promise::<u8>::new();
/// drop(executor_core::deadlock::running(promise.info()));
/// ```
#[derive(Debug)]
#[must_use = "the record ends when the guard is dropped"]
pub struct RunningGuard;

impl Drop for RunningGuard {
    fn drop(&mut self) {
        CONTEXT.with(|c| c.borrow_mut().tasks.pop());
    }
}

/// The process-wide wait-for graph: a running task → the task it waits on.
static WAITS: LazyLock<Mutex<HashMap<TaskId, (TaskInfo, TaskInfo)>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Records "`waiter` waits on `target`", or fails if that closes a cycle.
pub(crate) fn wait_on(waiter: TaskInfo, target: TaskInfo) -> Result<WaitEdge, DeadlockError> {
    let mut waits = WAITS.lock();
    let mut cycle = vec![waiter];
    let mut current = target;
    loop {
        if current.id() == waiter.id() {
            return Err(DeadlockError::new(cycle));
        }
        cycle.push(current);
        match waits.get(&current.id()) {
            Some(&(_, next)) => current = next,
            None => break,
        }
    }
    waits.insert(waiter.id(), (waiter, target));
    Ok(WaitEdge(waiter.id()))
}

/// Removes its edge from the wait-for graph when the wait ends.
pub(crate) struct WaitEdge(TaskId);

impl Drop for WaitEdge {
    fn drop(&mut self) {
        WAITS.lock().remove(&self.0);
    }
}
