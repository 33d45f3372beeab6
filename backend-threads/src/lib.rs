//! Python's `ThreadPoolExecutor` on a pool of OS threads: faithful, fast, and unable to deadlock
//! silently.
//!
//! [`ThreadPoolExecutor`] implements the `executor-core` contract ([`Executor`] for every
//! [`Task`], [`Shutdown`], [`Introspect`]) with Python's behaviour: threads start lazily, one per
//! `submit` at most, up to `max_workers` (default `min(32, cores + 4)`), idle threads are reused
//! first, threads are named `{prefix}_{i}`, an initializer runs in each thread and breaks the
//! pool if it fails. Beyond Python: an optional bound on queued tasks (`submit` waits, `try_submit`
//! hands the task back), `map` that really batches `chunksize` items into one queue entry, and no
//! silent deadlocks: a task that waits on a queued task of its own pool runs it itself, and a
//! cycle of waiting tasks fails with a deadlock error naming the cycle.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use executor_core::{Executor, Introspect};
//! use backend_threads::ThreadPoolExecutor;
//!
//! // The blog post's second deadlock: one worker, whose task waits on its own pool.
//! let pool = Arc::new(ThreadPoolExecutor::new(1).unwrap());
//! let same_pool = Arc::clone(&pool);
//! let outer = pool
//!     .submit(move || *same_pool.submit(|| 5u32.pow(2)).unwrap().result(None).unwrap())
//!     .unwrap();
//! assert_eq!(*outer.result(Some(Duration::from_secs(5))).unwrap(), 25);
//! assert_eq!(pool.stats().workers, 1);
//! ```
//!
//! Built on `crossbeam-channel` (see `docs/ARCHITECTURE.md` for why, and why not rayon).
//!
//! [`Executor`]: executor_core::Executor
//! [`Task`]: executor_core::Task
//! [`Shutdown`]: executor_core::Shutdown
//! [`Introspect`]: executor_core::Introspect
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod builder;
mod job;
mod pool;
mod worker;

pub use builder::{BuildError, ThreadPoolBuilder, default_max_workers};
pub use pool::{ThreadPoolExecutor, TrySubmitError};
