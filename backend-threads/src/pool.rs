//! [`ThreadPoolExecutor`]: submit, shutdown, backpressure and counters.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use crossbeam_utils::CachePadded;
use executor_core::{
    Batch, BrokenExecutor, BrokenKind, Executor, FutureHandle, Introspect, PoolId, PoolStats,
    Promise, RejectReason, Shutdown, ShutdownOptions, SubmitError, Task, TaskError,
};
use parking_lot::{Condvar, Mutex, RwLock};

use crate::builder::{Initializer, ThreadPoolBuilder};
use crate::job::{PoolJob, Queued};
use crate::worker;

/// A pool of threads that runs any [`Task`] (Python's `ThreadPoolExecutor`).
///
/// Threads start lazily, at most one per `submit`, up to `max_workers`, and an idle thread is
/// reused before a new one starts. A panicking task fails only its own future. Dropping the pool
/// shuts it down and waits for its tasks and threads.
///
/// ```
/// use std::time::Duration;
/// use executor_core::{Executor, MapOptions};
/// use backend_threads::ThreadPoolExecutor;
///
/// let pool = ThreadPoolExecutor::builder().max_workers(4).build().unwrap();
/// let f = pool.submit(|| 323u64.pow(2)).unwrap();
/// assert_eq!(*f.result(Some(Duration::from_secs(5))).unwrap(), 104_329);
///
/// let lengths: Vec<usize> = pool
///     .map(["a", "bb", "ccc"].map(|s| move || s.len()), MapOptions::new().chunksize(2))
///     .unwrap()
///     .map(Result::unwrap)
///     .collect();
/// assert_eq!(lengths, [1, 2, 3]);
/// ```
pub struct ThreadPoolExecutor {
    inner: Arc<Inner>,
}

/// The pool's shared state; workers hold an `Arc` of it.
pub(crate) struct Inner {
    pub(crate) id: PoolId,
    max_workers: usize,
    prefix: String,
    pub(crate) initializer: Option<Initializer>,
    max_queued: Option<usize>,
    /// Workers take jobs here; shutdown and the broken path drain it.
    pub(crate) receiver: Receiver<Arc<dyn PoolJob>>,
    /// Read-locked by every submit, write-locked to shut down or break: a task that passed the
    /// check is in the queue before the sender is dropped.
    gate: RwLock<Gate>,
    handles: Mutex<Vec<JoinHandle<()>>>,
    pub(crate) counters: Counters,
    /// Submitters blocked on a full queue wait here.
    space: Mutex<()>,
    space_freed: Condvar,
}

struct Gate {
    /// `None` once shut down or broken: workers see the channel disconnect when it drains.
    sender: Option<Sender<Arc<dyn PoolJob>>>,
    shutdown: bool,
    broken: Option<BrokenExecutor>,
}

/// The pool's counters, laid out so that the hot paths do not share cache lines: submitters
/// touch the first group, each worker only its own slot.
pub(crate) struct Counters {
    /// Threads started (also the next thread's index, and its slot).
    pub(crate) spawned: CachePadded<AtomicUsize>,
    /// Threads alive.
    pub(crate) alive: AtomicUsize,
    /// Idle announcements not yet claimed by a submit (Python's `_idle_semaphore`); only
    /// maintained until every thread has started.
    pub(crate) idle_tokens: AtomicUsize,
    /// Jobs queued, maintained only with `max_queued`.
    pub(crate) queued: CachePadded<AtomicUsize>,
    /// Submitters blocked on a full queue.
    pub(crate) blocked: AtomicUsize,
    /// One per worker thread, written only by that thread.
    pub(crate) slots: Box<[CachePadded<WorkerSlot>]>,
}

/// One worker's own counters. Its thread is the only writer, so updates are a load and a store.
#[derive(Default)]
pub(crate) struct WorkerSlot {
    pub(crate) idle: AtomicUsize,
    pub(crate) running: AtomicUsize,
    pub(crate) completed: AtomicU64,
}

impl WorkerSlot {
    /// Adds `delta` (wrapping) to one of this slot's counters; only the owning thread calls it.
    pub(crate) fn bump(counter: &AtomicUsize, delta: isize) {
        // Ordering: statistics only; the single writer makes load + store exact.
        let value = counter.load(Ordering::Relaxed);
        counter.store(value.wrapping_add_signed(delta), Ordering::Relaxed);
    }

    pub(crate) fn count_completed(&self) {
        let value = self.completed.load(Ordering::Relaxed);
        self.completed.store(value + 1, Ordering::Relaxed);
    }
}

