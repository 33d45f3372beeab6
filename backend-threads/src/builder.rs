//! [`ThreadPoolBuilder`]: the pool's options, checked in one place.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::pool::ThreadPoolExecutor;

/// Runs once at the start of each worker thread; an `Err` (or a panic) breaks the pool.
pub(crate) type Initializer = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Options for a [`ThreadPoolExecutor`] (Python's constructor arguments, plus a queue bound).
///
/// ```
/// use backend_threads::ThreadPoolExecutor;
///
/// let pool = ThreadPoolExecutor::builder()
///     .max_workers(4)
///     .thread_name_prefix("thumbnails")
///     .initializer(|| Ok::<(), String>(()))
///     .max_queued(1_000)
///     .build()
///     .unwrap();
/// assert_eq!(pool.max_workers(), 4);
/// ```
#[derive(Clone)]
pub struct ThreadPoolBuilder {
    pub(crate) max_workers: Option<usize>,
    pub(crate) thread_name_prefix: Option<String>,
    pub(crate) initializer: Option<Initializer>,
    pub(crate) max_queued: Option<usize>,
}

/// A builder option out of range; names the option.
///
/// ```
/// let e = backend_threads::ThreadPoolExecutor::builder().max_workers(0).build().unwrap_err();
/// assert_eq!(e.to_string(), "invalid thread pool option `max_workers` = 0: must be at least 1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError {
    field: &'static str,
    value: usize,
    expected: &'static str,
}

impl BuildError {
    /// The option's name.
    ///
    /// ```
    /// let e = backend_threads::ThreadPoolExecutor::builder().max_queued(0).build().unwrap_err();
    /// assert_eq!(e.field(), "max_queued");
    /// ```
    pub fn field(&self) -> &'static str {
        self.field
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid thread pool option `{}` = {}: {}",
            self.field, self.value, self.expected
        )
    }
}

impl std::error::Error for BuildError {}

/// Python's default: `min(32, os.cpu_count() + 4)`, which leaves room for I/O-bound work.
///
/// ```
/// let n = backend_threads::default_max_workers();
/// assert!((5..=32).contains(&n));
/// ```
pub fn default_max_workers() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores + 4).min(32)
}

impl ThreadPoolBuilder {
    pub(crate) fn new() -> Self {
        ThreadPoolBuilder {
            max_workers: None,
            thread_name_prefix: None,
            initializer: None,
            max_queued: None,
        }
    }

    /// At most this many threads (default [`default_max_workers`]); 0 is an error (rule J1).
    ///
    /// ```
    /// let pool = backend_threads::ThreadPoolExecutor::builder().max_workers(2).build().unwrap();
    /// assert_eq!(pool.max_workers(), 2);
    /// ```
    pub fn max_workers(mut self, max_workers: usize) -> Self {
        self.max_workers = Some(max_workers);
        self
    }

    /// Threads are named `{prefix}_{i}` (rule J3); the default prefix is
    /// `ThreadPoolExecutor-{n}`, `n` counting pools in this process.
    ///
    /// ```
    /// use executor_core::Executor;
    /// let pool = backend_threads::ThreadPoolExecutor::builder().thread_name_prefix("io").build().unwrap();
    /// let name = pool.submit(|| std::thread::current().name().map(str::to_owned)).unwrap();
    /// assert_eq!(name.into_result().unwrap().as_deref(), Some("io_0"));
    /// ```
    pub fn thread_name_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.thread_name_prefix = Some(prefix.into());
        self
    }

    /// Runs `init` at the start of each worker thread (Python's `initializer(*initargs)`: capture
    /// the arguments in the closure). If it returns `Err` or panics, the pool is broken: queued
    /// futures fail with the broken-pool error, later submits are refused, running tasks finish
    /// (rule J4).
    ///
    /// ```
    /// use executor_core::Executor;
    /// let pool = backend_threads::ThreadPoolExecutor::builder()
    ///     .initializer(|| Err::<(), _>("no database"))
    ///     .build()
    ///     .unwrap();
    /// let f = pool.submit(|| 1).unwrap();
    /// assert!(f.result(None).unwrap_err().task_error().unwrap().is_broken());
    /// ```
    pub fn initializer<F, E>(mut self, init: F) -> Self
    where
        F: Fn() -> Result<(), E> + Send + Sync + 'static,
        E: fmt::Display,
    {
        self.initializer = Some(Arc::new(move || init().map_err(|e| e.to_string())));
        self
    }

    /// Bounds the number of queued (submitted, not started) tasks (rule K1): `submit` blocks
    /// while the queue is full and `try_submit` hands the task back. Submissions from the pool's
    /// own workers are never held back, so a full queue cannot deadlock the pool.
    ///
    /// ```
    /// let pool = backend_threads::ThreadPoolExecutor::builder().max_queued(8).build().unwrap();
    /// assert_eq!(pool.max_queued(), Some(8));
    /// ```
    pub fn max_queued(mut self, max_queued: usize) -> Self {
        self.max_queued = Some(max_queued);
        self
    }

    /// Checks the options and makes the pool. No thread starts until the first `submit`.
    ///
    /// ```
    /// assert!(backend_threads::ThreadPoolExecutor::builder().build().is_ok());
    /// ```
    pub fn build(self) -> Result<ThreadPoolExecutor, BuildError> {
        if self.max_workers == Some(0) {
            return Err(BuildError {
                field: "max_workers",
                value: 0,
                expected: "must be at least 1",
            });
        }
        if self.max_queued == Some(0) {
            return Err(BuildError {
                field: "max_queued",
                value: 0,
                expected: "must be at least 1",
            });
        }
        Ok(ThreadPoolExecutor::from_builder(self))
    }

    pub(crate) fn resolved_prefix(&self) -> String {
        static POOLS: AtomicUsize = AtomicUsize::new(0);
        self.thread_name_prefix.clone().unwrap_or_else(|| {
            // Ordering: only uniqueness is needed.
            format!(
                "ThreadPoolExecutor-{}",
                POOLS.fetch_add(1, Ordering::Relaxed)
            )
        })
    }
}

impl fmt::Debug for ThreadPoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPoolBuilder")
            .field("max_workers", &self.max_workers)
            .field("thread_name_prefix", &self.thread_name_prefix)
            .field("initializer", &self.initializer.is_some())
            .field("max_queued", &self.max_queued)
            .finish()
    }
}
