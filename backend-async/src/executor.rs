//! [`AsyncExecutor`]: submit blocking and async tasks to tokio behind a bound of `max_workers`.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use executor_core::{
    Batch, BlockingPolicy, Chunk, Executor, FutureHandle, InlineJob, Introspect, PoolId, PoolStats,
    Promise, RejectReason, Shutdown, ShutdownOptions, SubmitError, Task, TaskError, TaskId,
    blocking_policy, enter_worker, panic_message,
};
use parking_lot::{Condvar, Mutex};
use tokio::runtime::{Handle, Runtime, RuntimeFlavor};
use tokio::sync::{Notify, Semaphore};
use tokio::task::AbortHandle;

use crate::builder::AsyncExecutorBuilder;

/// Python's executor contract on a tokio runtime, for I/O fan-out: blocking tasks (any
/// [`Task`], run on tokio's blocking pool) and async tasks ([`submit_async`]) share one bound,
/// `max_workers`, on how many run at once; the rest wait as PENDING futures, cancellable (rule
/// M2). The handles, `wait`, `as_completed` and `map` are the core's, so a future from this
/// executor waits together with futures from any other backend.
///
/// From plain threads, use the blocking calls (`result`, `into_result`); from async code, await
/// the handle. A blocking call made inside a task this executor polls runs in tokio's
/// `block_in_place` on a multi-thread runtime and is refused with an error on a current-thread
/// runtime: it never stalls or hangs the runtime.
///
/// [`submit_async`]: AsyncExecutor::submit_async
///
/// ```
/// use std::time::Duration;
/// use executor_core::Executor;
/// use backend_async::AsyncExecutor;
///
/// let pool = AsyncExecutor::new(64).unwrap();
/// let page = pool
///     .submit_async(async {
///         tokio::time::sleep(Duration::from_millis(5)).await;
///         "<html>"
///     })
///     .unwrap();
/// let checksum = pool.submit(|| 0xfeed_u32).unwrap();
/// assert_eq!(*page.result(Some(Duration::from_secs(5))).unwrap(), "<html>");
/// assert_eq!(checksum.into_result().unwrap(), 0xfeed);
/// ```
pub struct AsyncExecutor {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    id: PoolId,
    handle: Handle,
    /// The runtime this executor made, if it made one; shut down with the executor.
    owned: Mutex<Option<Runtime>>,
    max_workers: usize,
    permits: Arc<Semaphore>,
    state: Mutex<State>,
    /// Signalled (with `drained`) when the last task in flight finishes.
    idle: Condvar,
    drained: Notify,
    completed: AtomicU64,
}

struct State {
    shutdown: bool,
    /// Tasks submitted and not finished, including those waiting for a permit.
    in_flight: usize,
    /// Waiting for a permit: what `shutdown(cancel_futures)` cancels.
    queued: HashMap<TaskId, Arc<dyn Queued>>,
    /// Async tasks running now: what `stop` aborts.
    running: HashMap<TaskId, AbortHandle>,
}

/// A task waiting for a permit, whatever its type: it can be cancelled from outside.
trait Queued: Send + Sync {
    fn cancel(&self);
    /// Drops the promise and the work if still there (the promise then fails its future as
    /// abandoned, so no waiter hangs on a task whose runtime went away).
    fn abandon(&self);
}

/// The promise and the work, taken once: by the task when it gets its permit, or by a cancel.
struct Slot<T, W> {
    taken: Mutex<Option<(Promise<T>, W)>>,
}

impl<T, W> Slot<T, W> {
    fn take(&self) -> Option<(Promise<T>, W)> {
        self.taken.lock().take()
    }
}

/// A blocking task still waiting for a place can be run by a blocking task of this executor
/// that waits on it (rule K2): the waiter already holds a place, and lends it.
impl<K: Task> InlineJob for Slot<K::Output, K> {
    fn run_inline(&self) {
        if let Some((promise, task)) = self.take() {
            promise.run(task);
        }
    }
}

impl<T: Send + Sync + 'static, W: Send + 'static> Queued for Slot<T, W> {
    fn cancel(&self) {
        if let Some((promise, work)) = self.take() {
            promise.cancel();
            drop(work);
        }
    }

    fn abandon(&self) {
        drop(self.take());
    }
}

/// Ends a task's bookkeeping however its wrapper ends: normally, or dropped unrun because the
/// runtime shut down.
struct InFlight {
    inner: Arc<Inner>,
    id: TaskId,
    slot: Arc<dyn Queued>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.inner.state.lock().queued.remove(&self.id);
        self.slot.abandon();
        self.inner.finish_one();
    }
}

