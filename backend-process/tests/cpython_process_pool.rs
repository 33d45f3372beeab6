//! The intent of CPython's `Lib/test/test_concurrent_futures/test_process_pool.py`
//! (<https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_process_pool.py>),
//! `ProcessPoolExecutorTest`, on worker processes: a killed worker breaks the pool (L6), errors
//! carry the worker's backtrace and pid (C4), workers start lazily and are reused (L3),
//! `max_tasks_per_child` replaces workers and never strands the backlog (L8), and
//! `terminate_workers`/`kill_workers` (L9).
//!
//! CPython controls its tasks with `multiprocessing` events, queues and semaphores; here a task
//! blocks on a marker file ([`Op::Block`]) and reports that it started, with its worker's pid, by
//! writing another one. Every wait is bounded ([`LIMIT`]), so that a regression fails instead of
//! hanging.
//!
//! Where our design deliberately differs from CPython, the test asserts our documented behaviour
//! and says so: dropping a pool is `shutdown(wait = true)` (I5), so a pool "garbage collected"
//! while work is queued still runs that work instead of failing it; `terminate_workers` and
//! `kill_workers` signal every worker and cancel what has not started (L9).
//!
//! # Not ported
//! - The tests `ProcessPoolExecutorTest` inherits from `ExecutorTest` (`executor.py`:
//!   `test_submit`, `test_map`, `test_map_exception`, `test_map_timeout`, ...) are ported once for
//!   every backend in `executor_core`'s conformance suite, which `tests/conformance.rs` runs on
//!   this backend.
//! - `test_max_workers_too_large`: a Windows-only limit (61 handles in `WaitForMultipleObjects`).
//! - `test_sysconf_permission_error`: CPython checks `os.sysconf("SC_SEM_NSEMS_MAX")` for its
//!   semaphores when a pool is made; we use no POSIX semaphores and read no such limit.
//! - `test_max_tasks_per_child_defaults_to_spawn_context`: Python-only (`mp_context` start
//!   methods); our workers are always the program re-executed, which is "spawn". For the same
//!   reason the `fork`-context branches of the `max_tasks_per_child` tests have no equivalent.
//! - `test_python_finalization_error`: injects a thread-creation failure during interpreter
//!   finalization through a mock of `threading`; Rust has no interpreter finalization and no way
//!   to make the pool's thread creation fail from outside.
//! - `test_force_shutdown_workers_invalid_op`: `_force_shutdown(operation='invalid operation')`
//!   is a private string-typed call; here the operation is the method called
//!   (`terminate_workers` or `kill_workers`), so an invalid one cannot be written.

mod support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use backend_process::{ProcessPoolExecutor, RemoteTask};
use executor_core::{
    Executor, FutureHandle, Introspect, MapError, MapOptions, RejectReason, ResultError, Shutdown,
    ShutdownOptions, Task, TaskError,
};
use serde::{Deserialize, Serialize};
use support::{Dir, within};

backend_process::test_worker!();

/// Longer than any step needs (CPython's `support.SHORT_TIMEOUT`); reached only if something
/// hangs.
const LIMIT: Duration = Duration::from_secs(60);

/// The task: the module-level helpers of CPython's tests (`mul`, `pow`, `os.getpid`, `os._exit`,
/// `event.wait`, ...).
#[derive(Debug, Serialize, Deserialize)]
enum Op {
    Mul(u64, u64),
    /// `base.wrapping_pow(exp)` (Python's `pow` has big integers).
    Pow(u64, u32),
    Pid,
    /// Creates `started` holding the worker's pid, waits (at most [`LIMIT`]) until `release`
    /// exists, and returns `value` (Python's `_report_wait_return`, `event.wait`).
    Block {
        started: PathBuf,
        release: PathBuf,
        value: u64,
    },
    /// Busy for this many microseconds, then returns the worker's pid.
    Spin(u64),
    /// Creates the file holding the worker's pid, and returns the pid.
    Touch(PathBuf),
    /// `std::process::exit` (Python's `os._exit`).
    Exit(i32),
    /// Python's `_test_traceback`.
    RaiseRuntimeError123,
    /// Carries a value that records where it is dropped; returns the worker's pid.
    Guarded(DropRecorder),
}

impl Task for Op {
    type Output = u64;

