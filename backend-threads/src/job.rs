//! A queued task: the worker runs it, a waiting worker of the same pool may run it inline
//! (rule K2), shutdown may cancel it, a broken pool fails it. Whoever takes it first wins; the
//! others find it empty.

use executor_core::{InlineJob, Promise, Task, TaskError};
use parking_lot::Mutex;

/// What the pool can do with a queued task, whatever its type.
pub(crate) trait PoolJob: InlineJob {
    /// Runs the task unless someone took it or it was cancelled; `true` if this call ran it.
    /// `before_complete` is called after the task returns, before its future completes.
    fn run(&self, before_complete: &mut dyn FnMut()) -> bool;
    /// Cancels the future, dropping the task unrun (`shutdown(cancel_futures)`).
    fn cancel(&self);
    /// Fails the future without running the task (a broken pool). A future that was cancelled
    /// meanwhile stays cancelled, and the drain goes on (rule J4's FIX).
    fn fail(&self, error: TaskError);
}

pub(crate) struct Queued<T: Task> {
    slot: Mutex<Option<(Promise<T::Output>, T)>>,
}

impl<T: Task> Queued<T> {
    pub(crate) fn new(promise: Promise<T::Output>, task: T) -> Self {
        Queued {
            slot: Mutex::new(Some((promise, task))),
        }
    }

    fn take(&self) -> Option<(Promise<T::Output>, T)> {
        self.slot.lock().take()
    }
}

impl<T: Task> InlineJob for Queued<T> {
    /// A worker of this pool, blocked on this task's future, runs it itself (rule K2).
    fn run_inline(&self) {
        crate::worker::run_inline(|| self.run(&mut || {}));
    }
}

impl<T: Task> PoolJob for Queued<T> {
    fn run(&self, before_complete: &mut dyn FnMut()) -> bool {
        match self.take() {
            Some((promise, task)) => promise.run_with(task, before_complete),
            None => false,
        }
    }

    fn cancel(&self) {
        if let Some((promise, task)) = self.take() {
            promise.cancel();
            drop(task);
        }
    }

    fn fail(&self, error: TaskError) {
        if let Some((promise, task)) = self.take() {
            drop(task);
            // A cancelled future refuses the error: that is fine, it is done either way.
            let _ = promise.set_error(error);
        }
    }
}
