//! [`AsyncExecutor`]: submit blocking and async tasks to tokio behind a bound of `max_workers`.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use executor_core::{
    Batch, BlockingPolicy, Executor, FutureHandle, InlineJob, Introspect, PoolId, PoolStats,
    Promise, RejectReason, Shutdown, ShutdownOptions, SubmitError, Task, TaskError, TaskId,
    TaskInfo, blocking_policy, enter_worker, panic_message,
};
use parking_lot::{Condvar, Mutex};
use tokio::runtime::{Handle, Runtime, RuntimeFlavor};
use tokio::sync::Notify;
use tokio::task::{AbortHandle, JoinHandle};

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
    state: Mutex<State>,
    /// Signalled (with `drained`) when the last undone future is done.
    idle: Condvar,
    drained: Notify,
    /// Shared with the jobs, which count a task run inline by a waiting sibling themselves.
    completed: Arc<AtomicU64>,
    /// Submitted futures not done yet: what `shutdown(wait)` waits for. (A task cancelled after
    /// it took a place but before its first poll is done, though its tokio task still exists.)
    undone: AtomicUsize,
}

struct State {
    shutdown: bool,
    /// Submitted, not started, in submission order: started first come, first served as places
    /// free up, and what `shutdown(cancel_futures)` cancels.
    queue: VecDeque<Arc<dyn Job>>,
    /// Tasks holding one of the `max_workers` places.
    running: usize,
    /// Async tasks running now: what `stop` aborts. Whichever of "the task was spawned" and "the
    /// task finished" comes second removes the entry, so none is left behind.
    aborts: HashMap<TaskId, AbortEntry>,
}

enum AbortEntry {
    /// Being spawned: the handle is not known yet.
    Starting,
    /// `stop` came while the handle was not known yet: abort as soon as it is.
    StopRequested,
    Running(AbortHandle),
    /// Finished before its spawner recorded the handle.
    Finished,
}

impl State {
    /// The spawner's side, after spawning: record the handle (or act on a stop that came first;
    /// or clean up after a task that already finished).
    fn record_abort(&mut self, id: TaskId, handle: AbortHandle) {
        match self.aborts.remove(&id) {
            Some(AbortEntry::Starting) => {
                self.aborts.insert(id, AbortEntry::Running(handle));
            }
            Some(AbortEntry::StopRequested) => handle.abort(),
            Some(AbortEntry::Finished | AbortEntry::Running(_)) | None => {}
        }
    }

    /// The task's side, when it ends: forget the handle, or leave word that it finished first.
    fn forget_abort(&mut self, id: TaskId) {
        match self.aborts.remove(&id) {
            Some(AbortEntry::Starting | AbortEntry::StopRequested) => {
                self.aborts.insert(id, AbortEntry::Finished);
            }
            Some(AbortEntry::Running(_) | AbortEntry::Finished) | None => {}
        }
    }
}

/// A job and the place it will hold, ready to start.
type Start = (Arc<dyn Job>, Place);

/// A submitted task, whatever its type: started when a place frees up, or cancelled.
trait Job: Send + Sync {
    /// Starts the task on the runtime, holding one place until `place` is dropped.
    fn start(&self, place: Place);
    fn cancel(&self);
    /// `true` once the task was cancelled or taken (run inline): it needs no place.
    fn settled(&self) -> bool;
    /// A blocking task: runs it on this thread, a blocking-pool thread of this executor that
    /// holds a place (see [`Blocking::start`]), and returns `true`; anything else: `false`.
    fn run_here(&self) -> bool {
        false
    }
    /// A blocking task (one that [`run_here`](Job::run_here) runs).
    fn is_blocking(&self) -> bool {
        false
    }
}

/// The promise and the work, taken once: by the start, by a cancel, or by an inline run.
struct Slot<T, W> {
    taken: Mutex<Option<(Promise<T>, W)>>,
}