    fn run(self) -> Result<u64, TaskError> {
        let pid = u64::from(std::process::id());
        match self {
            Op::Mul(x, y) => Ok(x * y),
            Op::Pow(base, exp) => Ok(base.wrapping_pow(exp)),
            Op::Pid => Ok(pid),
            Op::Block {
                started,
                release,
                value,
            } => {
                write_pid(&started)?;
                let limit = Instant::now() + LIMIT;
                while !release.exists() {
                    if Instant::now() > limit {
                        return Err(TaskError::msg("never released"));
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                Ok(value)
            }
            Op::Spin(micros) => {
                let until = Instant::now() + Duration::from_micros(micros);
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
                Ok(pid)
            }
            Op::Touch(path) => {
                write_pid(&path)?;
                Ok(pid)
            }
            Op::Exit(code) => std::process::exit(code),
            Op::RaiseRuntimeError123 => raise_runtime_error_123(),
            // The recorder is dropped here, when the task has run, before the result is sent.
            Op::Guarded(_recorder) => Ok(pid),
        }
    }

    fn name(&self) -> &'static str {
        Self::NAME
    }
}

impl RemoteTask for Op {
    const NAME: &'static str = "backend_process::tests::cpython_process_pool::op";
}

backend_process::register!(Op);

/// Python's `_test_traceback`: `raise RuntimeError(123) # some comment`.
fn raise_runtime_error_123() -> ! {
    panic!("RuntimeError(123)") // some comment
}

/// The line of the `panic!` in [`raise_runtime_error_123`].
const RAISE_LINE: u32 = line!() - 4;

/// Writes this process's pid into `path`, whole (written aside, then renamed into place).
fn write_pid(path: &Path) -> Result<(), TaskError> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, std::process::id().to_string())
        .and_then(|()| std::fs::rename(&partial, path))
        .map_err(TaskError::from_error)
}

/// Python's `EventfulGCObj`: when dropped, creates `dropped-{pid}` in its directory, so the test
/// sees in which process, and whether, it was dropped.
#[derive(Debug, Serialize, Deserialize)]
struct DropRecorder {
    dir: PathBuf,
}

impl Drop for DropRecorder {
    fn drop(&mut self) {
        let _ = std::fs::write(
            self.dir.join(format!("dropped-{}", std::process::id())),
            b"",
        );
    }
}

/// An initializer that fails once its file exists: a worker started after that cannot be made
/// ready.
#[derive(Debug, Serialize, Deserialize)]
struct FailIfExists(PathBuf);

impl Task for FailIfExists {
    type Output = ();

    fn run(self) -> Result<(), TaskError> {
        if self.0.exists() {
            Err(TaskError::msg("no more workers may start"))
        } else {
            Ok(())
        }
    }
}

impl RemoteTask for FailIfExists {
    const NAME: &'static str = "backend_process::tests::cpython_process_pool::fail_if_exists";
}

backend_process::register!(FailIfExists);

impl Dir {
    /// A task that blocks until [`Dir::release`], after creating `started-{i}`.
    fn block(&self, i: usize, value: u64) -> Op {
        Op::Block {
            started: self.path(&format!("started-{i}")),
            release: self.path("release"),
            value,
        }
    }

    /// The pid of the worker that started block `i`, once it has.
    fn wait_started(&self, i: usize) -> u32 {
        let path = self.path(&format!("started-{i}"));
        wait_for(&format!("task {i} started"), || path.exists());
        read_pid(&path)
    }

    fn started(&self, i: usize) -> bool {
        self.path(&format!("started-{i}")).exists()
    }
}