/// Runs a blocking wait made inside one of our tasks where the runtime allows it.
fn tokio_blocking_section(wait: &mut dyn FnMut()) {
    tokio::task::block_in_place(wait);
}

/// The blocking policy for code polled on a runtime of this flavor.
fn policy_for(flavor: RuntimeFlavor) -> BlockingPolicy {
    match flavor {
        RuntimeFlavor::MultiThread => BlockingPolicy::Wrap(tokio_blocking_section),
        _ => BlockingPolicy::Refuse(
            "a blocking wait on a current-thread tokio runtime would stall it; `.await` the future",
        ),
    }
}

/// Polls the wrapped future with this executor's blocking policy in force (rule M3).
struct Guarded<F> {
    policy: BlockingPolicy,
    future: Pin<Box<F>>,
}

impl<F: Future> Future for Guarded<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _policy = blocking_policy(self.policy);
        self.future.as_mut().poll(cx)
    }
}

impl AsyncExecutor {
    /// A builder: `max_workers`, and a runtime handle to use instead of an owned runtime.
    ///
    /// ```
    /// let pool = backend_async::AsyncExecutor::builder().max_workers(8).build().unwrap();
    /// assert_eq!(pool.max_workers(), 8);
    /// ```
    pub fn builder() -> AsyncExecutorBuilder {
        AsyncExecutorBuilder::new()
    }

    /// An executor on its own multi-thread runtime, running at most `max_workers` tasks at once;
    /// 0 is an error.
    ///
    /// ```
    /// assert!(backend_async::AsyncExecutor::new(0).is_err());
    /// ```
    pub fn new(max_workers: usize) -> Result<Self, crate::BuildError> {
        AsyncExecutor::builder().max_workers(max_workers).build()
    }

    pub(crate) fn from_parts(handle: Handle, owned: Option<Runtime>, max_workers: usize) -> Self {
        AsyncExecutor {
            inner: Arc::new(Inner {
                id: PoolId::new(),
                handle,
                owned: Mutex::new(owned),
                max_workers,
                permits: Arc::new(Semaphore::new(max_workers)),
                state: Mutex::new(State {
                    shutdown: false,
                    in_flight: 0,
                    queued: HashMap::new(),
                    running: HashMap::new(),
                }),
                idle: Condvar::new(),
                drained: Notify::new(),
                completed: AtomicU64::new(0),
            }),
        }
    }

    /// How many tasks may run at once.
    ///
    /// ```
    /// assert_eq!(backend_async::AsyncExecutor::new(3).unwrap().max_workers(), 3);
    /// ```
    pub fn max_workers(&self) -> usize {
        self.inner.max_workers
    }

    /// The runtime the tasks run on.
    ///
    /// ```
    /// let pool = backend_async::AsyncExecutor::new(1).unwrap();
    /// let answer = pool.handle().block_on(async { 42 });
    /// assert_eq!(answer, 42);
    /// ```
    pub fn handle(&self) -> &Handle {
        &self.inner.handle
    }

    /// Submits an async task (any `Send` future): it waits as PENDING for one of the
    /// `max_workers` places, then runs on the runtime. A panic fails its future only.
    ///
    /// ```
    /// use backend_async::AsyncExecutor;
    /// let pool = AsyncExecutor::new(2).unwrap();
    /// let f = pool.submit_async(async { 6 * 7 }).unwrap();
    /// assert_eq!(f.into_result().unwrap(), 42);
    /// ```
    pub fn submit_async<F>(&self, future: F) -> Result<FutureHandle<F::Output>, SubmitError<F>>
    where
        F: Future + Send + 'static,
        F::Output: Send + Sync + 'static,
    {
        let (promise, handle) = Promise::named(std::any::type_name::<F>());
        let slot = Arc::new(Slot {
            taken: Mutex::new(Some((promise, future))),
        });
        let (slot, handle) = match self.inner.enqueue(slot, handle) {
            Ok(pair) => pair,
            Err(future) => return Err(SubmitError::new(RejectReason::Shutdown, future)),
        };
        let inner = Arc::clone(&self.inner);
        let id = handle.id();
        let in_flight = self.inner.in_flight(id, slot.clone());
        self.inner.spawn(async move {
            let _in_flight = in_flight;
            let permit = inner.permits.clone().acquire_owned().await;
            inner.state.lock().queued.remove(&id);
            if let Some((promise, future)) = slot.take() {
                if promise.set_running_or_notify_cancel().is_ok() {
                    let policy = policy_for(Handle::current().runtime_flavor());
                    let task = tokio::spawn(Guarded {
                        policy,
                        future: Box::pin(future),
                    });
                    inner.state.lock().running.insert(id, task.abort_handle());
                    let outcome = match task.await {
                        Ok(value) => Ok(value),
                        Err(e) if e.is_panic() => {
                            Err(TaskError::panic(panic_message(&*e.into_panic())))
                        }
                        Err(_) => Err(TaskError::stopped("stopped at an await point")),
                    };
                    inner.state.lock().running.remove(&id);
                    inner.completed.fetch_add(1, Ordering::Relaxed);
                    let _ = promise.complete(outcome);
                }
            }
            drop(permit);
        });
        Ok(handle)
    }