impl<T, W> Slot<T, W> {
    fn new(promise: Promise<T>, work: W) -> Self {
        Slot {
            taken: Mutex::new(Some((promise, work))),
        }
    }

    fn take(&self) -> Option<(Promise<T>, W)> {
        self.taken.lock().take()
    }

    fn settled(&self) -> bool {
        self.taken
            .lock()
            .as_ref()
            .is_none_or(|(promise, _)| promise.is_cancelled())
    }

    fn cancel(&self) {
        if let Some((promise, work)) = self.take() {
            promise.cancel();
            drop(work);
        }
    }
}

/// One of the `max_workers` places, held by a started task; dropping it (however the task ends,
/// even unrun because the runtime shut down) frees the place and starts the next queued task.
struct Place {
    inner: Arc<Inner>,
}

impl Drop for Place {
    fn drop(&mut self) {
        let next = {
            let mut state = self.inner.state.lock();
            state.running -= 1;
            self.inner.next_jobs(&mut state)
        };
        if !next.is_empty() {
            self.inner.start_all(next);
        }
    }
}

/// A blocking task: run on tokio's blocking pool.
struct Blocking<K: Task> {
    slot: Slot<K::Output, K>,
    completed: Arc<AtomicU64>,
}

impl<K: Task> Job for Blocking<K> {
    fn start(&self, place: Place) {
        let Some((promise, task)) = self.slot.take() else {
            return;
        };
        let inner = Arc::clone(&place.inner);
        let runtime = inner.handle.clone();
        runtime.spawn_blocking(move || {
            let _worker = enter_worker(inner.id);
            if promise.run(task) {
                inner.completed.fetch_add(1, Ordering::Relaxed);
            }
            // While the oldest queued task is a blocking one too, run it here with the same
            // place: freeing the place would hand it to another blocking-pool thread, a
            // wake-up (several µs) per task. The queue's order is kept: an async task at its
            // front ends the loop, and dropping the place starts it.
            while let Some(next) = inner.next_blocking() {
                next.run_here();
            }
            drop(place);
        });
    }