fn read_pid(path: &Path) -> u32 {
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Waits until `condition` holds; fails the test (instead of hanging) past [`LIMIT`].
fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !condition() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// The value of `f`, waited for at most [`LIMIT`].
fn value(f: &FutureHandle<u64>) -> u64 {
    match f.result(Some(LIMIT)) {
        Ok(v) => *v,
        Err(e) => panic!("expected a value: {e}"),
    }
}

/// The task failure `f` ends with, waited for at most [`LIMIT`].
fn failure(f: &FutureHandle<u64>) -> TaskError {
    match f.result(Some(LIMIT)) {
        Err(ResultError::Failed(e)) => e.clone(),
        other => panic!("expected a task failure, got {other:?}"),
    }
}

/// Asserts that `f` failed with the broken-pool error whose reason contains `reason`.
fn assert_broken(f: &FutureHandle<u64>, reason: &str) -> TaskError {
    let e = failure(f);
    assert!(e.is_broken(), "not a broken pool: {e:?}");
    let why = e.broken_executor().unwrap().reason();
    assert!(why.contains(reason), "expected `{reason}` in: {why}");
    e
}

fn process_runs(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

fn signal(pid: u32, signal: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
    rustix::process::kill_process(pid, signal).unwrap();
}

/// `terminate_workers` or `kill_workers` (CPython's `FORCE_SHUTDOWN_PARAMS`), and the signal it
/// sends, as our errors name it.
#[derive(Debug, Clone, Copy)]
enum Force {
    Terminate,
    Kill,
}

impl Force {
    const BOTH: [Force; 2] = [Force::Terminate, Force::Kill];

    /// Calls it (on another thread: a hang fails the test).
    fn apply(self, pool: &Arc<ProcessPoolExecutor>) {
        let pool = Arc::clone(pool);
        within(&format!("{self:?}"), move || match self {
            Force::Terminate => pool.terminate_workers(),
            Force::Kill => pool.kill_workers(),
        });
    }

    fn status(self) -> &'static str {
        match self {
            Force::Terminate => "was killed by signal 15 (SIGTERM)",
            Force::Kill => "was killed by signal 9 (SIGKILL)",
        }
    }
}

/// [test_killed_child](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_process_pool.py):
/// a worker terminated from outside (SIGTERM) breaks the pool: its future fails with the
/// broken-pool error naming the pid and the signal, and later submits are refused.
#[test]
fn killed_child() {
    let dir = Dir::new("killed-child");
    let pool = ProcessPoolExecutor::new(2).unwrap();
    let f = pool.submit(dir.block(0, 3)).unwrap();
    let pid = dir.wait_started(0);
    signal(pid, rustix::process::Signal::TERM);
    assert_broken(
        &f,
        &format!("worker pid {pid} was killed by signal 15 (SIGTERM)"),
    );
    let refused = pool.submit(Op::Pow(2, 8)).unwrap_err();
    assert!(refused.broken().is_some(), "{refused}");
    assert!(!process_runs(pid));
}

/// [test_broken_process_pool_traceback](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_process_pool.py):
/// when a worker dies, every future gets its own broken-pool error (CPython checks that the
/// exception is not one object shared by all futures, whose traceback would grow with every
/// `result()`): each error names its own task and, for a task that was running, its own worker,
/// and reading it again gives the same error unchanged (C3). All of them give the first death as
/// the reason.
#[test]
fn broken_process_pool_error_per_future() {
    let dir = Dir::new("broken-traceback");
    let pool = ProcessPoolExecutor::new(2).unwrap();
    let futures: Vec<_> = (0..3)
        .map(|i| pool.submit(dir.block(i, 0)).unwrap())
        .collect();
    let (first, second) = (dir.wait_started(0), dir.wait_started(1));
    assert_ne!(first, second, "two workers run two blocked tasks");
    signal(first, rustix::process::Signal::TERM);
    let reason = format!("worker pid {first} was killed by signal 15 (SIGTERM)");
    for (i, f) in futures.iter().enumerate() {
        let e = assert_broken(f, &reason);
        assert_eq!(e.task_id(), Some(f.id()), "future {i}: {e}");
        let again = failure(f);
        assert_eq!(again.to_string(), e.to_string(), "future {i}");
    }
    assert_eq!(failure(&futures[0]).worker_pid(), Some(first));
    assert_eq!(failure(&futures[1]).worker_pid(), Some(second));
    assert!(!dir.started(2), "the third task never ran");
}

/// [test_map_chunksize](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_process_pool.py):
/// `map` gives the same results whatever the chunk size (smaller, larger than, equal to the
/// input). Python's `chunksize=-1` is a `ValueError`; `chunksize` is unsigned here, and 0 is the
/// error, naming the field (H5, H7).
#[test]
fn map_chunksize() {
    let pool = ProcessPoolExecutor::new(2).unwrap();
    let reference: Vec<u64> = (0..40u64).map(|i| i.wrapping_pow(i as u32)).collect();
    let pow = || (0..40u64).map(|i| Op::Pow(i, i as u32));
    for chunksize in [6, 50, 40] {
        let results: Vec<u64> = pool
            .map(pow(), MapOptions::new().chunksize(chunksize))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(results, reference, "chunksize {chunksize}");
    }
    let e = pool.map(pow(), MapOptions::new().chunksize(0)).unwrap_err();
    assert!(
        matches!(
            e,
            MapError::InvalidOption {
                field: "chunksize",
                ..
            }
        ),
        "{e}"
    );
}

/// [test_traceback](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_process_pool.py):
/// the worker's traceback comes back with the error: a panic in the worker fails the future with
/// the panic's message, the worker's pid, and the worker's backtrace, which shows where the
/// panic was raised (file and line, where CPython shows the source line); the error's message
/// names the task and the worker (C4).
#[test]
fn traceback() {
    let pool = ProcessPoolExecutor::new(2).unwrap();
    let f = pool.submit(Op::RaiseRuntimeError123).unwrap();
    let e = failure(&f);
    assert!(e.is_panic(), "{e:?}");
    assert_eq!(e.message(), "RuntimeError(123)");
    let pid = e.worker_pid().expect("the worker's pid");
    let trace = e.backtrace().expect("the worker's backtrace");
    let at = format!("cpython_process_pool.rs:{RAISE_LINE}:");
    assert!(
        trace.contains(&at) && trace.contains("RuntimeError(123)"),
        "expected `{at}` in the worker's backtrace:\n{trace}"
    );
    let shown = e.to_string();
    assert!(
        shown.contains(Op::NAME)
            && shown.contains(&format!("panicked in worker pid {pid}"))
            && shown.contains("RuntimeError(123)"),
        "{shown}"
    );
}

/// [test_traceback_when_child_process_terminates_abruptly](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_process_pool.py)
/// (gh-139462): the broken-pool error says which worker ended and its exit code (L6).
#[test]
fn traceback_when_child_process_terminates_abruptly() {
    let pool = ProcessPoolExecutor::new(1).unwrap();
    let pid = value(&pool.submit(Op::Pid).unwrap()) as u32;
    let f = pool.submit(Op::Exit(99)).unwrap();
    let e = assert_broken(&f, &format!("worker pid {pid} exited with code 99"));
    assert_eq!(e.worker_pid(), Some(pid));
    drop(pool);
    assert!(!process_runs(pid));
}

/// [test_ressources_gced_in_workers](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_process_pool.py):
/// a task's data is dropped in the worker as soon as the task has run (G3), before its result
/// comes back, and the parent keeps no copy either (`submit` drops the task once serialized).
#[test]
fn resources_dropped_in_workers() {
    let dir = Dir::new("dropped");
    let pool = ProcessPoolExecutor::new(1).unwrap();
    let f = pool
        .submit(Op::Guarded(DropRecorder { dir: dir.root() }))
        .unwrap();
    let parent = std::process::id();
    assert!(
        dir.path(&format!("dropped-{parent}")).exists(),
        "the parent kept the task after serializing it"
    );
    let worker = value(&f);
    assert!(
        dir.path(&format!("dropped-{worker}")).exists(),
        "the worker had not dropped the task when its result came back"
    );
}

/// [test_saturation](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_process_pool.py):
/// 15 × `max_workers` blocked tasks start exactly `max_workers` workers, no more; once released,
/// all of them run, on those workers only.
#[test]
fn saturation() {
    const MAX_WORKERS: usize = 2;
    const JOBS: usize = 15 * MAX_WORKERS;
    let dir = Dir::new("saturation");
    let pool = ProcessPoolExecutor::new(MAX_WORKERS).unwrap();
    let futures: Vec<_> = (0..JOBS)
        .map(|i| pool.submit(dir.block(i, i as u64)).unwrap())
        .collect();
    wait_for("every worker runs a task", || {
        (0..JOBS).filter(|&i| dir.started(i)).count() == MAX_WORKERS
    });
    assert_eq!(pool.stats().workers, MAX_WORKERS);
    dir.release();
    for (i, f) in futures.iter().enumerate() {
        assert_eq!(value(f), i as u64);
    }
    let mut pids: Vec<u32> = (0..JOBS)
        .map(|i| read_pid(&dir.path(&format!("started-{i}"))))
        .collect();
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), MAX_WORKERS, "{pids:?}");
}

