//! Helpers shared by the tokio backend's integration tests: a generous bound on every wait, a
//! gate that tasks (async or blocking) wait behind until the test opens it, a concurrency
//! counter, and a runner that turns a hang into a test failure.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// How long any wait in these tests may take before the test fails instead of hanging.
pub const LIMIT: Duration = Duration::from_secs(30);

/// A gate that async and blocking tasks wait behind until the test opens it. Opening is sticky;
/// dropping the [`Opener`] opens it too, so a failing test never leaves tasks stuck behind it.
#[derive(Default)]
pub struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
    notify: tokio::sync::Notify,
}

/// Opens its gate when told to or when dropped.
pub struct Opener(Arc<Gate>);

impl Gate {
    /// A closed gate and the handle that opens it.
    pub fn new() -> (Arc<Gate>, Opener) {
        let gate = Arc::new(Gate::default());
        (Arc::clone(&gate), Opener(gate))
    }

    pub fn is_open(&self) -> bool {
        *self.open.lock().unwrap()
    }

    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
        self.notify.notify_waiters();
    }

    /// Waits (asynchronously) until the gate is open; panics after [`LIMIT`].
    pub async fn pass(&self) {
        let passed = async {
            loop {
                let notified = self.notify.notified();
                let mut notified = std::pin::pin!(notified);
                notified.as_mut().enable();
                if self.is_open() {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(LIMIT, passed)
            .await
            .expect("the test never opened the gate");
    }

    /// Blocks the thread until the gate is open; panics after [`LIMIT`].
    pub fn pass_blocking(&self) {
        let deadline = Instant::now() + LIMIT;
        let mut open = self.open.lock().unwrap();
        while !*open {
            let left = deadline
                .checked_duration_since(Instant::now())
                .expect("the test never opened the gate");
            open = self.opened.wait_timeout(open, left).unwrap().0;
        }
    }
}

impl Opener {
    pub fn open(&self) {
        self.0.open();
    }
}

impl Drop for Opener {
    fn drop(&mut self) {
        self.0.open();
    }
}

/// Counts how many tasks are inside a section at once, and the most there ever were.
#[derive(Default)]
pub struct Occupancy {
    now: AtomicUsize,
    max: AtomicUsize,
}

/// One task inside the section; leaves it when dropped.
pub struct Inside<'a>(&'a Occupancy);

impl Occupancy {
    pub fn enter(&self) -> Inside<'_> {
        // Ordering: SeqCst keeps the reasoning simple; the cost does not matter in tests.
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
        Inside(self)
    }

    pub fn now(&self) -> usize {
        self.now.load(Ordering::SeqCst)
    }

    pub fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }
}

impl Drop for Inside<'_> {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs `f` on a thread of its own and returns its result; fails the test if it does not return
/// within [`LIMIT`] (a hang) and re-raises its panic. The thread is left behind on a hang.
#[track_caller]
pub fn within<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    let thread = thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(LIMIT) {
        Ok(value) => {
            thread.join().expect("the thread sent its result");
            value
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what} did not return within {LIMIT:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => match thread.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the thread ended without sending"),
        },
    }
}

/// Receives one message within [`LIMIT`], or fails the test naming what was awaited.
#[track_caller]
pub fn recv<T>(rx: &mpsc::Receiver<T>, what: &str) -> T {
    rx.recv_timeout(LIMIT)
        .unwrap_or_else(|e| panic!("{what}: nothing received within {LIMIT:?} ({e})"))
}

/// Spins (yielding) until `condition` holds; fails the test after [`LIMIT`].
#[track_caller]
pub fn until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !condition() {
        assert!(Instant::now() < deadline, "{what}: not within {LIMIT:?}");
        thread::yield_now();
    }
}

/// A current-thread runtime with timers (the tests' timeouts need them).
pub fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime")
}
