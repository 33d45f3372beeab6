//! TUTORIAL_PLACEHOLDER
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod as_completed;
#[cfg(feature = "conformance")]
pub mod conformance;
mod deadline;
pub mod deadlock;
mod error;
mod executor;
mod handle;
mod map;
mod promise;
mod shared;
pub mod state;
mod task;
mod unwind;
mod wait;

pub use as_completed::{AsCompleted, as_completed};
pub use deadlock::{InlineJob, PoolId, WorkerGuard, enter_worker};
pub use error::{
    BrokenExecutor, BrokenKind, CancelledError, DeadlockError, InvalidStateError, MapError,
    NotStarted, RejectReason, ResultError, SubmitError, TaskError, TimeoutError, WaitError,
};
pub use executor::{Executor, MapOptions, Shutdown, ShutdownOptions};
pub use handle::{FutureHandle, Outcome, OutcomeRef};
pub use map::{Batch, MapIter};
pub use promise::Promise;
pub use state::State;
pub use task::{Chunk, Fallible, Task, TaskId, TaskInfo, fallible};
pub use wait::{DoneAndNotDone, ReturnWhen, Waitable, wait};