/// [test_idle_process_reuse_one](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_process_pool.py):
/// three submit-then-result calls on a pool of four use one worker (L3).
#[test]
fn idle_process_reuse_one() {
    let pool = ProcessPoolExecutor::new(4).unwrap();
    assert_eq!(value(&pool.submit(Op::Mul(21, 2)).unwrap()), 42);
    assert_eq!(value(&pool.submit(Op::Mul(6, 7)).unwrap()), 42);
    assert_eq!(value(&pool.submit(Op::Mul(3, 14)).unwrap()), 42);
    assert_eq!(pool.stats().workers, 1);
}

/// [test_idle_process_reuse_multiple](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_process_pool.py):
/// a submit that follows a `result()` finds the worker that answered idle and starts none, so
/// three submits not waited for start at most three workers on a pool of five. Many rounds.
#[test]
fn idle_process_reuse_multiple() {
    for round in 0..10 {
        let pool = ProcessPoolExecutor::new(5).unwrap();
        assert_eq!(value(&pool.submit(Op::Mul(12, 7)).unwrap()), 84);
        let a = pool.submit(Op::Mul(33, 25)).unwrap();
        assert_eq!(value(&pool.submit(Op::Mul(25, 26)).unwrap()), 650);
        let b = pool.submit(Op::Mul(18, 29)).unwrap();
        assert_eq!(value(&pool.submit(Op::Mul(1, 2)).unwrap()), 2);
        let c = pool.submit(Op::Mul(0, 9)).unwrap();
        assert_eq!((value(&a), value(&b), value(&c)), (825, 522, 0));
        let workers = pool.stats().workers;
        assert!(workers <= 3, "round {round}: {workers} workers");
        pool.shutdown(ShutdownOptions::wait());
    }
}

