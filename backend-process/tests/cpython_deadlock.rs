//! The intent of CPython's `Lib/test/test_concurrent_futures/test_deadlock.py`
//! (<https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_deadlock.py>),
//! ported to serde: every way a task or its result can fail, panic, exit or crash while it is
//! serialized in the parent, deserialized in the worker, run, serialized in the worker, or
//! deserialized in the parent ends with a clear error on the right future, or with a broken pool
//! whose error names the worker's pid and its exit code or signal (rules L5, L6), and never with a
//! hang.
//!
//! Pickling maps to serde: `ErrorAtPickle`/`ErrorAtUnpickle` are a `Serialize`/`Deserialize` impl
//! that returns an error, `CrashAtPickle`/`CrashAtUnpickle` one that crashes its process (SIGSEGV
//! or `abort`), `ExitAtPickle`/`ExitAtUnpickle` one that calls `std::process::exit(1)`. A task's
//! `Serialize` runs only in the parent and its `Deserialize` only in the worker; a result's
//! `Serialize` runs only in the worker and its `Deserialize` only in the parent. Nothing here
//! crashes or exits the test process itself: only worker processes die.
//!
//! Every wait is bounded ([`LIMIT`]): a regression fails the test instead of hanging it, as
//! CPython's `_fail_on_deadlock` does.
//!
//! Where our design deliberately differs from CPython, the test asserts our documented behaviour
//! and says so:
//! - a Rust `std::process::exit` really ends the worker (Python's `sys.exit` raises `SystemExit`,
//!   an exception the worker catches and sends back), so an exit during a task or during result
//!   serialization breaks the pool naming the exit code (L6);
//! - a task the worker cannot decode, or a result the parent cannot decode, fails only its own
//!   future and the pool stays usable (CPython breaks the pool for both): the pipe framing is
//!   intact, only one value is bad (L5).
//!
//! Beyond CPython, Rust panics in each serde hook are tested too (a panic is Rust's nearest
//! equivalent of a Python exception raised while pickling). The error of a failing `Serialize` or
//! `Deserialize` carries our wrapper text ("cannot be serialized", "cannot decode") and the
//! value's own message, as the traceback of a pickling error names its exception.
//!
//! # Not ported
//! None: every test of `test_deadlock.py` is ported. Two have no literal equivalent and are
//! ported by intent:
//! - `test_exit_during_result_unpickle_in_result_handler`: a result whose unpickling exits the
//!   *parent* would end the test process; a panic in the parent's `Deserialize` of a result (on
//!   the pool's reader thread) is the nearest Rust equivalent.
//! - `test_gh105829_should_not_deadlock_if_wakeup_pipe_full` mocks CPython's manager-thread
//!   wake-up pipe; its intent (`submit`/`map` never block while the pool is slow to take the
//!   work) is tested with the only worker stopped by SIGSTOP and more data submitted than a pipe
//!   holds.

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use backend_process::{ProcessPoolExecutor, RemoteTask};
use executor_core::{
    BrokenExecutor, Executor, FutureHandle, MapOptions, RejectReason, ResultError, Shutdown,
    ShutdownOptions, Task, TaskError,
};
use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use support::within;

backend_process::test_worker!();

/// CPython's `TIMEOUT = support.LONG_TIMEOUT`: far longer than any step needs; reached only if
/// something hangs.
const LIMIT: Duration = Duration::from_secs(60);

/// CPython's `support.PIPE_MAX_SIZE`: more than any pipe buffers.
const PIPE_MAX_SIZE: usize = 4 * 1024 * 1024 + 1;

/// What a serde hook (or a task) does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Bad {
    /// Returns an error (Python's `ErrorAt...`, `_raise_error`).
    Error,
    /// Panics.
    Panic,
    /// `std::process::exit(1)` (Python's `ExitAt...`, `_exit`).
    Exit,
    /// SIGSEGV (Python's `CrashAt...`, `_crash`).
    Crash,
    /// `std::process::abort()` (SIGABRT).
    Abort,
}

impl Bad {
    /// Panics, exits or crashes this process, as `self` says (not for `Error`).
    fn act(self, at: &str) -> ! {
        match self {
            Bad::Error => unreachable!("an error does not end the process"),
            Bad::Panic => panic!("panic in {at}"),
            Bad::Exit => std::process::exit(1),
            Bad::Crash => segfault(),
            Bad::Abort => std::process::abort(),
        }
    }
}

