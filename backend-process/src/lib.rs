//! Python's `ProcessPoolExecutor`: tasks run in worker processes, crossing the boundary with
//! serde, found in the worker by a stable registered name.
//!
//! Three things make a binary able to use [`ProcessPoolExecutor`]:
//!
//! 1. a task type that is a [`RemoteTask`] (a serde [`Task`](executor_core::Task) with a stable
//!    name), registered once with [`register!`];
//! 2. [`worker_main`] as the first line of `main` (the pool re-executes the binary as its
//!    workers; in a worker this line serves tasks and never returns);
//! 3. in a `cargo test` integration test binary, [`test_worker!`] instead of (2).
//!
//! ```no_run
//! use serde::{Deserialize, Serialize};
//! use executor_core::{Executor, Task, TaskError};
//! use backend_process::{ProcessPoolExecutor, RemoteTask};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Square(u64);
//!
//! impl Task for Square {
//!     type Output = u64;
//!     fn run(self) -> Result<u64, TaskError> {
//!         Ok(self.0 * self.0)
//!     }
//! }
//! impl RemoteTask for Square {
//!     const NAME: &'static str = "example::square";
//! }
//! backend_process::register!(Square);
//!
//! fn main() {
//!     backend_process::worker_main();
//!     let pool = ProcessPoolExecutor::new(2).unwrap();
//!     let f = pool.submit(Square(12)).unwrap();
//!     assert_eq!(f.into_result().unwrap(), 144);
//! }
//! ```
//!
//! What may cross is checked by the compiler: a closure, or a task holding an `Rc`, is not a
//! `RemoteTask` and is refused at the call site.
//!
//! ```compile_fail
//! use executor_core::Executor;
//! let pool = backend_process::ProcessPoolExecutor::new(1).unwrap();
//! pool.submit(|| 1); // a closure has no stable name and cannot be serialized
//! ```
//!
//! Workers talk to the pool only over their own stdin and stdout pipes, so nothing another user
//! could connect to exists; a worker whose parent dies is killed with it. The pipes are the
//! protocol's alone: a task's prints go to stderr, and its stdin is empty (`/dev/null`), so that
//! neither the task nor a program it starts can read the requests.
#![deny(missing_docs)]
#![deny(unsafe_code)] // allowed in `inherit`, `page` and `sched` alone

mod builder;
mod codec;
mod inherit;
mod job;
mod page;
mod pool;
mod registry;
mod sched;
mod slot;
mod wire;
mod worker;

pub use builder::{
    BuildError, DEFAULT_MAX_IN_FLIGHT_PER_WORKER, MAX_QUIET_IN_FLIGHT, OnWorkerDeath,
    ProcessPoolBuilder, SEND_AHEAD,
};
pub use pool::ProcessPoolExecutor;
pub use registry::{Registration, RemoteTask};
pub use worker::{TEST_ENTRY, worker_main};

#[doc(hidden)]
pub mod __private {
    pub use inventory;
}

/// Registers a [`RemoteTask`] type so that workers can run it by name. Once per type, at module
/// level.
///
/// ```
/// # #[derive(serde::Serialize, serde::Deserialize)] struct Resize(u32);
/// # impl executor_core::Task for Resize { type Output = u32; fn run(self) -> Result<u32, executor_core::TaskError> { Ok(self.0 / 2) } }
/// # impl backend_process::RemoteTask for Resize { const NAME: &'static str = "docs::resize"; }
/// backend_process::register!(Resize);
/// ```
#[macro_export]
macro_rules! register {
    ($task:ty) => {
        $crate::__private::inventory::submit! {
            $crate::Registration::of::<$task>()
        }
    };
}

/// Makes a `cargo test` integration-test binary able to serve as its own worker: it defines the
/// test [`TEST_ENTRY`], which the pool runs in the re-executed binary (it returns at once in a
/// normal test run).
///
/// ```text
/// // tests/my_pool.rs
/// backend_process::test_worker!();
/// ```
#[macro_export]
macro_rules! test_worker {
    () => {
        #[test]
        fn __backend_process_worker_entry() {
            $crate::worker_main();
        }
    };
}

#[cfg(feature = "conformance")]
mod conformance {
    use executor_core::conformance::TestTask;

    impl crate::RemoteTask for TestTask {
        const NAME: &'static str = TestTask::NAME;
    }

    crate::register!(TestTask);
}
