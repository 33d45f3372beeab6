//! The executor contract: [`Executor`] (submit, map) and [`Shutdown`].
//!
//! One trait, generic over the task type, lets each backend say what it accepts while generic
//! code drives every backend through one code path:
//!
//! | backend          | implements                                                  |
//! |------------------|-------------------------------------------------------------|
//! | threads          | `Executor<T>` for every `T: Task`                           |
//! | processes        | `Executor<T>` for `T: Task` + serde + a registered stable name |
//! | tokio            | `Executor<T>` for every `T: Task`, plus async submission    |
//!
//! A workload type that is a `Task`, serializable and registered runs on all three: that is how
//! the harness is written. What may cross a process boundary is thereby checked by the compiler.

use std::time::Duration;

use crate::error::{MapError, SubmitError};
use crate::handle::FutureHandle;
use crate::map::{Batch, MapIter};
use crate::task::Task;

/// How [`Shutdown::shutdown`] behaves (Python's `shutdown(wait=True, *, cancel_futures=False)`).
///
/// ```
/// use executor_core::ShutdownOptions;
/// assert_eq!(ShutdownOptions::default(), ShutdownOptions::wait());
/// let fast = ShutdownOptions::no_wait().cancel_futures();
/// assert!(!fast.wait && fast.cancel_futures);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShutdownOptions {
    /// Block until every pending and running task has finished and every worker has exited.
    pub wait: bool,
    /// Cancel every task that has not started (they are done for waiters at once).
    pub cancel_futures: bool,
}

impl ShutdownOptions {
    /// `wait = true, cancel_futures = false`: the default, and what dropping an executor does.
    ///
    /// ```
    /// assert!(executor_core::ShutdownOptions::wait().wait);
    /// ```
    pub const fn wait() -> Self {
        ShutdownOptions {
            wait: true,
            cancel_futures: false,
        }
    }

    /// `wait = false, cancel_futures = false`: return at once; queued work still completes.
    ///
    /// ```
    /// assert!(!executor_core::ShutdownOptions::no_wait().wait);
    /// ```
    pub const fn no_wait() -> Self {
        ShutdownOptions {
            wait: false,
            cancel_futures: false,
        }
    }

    /// The same, but also cancel every task that has not started.
    ///
    /// ```
    /// assert!(executor_core::ShutdownOptions::wait().cancel_futures().cancel_futures);
    /// ```
    pub const fn cancel_futures(self) -> Self {
        ShutdownOptions {
            cancel_futures: true,
            ..self
        }
    }
}

impl Default for ShutdownOptions {
    fn default() -> Self {
        ShutdownOptions::wait()
    }
}

/// Stopping an executor (rule I). Separate from [`Executor`] because it does not depend on the
/// task type.
///
/// Every backend also shuts down with [`ShutdownOptions::wait`] when dropped (rule I5, Python's
/// `with` block), so no worker outlives its executor.
///
/// ```
/// use executor_core::{Shutdown, ShutdownOptions};
///
/// fn stop_now(pool: &impl Shutdown) {
///     pool.shutdown(ShutdownOptions::no_wait().cancel_futures());
/// }
/// # struct Nothing; impl Shutdown for Nothing { fn shutdown(&self, _: ShutdownOptions) {} }
/// # stop_now(&Nothing);
/// ```
pub trait Shutdown {
    /// Stops accepting tasks; idempotent. With `wait`, blocks until queued and running tasks are
    /// done and the workers have exited; with `cancel_futures`, cancels what has not started.
    fn shutdown(&self, options: ShutdownOptions);
}

/// How long [`MapOptions::auto_chunksize`] aims for one chunk to run: 2 ms, thirty times a
/// process pool's pipe round trip (about 70 µs) and thousands of times a thread pool's per-task
/// cost, while short enough that a chunk left at the end keeps the other workers idle only
/// briefly.
///
/// ```
/// assert_eq!(executor_core::AUTO_CHUNK_TARGET.as_millis(), 2);
/// ```
pub const AUTO_CHUNK_TARGET: Duration = Duration::from_millis(2);

/// The largest chunk [`MapOptions::auto_chunksize`] makes (bounds the memory and the frame one
/// chunk takes).
///
/// ```
/// assert_eq!(executor_core::AUTO_CHUNK_MAX, 4096);
/// ```
pub const AUTO_CHUNK_MAX: usize = 4096;