/// Ends this (worker) process with SIGSEGV, without a core file (Python's
/// `faulthandler._sigsegv()`).
fn segfault() -> ! {
    use rustix::process::{Resource, Rlimit, Signal, getpid, kill_process, setrlimit};
    let _ = setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    );
    // The standard library's stack-overflow handler takes the first SIGSEGV that is not a fault
    // in a guard page (on whichever thread the kernel picks), restores the default action and
    // returns; a SIGSEGV sent after that ends the process.
    loop {
        let _ = kill_process(getpid(), Signal::SEGV);
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A value whose `Serialize` does the bad thing (Python's `...AtPickle`); it would deserialize
/// normally.
#[derive(Debug, Deserialize)]
struct AtSerialize(Bad);

impl Serialize for AtSerialize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let _ = serializer;
        match self.0 {
            Bad::Error => Err(S::Error::custom("error in serialize")),
            bad => bad.act("serialize"),
        }
    }
}

/// A value that serializes normally and whose `Deserialize` does the bad thing (Python's
/// `...AtUnpickle`).
#[derive(Debug, Serialize)]
struct AtDeserialize(Bad);

impl<'de> Deserialize<'de> for AtDeserialize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Bad::deserialize(deserializer)? {
            Bad::Error => Err(D::Error::custom("error in deserialize")),
            bad => bad.act("deserialize"),
        }
    }
}

/// The task: Python's module-level helpers of `test_deadlock.py`.
#[derive(Debug, Serialize, Deserialize)]
enum Job {
    /// Returns the value (Python's `id(42)`).
    Value(u64),
    /// The worker's pid.
    Pid,
    /// Carries a value that misbehaves when serialized in the parent (Python's
    /// `id(ErrorAtPickle())`).
    CarrySer(AtSerialize),
    /// Carries a value that misbehaves when deserialized in the worker (Python's
    /// `id(ExitAtUnpickle())` and friends).
    CarryDe(AtDeserialize),
    /// Misbehaves while it runs (Python's `_crash`, `_exit`, `_raise_error`).
    Run(Bad),
    /// Sleeps this many milliseconds, then misbehaves (Python's `_crash(delay=.1)`).
    After(u64, Bad),
    /// Returns a value that misbehaves when serialized in the worker (Python's
    /// `_return_instance(CrashAtPickle)`).
    ReturnSer(Bad),
    /// Returns a value that misbehaves when deserialized in the parent (Python's
    /// `_return_instance(ErrorAtUnpickle)`).
    ReturnDe(Bad),
    /// Carries data; waits (at most [`LIMIT`]) until the file `when` exists, then crashes
    /// (Python's `_crash_with_data`).
    CrashWithData { when: PathBuf, data: String },
    /// Carries data and returns its length (Python's `int` over `range(100)`, with a payload).
    Data(Vec<u8>),
}

/// What a [`Job`] returns.
#[derive(Debug, Serialize, Deserialize)]
enum Answer {
    Value(u64),
    Ser(AtSerialize),
    De(AtDeserialize),
}

impl Task for Job {
    type Output = Answer;

    fn run(self) -> Result<Answer, TaskError> {
        match self {
            Job::Value(v) => Ok(Answer::Value(v)),
            Job::Pid => Ok(Answer::Value(u64::from(std::process::id()))),
            Job::CarrySer(_) | Job::CarryDe(_) => Ok(Answer::Value(0)),
            Job::Run(Bad::Error) => Err(TaskError::msg("RuntimeError in the task")),
            Job::Run(bad) => bad.act("the task"),
            Job::After(ms, bad) => {
                std::thread::sleep(Duration::from_millis(ms));
                Job::Run(bad).run()
            }
            Job::ReturnSer(bad) => Ok(Answer::Ser(AtSerialize(bad))),
            Job::ReturnDe(bad) => Ok(Answer::De(AtDeserialize(bad))),
            Job::CrashWithData { when, data: _ } => {
                let limit = Instant::now() + LIMIT;
                while !when.exists() && Instant::now() < limit {
                    std::thread::sleep(Duration::from_millis(1));
                }
                segfault()
            }
            Job::Data(data) => Ok(Answer::Value(data.len() as u64)),
        }
    }

