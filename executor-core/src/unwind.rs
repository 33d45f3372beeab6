//! All panic plumbing in one place: a panic inside a task or a callback is caught here and turned
//! into a [`TaskError`] or a report, so that no task can kill a worker or poison a lock.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::error::TaskError;

/// Runs `f`, turning a panic into [`TaskError::panic`] with the panic's message.
///
/// `AssertUnwindSafe` is sound here: after a panic the task's state is dropped, never observed
/// again, and the error carries only the message.
pub(crate) fn catch<R>(f: impl FnOnce() -> Result<R, TaskError>) -> Result<R, TaskError> {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|payload| Err(TaskError::panic(panic_message(&*payload))))
}

/// Runs a done callback; a panic is reported on stderr and swallowed, so the remaining callbacks
/// still run (rule B3).
pub(crate) fn run_callback(what: &dyn std::fmt::Display, f: impl FnOnce()) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
        eprintln!(
            "executor-core: a done callback of future {what} panicked: {}",
            panic_message(&*payload)
        );
    }
}

/// The text of a panic payload: `panic!("...")` gives a `&str` or a `String`. For backends that
/// catch panics outside tasks (an initializer, say).
///
/// ```
/// let payload = std::panic::catch_unwind(|| -> u8 { panic!("no {}", "config") }).unwrap_err();
/// assert_eq!(executor_core::panic_message(&*payload), "no config");
/// ```
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}
