//! [`ProcessPoolBuilder`]: the pool's options (Python's constructor arguments, plus a policy for
//! dead workers and the number of requests in flight per worker), checked in one place.

use std::fmt;

use crate::pool::ProcessPoolExecutor;
use crate::registry::RemoteTask;
use crate::wire;

/// What a worker's death does (rule L6).
///
/// ```
/// use backend_process::{OnWorkerDeath, ProcessPoolExecutor};
/// let pool = ProcessPoolExecutor::builder()
///     .on_worker_death(OnWorkerDeath::Replace)
///     .build()
///     .unwrap();
/// # drop(pool);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnWorkerDeath {
    /// As in Python: the pool breaks, and every pending future fails with an error naming the
    /// dead worker's pid and its exit code or signal.
    #[default]
    BreakPool,
    /// Only the dead worker's task fails (with the same details); a fresh worker replaces it.
    Replace,
}

/// How many requests a worker has in flight by default (see
/// [`ProcessPoolBuilder::max_in_flight_per_worker`]); chunks of `map` that run shorter than
/// [`SEND_AHEAD`] / 4 may have more, up to [`MAX_QUIET_IN_FLIGHT`].
pub const DEFAULT_MAX_IN_FLIGHT_PER_WORKER: usize = 4;

/// By default, how much work (as measured by the worker) the chunks of `map` a worker holds may
/// add up to: short chunks are sent further ahead, so that their responses come back several to
/// one write and the parent wakes up once for them all. (Measured on two cores, `map` of 200k
/// `is_prime` items: 1 ms → 2 ms took chunksize 256 from 11.52 to 11.24 ms and 16 from 26.8 to
/// 22.9 ms; 3 ms was no better, 4 ms worse.)
///
/// ```
/// assert_eq!(backend_process::SEND_AHEAD.as_micros(), 2000);
/// ```
pub const SEND_AHEAD: std::time::Duration = std::time::Duration::from_micros(2000);

/// By default, the most chunks of `map` a worker holds at once.
///
/// ```
/// assert!(backend_process::MAX_QUIET_IN_FLIGHT > backend_process::DEFAULT_MAX_IN_FLIGHT_PER_WORKER);
/// ```
pub const MAX_QUIET_IN_FLIGHT: usize = 128;

/// The pool's options, made by [`ProcessPoolBuilder`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    /// Sent to each new worker before any task (name, payload of a chunk of one).
    pub(crate) initializer: Option<(&'static str, Vec<u8>)>,
    pub(crate) max_tasks_per_child: Option<usize>,
    pub(crate) on_death: OnWorkerDeath,
    /// `None`: the default, automatic (see [`ProcessPoolBuilder::max_in_flight_per_worker`]).
    pub(crate) max_in_flight: Option<usize>,
}

/// Options for a [`ProcessPoolExecutor`] (Python's constructor arguments, plus a policy for dead
/// workers).
///
/// ```
/// let pool = backend_process::ProcessPoolExecutor::builder()
///     .max_workers(2)
///     .max_tasks_per_child(100)
///     .build()
///     .unwrap();
/// assert_eq!(pool.max_workers(), 2);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ProcessPoolBuilder {
    max_workers: Option<usize>,
    options: Options,
    initializer_error: Option<String>,
}

impl ProcessPoolBuilder {
    /// At most this many worker processes (default: one per core); 0 is an error (rule L3).
    ///
    /// ```
    /// assert!(backend_process::ProcessPoolExecutor::builder().max_workers(0).build().is_err());
    /// ```
    pub fn max_workers(mut self, max_workers: usize) -> Self {
        self.max_workers = Some(max_workers);
        self
    }

    /// Runs `task` in each new worker before any other task (Python's `initializer` with its
    /// `initargs`, as one registered task). If it fails in a worker, the pool breaks (rule L7).
    ///
    /// ```
    /// # #[derive(serde::Serialize, serde::Deserialize)] struct Warm;
    /// # impl executor_core::Task for Warm { type Output = (); fn run(self) -> Result<(), executor_core::TaskError> { Ok(()) } }
    /// # impl backend_process::RemoteTask for Warm { const NAME: &'static str = "docs::warm"; }
    /// let pool = backend_process::ProcessPoolExecutor::builder().initializer(Warm).build().unwrap();
    /// # drop(pool);
    /// ```
    pub fn initializer<T: RemoteTask<Output = ()>>(mut self, task: T) -> Self {
        let (payload, _, failed) = wire::encode_items(std::slice::from_ref(&task));
        match failed.into_iter().next() {
            None => {
                self.options.initializer = Some((T::NAME, payload));
                self.initializer_error = None;
            }
            Some((_, e)) => self.initializer_error = Some(e.to_string()),
        }
        self
    }