    fn name(&self) -> &'static str {
        Self::NAME
    }
}

impl RemoteTask for Job {
    const NAME: &'static str = "backend_process::tests::cpython_deadlock::job";
}

backend_process::register!(Job);

fn value(answer: &Answer) -> u64 {
    match answer {
        Answer::Value(v) => *v,
        other => panic!("unexpected answer {other:?}"),
    }
}

/// The outcome of `f`, waited for at most [`LIMIT`]; a timeout is a deadlock.
fn outcome<'a>(f: &'a FutureHandle<Answer>, what: &str) -> Result<&'a Answer, ResultError> {
    let r = f.result(Some(LIMIT));
    if let Err(e) = &r {
        assert!(!e.is_timeout(), "deadlock: {what} never completed");
    }
    r
}

/// The task failure `f` must end with.
fn failure(f: &FutureHandle<Answer>, what: &str) -> TaskError {
    match outcome(f, what) {
        Err(ResultError::Failed(e)) => e.clone(),
        other => panic!("{what}: expected a task failure, got {other:?}"),
    }
}

/// The broken-pool error behind a map item or a future's error, if that is what it is.
fn broken_of(e: &ResultError) -> Option<&BrokenExecutor> {
    match e {
        ResultError::Failed(e) => e.broken_executor(),
        ResultError::Rejected(RejectReason::Broken(b)) => Some(b),
        _ => None,
    }
}

/// Asserts that `f` failed because worker `pid` ended as `status` says ("exited with code 1",
/// "was killed by signal 11 (SIGSEGV)"), that the pool refuses new work, and that the worker is
/// gone.
fn assert_broken_by(pool: &ProcessPoolExecutor, f: &FutureHandle<Answer>, pid: u32, status: &str) {
    let e = failure(f, status);
    assert!(e.is_broken(), "{status}: not a broken pool: {e:?}");
    let reason = e.broken_executor().unwrap().reason();
    assert!(
        reason.contains(&format!("worker pid {pid} {status}")),
        "expected `worker pid {pid} {status}` in: {reason}"
    );
    assert_eq!(e.worker_pid(), Some(pid), "{e}");
    assert!(
        e.to_string().contains(&format!("worker pid {pid}")),
        "the message names the worker: {e}"
    );
    let refused = pool.submit(Job::Value(1)).unwrap_err();
    assert!(refused.broken().is_some(), "later submits are refused");
    assert!(!process_runs(pid), "worker {pid} outlived its death");
}

/// Asserts that the pool still works, on the same worker (it survived).
fn assert_usable(pool: &ProcessPoolExecutor, pid: u32) {
    assert!(pool.broken().is_none(), "{:?}", pool.broken());
    let f = pool.submit(Job::Pid).unwrap();
    assert_eq!(
        value(outcome(&f, "a task after the failure").unwrap()),
        u64::from(pid),
        "the worker survived and serves the next task"
    );
}