/// [test_max_tasks_per_child](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_process_pool.py):
/// with `max_tasks_per_child = 3` one worker serves three tasks, then a fresh one (another pid)
/// replaces it, and only one is alive at a time (L8). (CPython refuses the option with its `fork`
/// start method; ours always re-executes the program.)
#[test]
fn max_tasks_per_child() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .max_tasks_per_child(3)
        .build()
        .unwrap();
    let original = value(&pool.submit(Op::Pid).unwrap());
    assert_eq!(value(&pool.submit(Op::Pid).unwrap()), original);
    assert_eq!(pool.stats().workers, 1);
    assert_eq!(value(&pool.submit(Op::Pid).unwrap()), original);
    let new = value(&pool.submit(Op::Pid).unwrap());
    assert_ne!(new, original, "a fresh worker after three tasks");
    assert_eq!(pool.stats().workers, 1);
    assert!(
        !process_runs(original as u32),
        "the retired worker was reaped"
    );
    pool.shutdown(ShutdownOptions::wait());
}

/// [test_max_tasks_per_child_pending_tasks_gh115634](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_process_pool.py)
/// (gh-115634): a backlog larger than the pool, while workers retire at their task limit, always
/// completes, in order (L8).
#[test]
fn max_tasks_per_child_pending_tasks_gh115634() {
    for (max_workers, max_tasks, num_tasks) in [(1, 2, 6), (2, 2, 8)] {
        let pool = ProcessPoolExecutor::builder()
            .max_workers(max_workers)
            .max_tasks_per_child(max_tasks)
            .build()
            .unwrap();
        let futures: Vec<_> = (0..num_tasks)
            .map(|i| pool.submit(Op::Mul(i, 2)).unwrap())
            .collect();
        let results: Vec<u64> = futures.iter().map(value).collect();
        assert_eq!(
            results,
            (0..num_tasks).map(|i| i * 2).collect::<Vec<_>>(),
            "max_workers {max_workers}, max_tasks {max_tasks}"
        );
        pool.shutdown(ShutdownOptions::wait().cancel_futures());
    }
}