    /// Stops a running async task at its next `.await`: its future fails with a
    /// [stopped](TaskError::is_stopped) error (rule M4). A separate operation from `cancel()`,
    /// which keeps Python's meaning (only tasks that have not started). Returns `true` if the
    /// task was running here and is being stopped.
    ///
    /// ```
    /// use std::time::Duration;
    /// use backend_async::AsyncExecutor;
    ///
    /// let pool = AsyncExecutor::new(1).unwrap();
    /// let (started_tx, started) = std::sync::mpsc::channel();
    /// let f = pool
    ///     .submit_async(async move {
    ///         started_tx.send(()).unwrap();
    ///         tokio::time::sleep(Duration::from_secs(3600)).await;
    ///     })
    ///     .unwrap();
    /// started.recv().unwrap();
    /// assert!(!f.cancel()); // running: Python's cancel() does not touch it
    /// assert!(pool.stop(&f));
    /// let e = f.result(Some(Duration::from_secs(5))).unwrap_err();
    /// assert!(e.task_error().unwrap().is_stopped());
    /// ```
    pub fn stop<T>(&self, future: &FutureHandle<T>) -> bool {
        match self.inner.state.lock().running.get(&future.id()) {
            Some(task) => {
                task.abort();
                true
            }
            None => false,
        }
    }

    /// Shuts down like [`Shutdown::shutdown`], awaiting instead of blocking: for async code.
    ///
    /// ```
    /// use executor_core::ShutdownOptions;
    /// let pool = backend_async::AsyncExecutor::new(2).unwrap();
    /// let f = pool.submit_async(async { 1 }).unwrap();
    /// let other = tokio::runtime::Runtime::new().unwrap();
    /// other.block_on(pool.shutdown_async(ShutdownOptions::wait()));
    /// assert!(f.done());
    /// ```
    pub async fn shutdown_async(&self, options: ShutdownOptions) {
        self.inner.close(options.cancel_futures);
        if options.wait {
            loop {
                let drained = self.inner.drained.notified();
                if self.inner.state.lock().in_flight == 0 {
                    break;
                }
                drained.await;
            }
        }
    }
}

impl Inner {
    /// Registers a task's slot as queued and in flight, unless shut down (then hands the work
    /// back, and the never-returned future goes quietly).
    #[allow(clippy::type_complexity)]
    fn enqueue<T, W>(
        &self,
        slot: Arc<Slot<T, W>>,
        handle: FutureHandle<T>,
    ) -> Result<(Arc<Slot<T, W>>, FutureHandle<T>), W>
    where
        T: Send + Sync + 'static,
        W: Send + 'static,
    {
        let mut state = self.state.lock();
        if state.shutdown {
            drop(state);
            let taken = slot.take();
            let (promise, work) = taken.expect("a new slot holds its work");
            promise.cancel();
            return Err(work);
        }
        state.queued.insert(handle.id(), slot.clone());
        state.in_flight += 1;
        Ok((slot, handle))
    }

    fn in_flight(self: &Arc<Self>, id: TaskId, slot: Arc<dyn Queued>) -> InFlight {
        InFlight {
            inner: Arc::clone(self),
            id,
            slot,
        }
    }