fn process_runs(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

/// CPython's `_check_error`: a fresh pool of two workers (one of them started, its pid known),
/// and the future of `job`, submitted to that worker.
fn check(job: Job) -> (Arc<ProcessPoolExecutor>, u32, FutureHandle<Answer>) {
    let pool = Arc::new(ProcessPoolExecutor::new(2).unwrap());
    let pid = value(outcome(&pool.submit(Job::Pid).unwrap(), "the first task").unwrap()) as u32;
    // The one worker is idle: the next task goes to it (no second worker starts).
    let f = pool.submit(job).unwrap();
    (pool, pid, f)
}

/// The ways a worker crashes (a SIGSEGV, an `abort`) and how its end reads.
const CRASHES: [(Bad, &str); 2] = [
    (Bad::Crash, "was killed by signal 11 (SIGSEGV)"),
    (Bad::Abort, "was killed by signal 6 (SIGABRT)"),
];

/// Each of [`CRASHES`], done by the job `job` makes, breaks the pool naming the pid and the
/// signal, and `shutdown(wait)` still returns.
fn each_crash_breaks_the_pool(job: impl Fn(Bad) -> Job) {
    for (bad, status) in CRASHES {
        let (pool, pid, f) = check(job(bad));
        assert_broken_by(&pool, &f, pid, status);
        finish(pool);
    }
}

/// Ends a [`check`]: `shutdown(wait)` returns, however the pool ended.
fn finish(pool: Arc<ProcessPoolExecutor>) {
    within("shutdown(wait) after the failure", move || {
        pool.shutdown(ShutdownOptions::wait());
        drop(pool);
    });
}

/// [test_error_at_task_pickle](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_deadlock.py):
/// a task whose `Serialize` fails in the parent. Its future fails with the serialization error
/// (Python's `PicklingError`) at once; nothing is sent; the pool stays usable. In a `map` chunk
/// only that item's slot fails (H4).
#[test]
fn error_at_task_serialize() {
    let (pool, pid, f) = check(Job::CarrySer(AtSerialize(Bad::Error)));
    let e = failure(&f, "a task that cannot be serialized");
    assert!(!e.is_broken(), "{e:?}");
    assert!(e.message().contains("cannot be serialized"), "{e}");
    assert!(
        e.message().contains("error in serialize"),
        "its own text: {e}"
    );
    assert_usable(&pool, pid);

    let tasks = (0..5u64).map(|i| match i {
        2 => Job::CarrySer(AtSerialize(Bad::Error)),
        i => Job::Value(i),
    });
    let results: Vec<_> = pool
        .map(tasks, MapOptions::new().chunksize(5))
        .unwrap()
        .collect();
    assert_eq!(results.len(), 5);
    for (i, r) in results.iter().enumerate() {
        match (i, r) {
            (2, Err(ResultError::Failed(e))) => {
                assert!(e.message().contains("cannot be serialized"), "{e}");
            }
            (i, Ok(answer)) if i != 2 => assert_eq!(value(answer), i as u64),
            (i, r) => panic!("item {i}: {r:?}"),
        }
    }
    assert_usable(&pool, pid);
    finish(pool);
}

/// [test_exit_at_task_unpickle](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_deadlock.py):
/// a task whose `Deserialize` exits the worker: the pool breaks, naming the pid and exit code.
#[test]
fn exit_at_task_deserialize() {
    let (pool, pid, f) = check(Job::CarryDe(AtDeserialize(Bad::Exit)));
    assert_broken_by(&pool, &f, pid, "exited with code 1");
    finish(pool);
}

/// [test_error_at_task_unpickle](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_deadlock.py):
/// a task whose `Deserialize` fails in the worker. **Differs from CPython on purpose** (which
/// breaks the pool): only that future fails, with the decoding error and the worker's pid, and
/// the same worker goes on serving (L5). In a `map` chunk, the items before the undecodable one
/// come back, and it and the items after it (which cannot be found in the payload any more) fail
/// with the decoding error.
#[test]
fn error_at_task_deserialize() {
    let (pool, pid, f) = check(Job::CarryDe(AtDeserialize(Bad::Error)));
    let e = failure(&f, "a task the worker cannot decode");
    assert!(!e.is_broken(), "{e:?}");
    assert!(e.message().contains("cannot decode"), "{e}");
    assert!(
        e.message().contains("error in deserialize"),
        "its own text: {e}"
    );
    assert_eq!(e.worker_pid(), Some(pid));
    assert_usable(&pool, pid);

    let tasks = (0..4u64).map(|i| match i {
        2 => Job::CarryDe(AtDeserialize(Bad::Error)),
        i => Job::Value(i),
    });
    let results: Vec<_> = pool
        .map(tasks, MapOptions::new().chunksize(4))
        .unwrap()
        .collect();
    assert_eq!(results.len(), 4);
    assert_eq!(value(results[0].as_ref().unwrap()), 0);
    assert_eq!(value(results[1].as_ref().unwrap()), 1);
    for r in &results[2..] {
        let e = r.as_ref().unwrap_err().task_error().unwrap();
        assert!(e.message().contains("cannot decode"), "{e}");
    }
    assert_usable(&pool, pid);
    finish(pool);
}

/// [test_crash_at_task_unpickle](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_deadlock.py):
/// a task whose `Deserialize` crashes the worker (SIGSEGV, and `abort`): the pool breaks, naming
/// the pid and the signal.
#[test]
fn crash_at_task_deserialize() {
    each_crash_breaks_the_pool(|bad| Job::CarryDe(AtDeserialize(bad)));
}

/// [test_crash_during_func_exec_on_worker](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_deadlock.py):
/// a task that crashes its worker: the pool breaks, naming the pid and the signal.
#[test]
fn crash_during_task() {
    each_crash_breaks_the_pool(Job::Run);
}

/// [test_exit_during_func_exec_on_worker](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_deadlock.py):
/// a task that calls `std::process::exit(1)`. **Differs from CPython on purpose**: Python's
/// `sys.exit` raises `SystemExit`, which the worker catches and sends back; Rust's `exit` ends
/// the worker, so the pool breaks, naming the pid and exit code (L6).
#[test]
fn exit_during_task() {
    let (pool, pid, f) = check(Job::Run(Bad::Exit));
    assert_broken_by(&pool, &f, pid, "exited with code 1");
    finish(pool);
}

/// [test_error_during_func_exec_on_worker](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_deadlock.py):
/// a task that fails (returns an error, or panics): only its future fails, with the message and
/// the worker's pid; the worker goes on serving (L5).
#[test]
fn error_during_task() {
    for (bad, message) in [
        (Bad::Error, "RuntimeError in the task"),
        (Bad::Panic, "panic in the task"),
    ] {
        let (pool, pid, f) = check(Job::Run(bad));
        let e = failure(&f, message);
        assert!(!e.is_broken(), "{e:?}");
        assert_eq!(e.message(), message);
        assert_eq!(e.is_panic(), bad == Bad::Panic);
        assert_eq!(e.worker_pid(), Some(pid));
        assert_usable(&pool, pid);
        finish(pool);
    }
}

/// [test_crash_during_result_pickle_on_worker](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_deadlock.py):
/// a result whose `Serialize` crashes the worker: the pool breaks, naming the pid and signal.
#[test]
fn crash_during_result_serialize() {
    each_crash_breaks_the_pool(Job::ReturnSer);
}

/// [test_exit_during_result_pickle_on_worker](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_deadlock.py):
/// a result whose `Serialize` calls `std::process::exit(1)`. **Differs from CPython on purpose**
/// (`SystemExit` on the future there): the worker really exits, so the pool breaks, naming the
/// pid and exit code (L6).
#[test]
fn exit_during_result_serialize() {
    let (pool, pid, f) = check(Job::ReturnSer(Bad::Exit));
    assert_broken_by(&pool, &f, pid, "exited with code 1");
    finish(pool);
}

/// [test_error_during_result_pickle_on_worker](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_deadlock.py):
/// a result whose `Serialize` fails in the worker: only its future fails, with the serialization
/// error (Python's `PicklingError`); the worker goes on serving (L5).
#[test]
fn error_during_result_serialize() {
    let (pool, pid, f) = check(Job::ReturnSer(Bad::Error));
    let e = failure(&f, "a result that cannot be serialized");
    assert!(!e.is_broken(), "{e:?}");
    assert!(e.message().contains("cannot be serialized"), "{e}");
    assert!(
        e.message().contains("error in serialize"),
        "its own text: {e}"
    );
    assert_eq!(e.worker_pid(), Some(pid));
    assert_usable(&pool, pid);
    finish(pool);
}

/// [test_error_during_result_unpickle_in_result_handler](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_deadlock.py):
/// a result whose `Deserialize` fails in the parent. **Differs from CPython on purpose** (which
/// breaks the pool): only that future fails, with the decoding error and the worker's pid; the
/// worker goes on serving (L5). In a `map` chunk, the items before it come back.
#[test]
fn error_during_result_deserialize_in_the_parent() {
    let (pool, pid, f) = check(Job::ReturnDe(Bad::Error));
    let e = failure(&f, "a result the parent cannot decode");
    assert!(!e.is_broken(), "{e:?}");
    assert!(e.message().contains("cannot decode"), "{e}");
    assert!(
        e.message().contains("error in deserialize"),
        "its own text: {e}"
    );
    assert_eq!(e.worker_pid(), Some(pid));
    assert_usable(&pool, pid);

    let tasks = (0..4u64).map(|i| match i {
        2 => Job::ReturnDe(Bad::Error),
        i => Job::Value(i),
    });
    let results: Vec<_> = pool
        .map(tasks, MapOptions::new().chunksize(4))
        .unwrap()
        .collect();
    assert_eq!(results.len(), 4);
    assert_eq!(value(results[0].as_ref().unwrap()), 0);
    assert_eq!(value(results[1].as_ref().unwrap()), 1);
    let e = results[2].as_ref().unwrap_err().task_error().unwrap();
    assert!(e.message().contains("cannot decode"), "{e}");
    assert!(
        results[3].is_err(),
        "after an undecodable item nothing can be found"
    );
    assert_usable(&pool, pid);
    finish(pool);
}

/// [test_shutdown_deadlock](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_deadlock.py):
/// `shutdown(wait)` called while a task will crash its worker 100 ms later returns, and the
/// future then holds the broken-pool error naming the worker.
#[test]
fn shutdown_deadlock() {
    let (pool, pid, f) = check(Job::After(100, Bad::Crash));
    let stopping = Arc::clone(&pool);
    within("shutdown(wait) while a worker crashes", move || {
        stopping.shutdown(ShutdownOptions::wait());
    });
    assert!(f.done(), "shutdown(wait) returned before the task ended");
    let e = failure(&f, "the crashing task");
    assert!(e.is_broken(), "{e:?}");
    assert!(
        e.broken_executor().unwrap().reason().contains(&format!(
            "worker pid {pid} was killed by signal 11 (SIGSEGV)"
        )),
        "{e}"
    );
    assert!(!process_runs(pid));
    finish(pool);
}

/// [test_shutdown_deadlock_pickle](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_deadlock.py)
/// (bpo-39104): after a task has run, a task that fails to serialize followed by
/// `shutdown(wait=false)`: the future holds the serialization error, and the pool's threads and
/// worker still end (dropping the pool returns, and the worker is gone).
#[test]
fn shutdown_deadlock_serialize() {
    let (pool, pid, f) = check(Job::Value(42));
    assert_eq!(value(outcome(&f, "id(42)").unwrap()), 42);
    let bad = pool.submit(Job::CarrySer(AtSerialize(Bad::Error))).unwrap();
    pool.shutdown(ShutdownOptions::no_wait());
    let e = failure(&bad, "a task that cannot be serialized");
    assert!(e.message().contains("cannot be serialized"), "{e}");
    finish(pool);
    assert!(!process_runs(pid), "worker {pid} outlived the pool");
}

/// [test_crash_big_data](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_deadlock.py)
/// (gh-94777): workers crash while tasks larger than any pipe buffer are being sent to them.
/// Every item of the `map` ends with the broken-pool error naming the crash (in its own slot,
/// H4, where CPython raises it from the iteration), and the pool's shutdown returns. The tasks
/// crash once `map` has submitted them all (a gate file): a pool that breaks while `map` still
/// submits loses items, see the note at the end of this file.
#[test]
fn crash_big_data() {
    let gate = std::env::temp_dir().join(format!(
        "backend-process-cpython-deadlock-big-data-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&gate);
    let pool = Arc::new(ProcessPoolExecutor::new(2).unwrap());
    let data = "a".repeat(PIPE_MAX_SIZE);
    let (submitted, map_returned) = mpsc::channel();
    let (results_tx, results) = mpsc::channel();
    {
        let pool = Arc::clone(&pool);
        let gate = gate.clone();
        std::thread::spawn(move || {
            let tasks = (0..10).map(|_| Job::CrashWithData {
                when: gate.clone(),
                data: data.clone(),
            });
            let items = pool.map(tasks, MapOptions::new()).unwrap();
            submitted.send(()).unwrap();
            let _ = results_tx.send(items.map(|r| r.map(|_| ())).collect::<Vec<_>>());
        });
    }
    map_returned
        .recv_timeout(LIMIT)
        .expect("deadlock: map did not return");
    std::fs::write(&gate, b"").unwrap();
    let results = results
        .recv_timeout(LIMIT)
        .expect("deadlock: the map's results never came back");
    assert_eq!(results.len(), 10);
    for (i, r) in results.iter().enumerate() {
        let e = r.as_ref().unwrap_err();
        let broken = broken_of(e).unwrap_or_else(|| panic!("item {i}: not broken: {e:?}"));
        assert!(
            broken.reason().contains("worker pid ")
                && broken
                    .reason()
                    .contains("was killed by signal 11 (SIGSEGV)"),
            "item {i}: {broken}"
        );
    }
    let _ = std::fs::remove_file(&gate);
    finish(pool);
}

/// Sends SIGCONT to a stopped worker when dropped, so that a failing test leaves no stopped
/// process behind.
struct Stopped(rustix::process::Pid);

impl Stopped {
    fn stop(pid: u32) -> Self {
        let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::STOP).unwrap();
        Stopped(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = rustix::process::kill_process(self.0, rustix::process::Signal::CONT);
    }
}

/// [test_gh105829_should_not_deadlock_if_wakeup_pipe_full](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_deadlock.py):
/// CPython's `submit` blocked writing to a full wake-up pipe while its manager thread was slow to
/// start. Here the only worker is stopped (SIGSTOP), so nothing reads the pipes to it, and `map`
/// submits 100 tasks of 64 KiB each (far more than a pipe holds): `map` returns without waiting
/// for the worker, and once the worker continues every result comes back, in order.
#[test]
fn submit_does_not_block_while_the_worker_cannot_read() {
    const JOBS: usize = 100;
    const SIZE: usize = 64 * 1024;
    let pool = Arc::new(ProcessPoolExecutor::new(1).unwrap());
    let pid = value(outcome(&pool.submit(Job::Pid).unwrap(), "the first task").unwrap()) as u32;
    let stopped = Stopped::stop(pid);
    let submitted = Instant::now();
    let futures = {
        let pool = Arc::clone(&pool);
        within("submitting to a stopped worker", move || {
            (0..JOBS)
                .map(|i| pool.submit(Job::Data(vec![7; SIZE + i])).unwrap())
                .collect::<Vec<_>>()
        })
    };
    let took = submitted.elapsed();
    assert!(
        futures.iter().all(|f| !f.done()),
        "the worker is stopped: nothing can have completed"
    );
    // And `map` itself, which submits every chunk before it returns; its results are read once
    // the worker continues.
    let (returned, map_returned) = mpsc::channel();
    let (results, mapped) = mpsc::channel();
    {
        let pool = Arc::clone(&pool);
        std::thread::spawn(move || {
            let tasks = (0..JOBS).map(|i| Job::Data(vec![1; i]));
            let items = pool.map(tasks, MapOptions::new().chunksize(3)).unwrap();
            returned.send(()).unwrap();
            let values: Vec<u64> = items.map(|r| value(&r.unwrap())).collect();
            results.send(values).unwrap();
        });
    }
    map_returned
        .recv_timeout(LIMIT)
        .expect("deadlock: map over a stopped worker did not return");
    drop(stopped);
    eprintln!("{JOBS} submits of 64 KiB to a stopped worker took {took:?}");
    for (i, f) in futures.iter().enumerate() {
        assert_eq!(value(outcome(f, "a task").unwrap()), (SIZE + i) as u64);
    }
    let mapped = mapped
        .recv_timeout(LIMIT)
        .expect("deadlock: the map's results never came back");
    assert_eq!(mapped, (0..JOBS as u64).collect::<Vec<_>>());
    finish(pool);
}

/// A panic in a task's `Deserialize` in the worker (the Rust form of Python's
/// [test_error_at_task_unpickle](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_deadlock.py),
/// which raises there). The worker decodes each task under a panic guard: only that future
/// fails, with the panic's message and the worker's pid, and the worker goes on serving (L5).
#[test]
fn panic_at_task_deserialize_in_the_worker() {
    let (pool, pid, f) = check(Job::CarryDe(AtDeserialize(Bad::Panic)));
    let e = failure(&f, "a task whose decoding panics in the worker");
    assert!(!e.is_broken(), "{e:?}");
    assert!(
        e.is_panic() && e.message().contains("panic in deserialize"),
        "{e:?}"
    );
    assert_eq!(e.worker_pid(), Some(pid), "{e}");
    assert_usable(&pool, pid);
    finish(pool);
}

/// A panic in a result's `Serialize` in the worker (the Rust form of Python's
/// [test_error_during_result_pickle_on_worker](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_deadlock.py)).
/// The result is serialized under a panic guard: only that future fails, with the panic's
/// message, and the worker goes on serving (L5).
#[test]
fn panic_during_result_serialize_in_the_worker() {
    let (pool, pid, f) = check(Job::ReturnSer(Bad::Panic));
    let e = failure(&f, "a result whose serialization panics in the worker");
    assert!(!e.is_broken(), "{e:?}");
    assert!(
        e.is_panic() && e.message().contains("panic in serialize"),
        "{e:?}"
    );
    assert!(e.message().contains("cannot be serialized"), "{e:?}");
    assert_usable(&pool, pid);
    finish(pool);
}

/// A panic in a task's `Serialize` in the parent (the panicking form of Python's
/// [test_error_at_task_pickle](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_deadlock.py)):
/// the panic fails that task's future (as a panic in the task would, L5) and, in a `map` chunk,
/// only that item's slot (H4); nothing comes out of `submit` or `map`; the pool stays usable.
#[test]
fn panic_at_task_serialize_in_the_parent() {
    let (pool, pid, f) = check(Job::Value(1));
    assert_eq!(value(outcome(&f, "a first task").unwrap()), 1);
    let submitted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.submit(Job::CarrySer(AtSerialize(Bad::Panic)))
    }));
    let f = submitted
        .expect("the panic came out of submit")
        .expect("submit refused the task");
    let e = failure(&f, "a task whose serialization panics");
    assert!(
        e.is_panic() && e.message().contains("panic in serialize"),
        "{e:?}"
    );
    assert_usable(&pool, pid);

    let mapped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let tasks = (0..4u64).map(|i| match i {
            2 => Job::CarrySer(AtSerialize(Bad::Panic)),
            i => Job::Value(i),
        });
        pool.map(tasks, MapOptions::new().chunksize(2))
            .unwrap()
            .map(|r| r.map(|a| value(&a)).map_err(|e| e.to_string()))
            .collect::<Vec<_>>()
    }))
    .expect("the panic came out of map");
    assert_eq!(mapped[0], Ok(0));
    assert_eq!(mapped[1], Ok(1));
    assert!(
        mapped[2]
            .as_ref()
            .is_err_and(|e| e.contains("panic in serialize")),
        "{mapped:?}"
    );
    assert_eq!(mapped[3], Ok(3));
    assert_usable(&pool, pid);
    finish(pool);
}