/// CPython's `_run_stranded_worker_exit_test`: a worker exits at its `max_tasks_per_child` limit
/// while more work is queued, after the pool was shut down without waiting and/or dropped.
/// Ours: dropping a pool is `shutdown(wait = true)` (I5), which runs what is queued, so the queued
/// tasks still run on replacement workers and complete (CPython fails them with "garbage
/// collected" once its executor object is gone: it cannot start replacements any more). The drop
/// itself returns once they have.
fn stranded_worker_exit(shutdown: bool, drop_reference: bool) {
    let dir = Dir::new("stranded");
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .max_tasks_per_child(1)
        .build()
        .unwrap();
    let futures: Vec<_> = (0..3)
        .map(|i| pool.submit(dir.block(i, i as u64)).unwrap())
        .collect();
    let first = dir.wait_started(0);
    if shutdown {
        pool.shutdown(ShutdownOptions::no_wait());
        assert!(pool.submit(Op::Pid).unwrap_err().is_shutdown());
    }
    let (dropped_tx, dropped) = mpsc::channel();
    let pool = if drop_reference {
        std::thread::spawn(move || {
            drop(pool);
            let _ = dropped_tx.send(());
        });
        None
    } else {
        Some(pool)
    };
    dir.release();
    assert_eq!(value(&futures[0]), 0);
    let results: Vec<u64> = futures[1..].iter().map(value).collect();
    assert_eq!(
        results,
        [1, 2],
        "shutdown {shutdown}, dropped {drop_reference}"
    );
    let mut pids: Vec<u32> = (0..3)
        .map(|i| read_pid(&dir.path(&format!("started-{i}"))))
        .collect();
    assert_eq!(pids[0], first);
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), 3, "one worker per task: {pids:?}");
    if drop_reference {
        dropped
            .recv_timeout(LIMIT)
            .expect("hang: dropping the pool did not return");
    }
    drop(pool);
    for pid in pids {
        assert!(!process_runs(pid), "worker {pid} outlived the pool");
    }
}

/// [test_shutdown_no_wait_max_tasks_gh119592](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_process_pool.py)
/// (gh-119592): after `shutdown(wait = false)`, a worker exiting at its task limit is still
/// replaced and the queued tasks run (I3), with the pool kept or dropped. **Differs from CPython
/// on purpose** when dropped: see [`stranded_worker_exit`].
#[test]
fn shutdown_no_wait_max_tasks_gh119592() {
    for drop_reference in [false, true] {
        stranded_worker_exit(true, drop_reference);
    }
}

/// [test_gc_during_max_tasks_worker_exit_gh152967](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_process_pool.py)
/// (gh-152967): the pool dropped without `shutdown` while its only worker exits at its task
/// limit: the queued futures are not stranded. **Differs from CPython on purpose**: they complete
/// (dropping is `shutdown(wait = true)`), where CPython fails them; see [`stranded_worker_exit`].
#[test]
fn gc_during_max_tasks_worker_exit_gh152967() {
    stranded_worker_exit(false, true);
}

/// One worker that retires after every task.
fn retiring_after_each_task() -> Arc<ProcessPoolExecutor> {
    Arc::new(
        ProcessPoolExecutor::builder()
            .max_workers(1)
            .max_tasks_per_child(1)
            .build()
            .unwrap(),
    )
}

