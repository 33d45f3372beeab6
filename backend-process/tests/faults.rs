//! Faults (rules L5, L6): a task's panic or error fails only its future, with the worker's
//! message, pid and backtrace; a result that cannot be serialized fails only its future; a worker
//! that dies (abort, `exit`, a signal) breaks the pool, and every pending future fails with an
//! error naming the worker's pid and its exit code or signal; later submits are refused; no
//! worker is left behind.

use std::time::Duration;

use backend_process::{ProcessPoolExecutor, RemoteTask};
use executor_core::{
    Executor, Introspect, ResultError, Shutdown, ShutdownOptions, Task, TaskError,
};
use serde::{Deserialize, Serialize};

backend_process::test_worker!();

const LIMIT: Duration = Duration::from_secs(30);

/// What a fault task does in the worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Fault {
    Value(u64),
    Pid,
    Panic(String),
    Fail(String),
    Abort,
    Exit(i32),
    KillSelf,
    /// Returns a value whose serialization fails (a map with non-string keys is fine for
    /// postcard, so use a custom type that refuses).
    Unserializable,
    Sleep(u64),
    /// Waits until the file exists (at most a minute), then does the inner fault.
    WhenExists(std::path::PathBuf, Box<Fault>),
}

/// A result that refuses to be serialized.
#[derive(Debug)]
struct Refuses;

impl Serialize for Refuses {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("this value never serializes"))
    }
}

impl<'de> Deserialize<'de> for Refuses {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Ok(Refuses)
    }
}

#[derive(Debug, Serialize, Deserialize)]
enum Answer {
    Number(u64),
    Refuses(Refuses),
}

impl Task for Fault {
    type Output = Answer;

    fn run(self) -> Result<Answer, TaskError> {
        match self {
            Fault::Value(v) => Ok(Answer::Number(v)),
            Fault::Pid => Ok(Answer::Number(u64::from(std::process::id()))),
            Fault::Panic(message) => panic!("{message}"),
            Fault::Fail(message) => Err(TaskError::msg(message)),
            Fault::Abort => std::process::abort(),
            Fault::Exit(code) => std::process::exit(code),
            Fault::KillSelf => {
                let me = rustix::process::getpid();
                let _ = rustix::process::kill_process(me, rustix::process::Signal::KILL);
                std::thread::sleep(Duration::from_secs(60));
                Ok(Answer::Number(0))
            }
            Fault::Unserializable => Ok(Answer::Refuses(Refuses)),
            Fault::Sleep(ms) => {
                std::thread::sleep(Duration::from_millis(ms));
                Ok(Answer::Number(ms))
            }
            Fault::WhenExists(path, then) => {
                let limit = std::time::Instant::now() + Duration::from_secs(60);
                while !path.exists() && std::time::Instant::now() < limit {
                    std::thread::sleep(Duration::from_millis(1));
                }
                then.run()
            }
        }
    }

    fn name(&self) -> &'static str {
        Self::NAME
    }
}

impl RemoteTask for Fault {
    const NAME: &'static str = "backend_process::tests::fault";
}

backend_process::register!(Fault);

fn number(answer: &Answer) -> u64 {
    match answer {
        Answer::Number(n) => *n,
        Answer::Refuses(_) => panic!("unexpected unserializable answer"),
    }
}

fn worker_pid(pool: &ProcessPoolExecutor) -> u32 {
    let f = pool.submit(Fault::Pid).unwrap();
    number(f.result(Some(LIMIT)).unwrap()) as u32
}

fn process_exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|stat| !stat.contains(") Z "))
            .unwrap_or(false)
}

#[test]
fn panic_fails_only_its_future_with_pid_and_backtrace() {
    let pool = ProcessPoolExecutor::new(1).unwrap();
    let pid = worker_pid(&pool);
    let f = pool.submit(Fault::Panic("bad pixel".into())).unwrap();
    let e = f.result(Some(LIMIT)).unwrap_err();
    let e = e
        .task_error()
        .unwrap_or_else(|| panic!("not a task failure: {e}"));
    assert!(e.is_panic());
    assert_eq!(e.message(), "bad pixel");
    assert_eq!(e.worker_pid(), Some(pid));
    assert_eq!(e.task_name(), Some(Fault::NAME));
    let trace = e.backtrace().expect("a backtrace from the worker");
    assert!(trace.contains("bad pixel"), "{trace}");
    // The same worker goes on serving.
    assert_eq!(worker_pid(&pool), pid);
    assert!(pool.broken().is_none());
}

#[test]
fn error_fails_only_its_future() {
    let pool = ProcessPoolExecutor::new(1).unwrap();
    let f = pool.submit(Fault::Fail("no such blob".into())).unwrap();
    let e = f.error(Some(LIMIT)).unwrap().expect("an error").clone();
    assert!(e.is_error());
    assert_eq!(e.message(), "no such blob");
    assert!(e.worker_pid().is_some());
    assert_eq!(
        number(&pool.submit(Fault::Value(3)).unwrap().into_result().unwrap()),
        3
    );
}