/// A panic in a result's `Deserialize` in the parent: the Rust form of Python's
/// [test_exit_during_result_unpickle_in_result_handler](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_deadlock.py)
/// (a result whose unpickling exits the parent; exiting the test process is not an option).
/// That future fails with the panic, the pool's reader thread survives, the worker goes on
/// serving, and nothing hangs.
#[test]
fn panic_during_result_deserialize_in_the_parent() {
    let (pool, pid, f) = check(Job::ReturnDe(Bad::Panic));
    let e = failure(&f, "a result whose decoding panics in the parent");
    assert!(!e.is_broken(), "{e:?}");
    assert!(
        e.is_panic() && e.message().contains("panic in deserialize"),
        "{e:?}"
    );
    let usable = Arc::clone(&pool);
    within("a task after the panic", move || {
        assert_usable(&usable, pid)
    });
    finish(pool);
}

/// The pool breaks while `map` is still submitting its chunks (the race behind Python's
/// [test_crash_big_data](https://github.com/python/cpython/blob/main/Lib/test/test_concurrent_futures/test_deadlock.py),
/// made deterministic: the input waits for the pool to break before it yields item 5). One
/// result per input item, each an error (H4; results are never silently truncated, H6).
#[test]
fn map_yields_every_item_when_the_pool_breaks_while_map_submits() {
    let pool = Arc::new(ProcessPoolExecutor::new(1).unwrap());
    let results = {
        let pool = Arc::clone(&pool);
        within("map over a pool that breaks", move || {
            let watched = Arc::clone(&pool);
            let tasks = (0..10u64).map(move |i| {
                if i == 5 {
                    let limit = Instant::now() + LIMIT;
                    while watched.broken().is_none() && Instant::now() < limit {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                if i == 0 {
                    Job::Run(Bad::Crash)
                } else {
                    Job::Value(i)
                }
            });
            pool.map(tasks, MapOptions::new())
                .unwrap()
                .map(|r| r.map(|a| value(&a)).map_err(|e| broken_of(&e).is_some()))
                .collect::<Vec<_>>()
        })
    };
    assert_eq!(results.len(), 10, "{results:?}");
    assert!(results.iter().all(|r| *r == Err(true)), "{results:?}");
    finish(pool);
}