/// Options for [`Executor::map`]: Python's `timeout`, `chunksize` and `buffersize`.
///
/// Values are checked when `map` is called (rule H7): a `chunksize` or `buffersize` of 0 is an
/// error naming the field.
///
/// ```
/// use std::time::Duration;
/// use executor_core::MapOptions;
///
/// let options = MapOptions::new()
///     .timeout(Duration::from_secs(30))
///     .chunksize(64)
///     .buffersize(8);
/// assert_eq!(options.get_chunksize(), 64);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapOptions {
    timeout: Option<Duration>,
    chunksize: usize,
    /// Choose the chunk size from measured task cost instead of `chunksize`.
    auto_chunksize: bool,
    buffersize: Option<usize>,
}

impl MapOptions {
    /// No timeout, `chunksize` 1, no `buffersize` (the whole input is submitted by `map`).
    ///
    /// ```
    /// assert_eq!(executor_core::MapOptions::new(), Default::default());
    /// ```
    pub const fn new() -> Self {
        MapOptions {
            timeout: None,
            chunksize: 1,
            auto_chunksize: false,
            buffersize: None,
        }
    }

    /// A deadline for the whole map, measured from the call to `map` (rule H3).
    ///
    /// ```
    /// let o = executor_core::MapOptions::new().timeout(std::time::Duration::from_secs(1));
    /// assert!(o.get_timeout().is_some());
    /// ```
    pub const fn timeout(self, timeout: Duration) -> Self {
        MapOptions {
            timeout: Some(timeout),
            ..self
        }
    }

    /// How many items travel to a worker as one unit (rule H5). Must be at least 1.
    ///
    /// ```
    /// assert_eq!(executor_core::MapOptions::new().chunksize(16).get_chunksize(), 16);
    /// ```
    pub const fn chunksize(self, chunksize: usize) -> Self {
        MapOptions {
            chunksize,
            auto_chunksize: false,
            ..self
        }
    }

    /// Lets `map` choose the chunk size from measured task cost (rule H5, beyond Python): it
    /// first sends one single-item chunk per worker (see [`Executor::parallelism`]), waits for
    /// the first to finish (within the `timeout`), and reads how long that item ran. Then each
    /// chunk gets enough items to run about [`AUTO_CHUNK_TARGET`] (so that a chunk's fixed
    /// cost, a pipe round trip for processes, stays small beside its work), but no more than a
    /// quarter of an even share per worker when the input's length is known (so that the work
    /// still spreads), and at most [`AUTO_CHUNK_MAX`]; towards the end of the input chunks
    /// shrink (down to an eighth of that size), so that the last ones leave the workers evenly
    /// loaded. Slow tasks (I/O, anything over 2 ms) keep chunks of 1. If the probe cannot be
    /// measured in time, chunks of 1 are used.
    ///
    /// A later [`chunksize`](MapOptions::chunksize) turns it off again.
    ///
    /// ```
    /// use executor_core::MapOptions;
    ///
    /// let auto = MapOptions::new().auto_chunksize();
    /// assert!(auto.is_auto_chunksize());
    /// assert!(!auto.chunksize(8).is_auto_chunksize());
    /// ```
    pub const fn auto_chunksize(self) -> Self {
        MapOptions {
            auto_chunksize: true,
            ..self
        }
    }

    /// `true` if `map` chooses the chunk size (see [`auto_chunksize`](Self::auto_chunksize)).
    ///
    /// ```
    /// assert!(!executor_core::MapOptions::new().is_auto_chunksize());
    /// ```
    pub const fn is_auto_chunksize(&self) -> bool {
        self.auto_chunksize
    }

    /// At most this many submitted-but-unread chunks at a time; the input is consumed lazily
    /// (rule H2). Must be at least 1.
    ///
    /// ```
    /// assert_eq!(executor_core::MapOptions::new().buffersize(4).get_buffersize(), Some(4));
    /// ```
    pub const fn buffersize(self, buffersize: usize) -> Self {
        MapOptions {
            buffersize: Some(buffersize),
            ..self
        }
    }

