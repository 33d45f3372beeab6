//! The conformance suite: the same cases, written once, run against every executor backend
//! (feature `conformance`).
//!
//! A backend's test file is one line:
//!
//! ```text
//! executor_core::conformance_suite!(|max_workers| my_backend::Pool::new(max_workers));
//! ```
//!
//! The factory takes `max_workers` and returns an executor that implements
//! [`Executor<TestTask>`](crate::Executor). [`TestTask`] is a plain serde enum with a stable name,
//! so the same cases run on a thread pool, a process pool (register it by
//! [`TestTask::NAME`]) and tokio. Tasks that must block until the test lets them go use a
//! [`Gate`], which works through real files so that it also works across processes.

mod cases;
mod gate;

use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use cases::*;
pub use gate::{Gate, block_on};

use crate::error::TaskError;
use crate::task::Task;

/// The tasks every case uses. Serializable, with a stable name, so that every backend can run it.
///
/// ```
/// use executor_core::Task;
/// use executor_core::conformance::TestTask;
///
/// assert_eq!(TestTask::Value(3).run().unwrap(), 3);
/// assert_eq!(TestTask::Fail("no".into()).run().unwrap_err().message(), "no");
/// assert_eq!(TestTask::Value(3).name(), TestTask::NAME);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TestTask {
    /// Returns the value.
    Value(u64),
    /// Sleeps, then returns the value.
    Sleep {
        /// How long.
        millis: u64,
        /// What to return.
        value: u64,
    },
    /// Panics with the message.
    Panic(String),
    /// Fails with the message as its own error.
    Fail(String),
    /// Creates `started`, waits until `release` exists (at most a minute, then fails), returns
    /// the value. Made by [`Gate::task`].
    Block {
        /// Created when the task starts.
        started: PathBuf,
        /// Waited for.
        release: PathBuf,
        /// What to return.
        value: u64,
    },
    /// Creates the file and returns the value: proof that the task ran.
    Touch {
        /// The file to create.
        path: PathBuf,
        /// What to return.
        value: u64,
    },
}

impl TestTask {
    /// The stable name a process backend registers this task under.
    pub const NAME: &'static str = "executor_core::conformance::TestTask";
}

/// How long a [`TestTask::Block`] waits for its release before failing, so nothing hangs.
const BLOCK_LIMIT: Duration = Duration::from_secs(60);

impl Task for TestTask {
    type Output = u64;

    fn run(self) -> Result<u64, TaskError> {
        match self {
            TestTask::Value(v) => Ok(v),
            TestTask::Sleep { millis, value } => {
                std::thread::sleep(Duration::from_millis(millis));
                Ok(value)
            }
            TestTask::Panic(message) => panic!("{message}"),
            TestTask::Fail(message) => Err(TaskError::msg(message)),
            TestTask::Block {
                started,
                release,
                value,
            } => {
                std::fs::write(&started, b"").map_err(TaskError::from_error)?;
                let limit = Instant::now() + BLOCK_LIMIT;
                while !release.exists() {
                    if Instant::now() > limit {
                        return Err(TaskError::msg("gate was never released"));
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                Ok(value)
            }
            TestTask::Touch { path, value } => {
                std::fs::write(&path, b"").map_err(TaskError::from_error)?;
                Ok(value)
            }
        }
    }

    fn name(&self) -> &'static str {
        TestTask::NAME
    }
}

/// Generates one `#[test]` per conformance case for the executor the factory makes.
///
/// ```text
/// executor_core::conformance_suite!(|max_workers| MyPool::new(max_workers));
/// ```
#[macro_export]
macro_rules! conformance_suite {
    ($factory:expr) => {
        $crate::conformance_suite!(@cases $factory;
            submit_returns_pending_future_then_value,
            task_panic_fails_only_its_future,
            task_error_fails_only_its_future,
            cancel_queued_task_never_runs,
            cancel_running_task_returns_false,
            result_timeout_then_value,
            done_callback_runs_in_parent_with_value,
            map_yields_in_input_order,
            map_failed_item_keeps_its_slot,
            map_rejects_zero_chunksize_and_buffersize,
            map_buffersize_consumes_lazily,
            map_auto_chunksize_batches_cheap_tasks,
            map_auto_chunksize_keeps_slow_tasks_apart,
            map_timeout_yields_error_and_cancels_rest,
            map_drop_cancels_unstarted,
            submit_after_shutdown_hands_task_back,
            shutdown_is_idempotent,
            shutdown_wait_runs_queued_tasks,
            shutdown_cancel_futures_cancels_queued,
            drop_waits_for_tasks,
            wait_and_as_completed_see_executor_futures,
            futures_of_two_executors_in_one_wait,
            await_executor_future,
        );
    };
    (@cases $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::$case(&$factory);
            }
        )*
    };
}