    /// Spawns our wrapper task, with the blocking policy of its runtime.
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let policy = policy_for(self.handle.runtime_flavor());
        self.handle.spawn(Guarded {
            policy,
            future: Box::pin(task),
        });
    }

    fn finish_one(&self) {
        let mut state = self.state.lock();
        state.in_flight -= 1;
        if state.in_flight == 0 {
            self.idle.notify_all();
            self.drained.notify_waiters();
        }
    }

    /// Refuses new work; with `cancel`, cancels every task still waiting for a permit.
    fn close(&self, cancel: bool) {
        let queued: Vec<_> = {
            let mut state = self.state.lock();
            state.shutdown = true;
            if cancel {
                state.queued.drain().map(|(_, q)| q).collect()
            } else {
                Vec::new()
            }
        };
        for q in queued {
            q.cancel();
        }
    }

    /// Blocks until no task is in flight; on a runtime thread, inside `block_in_place` (or not at
    /// all on a current-thread runtime, where waiting would stall the tasks themselves).
    fn wait_drained(&self) {
        let wait = || {
            let mut state = self.state.lock();
            while state.in_flight > 0 {
                self.idle.wait(&mut state);
            }
        };
        match Handle::try_current().map(|h| h.runtime_flavor()) {
            Err(_) => wait(),
            Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(wait),
            Ok(_) => {}
        }
    }

    fn shutdown(&self, options: ShutdownOptions) {
        self.close(options.cancel_futures);
        // A task of this executor that shuts it down (or drops its last handle) cannot wait for
        // itself: the others finish on their own.
        if !options.wait || executor_core::current_pool() == Some(self.id) {
            return;
        }
        self.wait_drained();
        if let Some(runtime) = self.owned.lock().take() {
            if Handle::try_current().is_ok() {
                // Dropping a runtime inside another runtime's context is not allowed.
                runtime.shutdown_background();
            } else {
                drop(runtime);
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Reached with the runtime still here only when the executor was shut down from one of
        // its own tasks; that thread may belong to the runtime, so do not wait for it.
        if let Some(runtime) = self.owned.get_mut().take() {
            runtime.shutdown_background();
        }
    }
}

impl<T: Task> Executor<T> for AsyncExecutor {
    /// Runs a blocking task on tokio's blocking pool once one of the `max_workers` places is
    /// free; until then it is PENDING and cancellable.
    fn submit(&self, task: T) -> Result<FutureHandle<T::Output>, SubmitError<T>> {
        let mut handle = None;
        let slot = Arc::new_cyclic(|me: &std::sync::Weak<Slot<T::Output, T>>| {
            let (promise, f) = Promise::for_task_inline(&task, self.inner.id, me.clone());
            handle = Some(f);
            Slot {
                taken: Mutex::new(Some((promise, task))),
            }
        });
        let handle = handle.expect("`new_cyclic` ran the constructor");
        let (slot, handle) = match self.inner.enqueue(slot, handle) {
            Ok(pair) => pair,
            Err(task) => return Err(SubmitError::new(RejectReason::Shutdown, task)),
        };
        let inner = Arc::clone(&self.inner);
        let id = handle.id();
        let in_flight = self.inner.in_flight(id, slot.clone());
        self.inner.spawn(async move {
            let _in_flight = in_flight;
            let permit = inner.permits.clone().acquire_owned().await;
            inner.state.lock().queued.remove(&id);
            if let Some((promise, task)) = slot.take() {
                let pool = inner.id;
                let ran = tokio::task::spawn_blocking(move || {
                    let _worker = enter_worker(pool);
                    promise.run(task)
                })
                .await;
                if matches!(ran, Ok(true)) {
                    inner.completed.fetch_add(1, Ordering::Relaxed);
                }
            }
            drop(permit);
        });
        Ok(handle)
    }

    /// One blocking-pool job per chunk.
    fn submit_batch(&self, tasks: Vec<T>) -> Result<Batch<T::Output>, SubmitError<Vec<T>>> {
        let len = tasks.len();
        match self.submit(Chunk::new(tasks)) {
            Ok(future) => Ok(Batch::chunk(future, len)),
            Err(e) => {
                let (reason, chunk) = e.into_parts();
                Err(SubmitError::new(reason, chunk.into_inner()))
            }
        }
    }
}

impl Shutdown for AsyncExecutor {
    /// Refuses new tasks; with `cancel_futures`, cancels those waiting for a place; with `wait`,
    /// blocks until every task has finished (inside `block_in_place` on a multi-thread runtime
    /// thread; on a current-thread runtime it does not wait: use
    /// [`shutdown_async`](AsyncExecutor::shutdown_async) there), then stops an owned runtime.
    fn shutdown(&self, options: ShutdownOptions) {
        self.inner.shutdown(options);
    }
}

impl Introspect for AsyncExecutor {
    fn stats(&self) -> PoolStats {
        let state = self.inner.state.lock();
        let running = state.in_flight - state.queued.len();
        PoolStats {
            workers: self.inner.max_workers,
            idle: self.inner.max_workers.saturating_sub(running),
            queued: state.queued.len(),
            running,
            completed: self.inner.completed.load(Ordering::Relaxed),
        }
    }
}

impl Drop for AsyncExecutor {
    fn drop(&mut self) {
        self.inner.shutdown(ShutdownOptions::wait());
    }
}

impl fmt::Debug for AsyncExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncExecutor")
            .field("max_workers", &self.inner.max_workers)
            .field("owns_runtime", &self.inner.owned.lock().is_some())
            .field("stats", &self.stats())
            .finish()
    }
}