    /// The timeout, if any.
    ///
    /// ```
    /// assert_eq!(executor_core::MapOptions::new().get_timeout(), None);
    /// ```
    pub const fn get_timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The fixed chunk size (with [`auto_chunksize`](Self::auto_chunksize), the size `map`
    /// starts from when it cannot measure).
    ///
    /// ```
    /// assert_eq!(executor_core::MapOptions::new().get_chunksize(), 1);
    /// ```
    pub const fn get_chunksize(&self) -> usize {
        self.chunksize
    }

    /// The buffer size, if any.
    ///
    /// ```
    /// assert_eq!(executor_core::MapOptions::new().get_buffersize(), None);
    /// ```
    pub const fn get_buffersize(&self) -> Option<usize> {
        self.buffersize
    }

    /// Checks the values (rule H7): the error names the field.
    ///
    /// ```
    /// let e = executor_core::MapOptions::new().chunksize(0).validate().unwrap_err();
    /// assert_eq!(e.to_string(), "invalid map option `chunksize` = 0: must be at least 1");
    /// ```
    pub fn validate(&self) -> Result<(), MapError> {
        if self.chunksize == 0 {
            return Err(MapError::invalid("chunksize", 0, "must be at least 1"));
        }
        if self.buffersize == Some(0) {
            return Err(MapError::invalid("buffersize", 0, "must be at least 1"));
        }
        Ok(())
    }
}

impl Default for MapOptions {
    fn default() -> Self {
        MapOptions::new()
    }
}

/// An executor that runs tasks of type `T` (Python's `Executor`).
///
/// Backends implement [`submit`](Executor::submit) and, to batch `map`'s chunks into one unit of
/// work, [`submit_batch`](Executor::submit_batch); [`map`](Executor::map) is provided on top of
/// them and may be overridden.
///
/// A complete executor that runs each task on a new thread (a real backend keeps a pool):
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use executor_core::*;
///
/// #[derive(Default)]
/// struct ThreadPerTask { shut: AtomicBool }
///
/// impl Shutdown for ThreadPerTask {
///     fn shutdown(&self, _: ShutdownOptions) { self.shut.store(true, Ordering::SeqCst); }
/// }
///
/// impl<T: Task> Executor<T> for ThreadPerTask {
///     fn submit(&self, task: T) -> Result<FutureHandle<T::Output>, SubmitError<T>> {
///         if self.shut.load(Ordering::SeqCst) {
///             return Err(SubmitError::new(RejectReason::Shutdown, task));
///         }
///         let (promise, future) = Promise::for_task(&task);
///         std::thread::spawn(move || promise.run(task));
///         Ok(future)
///     }
/// }
///
/// let pool = ThreadPerTask::default();
/// let squares: Vec<u64> = pool
///     .map((1..=4u64).map(|n| move || n * n), MapOptions::new())
///     .unwrap()
///     .map(Result::unwrap)
///     .collect();
/// assert_eq!(squares, [1, 4, 9, 16]);
///
/// pool.shutdown(ShutdownOptions::wait());
/// assert!(pool.submit(|| 0).unwrap_err().is_shutdown());
/// ```
pub trait Executor<T: Task>: Shutdown {
    /// Schedules `task` and returns its pending future at once (rule G1). After shutdown, or on a
    /// broken executor, the task is handed back in the error (rule G2; broken wins).
    fn submit(&self, task: T) -> Result<FutureHandle<T::Output>, SubmitError<T>>;

    /// Schedules `tasks` as one unit of work, as `map` does for each chunk. The default submits
    /// each task on its own; backends for which a unit costs more than a task (processes, tiny
    /// tasks on threads) override it to send a [`Chunk`](crate::Chunk). If even the first task
    /// is refused, all tasks are handed back.
    fn submit_batch(&self, tasks: Vec<T>) -> Result<Batch<T::Output>, SubmitError<Vec<T>>> {
        let mut tasks = tasks.into_iter();
        let mut futures = Vec::with_capacity(tasks.len());
        while let Some(task) = tasks.next() {
            match self.submit(task) {
                Ok(future) => futures.push(Ok(future)),
                Err(e) if futures.is_empty() => {
                    let (reason, task) = e.into_parts();
                    let mut all = vec![task];
                    all.extend(tasks);
                    return Err(SubmitError::new(reason, all));
                }
                Err(e) => futures.push(Err(e.into_parts().0)),
            }
        }
        Ok(Batch::items(futures))
    }

    /// Schedules several units of work at once, in order, as [`submit_batch`] would one by one:
    /// what `map` does with the chunks it submits eagerly (without a `buffersize`), a few at a
    /// time, so that a backend whose every submit wakes a worker (the process pool) can hand
    /// them over together. Each chunk gets its own result; once one is refused, the later ones
    /// are tried too (and refused for the same reason, normally).
    ///
    /// [`submit_batch`]: Executor::submit_batch
    ///
    /// ```
    /// # use executor_core::*;
    /// # struct Inline;
    /// # impl Shutdown for Inline { fn shutdown(&self, _: ShutdownOptions) {} }
    /// # impl<T: Task> Executor<T> for Inline {
    /// #     fn submit(&self, task: T) -> Result<FutureHandle<T::Output>, SubmitError<T>> {
    /// #         let (p, f) = Promise::for_task(&task); p.run(task); Ok(f)
    /// #     }
    /// # }
    /// let batches = Inline.submit_batches(vec![vec![|| 1, || 2], vec![|| 3]]);
    /// assert_eq!(batches.len(), 2);
    /// assert_eq!(batches[1].as_ref().unwrap().len(), 1);
    /// ```
    #[allow(clippy::type_complexity)] // one result per chunk, as `submit_batch` returns it
    fn submit_batches(
        &self,
        chunks: Vec<Vec<T>>,
    ) -> Vec<Result<Batch<T::Output>, SubmitError<Vec<T>>>> {
        chunks
            .into_iter()
            .map(|chunk| self.submit_batch(chunk))
            .collect()
    }

