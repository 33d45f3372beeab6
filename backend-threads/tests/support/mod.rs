//! Helpers shared by several integration tests of this crate. Each test file is its own crate
//! and declares this module with `mod support;`, using only the part it needs:
//!
//! - [`Latch`] (with [`OpenOnDrop`]) holds the pool's workers, so that "queued", "blocked" and
//!   "running" situations are deterministic (`backpressure.rs`, `introspection.rs`,
//!   `map_chunks.rs`);
//! - [`Event`], [`Counter`] and [`thread_name`] are the Python stand-ins of the CPython ports
//!   (`cpython_test_*.rs`).
//!
//! Every wait here is bounded by [`LIMIT`], so that a bug fails a test instead of hanging it.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The bound on every wait for something that should happen promptly: generous, so that only a
/// real hang reaches it.
pub const LIMIT: Duration = Duration::from_secs(30);

// ---- holding the workers --------------------------------------------------------------------

/// Holds tasks until opened; counts the tasks that reached it. A held task gives up (panics,
/// failing only its own future or item) after [`LIMIT`], so a broken pool cannot hang the suite.
#[derive(Default)]
pub struct Latch {
    state: Mutex<(bool, usize)>,
    changed: Condvar,
}

impl Latch {
    pub fn new() -> Arc<Latch> {
        Arc::new(Latch::default())
    }

    /// Called inside a task: announce the start, then wait until opened.
    pub fn hold(&self) {
        let mut state = self.state.lock().unwrap();
        state.1 += 1;
        self.changed.notify_all();
        let deadline = Instant::now() + LIMIT;
        while !state.0 {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "the latch was never opened");
            state = self.changed.wait_timeout(state, left).unwrap().0;
        }
    }

    /// Waits until `n` tasks have reached the latch.
    pub fn wait_started(&self, n: usize) {
        let deadline = Instant::now() + LIMIT;
        let mut state = self.state.lock().unwrap();
        while state.1 < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "only {} of {n} held tasks started",
                state.1
            );
            state = self.changed.wait_timeout(state, left).unwrap().0;
        }
    }

    pub fn open(&self) {
        self.state.lock().unwrap().0 = true;
        self.changed.notify_all();
    }

    /// Opens the latch when dropped, so a failing test does not leave workers held.
    pub fn opener(self: &Arc<Self>) -> OpenOnDrop {
        OpenOnDrop(Arc::clone(self))
    }
}

/// Opens its [`Latch`] when dropped (see [`Latch::opener`]).
pub struct OpenOnDrop(Arc<Latch>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

// ---- Python stand-ins for the CPython ports -------------------------------------------------

/// Python's `threading.Event`, whose `wait` gives up (panics) after [`LIMIT`].
#[derive(Clone, Default)]
pub struct Event(Arc<(Mutex<bool>, Condvar)>);

impl Event {
    pub fn set(&self) {
        let (flag, changed) = &*self.0;
        *flag.lock().unwrap() = true;
        changed.notify_all();
    }

    pub fn wait(&self) {
        let (flag, changed) = &*self.0;
        let (set, _) = changed
            .wait_timeout_while(flag.lock().unwrap(), LIMIT, |set| !*set)
            .unwrap();
        assert!(*set, "event not set within {LIMIT:?}");
    }
}

/// A counter that can be waited on (tasks count themselves as started), and a semaphore
/// (`acquire` takes one unit, waiting for it at most [`LIMIT`]).
#[derive(Clone, Default)]
pub struct Counter(Arc<(Mutex<usize>, Condvar)>);

impl Counter {
    pub fn add(&self, n: usize) {
        let (count, changed) = &*self.0;
        *count.lock().unwrap() += n;
        changed.notify_all();
    }

    pub fn wait_for(&self, n: usize) {
        let (count, changed) = &*self.0;
        let (count, _) = changed
            .wait_timeout_while(count.lock().unwrap(), LIMIT, |c| *c < n)
            .unwrap();
        assert!(
            *count >= n,
            "counter at {} after {LIMIT:?}, wanted {n}",
            *count
        );
    }

    pub fn acquire(&self) {
        let (count, changed) = &*self.0;
        let (mut count, _) = changed
            .wait_timeout_while(count.lock().unwrap(), LIMIT, |c| *c == 0)
            .unwrap();
        assert!(*count > 0, "semaphore not released within {LIMIT:?}");
        *count -= 1;
    }
}

/// The name of the current thread, `<unnamed>` if it has none.
pub fn thread_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("<unnamed>")
        .to_owned()
}
