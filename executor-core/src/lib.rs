//! Python's `concurrent.futures`, done right, in Rust: one future handle and one executor
//! contract for every backend (threads, processes, tokio).
//!
//! This crate holds what every backend shares: the [`FutureHandle`] (Python's `Future`) and its
//! producer side [`Promise`], the [`Executor`] and [`Shutdown`] traits with `submit`, `map` and
//! `shutdown`, [`wait`] and [`as_completed`] over futures of any mix of executors, and the error
//! family. The behaviour is Python's, rule by rule (the project's `SEMANTICS.md`), fixed where
//! Python is wrong, and typed where Rust can do better.
//!
//! The examples below use a small reference pool (a fixed set of threads around a queue, built
//! on this crate's public executor-author API); the backends (`backend-threads`,
//! `backend-process`, `backend-async`) are used the same way.
//!
//! # Submit a task, get a future
//!
//! Any `FnOnce() -> R + Send + 'static` closure is a [`Task`]. `submit` returns a pending future
//! at once; [`FutureHandle::result`] waits for the outcome (with an optional timeout, which is a
//! deadline) and may be called any number of times, from any number of threads.
//!
//! ```
//! # mod reference { include!("../doc/reference_pool.rs"); }
//! # use reference::ReferencePool;
//! use std::time::Duration;
//! use executor_core::{Executor, FutureHandle};
//!
//! let pool = ReferencePool::new(4);
//! let future: FutureHandle<u64> = pool.submit(|| 323u64.pow(3)).unwrap();
//! assert_eq!(*future.result(Some(Duration::from_secs(5))).unwrap(), 33_698_267);
//! assert_eq!(future.into_result().unwrap(), 33_698_267); // or move the value out
//! ```
//!
//! # Map over many inputs, in order
//!
//! [`Executor::map`] yields one `Result` per input, in input order; a failing item is an error in
//! its own slot and does not end the iteration. [`MapOptions`] carries Python's `timeout`,
//! `chunksize` (several items per unit of work) and `buffersize` (lazy, bounded submission).
//!
//! ```
//! # mod reference { include!("../doc/reference_pool.rs"); }
//! # use reference::ReferencePool;
//! use executor_core::{Executor, MapOptions};
//!
//! fn is_prime(n: u64) -> bool {
//!     n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
//! }
//!
//! let pool = ReferencePool::new(2);
//! let numbers = [112272535095293u64, 112582705942171, 115280095190773, 1099726899285419];
//! let tasks = numbers.map(|n| move || is_prime(n));
//! let primes: Vec<bool> = pool
//!     .map(tasks, MapOptions::new().chunksize(2))
//!     .unwrap()
//!     .map(Result::unwrap)
//!     .collect();
//! assert_eq!(primes, [true, true, true, false]);
//! ```
//!
//! # Wait for several futures, or take them as they complete
//!
//! [`wait`] returns the done and not-done futures when a [`ReturnWhen`] condition holds or the
//! timeout passes; [`as_completed`] yields futures in completion order. Both accept futures from
//! different executors and of different output types (as `&dyn Waitable`).
//!
//! ```
//! # mod reference { include!("../doc/reference_pool.rs"); }
//! # use reference::ReferencePool;
//! use executor_core::{Executor, ReturnWhen, Waitable, as_completed, wait};
//!
//! let (threads, other) = (ReferencePool::new(2), ReferencePool::new(1));
//! let sizes = threads.submit(|| vec![64usize; 3]).unwrap();
//! let name = other.submit(|| String::from("blob-7")).unwrap();
//!
//! let mixed: [&dyn Waitable; 2] = [&sizes, &name];
//! let done = wait(mixed, None, ReturnWhen::AllCompleted);
//! assert_eq!(done.done.len(), 2);
//!
//! let urls = ["a", "b", "c"].map(|u| threads.submit(move || u.len()).unwrap());
//! let total: usize = as_completed(&urls, None).map(|f| *f.unwrap().result(None).unwrap()).sum();
//! assert_eq!(total, 3);
//! ```
//!
//! # Cancel what has not started
//!
//! [`FutureHandle::cancel`] succeeds only while the task is pending; a cancelled future is done
//! for every waiter at once. Done callbacks run when the future completes or is cancelled.
//!
//! ```
//! use executor_core::{Promise, State};
//!
//! let (promise, future) = Promise::<u32>::named("resize");
//! future.add_done_callback(|f| assert!(f.cancelled()));
//! assert!(future.cancel());
//! assert_eq!(future.state(), State::Cancelled);
//! assert!(promise.set_running_or_notify_cancel().is_err()); // the worker skips it
//! ```
//!
//! # Shut down
//!
//! [`Shutdown::shutdown`] stops accepting work; with `wait` it returns once everything queued
//! has run, with `cancel_futures` it cancels what has not started. Dropping an executor is
//! `shutdown(wait)`, like leaving Python's `with` block. A refused task comes back in the error.
//!
//! ```
//! # mod reference { include!("../doc/reference_pool.rs"); }
//! # use reference::ReferencePool;
//! use executor_core::{Executor, Shutdown, ShutdownOptions};
//!
//! let pool = ReferencePool::new(1);
//! let queued = pool.submit(|| 1).unwrap();
//! pool.shutdown(ShutdownOptions::wait());
//! assert_eq!(*queued.result(None).unwrap(), 1);
//!
//! let refused = pool.submit(|| 2).unwrap_err();
//! assert_eq!(refused.to_string(), "cannot schedule new futures after shutdown");
//! let task = refused.into_inner(); // yours again
//! assert_eq!(task(), 2);
//! ```
//!
//! # Errors
//!
//! Each operation has its own error type: [`ResultError`]
//! from `result` (cancelled, timeout, the task failed, deadlock), [`TaskError`] for a task's
//! panic or own error (with its message, the task's name and id, and for processes the worker's
//! pid and backtrace), [`SubmitError`] handing the task back, [`MapError`] naming the bad option,
//! [`InvalidStateError`] for the producer, [`BrokenExecutor`] for a pool that cannot go on.
//! Closures whose `Err` should fail the future are wrapped in [`fallible`].
//!
//! ```
//! # mod reference { include!("../doc/reference_pool.rs"); }
//! # use reference::ReferencePool;
//! use executor_core::{Executor, ResultError, fallible};
//!
//! let pool = ReferencePool::new(1);
//! let f = pool.submit(fallible(|| "x1".parse::<u8>())).unwrap();
//! match f.result(None) {
//!     Err(ResultError::Failed(e)) => {
//!         assert!(e.is_error());
//!         assert!(e.downcast_ref::<std::num::ParseIntError>().is_some());
//!     }
//!     other => panic!("{other:?}"),
//! }
//! let p = pool.submit(|| -> u8 { panic!("bad pixel") }).unwrap();
//! assert!(p.result(None).unwrap_err().to_string().contains("panicked: bad pixel"));
//! ```
//!
//! # Async
//!
//! A handle is awaitable on any runtime: `future.await` moves the value out, `(&future).await`
//! borrows it.
//!
//! ```
//! # mod reference { include!("../doc/reference_pool.rs"); }
//! # use reference::ReferencePool;
//! use executor_core::Executor;
//! # fn block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     let waker = std::task::Waker::noop();
//! #     let mut cx = std::task::Context::from_waker(&waker);
//! #     let mut f = std::pin::pin!(f);
//! #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } std::thread::yield_now(); }
//! # }
//!
//! let pool = ReferencePool::new(1);
//! let f = pool.submit(|| "downloaded").unwrap();
//! let body = block_on(async move { f.await }).unwrap();
//! assert_eq!(body, "downloaded");
//! ```
//!
//! # Python → Rust
//!
//! | Python `concurrent.futures`            | here                                                     |
//! |----------------------------------------|----------------------------------------------------------|
//! | `Future`                               | [`FutureHandle<T>`]                                       |
//! | `Future()` + `set_result` / `set_exception` | [`Promise::new`], [`Promise::set_result`] / [`Promise::set_error`] |
//! | `set_running_or_notify_cancel()`       | [`Promise::set_running_or_notify_cancel`]                 |
//! | `f.result(timeout)`                    | [`FutureHandle::result`] (`&T`), [`FutureHandle::into_result`] (`T`), `.await` |
//! | `f.exception(timeout)`                 | [`FutureHandle::error`]                                   |
//! | `f.cancel()`, `cancelled()`, `running()`, `done()` | same names                                    |
//! | `f.add_done_callback(fn)`              | [`FutureHandle::add_done_callback`]                       |
//! | `Executor.submit(fn, *args)`           | [`Executor::submit`] with a closure or a [`Task`] type    |
//! | `Executor.map(fn, *it, timeout, chunksize, buffersize)` | [`Executor::map`] with [`MapOptions`]    |
//! | `Executor.shutdown(wait, cancel_futures)` | [`Shutdown::shutdown`] with [`ShutdownOptions`]        |
//! | `with executor:`                       | drop the executor                                        |
//! | `wait(fs, timeout, return_when)`       | [`wait`] with [`ReturnWhen`]                              |
//! | `as_completed(fs, timeout)`            | [`as_completed`]                                          |
//! | `CancelledError`, `TimeoutError`, `InvalidStateError` | [`CancelledError`], [`TimeoutError`], [`InvalidStateError`] |
//! | `BrokenExecutor`, `BrokenThreadPool`, `BrokenProcessPool` | [`BrokenExecutor`] with [`BrokenKind`] |
//! | `RuntimeError` after shutdown          | [`SubmitError`] (the task comes back)                      |
//! | —                                      | [`DeadlockError`]: a wait cycle between tasks, reported instead of hanging |
//!
//! # Where each rule is tested
//!
//! `docs/ARCHITECTURE.md` keeps the map from every rule of the project's `SEMANTICS.md` to the
//! test that checks it. With the `conformance` feature, `conformance_suite!` runs the
//! backend-agnostic cases against any executor.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod as_completed;
pub mod blocking;
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
pub use blocking::{BlockingPolicy, BlockingRefused, PolicyGuard, blocking_policy};
pub use deadlock::{InlineJob, PoolId, WorkerGuard, current_pool, enter_worker};
pub use error::{
    BrokenExecutor, BrokenKind, CancelledError, DeadlockError, InvalidStateError, MapError,
    NotStarted, RejectReason, ResultError, SubmitError, TaskError, TimeoutError, WaitError,
};
pub use executor::{
    AUTO_CHUNK_MAX, AUTO_CHUNK_TARGET, Executor, Introspect, MapOptions, PoolStats, Shutdown,
    ShutdownOptions,
};
pub use handle::{FutureHandle, Outcome, OutcomeRef};
pub use map::{Batch, LazyOutcomes, MapIter};
pub use promise::{Promise, Revoker};
pub use state::State;
pub use task::{Chunk, Fallible, RunTimer, Task, TaskId, TaskInfo, fallible};
pub use unwind::panic_message;
pub use wait::{DoneAndNotDone, ReturnWhen, Waitable, wait};