/// [test_force_shutdown_during_max_tasks_worker_exit](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_process_pool.py):
/// a worker at its `max_tasks_per_child` limit during `terminate_workers` is not replaced (a
/// replacement would escape the signal), and the queued futures end instead of hanging. Ours
/// (L9): the running task fails with the broken-pool error naming the signal, the queued ones are
/// cancelled and never run (CPython fails them with "forcefully shut down"), and when
/// `terminate_workers` returns no worker is left. Then the race itself, 100 times: the worker
/// finishes its one task and retires just as `terminate_workers` comes; every future is done
/// when it returns, and no worker that ran a task outlives it. (It caught a hang: a replacement
/// worker killed right after its handshake was seen dead by its reader before the writer marked
/// the slot ready, which then overwrote "ended" with "ready" and waited for an end already past.)
#[test]
fn force_shutdown_during_max_tasks_worker_exit() {
    let dir = Dir::new("force-max-tasks");
    let pool = retiring_after_each_task();
    let futures: Vec<_> = (0..3)
        .map(|i| pool.submit(dir.block(i, i as u64)).unwrap())
        .collect();
    let pid = dir.wait_started(0);
    Force::Terminate.apply(&pool);
    assert_broken(
        &futures[0],
        &format!("worker pid {pid} was killed by signal 15 (SIGTERM)"),
    );
    assert!(futures[1].cancelled() && futures[2].cancelled());
    assert_eq!(pool.stats().workers, 0);
    assert!(!process_runs(pid));
    dir.release();
    assert!(
        !dir.started(1) && !dir.started(2),
        "no replacement ran them"
    );

    for i in 0..100u64 {
        let pool = retiring_after_each_task();
        let marker = |k: u64| dir.path(&format!("race-{i}-{k}"));
        let first = pool.submit(Op::Spin((i % 10) * 30)).unwrap();
        let rest: Vec<_> = (1..3)
            .map(|k| pool.submit(Op::Touch(marker(k))).unwrap())
            .collect();
        wait_for("the first task started", || first.done() || first.running());
        // Spread `terminate_workers` over the first task's run, its worker's retirement and
        // the start of its replacement.
        let until = Instant::now() + Duration::from_micros((i * 37) % 400 + (i % 3) * 3000);
        while Instant::now() < until {
            std::hint::spin_loop();
        }
        Force::Terminate.apply(&pool);
        let mut pids = Vec::new();
        for (k, f) in std::iter::once(&first).chain(&rest).enumerate() {
            assert!(f.done(), "round {i}: future {k} is not done");
            match f.result(Some(Duration::ZERO)) {
                Ok(pid) => pids.push(*pid as u32),
                Err(ResultError::Cancelled(_)) => {
                    if k > 0 {
                        assert!(
                            !marker(k as u64).exists(),
                            "round {i}: a cancelled task ran"
                        );
                    }
                }
                Err(ResultError::Failed(e)) if e.is_broken() => {}
                Err(e) => panic!("round {i}: future {k}: {e}"),
            }
        }
        assert_eq!(pool.stats().workers, 0, "round {i}");
        for pid in pids {
            assert!(!process_runs(pid), "round {i}: worker {pid} escaped");
        }
    }
}

/// [test_failed_worker_replacement_breaks_pool](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_process_pool.py):
/// when a worker retires at its task limit and its replacement cannot be started (here: the
/// replacement's initializer fails, where CPython mocks a failing spawn), the pool breaks with a
/// reason saying so, and the queued futures fail with it instead of being stranded (L7).
#[test]
fn failed_worker_replacement_breaks_pool() {
    let dir = Dir::new("failed-replacement");
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .max_tasks_per_child(1)
        .initializer(FailIfExists(dir.path("no-more-workers")))
        .build()
        .unwrap();
    let futures: Vec<_> = (0..3)
        .map(|i| pool.submit(dir.block(i, i as u64)).unwrap())
        .collect();
    dir.wait_started(0);
    std::fs::write(dir.path("no-more-workers"), b"").unwrap();
    dir.release();
    assert_eq!(value(&futures[0]), 0);
    for f in &futures[1..] {
        let e = assert_broken(f, "initializer");
        let why = e.broken_executor().unwrap().reason();
        assert!(
            why.contains(FailIfExists::NAME) && why.contains("no more workers may start"),
            "{why}"
        );
    }
    assert!(pool.submit(Op::Pid).unwrap_err().broken().is_some());
}

/// [test_max_tasks_early_shutdown](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_process_pool.py):
/// `shutdown(wait)` right after submitting more tasks than workers, with one task per worker:
/// every task still runs (replacement workers start after shutdown) and returns its result.
#[test]
fn max_tasks_early_shutdown() {
    let pool = Arc::new(
        ProcessPoolExecutor::builder()
            .max_workers(3)
            .max_tasks_per_child(1)
            .build()
            .unwrap(),
    );
    let futures: Vec<_> = (0..6)
        .map(|i| pool.submit(Op::Mul(i, i)).unwrap())
        .collect();
    {
        let pool = Arc::clone(&pool);
        within("shutdown(wait)", move || {
            pool.shutdown(ShutdownOptions::wait())
        });
    }
    for (i, f) in futures.iter().enumerate() {
        assert!(f.done());
        assert_eq!(value(f), (i * i) as u64);
    }
}

/// The common part of `test_terminate_workers` and `test_kill_workers`: a pool whose one worker
/// runs a blocked task is force-shut-down; the task fails with the broken-pool error naming the
/// worker and the signal sent.
fn force_shutdown_signals(force: Force) {
    let dir = Dir::new("force-signal");
    let pool = Arc::new(ProcessPoolExecutor::new(1).unwrap());
    let f = pool.submit(dir.block(0, 0)).unwrap();
    let pid = dir.wait_started(0);
    force.apply(&pool);
    let e = assert_broken(&f, &format!("worker pid {pid} {}", force.status()));
    assert_eq!(e.worker_pid(), Some(pid));
}