    /// A worker exits after this many tasks and a fresh one replaces it (rule L8); 0 is an error.
    ///
    /// ```
    /// assert!(backend_process::ProcessPoolExecutor::builder().max_tasks_per_child(0).build().is_err());
    /// ```
    pub fn max_tasks_per_child(mut self, tasks: usize) -> Self {
        self.options.max_tasks_per_child = Some(tasks);
        self
    }

    /// How many requests each worker may have at once: the one it runs and the ones sent ahead
    /// so that it never waits for the parent between tasks. A task sent ahead stays PENDING, and
    /// cancellable, until the worker starts it (rule L13). Requests are sent ahead only while no
    /// other worker is idle or starting; 1 sends the next task only when the last one is done.
    /// 0 is an error.
    ///
    /// Unset, it is automatic: [`DEFAULT_MAX_IN_FLIGHT_PER_WORKER`] (4) requests, except that
    /// chunks of `map` that run short are sent further ahead, up to about [`SEND_AHEAD`] of work
    /// (by how long the worker's last chunks ran) and at most [`MAX_QUIET_IN_FLIGHT`]. Set, it is
    /// the limit for every request.
    ///
    /// ```
    /// use backend_process::ProcessPoolExecutor;
    /// assert!(ProcessPoolExecutor::builder().max_in_flight_per_worker(4).build().is_ok());
    /// let e = ProcessPoolExecutor::builder().max_in_flight_per_worker(0).build().unwrap_err();
    /// assert!(e.to_string().contains("`max_in_flight_per_worker` = 0"));
    /// ```
    pub fn max_in_flight_per_worker(mut self, requests: usize) -> Self {
        self.options.max_in_flight = Some(requests);
        self
    }

    /// What a worker's death does; the default breaks the pool, as Python does.
    ///
    /// ```
    /// use backend_process::OnWorkerDeath;
    /// let b = backend_process::ProcessPoolExecutor::builder().on_worker_death(OnWorkerDeath::Replace);
    /// # drop(b);
    /// ```
    pub fn on_worker_death(mut self, policy: OnWorkerDeath) -> Self {
        self.options.on_death = policy;
        self
    }

    /// Checks the options and makes the pool. No worker starts until the first `submit`.
    ///
    /// ```
    /// assert!(backend_process::ProcessPoolExecutor::builder().build().is_ok());
    /// ```
    pub fn build(self) -> Result<ProcessPoolExecutor, BuildError> {
        let invalid = |field, value: &str, expected: &str| BuildError {
            field,
            value: value.to_owned(),
            expected: expected.to_owned(),
        };
        let max_workers = self
            .max_workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        if max_workers == 0 {
            return Err(invalid("max_workers", "0", "must be at least 1"));
        }
        if self.options.max_tasks_per_child == Some(0) {
            return Err(invalid("max_tasks_per_child", "0", "must be at least 1"));
        }
        if self.options.max_in_flight == Some(0) {
            return Err(invalid(
                "max_in_flight_per_worker",
                "0",
                "must be at least 1",
            ));
        }
        if let Some(e) = self.initializer_error {
            return Err(invalid(
                "initializer",
                "the task",
                &format!("must serialize: {e}"),
            ));
        }
        let program = std::env::current_exe().map_err(|e| {
            invalid(
                "program",
                "the current executable",
                &format!("must be readable to re-execute as a worker: {e}"),
            )
        })?;
        Ok(ProcessPoolExecutor::from_parts(
            max_workers,
            program,
            self.options,
        ))
    }
}

/// A builder option out of range; names the option.
///
/// ```
/// let e = backend_process::ProcessPoolExecutor::new(0).unwrap_err();
/// assert_eq!(e.to_string(), "invalid process pool option `max_workers` = 0: must be at least 1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError {
    field: &'static str,
    value: String,
    expected: String,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid process pool option `{}` = {}: {}",
            self.field, self.value, self.expected
        )
    }
}

impl std::error::Error for BuildError {}
