//! Worker lifecycle (rules L6–L9): initializer, `max_tasks_per_child` (with the CPython
//! gh-115634 backlog regression), `terminate_workers`/`kill_workers`, and the keep-alive policy for
//! dead workers. (L12, descriptors, is `tests/descriptors.rs`: alone in its binary.)

use std::sync::mpsc;
use std::time::Duration;

use backend_process::{OnWorkerDeath, ProcessPoolExecutor, RemoteTask};
use executor_core::{Executor, State, Task, TaskError};
use serde::{Deserialize, Serialize};

backend_process::test_worker!();

const LIMIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Job {
    Pid,
    /// Returns the value the initializer left in this worker.
    Initialized,
    Sleep(u64),
    Exit(i32),
}

static INITIALIZED: std::sync::OnceLock<String> = std::sync::OnceLock::new();

impl Task for Job {
    type Output = String;

    fn run(self) -> Result<String, TaskError> {
        Ok(match self {
            Job::Pid => std::process::id().to_string(),
            Job::Initialized => INITIALIZED.get().cloned().unwrap_or_default(),
            Job::Sleep(ms) => {
                std::thread::sleep(Duration::from_millis(ms));
                ms.to_string()
            }
            Job::Exit(code) => std::process::exit(code),
        })
    }

    fn name(&self) -> &'static str {
        Self::NAME
    }
}

impl RemoteTask for Job {
    const NAME: &'static str = "backend_process::tests::lifecycle::job";
}

backend_process::register!(Job);

/// An initializer: stores its argument, or fails.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Init(Result<String, String>);

impl Task for Init {
    type Output = ();

    fn run(self) -> Result<(), TaskError> {
        match self.0 {
            Ok(value) => {
                let _ = INITIALIZED.set(value);
                Ok(())
            }
            Err(message) => Err(TaskError::msg(message)),
        }
    }
}

impl RemoteTask for Init {
    const NAME: &'static str = "backend_process::tests::lifecycle::init";
}

backend_process::register!(Init);

fn run(pool: &ProcessPoolExecutor, job: Job) -> String {
    pool.submit(job).unwrap().into_result().unwrap()
}

#[test]
fn initializer_runs_in_each_worker_before_tasks() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(2)
        .initializer(Init(Ok("warm".into())))
        .build()
        .unwrap();
    assert_eq!(run(&pool, Job::Initialized), "warm");
}

#[test]
fn failing_initializer_breaks_the_pool() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .initializer(Init(Err("no config".into())))
        .build()
        .unwrap();
    let f = pool.submit(Job::Pid).unwrap();
    let e = f.result(Some(LIMIT)).unwrap_err();
    let e = e
        .task_error()
        .unwrap_or_else(|| panic!("not a task failure: {e}"));
    assert!(e.is_broken(), "{e:?}");
    let reason = e.broken_executor().unwrap().reason();
    assert!(
        reason.contains("initializer") && reason.contains("no config"),
        "{reason}"
    );
    assert!(pool.submit(Job::Pid).unwrap_err().broken().is_some());
}

/// Workers retire after `max_tasks_per_child` tasks and are replaced; a backlog larger than the
/// pool always completes (CPython hung here: gh-115634).
#[test]
fn max_tasks_per_child_replaces_workers_and_the_backlog_completes() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .max_tasks_per_child(2)
        .build()
        .unwrap();
    let futures: Vec<_> = (0..10).map(|_| pool.submit(Job::Pid).unwrap()).collect();
    let pids: Vec<String> = futures
        .into_iter()
        .map(|f| {
            f.result(Some(LIMIT)).expect("the backlog did not complete");
            f.into_result().unwrap()
        })
        .collect();
    for pair in pids.chunks(2) {
        assert_eq!(pair[0], pair[1], "two tasks per worker: {pids:?}");
    }
    let mut distinct = pids.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), 5, "a fresh worker every 2 tasks: {pids:?}");
}

