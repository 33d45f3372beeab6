//! Python's `concurrent.futures` contract on tokio, for I/O fan-out: [`AsyncExecutor`] runs
//! async tasks ([`AsyncExecutor::submit_async`]) and blocking tasks (any
//! [`Task`](executor_core::Task), through [`Executor`](executor_core::Executor)) on a runtime it
//! owns or one you hand it, at most `max_workers` at once; the others wait as PENDING futures
//! that `cancel()` can still stop (rule M2). The futures are `executor-core`'s: awaitable from
//! async code, blocking-waitable from plain threads, and waitable together with futures of any
//! other backend.
//!
//! ```
//! use std::time::Duration;
//! use executor_core::{ReturnWhen, Waitable, wait, Executor};
//! use backend_async::AsyncExecutor;
//! use backend_threads::ThreadPoolExecutor;
//!
//! let io = AsyncExecutor::new(64).unwrap();
//! let cpu = ThreadPoolExecutor::new(2).unwrap();
//! let body = io
//!     .submit_async(async {
//!         tokio::time::sleep(Duration::from_millis(20)).await; // a download, say
//!         vec![0u8; 1024]
//!     })
//!     .unwrap();
//! let digest = cpu.submit(|| 0xbeef_u32).unwrap();
//! let both: [&dyn Waitable; 2] = [&body, &digest];
//! assert_eq!(wait(both, Some(Duration::from_secs(5)), ReturnWhen::AllCompleted).done.len(), 2);
//! ```
//!
//! Stopping a *running* async task at its next `.await` is a separate, explicitly named
//! operation, [`AsyncExecutor::stop`]; `cancel()` keeps Python's meaning (rule M4).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod builder;
mod executor;

pub use builder::{AsyncExecutorBuilder, BuildError};
pub use executor::AsyncExecutor;