impl Counters {
    fn new(max_workers: usize) -> Self {
        Counters {
            spawned: CachePadded::new(AtomicUsize::new(0)),
            alive: AtomicUsize::new(0),
            idle_tokens: AtomicUsize::new(0),
            queued: CachePadded::new(AtomicUsize::new(0)),
            blocked: AtomicUsize::new(0),
            slots: (0..max_workers).map(|_| CachePadded::default()).collect(),
        }
    }

    /// Whether every thread the pool may have has started (idle tokens no longer matter).
    pub(crate) fn all_started(&self) -> bool {
        self.spawned.load(Ordering::Relaxed) >= self.slots.len()
    }
}

/// `try_submit` could not queue the task; it is handed back.
///
/// ```
/// use backend_threads::{ThreadPoolExecutor, TrySubmitError};
/// use executor_core::{Shutdown, ShutdownOptions};
///
/// let pool = ThreadPoolExecutor::builder().max_queued(1).build().unwrap();
/// pool.shutdown(ShutdownOptions::wait());
/// match pool.try_submit(|| 1) {
///     Err(TrySubmitError::Refused(e)) => assert!(e.is_shutdown()),
///     other => panic!("{other:?}"),
/// }
/// ```
pub enum TrySubmitError<T> {
    /// The queue is at `max_queued`.
    Full(T),
    /// Shut down or broken.
    Refused(SubmitError<T>),
}

impl<T> TrySubmitError<T> {
    /// Gives the task back.
    ///
    /// ```
    /// let e = backend_threads::TrySubmitError::Full(7);
    /// assert_eq!(e.into_inner(), 7);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            TrySubmitError::Full(task) => task,
            TrySubmitError::Refused(e) => e.into_inner(),
        }
    }
}

impl<T> fmt::Debug for TrySubmitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySubmitError::Full(_) => f.write_str("Full(..)"),
            TrySubmitError::Refused(e) => f.debug_tuple("Refused").field(e).finish(),
        }
    }
}

impl<T> fmt::Display for TrySubmitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySubmitError::Full(_) => f.write_str("the thread pool's queue is full"),
            TrySubmitError::Refused(e) => e.fmt(f),
        }
    }
}

impl<T> std::error::Error for TrySubmitError<T> {}

/// Whether a submit may wait for queue space.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Space {
    Wait,
    DontWait,
}

impl ThreadPoolExecutor {
    /// A builder with Python's defaults.
    ///
    /// ```
    /// let pool = backend_threads::ThreadPoolExecutor::builder().build().unwrap();
    /// assert_eq!(pool.max_workers(), backend_threads::default_max_workers());
    /// ```
    pub fn builder() -> ThreadPoolBuilder {
        ThreadPoolBuilder::new()
    }

    /// A pool with `max_workers` threads and the other defaults; 0 is an error.
    ///
    /// ```
    /// assert!(backend_threads::ThreadPoolExecutor::new(0).is_err());
    /// ```
    pub fn new(max_workers: usize) -> Result<Self, crate::BuildError> {
        ThreadPoolExecutor::builder()
            .max_workers(max_workers)
            .build()
    }

    pub(crate) fn from_builder(builder: ThreadPoolBuilder) -> Self {
        let (sender, receiver) = crossbeam_channel::unbounded();
        let prefix = builder.resolved_prefix();
        let max_workers = builder
            .max_workers
            .unwrap_or_else(crate::default_max_workers);
        ThreadPoolExecutor {
            inner: Arc::new(Inner {
                id: PoolId::new(),
                max_workers,
                prefix,
                initializer: builder.initializer,
                max_queued: builder.max_queued,
                receiver,
                gate: RwLock::new(Gate {
                    sender: Some(sender),
                    shutdown: false,
                    broken: None,
                }),
                handles: Mutex::new(Vec::new()),
                counters: Counters::new(max_workers),
                space: Mutex::new(()),
                space_freed: Condvar::new(),
            }),
        }
    }

    /// The most threads this pool starts.
    ///
    /// ```
    /// assert_eq!(backend_threads::ThreadPoolExecutor::new(3).unwrap().max_workers(), 3);
    /// ```
    pub fn max_workers(&self) -> usize {
        self.inner.max_workers
    }

    /// The queue bound, if any.
    ///
    /// ```
    /// assert_eq!(backend_threads::ThreadPoolExecutor::new(1).unwrap().max_queued(), None);
    /// ```
    pub fn max_queued(&self) -> Option<usize> {
        self.inner.max_queued
    }