    fn run_here(&self) -> bool {
        if let Some((promise, task)) = self.slot.take()
            && promise.run(task)
        {
            self.completed.fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    fn cancel(&self) {
        self.slot.cancel();
    }

    fn settled(&self) -> bool {
        self.slot.settled()
    }

    fn is_blocking(&self) -> bool {
        true
    }
}

/// A blocking task still waiting for a place can be run by a blocking task of this executor
/// that waits on it (rule K2): the waiter already holds a place, and lends it.
impl<K: Task> InlineJob for Blocking<K> {
    fn run_inline(&self) {
        in_blocking_section(|| {
            if let Some((promise, task)) = self.slot.take()
                && promise.run(task)
            {
                self.completed.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
}

/// Runs `f`, which blocks, in tokio's blocking section when on a multi-thread runtime's thread.
fn in_blocking_section(f: impl FnOnce()) {
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// A queued async task run to completion by a task of this executor that blocks on it (rule
/// K2). The wait is already under the thread's blocking policy, so this thread may block: on a
/// multi-thread runtime inside tokio's blocking section, elsewhere (a blocking-pool thread of a
/// current-thread runtime) directly.
impl<F> InlineJob for Async<F>
where
    F: Future + Send + 'static,
    F::Output: Send + Sync + 'static,
{
    fn run_inline(&self) {
        let Ok(handle) = Handle::try_current() else {
            return;
        };
        let Some((promise, future)) = self.slot.take() else {
            return;
        };
        if promise.set_running_or_notify_cancel().is_err() {
            return;
        }
        let _running = executor_core::deadlock::running(promise.info());
        let run = || handle.block_on(Caught(Box::pin(future)));
        let outcome = match handle.runtime_flavor() {
            RuntimeFlavor::MultiThread => tokio::task::block_in_place(run),
            _ => run(),
        };
        self.completed.fetch_add(1, Ordering::Relaxed);
        let _ =
            promise.complete(outcome.map_err(|payload| TaskError::panic(panic_message(&*payload))));
    }
}

/// An async task: spawned on the runtime as its own tokio task, so that a panic is caught by
/// its `JoinHandle` and `stop` can abort it.
struct Async<F: Future> {
    id: TaskId,
    slot: Slot<F::Output, F>,
    completed: Arc<AtomicU64>,
}

impl<F> Job for Async<F>
where
    F: Future + Send + 'static,
    F::Output: Send + Sync + 'static,
{
    /// One tokio task per async task: it moves the future to RUNNING, polls the user's future
    /// (panics caught), and completes the promise; `stop` aborts it.
    fn start(&self, place: Place) {
        let Some((promise, future)) = self.slot.take() else {
            return;
        };
        let inner = Arc::clone(&place.inner);
        let id = self.id;
        let info = promise.info();
        let mut completion = Completion {
            promise: Some(promise),
            inner: Arc::clone(&inner),
            id,
        };
        inner.state.lock().aborts.insert(id, AbortEntry::Starting);
        let task = inner.spawn(Some(info), async move {
            let _place = place;
            if !completion.start() {
                return;
            }
            let outcome = Caught(Box::pin(future))
                .await
                .map_err(|payload| TaskError::panic(panic_message(&*payload)));
            completion.complete(outcome);
        });
        inner.state.lock().record_abort(id, task.abort_handle());
    }

    fn cancel(&self) {
        self.slot.cancel();
    }

    fn settled(&self) -> bool {
        self.slot.settled()
    }
}

/// Completes an async task's promise, or, if the task is dropped first (stopped by `stop`, or
/// its runtime shut down), fails it as stopped.
struct Completion<T> {
    promise: Option<Promise<T>>,
    inner: Arc<Inner>,
    id: TaskId,
}

impl<T> Completion<T> {
    /// PENDING → RUNNING; `false` if the future was cancelled (then the task is not polled).
    fn start(&mut self) -> bool {
        let started = self
            .promise
            .as_ref()
            .is_some_and(|p| p.set_running_or_notify_cancel().is_ok());
        if !started {
            self.promise = None;
            self.inner.state.lock().forget_abort(self.id);
        }
        started
    }

    fn complete(mut self, outcome: Result<T, TaskError>) {
        self.inner.completed.fetch_add(1, Ordering::Relaxed);
        if let Some(promise) = self.promise.take() {
            self.inner.state.lock().forget_abort(self.id);
            let _ = promise.complete(outcome);
        }
    }
}

impl<T> Drop for Completion<T> {
    fn drop(&mut self) {
        if let Some(promise) = self.promise.take() {
            self.inner.state.lock().forget_abort(self.id);
            let _ = promise.set_error(TaskError::stopped("stopped at an await point"));
        }
    }
}

/// Polls a future with its panics caught, as tokio's `JoinHandle` would report them.
struct Caught<F>(Pin<Box<F>>);

impl<F: Future> Future for Caught<F> {
    type Output = Result<F::Output, Box<dyn std::any::Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let future = self.0.as_mut();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
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
/// Also marks the thread as working for this executor while it polls, so that a shutdown from
/// inside one of its own tasks does not wait for itself.
struct Guarded<F> {
    policy: BlockingPolicy,
    pool: PoolId,
    /// The user's task this polls, if any: recorded as running during each poll (rule K2).
    task: Option<TaskInfo>,
    future: Pin<Box<F>>,
}

impl<F: Future> Future for Guarded<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _policy = blocking_policy(self.policy);
        let _worker = enter_worker(self.pool);
        let _running = self.task.map(executor_core::deadlock::running);
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
                state: Mutex::new(State {
                    shutdown: false,
                    queue: VecDeque::new(),
                    running: 0,
                    aborts: HashMap::new(),
                }),
                idle: Condvar::new(),
                drained: Notify::new(),
                completed: Arc::new(AtomicU64::new(0)),
                undone: AtomicUsize::new(0),
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
        let job = Arc::new(Async {
            id: handle.id(),
            slot: Slot::new(promise, future),
            completed: Arc::clone(&self.inner.completed),
        });
        let inline: Arc<dyn InlineJob> = job.clone();
        if let Some((promise, _)) = job.slot.taken.lock().as_ref() {
            promise.allow_inline(self.inner.id, Arc::downgrade(&inline));
        }
        self.inner.watch(&handle);
        match self.inner.submit(job.clone()) {
            Ok(()) => Ok(handle),
            Err(reason) => {
                let (promise, future) = job.slot.take().expect("a refused job is untouched");
                promise.cancel();
                Err(SubmitError::new(reason, future))
            }
        }
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
        let mut state = self.inner.state.lock();
        let Some(entry) = state.aborts.get_mut(&future.id()) else {
            return false;
        };
        // Only a task that has started (its future says RUNNING) is stopped; one that holds a
        // place but was never polled is still PENDING, and `cancel()` is the way there.
        if !future.running() {
            return false;
        }
        match entry {
            AbortEntry::Running(task) => {
                task.abort();
                true
            }
            AbortEntry::Starting => {
                *entry = AbortEntry::StopRequested;
                true
            }
            AbortEntry::StopRequested => true,
            AbortEntry::Finished => false,
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
                if self.inner.undone.load(Ordering::Acquire) == 0 {
                    break;
                }
                drained.await;
            }
        }
    }
}

impl Inner {
    /// Queues a job and starts it at once if a place is free; refused after shutdown.
    fn submit(self: &Arc<Self>, job: Arc<dyn Job>) -> Result<(), RejectReason> {
        let next = {
            let mut state = self.state.lock();
            if state.shutdown {
                return Err(RejectReason::Shutdown);
            }
            state.queue.push_back(job);
            self.next_jobs(&mut state)
        };
        self.start_all(next);
        Ok(())
    }

    /// Counts a submitted future as undone until it is done (finished or cancelled).
    fn watch<T>(self: &Arc<Self>, future: &FutureHandle<T>) {
        self.undone.fetch_add(1, Ordering::AcqRel);
        let inner = Arc::clone(self);
        future.add_done_callback(move |_| {
            if inner.undone.fetch_sub(1, Ordering::AcqRel) == 1 {
                let _state = inner.state.lock();
                inner.idle.notify_all();
                inner.drained.notify_waiters();
            }
        });
    }

    /// The oldest queued job if it is a blocking one, for a blocking-pool thread that holds a
    /// place and would otherwise free it (skipping cancelled ones).
    fn next_blocking(&self) -> Option<Arc<dyn Job>> {
        let mut state = self.state.lock();
        loop {
            let job = state.queue.front()?;
            if job.settled() {
                state.queue.pop_front();
                continue;
            }
            if !job.is_blocking() {
                return None;
            }
            return state.queue.pop_front();
        }
    }

    /// Takes queued jobs, oldest first, for the free places (skipping cancelled ones).
    fn next_jobs(self: &Arc<Self>, state: &mut State) -> Vec<Start> {
        let mut next = Vec::new();
        while state.running < self.max_workers {
            let Some(job) = state.queue.pop_front() else {
                break;
            };
            if job.settled() {
                continue;
            }
            state.running += 1;
            let place = Place {
                inner: Arc::clone(self),
            };
            next.push((job, place));
        }
        next
    }

    /// Starts jobs taken by [`Inner::next_jobs`], outside the state lock.
    ///
    /// A start can end at once (a runtime that is shutting down drops the task unrun), which
    /// frees its place and starts the next job from inside this call; such nested starts are
    /// queued on this thread and run by the outermost call, so a long queue never recurses deeply.
    fn start_all(&self, jobs: Vec<Start>) {
        thread_local! {
            static STARTING: RefCell<Option<Vec<Start>>> = const { RefCell::new(None) };
        }
        let mut jobs = Some(jobs);
        let nested = STARTING.with(|s| match s.borrow_mut().as_mut() {
            Some(pending) => {
                pending.extend(jobs.take().into_iter().flatten());
                true
            }
            None => false,
        });
        if nested {
            return;
        }
        STARTING.with(|s| *s.borrow_mut() = Some(Vec::new()));
        let mut batch = jobs.take().unwrap_or_default();
        while !batch.is_empty() {
            for (job, place) in batch {
                job.start(place);
            }
            batch = STARTING.with(|s| std::mem::take(s.borrow_mut().as_mut().expect("set above")));
        }
        STARTING.with(|s| *s.borrow_mut() = None);
    }

    /// Spawns our wrapper task, with the blocking policy of its runtime.
    fn spawn(
        &self,
        user_task: Option<TaskInfo>,
        task: impl Future<Output = ()> + Send + 'static,
    ) -> JoinHandle<()> {
        let policy = policy_for(self.handle.runtime_flavor());
        self.handle.spawn(Guarded {
            policy,
            pool: self.id,
            task: user_task,
            future: Box::pin(task),
        })
    }

    /// Refuses new work; with `cancel`, cancels every task still waiting for a place (their
    /// done callbacks wake `shutdown` if nothing else is left).
    fn close(&self, cancel: bool) {
        let queued: Vec<_> = {
            let mut state = self.state.lock();
            state.shutdown = true;
            if cancel {
                state.queue.drain(..).collect()
            } else {
                Vec::new()
            }
        };
        for job in queued {
            job.cancel();
        }
    }

    /// Blocks until no task is in flight; on a runtime thread, inside `block_in_place` (or not at
    /// all on a current-thread runtime, where waiting would stall the tasks themselves).
    /// Returns whether it waited.
    fn wait_drained(&self) -> bool {
        let wait = || {
            let mut state = self.state.lock();
            while self.undone.load(Ordering::Acquire) > 0 {
                self.idle.wait(&mut state);
            }
        };
        match Handle::try_current().map(|h| h.runtime_flavor()) {
            Err(_) => wait(),
            Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(wait),
            Ok(_) => return false,
        }
        true
    }

    fn shutdown(&self, options: ShutdownOptions) {
        self.close(options.cancel_futures);
        // A task of this executor that shuts it down (or drops its last handle) cannot wait for
        // itself: the others finish on their own.
        if !options.wait || executor_core::current_pool() == Some(self.id) {
            return;
        }
        if !self.wait_drained() {
            // Could not wait (a current-thread runtime's thread): the tasks go on, and an owned
            // runtime stays up until the executor's last reference goes.
            return;
        }
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
        let job = Arc::new_cyclic(|me: &std::sync::Weak<Blocking<T>>| {
            let (promise, f) = Promise::for_task_inline(&task, self.inner.id, me.clone());
            handle = Some(f);
            Blocking {
                slot: Slot::new(promise, task),
                completed: Arc::clone(&self.inner.completed),
            }
        });
        let handle = handle.expect("`new_cyclic` ran the constructor");
        self.inner.watch(&handle);
        match self.inner.submit(job.clone()) {
            Ok(()) => Ok(handle),
            Err(reason) => {
                let (promise, task) = job.slot.take().expect("a refused job is untouched");
                promise.cancel();
                Err(SubmitError::new(reason, task))
            }
        }
    }

    fn parallelism(&self) -> Option<usize> {
        Some(self.max_workers())
    }

    /// One blocking-pool job per chunk.
    fn submit_batch(&self, tasks: Vec<T>) -> Result<Batch<T::Output>, SubmitError<Vec<T>>> {
        Batch::submit_chunk(self, tasks)
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
        PoolStats {
            workers: self.inner.max_workers,
            idle: self.inner.max_workers.saturating_sub(state.running),
            queued: state.queue.iter().filter(|job| !job.settled()).count(),
            running: state.running,
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
