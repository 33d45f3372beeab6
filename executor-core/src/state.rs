//! The future's state machine, written down once.
//!
//! ```text
//!             set_running_or_notify_cancel            set_result / set_error
//!   PENDING ───────────────────────────────▶ RUNNING ───────────────────────▶ FINISHED
//!      │  └──────────────────────────────────────────────────────────────────▶   ▲
//!      │                      set_result / set_error (a bare future, rule A5)     │
//!      │ cancel()
//!      ▼
//!  CANCELLED
//! ```
//!
//! | from \ event | `cancel()`            | start (producer)       | complete (producer)      |
//! |--------------|-----------------------|------------------------|--------------------------|
//! | PENDING      | → CANCELLED, `true`   | → RUNNING              | → FINISHED               |
//! | RUNNING      | unchanged, `false`    | invalid state          | → FINISHED               |
//! | FINISHED     | unchanged, `false`    | invalid state          | invalid state            |
//! | CANCELLED    | unchanged, `true`     | "was cancelled"        | invalid state            |
//!
//! Every transition is made while holding the future's lock, so "cancel" and "start" on a pending
//! future are one atomic decision (rule A2): exactly one of them wins. The state is also mirrored
//! in an atomic so that `done()` and friends never take the lock; that mirror is written with
//! `Release` after the outcome is stored and read with `Acquire`, so a reader that sees
//! [`State::Finished`] also sees the outcome.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};

/// Where a future is in its life (Python's `PENDING`, `RUNNING`, `FINISHED`, `CANCELLED`).
///
/// ```
/// use executor_core::{Promise, State};
///
/// let (promise, future) = Promise::<u32>::new();
/// assert_eq!(future.state(), State::Pending);
/// promise.set_result(7).unwrap();
/// assert_eq!(future.state(), State::Finished);
/// assert!(State::Finished.is_done() && State::Cancelled.is_done());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum State {
    /// Submitted, not started; the only state from which `cancel()` succeeds.
    Pending = 0,
    /// A worker has started the task.
    Running = 1,
    /// The task produced a value or failed. Terminal.
    Finished = 2,
    /// Cancelled before it started. Terminal.
    Cancelled = 3,
}

impl State {
    /// `true` for the two terminal states, [`State::Finished`] and [`State::Cancelled`].
    ///
    /// ```
    /// assert!(!executor_core::State::Running.is_done());
    /// ```
    pub const fn is_done(self) -> bool {
        matches!(self, State::Finished | State::Cancelled)
    }

    /// Python's name for the state (`"PENDING"`, `"RUNNING"`, `"FINISHED"`, `"CANCELLED"`).
    ///
    /// ```
    /// assert_eq!(executor_core::State::Cancelled.as_str(), "CANCELLED");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Pending => "PENDING",
            State::Running => "RUNNING",
            State::Finished => "FINISHED",
            State::Cancelled => "CANCELLED",
        }
    }

    fn from_u8(raw: u8) -> State {
        match raw {
            0 => State::Pending,
            1 => State::Running,
            2 => State::Finished,
            3 => State::Cancelled,
            other => unreachable!("future state word holds {other}, which names no state"),
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The lock-free mirror of a future's state. Written only under the future's lock.
#[derive(Debug)]
pub(crate) struct AtomicState(AtomicU8);

impl AtomicState {
    pub(crate) const fn new() -> Self {
        AtomicState(AtomicU8::new(State::Pending as u8))
    }

    /// Ordering: `Acquire` pairs with the `Release` in [`AtomicState::store`], so a reader that
    /// sees `Finished` also sees the outcome written before it.
    pub(crate) fn load(&self) -> State {
        State::from_u8(self.0.load(Ordering::Acquire))
    }

    /// Only called with the future's lock held (see the module docs).
    pub(crate) fn store(&self, state: State) {
        self.0.store(state as u8, Ordering::Release);
    }
}
