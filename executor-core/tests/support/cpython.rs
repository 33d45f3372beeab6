//! Stand-ins shared by the ports of CPython's `test_concurrent_futures` (`cpython_test_*.rs`),
//! which declare this module with `#[path = "support/cpython.rs"] mod cpython_support;` and use
//! only the part they need.
//!
//! The core crate has no pool, so [`Threads`] stands in for CPython's executor: each `submit`
//! runs its task on a fresh std thread through [`Promise::run`], and dropping it joins them
//! (CPython's `tearDown` calls `shutdown(wait=True)`). CPython's `util.py` fixtures are bare
//! futures driven into their state through a [`Promise`] (rule A5).

use std::io;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use executor_core::{FutureHandle, NotStarted, Promise, Task, TaskError};

/// A deadline for "waits for something another thread does right away": long enough never to be
/// hit on a loaded machine, short enough that a bug fails the test instead of hanging it.
pub const GENEROUS: Duration = Duration::from_secs(60);

// ---- stand-ins for CPython's executor and its task functions --------------------------------

/// The executor fixture: one thread per task; dropping it joins them all.
#[derive(Default)]
pub struct Threads(Vec<JoinHandle<()>>);

impl Threads {
    pub fn submit<K: Task>(&mut self, task: K) -> FutureHandle<K::Output>
    where
        K::Output: Sync,
    {
        let (promise, future) = Promise::for_task(&task);
        self.0.push(thread::spawn(move || {
            promise.run(task);
        }));
        future
    }
}

impl Drop for Threads {
    fn drop(&mut self) {
        // After a failed assertion a task may still be blocked on an event nobody will set.
        if !thread::panicking() {
            for t in self.0.drain(..) {
                t.join().unwrap();
            }
        }
    }
}

/// Python's `threading.Event`; a task blocked on one stands in for CPython's `time.sleep(n)`
/// task, without guessing how long "long enough" is.
#[derive(Clone, Default)]
pub struct Event(Arc<(Mutex<bool>, Condvar)>);

impl Event {
    pub fn set(&self) {
        *self.0.0.lock().unwrap() = true;
        self.0.1.notify_all();
    }

    pub fn wait(&self) {
        let mut set = self.0.0.lock().unwrap();
        while !*set {
            set = self.0.1.wait(set).unwrap();
        }
    }
}

pub fn mul(x: i32, y: i32) -> i32 {
    x * y
}

// ---- CPython's util.py fixtures, built with promises ----------------------------------------

/// `PENDING_FUTURE`: the promise is returned so that the future is not abandoned.
pub fn pending_future() -> (Promise<i32>, FutureHandle<i32>) {
    Promise::named("PENDING_FUTURE")
}

/// `RUNNING_FUTURE`.
pub fn running_future() -> (Promise<i32>, FutureHandle<i32>) {
    let (p, f) = Promise::named("RUNNING_FUTURE");
    p.set_running_or_notify_cancel().unwrap();
    (p, f)
}

/// `CANCELLED_FUTURE`: cancelled; its producer has not looked at it yet (it would be told when
/// it dequeues the task). The promise is returned to keep it that way.
pub fn cancelled_future() -> (Promise<i32>, FutureHandle<i32>) {
    let (p, f) = Promise::named("CANCELLED_FUTURE");
    assert!(f.cancel());
    (p, f)
}

/// `CANCELLED_AND_NOTIFIED_FUTURE`: cancelled, and its producer was told so and dropped the task.
pub fn cancelled_and_notified_future() -> FutureHandle<i32> {
    let (p, f) = Promise::named("CANCELLED_AND_NOTIFIED_FUTURE");
    assert!(f.cancel());
    assert_eq!(p.set_running_or_notify_cancel(), Err(NotStarted::Cancelled));
    f
}

/// `EXCEPTION_FUTURE`: finished with CPython's `OSError()`, here an `io::Error`.
pub fn exception_future() -> FutureHandle<i32> {
    let (p, f) = Promise::named("EXCEPTION_FUTURE");
    p.set_error(TaskError::from_error(io::Error::other("OSError")))
        .unwrap();
    f
}

/// `SUCCESSFUL_FUTURE`: finished with 42.
pub fn successful_future() -> FutureHandle<i32> {
    let (p, f) = Promise::named("SUCCESSFUL_FUTURE");
    p.set_result(42).unwrap();
    f
}