#[test]
fn unserializable_result_fails_only_its_future() {
    let pool = ProcessPoolExecutor::new(1).unwrap();
    let f = pool.submit(Fault::Unserializable).unwrap();
    let e = f.result(Some(LIMIT)).unwrap_err();
    let message = e.task_error().unwrap().message().to_owned();
    assert!(message.contains("cannot be serialized"), "{message}");
    assert!(message.contains("this value never serializes"), "{message}");
    assert_eq!(
        number(&pool.submit(Fault::Value(4)).unwrap().into_result().unwrap()),
        4
    );
}

/// Every way a worker can die breaks the pool with the pid and the exit code or signal.
#[test]
fn a_dying_worker_breaks_the_pool_naming_pid_and_status() {
    for (fault, expected) in [
        (Fault::Abort, "was killed by signal 6 (SIGABRT)"),
        (Fault::Exit(7), "exited with code 7"),
        (Fault::KillSelf, "was killed by signal 9 (SIGKILL)"),
    ] {
        let pool = ProcessPoolExecutor::new(1).unwrap();
        let pid = worker_pid(&pool);
        // The worker dies only once the other tasks are queued (one of them sent ahead to it).
        let go = std::env::temp_dir().join(format!(
            "backend-process-faults-{}-{pid}",
            std::process::id()
        ));
        let dying = pool
            .submit(Fault::WhenExists(go.clone(), Box::new(fault.clone())))
            .unwrap();
        let queued: Vec<_> = (0..3)
            .map(|i| pool.submit(Fault::Value(i)).unwrap())
            .collect();
        std::fs::write(&go, b"").unwrap();
        let e = dying.result(Some(LIMIT)).unwrap_err();
        let e = e
            .task_error()
            .unwrap_or_else(|| panic!("{fault:?}: not a task failure: {e}"));
        assert!(e.is_broken(), "{fault:?}: {e:?}");
        let reason = e.broken_executor().unwrap().reason().to_owned();
        assert!(
            reason.contains(&format!("worker pid {pid}")),
            "{fault:?}: {reason}"
        );
        assert!(reason.contains(expected), "{fault:?}: {reason}");
        for f in &queued {
            let e = f.result(Some(LIMIT)).unwrap_err();
            assert!(
                e.task_error().is_some_and(TaskError::is_broken),
                "{fault:?}: {e}"
            );
            assert!(e.to_string().contains(&format!("worker pid {pid}")), "{e}");
        }
        let refused = pool.submit(Fault::Value(9)).unwrap_err();
        assert!(
            refused.broken().is_some(),
            "{fault:?}: later submits must be refused"
        );
        assert!(
            !process_exists(pid),
            "{fault:?}: worker {pid} is still there"
        );
        let _ = std::fs::remove_file(&go);
    }
}

/// Shutdown waits for the workers and reaps them: no zombie, no orphan (rule L10).
#[test]
fn shutdown_leaves_no_worker_behind() {
    let pool = ProcessPoolExecutor::new(2).unwrap();
    let futures: Vec<_> = (0..6)
        .map(|_| pool.submit(Fault::Sleep(20)).unwrap())
        .collect();
    let pids: Vec<u32> = (0..2).map(|_| worker_pid(&pool)).collect();
    pool.shutdown(ShutdownOptions::wait());
    assert!(futures.iter().all(|f| f.done()));
    assert_eq!(pool.stats().workers, 0);
    for pid in pids {
        assert!(!process_exists(pid), "worker {pid} outlived shutdown(wait)");
    }
}

/// Workers start lazily and an idle one is reused (rule L3).
#[test]
fn idle_worker_is_reused() {
    let pool = ProcessPoolExecutor::new(4).unwrap();
    let first = worker_pid(&pool);
    for _ in 0..5 {
        assert_eq!(worker_pid(&pool), first);
    }
    assert_eq!(pool.stats().workers, 1);
}

#[test]
fn map_chunks_keep_every_item() {
    use executor_core::MapOptions;
    let pool = ProcessPoolExecutor::new(2).unwrap();
    let tasks = (0..20u64).map(|i| {
        if i % 7 == 3 {
            Fault::Panic(format!("item {i}"))
        } else {
            Fault::Value(i)
        }
    });
    let results: Vec<_> = pool
        .map(tasks, MapOptions::new().chunksize(6))
        .unwrap()
        .collect();
    assert_eq!(results.len(), 20);
    for (i, r) in results.iter().enumerate() {
        if i % 7 == 3 {
            let e = r.as_ref().unwrap_err();
            assert!(
                matches!(e, ResultError::Failed(t) if t.is_panic() && t.message() == format!("item {i}"))
            );
        } else {
            assert_eq!(number(r.as_ref().unwrap()), i as u64);
        }
    }
}