/// [test_terminate_workers](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_process_pool.py):
/// `terminate_workers` sends SIGTERM (CPython mocks `_force_shutdown` and checks the operation;
/// here the worker's death by SIGTERM shows it).
#[test]
fn terminate_workers() {
    force_shutdown_signals(Force::Terminate);
}

/// [test_kill_workers](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_process_pool.py):
/// `kill_workers` sends SIGKILL.
#[test]
fn kill_workers() {
    force_shutdown_signals(Force::Kill);
}

/// [test_force_shutdown_workers](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_process_pool.py)
/// (both operations): a task that has started is stopped before it can finish: when
/// `terminate_workers`/`kill_workers` returns, its worker is gone (ours waits for the worker to
/// be reaped; CPython joins it afterwards), and its future is done.
#[test]
fn force_shutdown_workers() {
    for force in Force::BOTH {
        let dir = Dir::new("force");
        let pool = Arc::new(ProcessPoolExecutor::new(1).unwrap());
        let f = pool.submit(dir.block(0, 0)).unwrap();
        let pid = dir.wait_started(0);
        force.apply(&pool);
        assert!(!process_runs(pid), "{force:?}: worker {pid} still runs");
        assert!(f.done(), "{force:?}");
        assert!(failure(&f).is_broken(), "{force:?}");
    }
}

/// [test_force_shutdown_workers_dead_workers](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_process_pool.py)
/// (both operations): on a pool already broken by a dead worker, `terminate_workers` and
/// `kill_workers` return quietly (L9).
#[test]
fn force_shutdown_workers_dead_workers() {
    for force in Force::BOTH {
        let pool = Arc::new(ProcessPoolExecutor::new(1).unwrap());
        let f = pool.submit(Op::Exit(1)).unwrap();
        assert_broken(&f, "exited with code 1");
        force.apply(&pool);
        force.apply(&pool);
        assert_eq!(pool.stats().workers, 0, "{force:?}");
    }
}

/// [test_force_shutdown_workers_not_started_yet](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_process_pool.py)
/// (both operations): on a pool that never started a worker, `terminate_workers` and
/// `kill_workers` do nothing but shut it down: no worker is started (or signalled), and later
/// submits get the shutdown error (nothing broke).
#[test]
fn force_shutdown_workers_not_started_yet() {
    for force in Force::BOTH {
        let pool = Arc::new(ProcessPoolExecutor::new(1).unwrap());
        force.apply(&pool);
        assert_eq!(pool.stats().workers, 0, "{force:?}");
        assert!(pool.broken().is_none(), "{force:?}");
        let refused = pool.submit(Op::Pid).unwrap_err();
        assert!(refused.is_shutdown(), "{force:?}: {refused}");
        assert_eq!(pool.stats().workers, 0, "{force:?}");
    }
}

/// [test_force_shutdown_workers_stops_pool](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_process_pool.py)
/// (both operations): after `terminate_workers`/`kill_workers` on a pool with an idle worker,
/// submits are refused and the worker is gone when the call returns (CPython has to wait for the
/// process to die). **Differs from CPython**: CPython's submit raises the shutdown
/// `RuntimeError` (its manager thread has not noticed the dead worker yet); ours refuses with the
/// broken-pool error naming the signalled worker, since the pool broke when its worker died by a
/// signal and broken wins over shut down (G2, L9).
#[test]
fn force_shutdown_workers_stops_pool() {
    for force in Force::BOTH {
        let pool = Arc::new(ProcessPoolExecutor::new(1).unwrap());
        let pid = value(&pool.submit(Op::Pid).unwrap()) as u32;
        force.apply(&pool);
        let refused = pool.submit(Op::Pid).unwrap_err();
        match refused.reason() {
            RejectReason::Broken(broken) => assert!(
                broken
                    .reason()
                    .contains(&format!("worker pid {pid} {}", force.status())),
                "{force:?}: {broken}"
            ),
            other => panic!("{force:?}: {other}"),
        }
        assert!(!process_runs(pid), "{force:?}: worker {pid} still runs");
    }
}