#[test]
fn terminate_and_kill_workers() {
    for kill in [false, true] {
        let pool = ProcessPoolExecutor::new(1).unwrap();
        let running = pool.submit(Job::Sleep(60_000)).unwrap();
        while running.state() != State::Running {
            std::thread::yield_now();
        }
        let queued = pool.submit(Job::Pid).unwrap();
        if kill {
            pool.kill_workers();
        } else {
            pool.terminate_workers();
        }
        assert!(queued.cancelled(), "a queued task must be cancelled");
        let e = running.result(Some(LIMIT)).unwrap_err();
        let e = e
            .task_error()
            .unwrap_or_else(|| panic!("not a task failure: {e}"));
        assert!(e.is_broken(), "{e:?}");
        let signal = if kill { "signal 9" } else { "signal 15" };
        assert!(e.to_string().contains(signal), "{e}");
        // Safe to call again, and the pool refuses work.
        pool.terminate_workers();
        pool.kill_workers();
        assert!(pool.submit(Job::Pid).is_err());
    }
    // On a pool that never started a worker.
    ProcessPoolExecutor::new(1).unwrap().terminate_workers();
}

/// The opt-in policy: only the dead worker's task fails, and a fresh worker takes over.
#[test]
fn replace_policy_fails_only_the_dead_workers_task() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .on_worker_death(OnWorkerDeath::Replace)
        .build()
        .unwrap();
    let first = run(&pool, Job::Pid);
    let dying = pool.submit(Job::Exit(3)).unwrap();
    let after = pool.submit(Job::Pid).unwrap();
    let e = dying.result(Some(LIMIT)).unwrap_err();
    let e = e
        .task_error()
        .unwrap_or_else(|| panic!("not a task failure: {e}"));
    assert!(!e.is_broken(), "{e:?}");
    assert!(
        e.message()
            .contains(&format!("worker pid {first} exited with code 3")),
        "{e}"
    );
    let second = after.result(Some(LIMIT)).unwrap().clone();
    assert_ne!(first, second, "a fresh worker runs the next task");
    assert!(pool.broken().is_none());
}

/// `Replace`, the race behind it: tasks are being written to the dying worker just as its reader
/// hands what it held to the replacement. Whatever the interleaving, each runs on the fresh worker.
/// (A request the writer marked "written" to the dead worker after its reader had kept it was
/// never sent again, and its future and the pool's shutdown waited for ever. Later, a submitter
/// that wrote a kept request while the replacement was being installed, into the dead worker's
/// pipe: two pools side by side, each on a core, made that show.) The rounds run on threads of
/// their own, so that a lost task fails the test instead of hanging it.
#[test]
fn replace_policy_resends_what_the_dead_worker_never_started_100_times() {
    let (tx, rx) = mpsc::channel();
    for _ in 0..2 {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let pool = ProcessPoolExecutor::builder()
                .max_workers(1)
                .on_worker_death(OnWorkerDeath::Replace)
                .build()
                .unwrap();
            let outcome = (0..100).try_for_each(|round| {
                let dying = pool.submit(Job::Exit(3)).unwrap();
                // Tasks submitted all through the death: some are being written as it is noticed.
                let mut after = vec![pool.submit(Job::Pid).unwrap()];
                while !dying.done() && after.len() < 1_000 {
                    after.push(pool.submit(Job::Pid).unwrap());
                }
                match dying.result(Some(LIMIT)) {
                    Err(e) if e.task_error().is_some_and(|e| !e.is_broken()) => {}
                    other => return Err(format!("round {round}: the dying task ended {other:?}")),
                }
                match after.iter().find_map(|f| f.result(Some(LIMIT)).err()) {
                    None => Ok(()),
                    Some(e) => Err(format!(
                        "round {round}: a task after the death never ran: {e}"
                    )),
                }
            });
            let lost = outcome.is_err();
            let _ = tx.send(outcome.map(|()| pool.broken().is_none()));
            if lost {
                // Its shutdown would wait for the lost task.
                std::mem::forget(pool);
            }
        });
    }
    for _ in 0..2 {
        match rx.recv_timeout(LIMIT * 4) {
            Ok(Ok(healthy)) => assert!(healthy, "the pool broke"),
            Ok(Err(why)) => panic!("{why}"),
            Err(_) => panic!("hang: the rounds did not finish"),
        }
    }
}