    /// How many tasks this executor runs at once, if it knows (its `max_workers`). `map` with
    /// [`MapOptions::auto_chunksize`] probes with this many tasks and spreads the input over
    /// them; `None` (the default) stands for the machine's available parallelism.
    ///
    /// ```
    /// # use executor_core::*;
    /// # struct Inline;
    /// # impl Shutdown for Inline { fn shutdown(&self, _: ShutdownOptions) {} }
    /// # impl<T: Task> Executor<T> for Inline {
    /// #     fn submit(&self, task: T) -> Result<FutureHandle<T::Output>, SubmitError<T>> {
    /// #         let (p, f) = Promise::for_task(&task); p.run(task); Ok(f)
    /// #     }
    /// # }
    /// assert_eq!(Executor::<fn() -> u8>::parallelism(&Inline), None);
    /// ```
    fn parallelism(&self) -> Option<usize> {
        None
    }

    /// Runs every task and yields their results in input order (rule H1), each item's failure in
    /// its own slot (rule H4). See [`MapIter`] for `timeout`, `chunksize`, `buffersize` and what
    /// dropping the iterator does. The iterator borrows the executor, so the executor outlives it.
    ///
    /// ```
    /// # use executor_core::*;
    /// # struct Inline;
    /// # impl Shutdown for Inline { fn shutdown(&self, _: ShutdownOptions) {} }
    /// # impl<T: Task> Executor<T> for Inline {
    /// #     fn submit(&self, task: T) -> Result<FutureHandle<T::Output>, SubmitError<T>> {
    /// #         let (p, f) = Promise::for_task(&task); p.run(task); Ok(f)
    /// #     }
    /// # }
    /// # let pool = Inline;
    /// let tasks = [4u32, 0, 2].map(|d| move || 8 / d); // 8 / 0 panics
    /// let results: Vec<_> = pool.map(tasks, MapOptions::new().chunksize(2)).unwrap().collect();
    /// assert_eq!(results[0].as_ref().unwrap(), &2);
    /// assert!(results[1].is_err());
    /// assert_eq!(results[2].as_ref().unwrap(), &4);
    ///
    /// let e = pool.map([|| 1], MapOptions::new().buffersize(0)).unwrap_err();
    /// assert_eq!(e.to_string(), "invalid map option `buffersize` = 0: must be at least 1");
    /// ```
    fn map<'a, I>(
        &'a self,
        tasks: I,
        options: MapOptions,
    ) -> Result<MapIter<'a, T::Output>, MapError>
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: 'a,
        Self: Sized,
    {
        MapIter::new(self, tasks.into_iter(), options)
    }
}

/// A snapshot of an executor's counters (rule K3), for progress bars and the harness.
///
/// ```
/// let s = executor_core::PoolStats::default();
/// assert_eq!((s.workers, s.idle, s.queued, s.running, s.completed), (0, 0, 0, 0, 0));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PoolStats {
    /// Workers (threads or processes) alive now.
    pub workers: usize,
    /// Of those, how many wait for work.
    pub idle: usize,
    /// Tasks (or chunks) submitted and not yet started.
    pub queued: usize,
    /// Tasks (or chunks) running now.
    pub running: usize,
    /// Tasks (or chunks) finished since the executor was made (cancelled ones not counted).
    pub completed: u64,
}

/// Executors that can report their counters (rule K3).
///
/// ```
/// use executor_core::{Introspect, PoolStats};
///
/// fn progress(pool: &impl Introspect) -> String {
///     let s = pool.stats();
///     format!("{} done, {} running, {} queued", s.completed, s.running, s.queued)
/// }
/// # struct Idle; impl Introspect for Idle { fn stats(&self) -> PoolStats { PoolStats::default() } }
/// # assert_eq!(progress(&Idle), "0 done, 0 running, 0 queued");
/// ```
pub trait Introspect {
    /// The counters now. Each is read on its own, so the snapshot is not atomic as a whole.
    fn stats(&self) -> PoolStats;
}
