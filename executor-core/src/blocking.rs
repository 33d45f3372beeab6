//! Blocking waits on threads that must not block (rule M3): an async runtime's worker thread
//! that parks in `result()` stalls every task scheduled on it, and on a single-threaded runtime
//! it waits forever for a task that can only run on that very thread.
//!
//! An async backend declares, for the code it polls, how a blocking wait must behave there
//! ([`BlockingPolicy`], set with [`blocking_policy`]): run it in a section the runtime knows
//! about (tokio's `block_in_place`), or refuse it with [`ResultError::Refused`] naming what to do
//! instead. Every blocking wait of this crate (`result`, `error`, `into_result`, `wait`,
//! `as_completed`, `map`) consults the policy before it parks; threads without a policy block as
//! usual.
//!
//! [`ResultError::Refused`]: crate::ResultError::Refused

use std::cell::Cell;
use std::fmt;

/// How a blocking wait behaves on the current thread.
///
/// ```
/// use executor_core::{BlockingPolicy, blocking_policy};
///
/// fn in_section(wait: &mut dyn FnMut()) {
///     wait(); // an async runtime would tell its scheduler first
/// }
/// let _guard = blocking_policy(BlockingPolicy::Wrap(in_section));
/// ```
#[derive(Clone, Copy)]
pub enum BlockingPolicy {
    /// Run the blocking part of the wait inside this function (for example tokio's
    /// `block_in_place`), which must call its argument exactly once.
    Wrap(fn(&mut dyn FnMut())),
    /// Do not block: fail the wait with [`BlockingRefused`] carrying this advice.
    Refuse(&'static str),
}

impl fmt::Debug for BlockingPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockingPolicy::Wrap(_) => f.write_str("Wrap(..)"),
            BlockingPolicy::Refuse(advice) => f.debug_tuple("Refuse").field(advice).finish(),
        }
    }
}

thread_local! {
    static POLICY: Cell<Option<BlockingPolicy>> = const { Cell::new(None) };
}

/// Sets this thread's policy until the guard is dropped (then the previous one is back).
///
/// ```
/// use std::time::Duration;
/// use executor_core::{BlockingPolicy, Promise, ResultError, blocking_policy};
///
/// let (_p, f) = Promise::<u8>::new();
/// let guard = blocking_policy(BlockingPolicy::Refuse("await the future instead"));
/// assert!(matches!(f.result(None), Err(ResultError::Refused(_))));
/// // Polling never blocks, so it is always allowed.
/// assert!(f.result(Some(Duration::ZERO)).unwrap_err().is_timeout());
/// drop(guard);
/// ```
pub fn blocking_policy(policy: BlockingPolicy) -> PolicyGuard {
    PolicyGuard {
        previous: POLICY.with(|p| p.replace(Some(policy))),
    }
}

/// Restores the previous policy when dropped; see [`blocking_policy`].
///
/// ```
/// drop(executor_core::blocking_policy(executor_core::BlockingPolicy::Refuse("no")));
/// ```
#[must_use = "the policy ends when the guard is dropped"]
#[derive(Debug)]
pub struct PolicyGuard {
    previous: Option<BlockingPolicy>,
}

impl Drop for PolicyGuard {
    fn drop(&mut self) {
        POLICY.with(|p| p.set(self.previous));
    }
}

/// A blocking wait was refused on a thread that must not block.
///
/// ```
/// use executor_core::{BlockingPolicy, Promise, ResultError, blocking_policy};
/// let (_p, f) = Promise::<u8>::new();
/// let _g = blocking_policy(BlockingPolicy::Refuse("use `.await`"));
/// let ResultError::Refused(e) = f.result(None).unwrap_err() else { panic!() };
/// assert_eq!(e.to_string(), "refused to block this thread: use `.await`");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockingRefused {
    /// Boxed to keep `ResultError` (and so every `map` item) small.
    advice: Box<Advice>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Advice(&'static str);

impl BlockingRefused {
    /// What to do instead.
    ///
    /// ```
    /// use executor_core::{BlockingPolicy, Promise, ResultError, blocking_policy};
    /// let (_p, f) = Promise::<u8>::new();
    /// let _g = blocking_policy(BlockingPolicy::Refuse("await it"));
    /// let ResultError::Refused(e) = f.result(None).unwrap_err() else { panic!() };
    /// assert_eq!(e.advice(), "await it");
    /// ```
    pub fn advice(&self) -> &'static str {
        self.advice.0
    }
}

impl fmt::Display for BlockingRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refused to block this thread: {}", self.advice.0)
    }
}

impl std::error::Error for BlockingRefused {}

/// Runs `wait` (which may park the thread) under this thread's policy. `Err` if refused.
pub(crate) fn block<R>(wait: impl FnOnce() -> R) -> Result<R, BlockingRefused> {
    match POLICY.with(Cell::get) {
        None => Ok(wait()),
        Some(BlockingPolicy::Refuse(advice)) => Err(BlockingRefused {
            advice: Box::new(Advice(advice)),
        }),
        Some(BlockingPolicy::Wrap(section)) => {
            let mut wait = Some(wait);
            let mut result = None;
            section(&mut || {
                if let Some(wait) = wait.take() {
                    result = Some(wait());
                }
            });
            match result {
                Some(result) => Ok(result),
                None => unreachable!("a blocking-policy section did not call its argument"),
            }
        }
    }
}
