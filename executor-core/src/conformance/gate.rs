//! Test plumbing shared by the cases: a file-based [`Gate`] and a std-only [`block_on`].

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

use super::TestTask;

/// Holds [`TestTask::Block`] tasks until released, and tells which have started; works across
/// processes because it is made of files in a private temporary directory (removed on drop,
/// which also releases every task).
///
/// ```
/// use executor_core::Task;
/// use executor_core::conformance::Gate;
///
/// let gate = Gate::new();
/// let task = gate.task(5);
/// gate.release();
/// assert_eq!(task.run().unwrap(), 5);
/// assert!(gate.wait_started(1, std::time::Duration::from_secs(1)));
/// ```
#[derive(Debug)]
pub struct Gate {
    dir: PathBuf,
    next: AtomicU64,
}

impl Gate {
    /// A closed gate in a new temporary directory.
    ///
    /// ```
    /// let _gate = executor_core::conformance::Gate::new();
    /// ```
    pub fn new() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "executor-core-gate-{}-{n}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&dir).expect("cannot create the gate's temporary directory");
        Gate {
            dir,
            next: AtomicU64::new(0),
        }
    }

    /// A task that blocks on this gate and then returns `value`.
    ///
    /// ```
    /// let gate = executor_core::conformance::Gate::new();
    /// assert!(matches!(gate.task(1), executor_core::conformance::TestTask::Block { value: 1, .. }));
    /// ```
    pub fn task(&self, value: u64) -> TestTask {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        TestTask::Block {
            started: self.dir.join(format!("started-{n}")),
            release: self.dir.join("release"),
            value,
        }
    }

    /// A task that leaves a mark named `name` when it runs (see [`Gate::touched`]).
    ///
    /// ```
    /// use executor_core::Task;
    /// let gate = executor_core::conformance::Gate::new();
    /// gate.touch_task("a", 1).run().unwrap();
    /// assert!(gate.touched("a") && !gate.touched("b"));
    /// ```
    pub fn touch_task(&self, name: &str, value: u64) -> TestTask {
        TestTask::Touch {
            path: self.dir.join(format!("touched-{name}")),
            value,
        }
    }

    /// Whether the task made by `touch_task(name, _)` has run.
    ///
    /// ```
    /// assert!(!executor_core::conformance::Gate::new().touched("x"));
    /// ```
    pub fn touched(&self, name: &str) -> bool {
        self.dir.join(format!("touched-{name}")).exists()
    }

    /// How many blocking tasks have started.
    ///
    /// ```
    /// assert_eq!(executor_core::conformance::Gate::new().started(), 0);
    /// ```
    pub fn started(&self) -> usize {
        std::fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().starts_with("started-"))
                    .count()
            })
            .unwrap_or(0)
    }

    /// Waits until at least `count` blocking tasks have started; `false` if the timeout passed.
    ///
    /// ```
    /// let gate = executor_core::conformance::Gate::new();
    /// assert!(!gate.wait_started(1, std::time::Duration::from_millis(5)));
    /// ```
    pub fn wait_started(&self, count: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.started() >= count {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Lets every blocking task of this gate, started or not, go on.
    ///
    /// ```
    /// executor_core::conformance::Gate::new().release();
    /// ```
    pub fn release(&self) {
        std::fs::write(self.dir.join("release"), b"").expect("cannot release the gate");
    }
}

impl Default for Gate {
    fn default() -> Self {
        Gate::new()
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        let _ = std::fs::write(self.dir.join("release"), b"");
        // Tasks still running may read the release file for a moment: leave removal errors be.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs a future to completion on this thread, parking between polls: a minimal async runtime,
/// enough to show that a handle is awaitable without any particular runtime.
///
/// ```
/// let (p, f) = executor_core::Promise::<u8>::new();
/// std::thread::spawn(move || p.set_result(2).unwrap());
/// assert_eq!(executor_core::conformance::block_on(async { f.await }).unwrap(), 2);
/// ```
pub fn block_on<F: Future>(future: F) -> F::Output {
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}
