//! [`AsyncExecutorBuilder`]: the executor's options, checked in one place.

use std::fmt;

use tokio::runtime::Handle;

use crate::executor::AsyncExecutor;

/// Options for an [`AsyncExecutor`].
///
/// ```
/// use backend_async::AsyncExecutor;
///
/// // On a runtime of your own:
/// let runtime = tokio::runtime::Runtime::new().unwrap();
/// let pool = AsyncExecutor::builder()
///     .max_workers(32)
///     .handle(runtime.handle().clone())
///     .build()
///     .unwrap();
/// assert_eq!(pool.max_workers(), 32);
/// ```
#[derive(Debug, Clone, Default)]
pub struct AsyncExecutorBuilder {
    max_workers: Option<usize>,
    handle: Option<Handle>,
    worker_threads: Option<usize>,
}

/// A builder option out of range, or a runtime that could not start; names the option.
///
/// ```
/// let e = backend_async::AsyncExecutor::builder().max_workers(0).build().unwrap_err();
/// assert_eq!(e.to_string(), "invalid async executor option `max_workers`: must be at least 1");
/// ```
#[derive(Debug)]
pub struct BuildError {
    field: &'static str,
    problem: String,
}

impl BuildError {
    /// The option at fault.
    ///
    /// ```
    /// let e = backend_async::AsyncExecutor::builder().worker_threads(0).build().unwrap_err();
    /// assert_eq!(e.field(), "worker_threads");
    /// ```
    pub fn field(&self) -> &'static str {
        self.field
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid async executor option `{}`: {}",
            self.field, self.problem
        )
    }
}

impl std::error::Error for BuildError {}

impl AsyncExecutorBuilder {
    pub(crate) fn new() -> Self {
        AsyncExecutorBuilder::default()
    }

    /// At most this many tasks run at once (default: `min(32, cores + 4)`, as the thread pool);
    /// the rest wait as PENDING futures. 0 is an error.
    ///
    /// ```
    /// let pool = backend_async::AsyncExecutor::builder().max_workers(256).build().unwrap();
    /// assert_eq!(pool.max_workers(), 256);
    /// ```
    pub fn max_workers(mut self, max_workers: usize) -> Self {
        self.max_workers = Some(max_workers);
        self
    }

    /// Runs the tasks on this runtime instead of a runtime of the executor's own.
    ///
    /// ```
    /// let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    /// let pool = backend_async::AsyncExecutor::builder().handle(runtime.handle().clone()).build().unwrap();
    /// let f = pool.submit_async(async { 5 }).unwrap();
    /// assert_eq!(runtime.block_on(async { f.await }).unwrap(), 5);
    /// ```
    pub fn handle(mut self, handle: Handle) -> Self {
        self.handle = Some(handle);
        self
    }

    /// Worker threads of the executor's own runtime (default: one per core). Ignored with
    /// [`handle`](AsyncExecutorBuilder::handle).
    ///
    /// ```
    /// assert!(backend_async::AsyncExecutor::builder().worker_threads(2).build().is_ok());
    /// ```
    pub fn worker_threads(mut self, threads: usize) -> Self {
        self.worker_threads = Some(threads);
        self
    }

    /// Checks the options; starts the executor's own runtime unless a handle was given.
    ///
    /// ```
    /// assert!(backend_async::AsyncExecutor::builder().build().is_ok());
    /// ```
    pub fn build(self) -> Result<AsyncExecutor, BuildError> {
        let invalid = |field, problem: &str| BuildError {
            field,
            problem: problem.to_owned(),
        };
        let max_workers = self.max_workers.unwrap_or_else(default_max_workers);
        if max_workers == 0 {
            return Err(invalid("max_workers", "must be at least 1"));
        }
        if self.worker_threads == Some(0) {
            return Err(invalid("worker_threads", "must be at least 1"));
        }
        let (handle, owned) = match self.handle {
            Some(handle) => (handle, None),
            None => {
                let mut builder = tokio::runtime::Builder::new_multi_thread();
                builder.enable_all().thread_name("backend-async");
                if let Some(threads) = self.worker_threads {
                    builder.worker_threads(threads);
                }
                let runtime = builder.build().map_err(|e| BuildError {
                    field: "worker_threads",
                    problem: format!("cannot start the runtime: {e}"),
                })?;
                (runtime.handle().clone(), Some(runtime))
            }
        };
        Ok(AsyncExecutor::from_parts(handle, owned, max_workers))
    }
}

fn default_max_workers() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores + 4).min(32)
}