    /// Like [`submit`](Executor::submit), but with a full queue (`max_queued`) hands the task
    /// back at once instead of waiting (rule K1).
    ///
    /// ```
    /// use backend_threads::{ThreadPoolExecutor, TrySubmitError};
    /// let pool = ThreadPoolExecutor::new(1).unwrap();
    /// let f = pool.try_submit(|| 2).unwrap();
    /// assert_eq!(f.into_result().unwrap(), 2);
    /// ```
    pub fn try_submit<T: Task>(
        &self,
        task: T,
    ) -> Result<FutureHandle<T::Output>, TrySubmitError<T>> {
        self.inner.submit(task, Space::DontWait)
    }

    /// Whether the pool is broken (an initializer failed), and why.
    ///
    /// ```
    /// assert!(backend_threads::ThreadPoolExecutor::new(1).unwrap().broken().is_none());
    /// ```
    pub fn broken(&self) -> Option<BrokenExecutor> {
        self.inner.gate.read().broken.clone()
    }
}

impl Inner {
    fn submit<T: Task>(
        self: &Arc<Self>,
        task: T,
        space: Space,
    ) -> Result<FutureHandle<T::Output>, TrySubmitError<T>> {
        let task = self.reserve_space(task, space)?;
        let gate = self.gate.read();
        let sender = match (&gate.broken, &gate.sender) {
            (Some(broken), _) => {
                return Err(self.refuse(RejectReason::Broken(broken.clone()), task));
            }
            (None, None) => return Err(self.refuse(RejectReason::Shutdown, task)),
            (None, Some(sender)) => sender,
        };
        let mut future = None;
        let job = Arc::new_cyclic(|me: &std::sync::Weak<Queued<T>>| {
            let (promise, f) = Promise::for_task_inline(&task, self.id, me.clone());
            future = Some(f);
            Queued::new(promise, task)
        });
        let future = future.expect("`new_cyclic` ran the constructor");
        if sender.send(job).is_err() {
            unreachable!("the pool's receiver lives as long as the pool");
        }
        self.adjust_workers();
        drop(gate);
        Ok(future)
    }

    /// Counts the task against `max_queued`, waiting for space if allowed.
    fn reserve_space<T>(&self, task: T, space: Space) -> Result<T, TrySubmitError<T>> {
        let Some(bound) = self.max_queued else {
            return Ok(task);
        };
        let counters = &self.counters;
        let own_worker = worker::is_worker_of(self.id);
        loop {
            let queued = counters.queued.load(Ordering::SeqCst);
            if queued < bound || own_worker {
                // Ordering: SeqCst pairs with `release_space`'s decrement-then-check of
                // `blocked`, so a blocked submitter is never missed.
                if counters
                    .queued
                    .compare_exchange(queued, queued + 1, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
                {
                    return Ok(task);
                }
                continue;
            }
            if !self.is_open() {
                // Shut down or broken: let the main path refuse it (that error wins over "full").
                counters.queued.fetch_add(1, Ordering::SeqCst);
                return Ok(task);
            }
            if space == Space::DontWait {
                return Err(TrySubmitError::Full(task));
            }
            let mut guard = self.space.lock();
            counters.blocked.fetch_add(1, Ordering::SeqCst);
            let still_full = counters.queued.load(Ordering::SeqCst) >= bound;
            let open = self.is_open();
            if still_full && open {
                self.space_freed.wait(&mut guard);
            }
            counters.blocked.fetch_sub(1, Ordering::SeqCst);
            if !open {
                // Shut down or broken: let the main path refuse it without holding a slot.
                counters.queued.fetch_add(1, Ordering::SeqCst);
                return Ok(task);
            }
        }
    }

    /// Neither shut down nor broken.
    fn is_open(&self) -> bool {
        let gate = self.gate.read();
        gate.sender.is_some() && gate.broken.is_none()
    }

    /// A job left the queue (taken by a worker, cancelled, or failed).
    pub(crate) fn release_space(&self) {
        if self.max_queued.is_none() {
            return;
        }
        self.counters.queued.fetch_sub(1, Ordering::SeqCst);
        if self.counters.blocked.load(Ordering::SeqCst) > 0 {
            let _guard = self.space.lock();
            self.space_freed.notify_one();
        }
    }

    fn wake_all_blocked(&self) {
        let _guard = self.space.lock();
        self.space_freed.notify_all();
    }

    fn refuse<T>(&self, reason: RejectReason, task: T) -> TrySubmitError<T> {
        if self.max_queued.is_some() {
            self.counters.queued.fetch_sub(1, Ordering::SeqCst);
        }
        TrySubmitError::Refused(SubmitError::new(reason, task))
    }

    /// Python's `_adjust_thread_count`: use an idle thread if one announced itself, else start
    /// one if below `max_workers`. Called with the gate read-locked.
    fn adjust_workers(self: &Arc<Self>) {
        let counters = &self.counters;
        if counters.all_started() {
            return;
        }
        // Ordering: the token count is a hint; a stale read starts a thread a little early or
        // late, as in CPython, never incorrectly.
        if counters
            .idle_tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
        {
            return;
        }
        let index = counters
            .spawned
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_workers).then_some(n + 1)
            });
        let Ok(index) = index else { return };
        counters.alive.fetch_add(1, Ordering::AcqRel);
        let inner = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name(format!("{}_{index}", self.prefix))
            .spawn(move || worker::run(inner, index));
        match spawned {
            Ok(handle) => self.handles.lock().push(handle),
            Err(e) => {
                counters.alive.fetch_sub(1, Ordering::AcqRel);
                if counters.alive.load(Ordering::Acquire) == 0 {
                    let inner = Arc::clone(self);
                    // Breaking takes the gate's write lock, which our caller holds for reading.
                    std::thread::spawn(move || {
                        inner.break_pool(format!("cannot start a worker thread: {e}"));
                    });
                }
            }
        }
    }

    /// An initializer failed (or no thread could start): refuse new work and fail what is queued
    /// (rule J4). Running tasks finish; idle workers exit as the queue disconnects.
    pub(crate) fn break_pool(&self, reason: String) {
        let broken = BrokenExecutor::new(BrokenKind::ThreadPool, reason);
        {
            let mut gate = self.gate.write();
            if gate.broken.is_none() {
                gate.broken = Some(broken.clone());
            }
            gate.sender = None;
        }
        let error = TaskError::broken(broken);
        while let Ok(job) = self.receiver.try_recv() {
            self.release_space();
            job.fail(error.clone());
        }
        self.wake_all_blocked();
    }

    fn shutdown(&self, options: ShutdownOptions) {
        {
            let mut gate = self.gate.write();
            gate.shutdown = true;
            gate.sender = None;
        }
        if options.cancel_futures {
            while let Ok(job) = self.receiver.try_recv() {
                self.release_space();
                job.cancel();
            }
        }
        self.wake_all_blocked();
        if options.wait {
            let current = std::thread::current().id();
            let handles = std::mem::take(&mut *self.handles.lock());
            for handle in handles {
                // A task that drops the last handle to its own pool runs on one of its
                // threads: that thread exits on its own once its task returns.
                if handle.thread().id() == current {
                    continue;
                }
                if handle.join().is_err() {
                    eprintln!("backend-threads: a worker thread panicked outside any task");
                }
            }
        }
    }
}

impl<T: Task> Executor<T> for ThreadPoolExecutor {
    /// Queues the task and returns its future; with `max_queued`, waits while the queue is full
    /// (except on the pool's own threads).
    fn submit(&self, task: T) -> Result<FutureHandle<T::Output>, SubmitError<T>> {
        self.inner.submit(task, Space::Wait).map_err(|e| match e {
            TrySubmitError::Refused(e) => e,
            TrySubmitError::Full(_) => unreachable!("a waiting submit never reports a full queue"),
        })
    }

    fn parallelism(&self) -> Option<usize> {
        Some(self.max_workers())
    }

    /// One queue entry per chunk: the per-task cost is paid once per chunk.
    fn submit_batch(&self, tasks: Vec<T>) -> Result<Batch<T::Output>, SubmitError<Vec<T>>> {
        Batch::submit_chunk(self, tasks)
    }
}

impl Shutdown for ThreadPoolExecutor {
    fn shutdown(&self, options: ShutdownOptions) {
        self.inner.shutdown(options);
    }
}

impl Introspect for ThreadPoolExecutor {
    fn stats(&self) -> PoolStats {
        let c = &self.inner.counters;
        let mut stats = PoolStats {
            workers: c.alive.load(Ordering::Relaxed),
            queued: self.inner.receiver.len(),
            ..PoolStats::default()
        };
        for slot in c.slots.iter() {
            stats.idle += slot.idle.load(Ordering::Relaxed);
            stats.running += slot.running.load(Ordering::Relaxed);
            stats.completed += slot.completed.load(Ordering::Relaxed);
        }
        stats
    }
}

impl Drop for ThreadPoolExecutor {
    fn drop(&mut self) {
        self.inner.shutdown(ShutdownOptions::wait());
    }
}

impl fmt::Debug for ThreadPoolExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPoolExecutor")
            .field("prefix", &self.inner.prefix)
            .field("max_workers", &self.inner.max_workers)
            .field("max_queued", &self.inner.max_queued)
            .field("stats", &self.stats())
            .finish()
    }
}
