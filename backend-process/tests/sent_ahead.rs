//! Tasks sent ahead to a worker (rule L13, with A2's "one atomic decision"): a task written to a
//! busy worker's pipe stays PENDING until the worker starts it; `cancel()` withdraws it from the
//! worker and it never runs; the worker's "start it" and the parent's "revoke it" race, and
//! exactly one wins, every time. When the worker dies, such a task fails with the broken-pool
//! error naming the pid (rule L6); nothing waits for ever on a dead worker.
//!
//! All with real worker processes. `ProcessPoolExecutor::sent_ahead` proves that a task was
//! written to a worker (not merely queued in the parent).

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use backend_process::{OnWorkerDeath, ProcessPoolExecutor, RemoteTask};
use executor_core::{
    Executor, FutureHandle, Introspect, Shutdown, ShutdownOptions, State, Task, TaskError,
};
use serde::{Deserialize, Serialize};
use support::Dir;

backend_process::test_worker!();

/// Longer than any test step needs; only reached if something hangs.
const LIMIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Probe {
    Pid,
    /// Creates `started` (holding the worker's pid), then waits (at most a minute) until
    /// `release` exists.
    Block {
        started: PathBuf,
        release: PathBuf,
    },
    /// Creates the file: proof that the task ran.
    Touch(PathBuf),
    /// Creates the file, with a payload that takes many times what the pipe holds.
    Bulk(PathBuf, Vec<u8>),
    /// Busy for this many microseconds.
    Spin(u64),
    /// Waits (at most a minute) until the file exists, then exits the worker with this code.
    ExitWhen(PathBuf, i32),
}

impl Task for Probe {
    type Output = u64;

    fn run(self) -> Result<u64, TaskError> {
        match self {
            Probe::Pid => Ok(u64::from(std::process::id())),
            Probe::Block { started, release } => {
                // Written whole, then renamed into place: whoever sees the file sees the pid.
                let partial = started.with_extension("partial");
                std::fs::write(&partial, std::process::id().to_string())
                    .and_then(|()| std::fs::rename(&partial, &started))
                    .map_err(TaskError::from_error)?;
                let limit = Instant::now() + LIMIT;
                while !release.exists() {
                    if Instant::now() > limit {
                        return Err(TaskError::msg("never released"));
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                Ok(1)
            }
            Probe::Touch(path) => {
                std::fs::write(&path, b"").map_err(TaskError::from_error)?;
                Ok(2)
            }
            Probe::Bulk(path, bytes) => {
                std::fs::write(&path, b"").map_err(TaskError::from_error)?;
                Ok(bytes.len() as u64)
            }
            Probe::ExitWhen(path, code) => {
                let limit = Instant::now() + LIMIT;
                while !path.exists() && Instant::now() < limit {
                    std::thread::sleep(Duration::from_millis(1));
                }
                std::process::exit(code)
            }
            Probe::Spin(micros) => {
                let until = Instant::now() + Duration::from_micros(micros);
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
                Ok(3)
            }
        }
    }

    fn name(&self) -> &'static str {
        Self::NAME
    }
}

impl RemoteTask for Probe {
    const NAME: &'static str = "backend_process::tests::sent_ahead::probe";
}

backend_process::register!(Probe);

impl Dir {
    fn block(&self) -> Probe {
        Probe::Block {
            started: self.path("started"),
            release: self.path("release"),
        }
    }
}

/// Waits until `condition` holds; fails the test (instead of hanging) past [`LIMIT`].
fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !condition() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn exists(path: &Path) -> bool {
    path.exists()
}

/// A one-worker pool whose worker is busy with a blocked task, plus a second task sent ahead to
/// it (proved by `sent_ahead`, and by the queue being empty).
fn busy_pool_with_a_task_sent_ahead(
    dir: &Dir,
) -> (ProcessPoolExecutor, FutureHandle<u64>, FutureHandle<u64>) {
    // Two in flight: the running task and exactly one sent ahead (a third stays queued).
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .max_in_flight_per_worker(2)
        .build()
        .unwrap();
    let blocker = pool.submit(dir.block()).unwrap();
    // RUNNING once the parent has read the worker's `Started`: from then on, `sent_ahead`
    // counts only the second task.
    wait_for("the blocking task started", || blocker.running());
    // RUNNING comes just before the task runs: its `started` file (with the pid) a moment later.
    wait_for("the blocking task wrote its pid", || {
        exists(&dir.path("started"))
    });
    let ahead = pool.submit(Probe::Touch(dir.path("ahead"))).unwrap();
    wait_for("the second task was written to the worker", || {
        pool.sent_ahead() == 1
    });
    let stats = pool.stats();
    assert_eq!((stats.queued, stats.running), (0, 1), "{stats:?}");
    assert_eq!(blocker.state(), State::Running);
    assert_eq!(ahead.state(), State::Pending, "sent ahead, not started");
    (pool, blocker, ahead)
}

#[test]
fn a_task_sent_ahead_stays_pending_and_cancel_withdraws_it_from_the_worker() {
    let dir = Dir::new("withdraw");
    let (pool, blocker, ahead) = busy_pool_with_a_task_sent_ahead(&dir);
    assert!(ahead.cancel(), "cancel of a task sent ahead failed");
    assert!(ahead.cancelled() && ahead.done());
    assert!(
        ahead
            .result(Some(Duration::ZERO))
            .unwrap_err()
            .is_cancelled()
    );
    assert_eq!(pool.sent_ahead(), 0);
    dir.release();
    assert_eq!(*blocker.result(Some(LIMIT)).unwrap(), 1);
    // The worker goes on with the next task (it would have run the withdrawn one first).
    let after = pool.submit(Probe::Touch(dir.path("after"))).unwrap();
    assert_eq!(*after.result(Some(LIMIT)).unwrap(), 2);
    pool.shutdown(ShutdownOptions::wait());
    assert!(exists(&dir.path("after")));
    assert!(!exists(&dir.path("ahead")), "a withdrawn task ran");
}

/// A worker's runner reads its pipe only between tasks: a request many times larger than the
/// pipe, sent ahead while the worker is in a long task, fills it. The parent then rings the
/// worker's doorbell, and the worker's reader thread takes the rest at once: the write completes
/// and the stdin lock is free while the task still runs, so `cancel()` (which writes a `Revoke`
/// under that lock) answers at once instead of waiting for the task to end.
#[test]
fn a_request_larger_than_the_pipe_sent_to_a_busy_worker_is_read_and_can_be_cancelled_at_once() {
    const BULK: usize = 16 * 1024 * 1024;
    let dir = Dir::new("bulk");
    let (pool, blocker, ahead) = busy_pool_with_a_task_sent_ahead(&dir);
    // Frees the place sent ahead for the large request.
    assert!(ahead.cancel());
    let bulk = pool
        .submit(Probe::Bulk(dir.path("bulk"), vec![7; BULK]))
        .unwrap();
    wait_for("the large request was written to the worker", || {
        pool.sent_ahead() == 1
    });
    let bulk = Arc::new(bulk);
    let cancelled = {
        let bulk = Arc::clone(&bulk);
        support::within("cancel of a large request sent ahead", move || {
            bulk.cancel()
        })
    };
    assert!(cancelled, "the large request was not withdrawn");
    assert_eq!(
        blocker.state(),
        State::Running,
        "cancel waited for the running task"
    );
    dir.release();
    assert_eq!(*blocker.result(Some(LIMIT)).unwrap(), 1);
    // The same request, not cancelled, runs and reaches the task whole.
    let again = pool
        .submit(Probe::Bulk(dir.path("bulk"), vec![7; BULK]))
        .unwrap();
    assert_eq!(*again.result(Some(LIMIT)).unwrap(), BULK as u64);
    pool.shutdown(ShutdownOptions::wait());
}

#[test]
fn concurrent_cancels_of_a_task_sent_ahead_agree() {
    let dir = Dir::new("agree");
    let (pool, blocker, ahead) = busy_pool_with_a_task_sent_ahead(&dir);
    let ahead = Arc::new(ahead);
    let cancels: Vec<_> = (0..4)
        .map(|_| {
            let ahead = Arc::clone(&ahead);
            std::thread::spawn(move || ahead.cancel())
        })
        .collect();
    let answers: Vec<bool> = cancels.into_iter().map(|c| c.join().unwrap()).collect();
    assert_eq!(answers, [true; 4]);
    dir.release();
    blocker.result(Some(LIMIT)).unwrap();
    pool.shutdown(ShutdownOptions::wait());
    assert!(!exists(&dir.path("ahead")));
}

/// The race itself, many times: the worker finishes a short task and starts the one sent ahead
/// while `cancel()` tries to withdraw it. Every time, either `cancel` returned true and the task
/// never ran, or it returned false and the task ran to completion: never both, never neither.
#[test]
fn cancel_racing_the_worker_start_exactly_one_wins_every_time() {
    const ITERATIONS: u64 = 200;
    let dir = Dir::new("race");
    let pool = ProcessPoolExecutor::new(1).unwrap();
    let (mut withdrawn, mut ran, mut while_sent_ahead) = (0, 0, 0);
    for i in 0..ITERATIONS {
        // A short task that busies the worker for 0–190 µs, then the contested one.
        let first = pool.submit(Probe::Spin((i % 20) * 10)).unwrap();
        let marker = dir.path(&format!("ran-{i}"));
        let contested = pool.submit(Probe::Touch(marker.clone())).unwrap();
        // Spread the cancel over the window in which the worker starts the task.
        let spin_until = Instant::now() + Duration::from_micros((i * 7) % 150);
        while Instant::now() < spin_until {
            std::hint::spin_loop();
        }
        while_sent_ahead += usize::from(pool.sent_ahead() == 1);
        let cancelled = contested.cancel();
        first.result(Some(LIMIT)).unwrap();
        if cancelled {
            assert!(contested.cancelled(), "iteration {i}");
            withdrawn += 1;
        } else {
            assert_eq!(
                *contested.result(Some(LIMIT)).unwrap(),
                2,
                "iteration {i}: cancel returned false, so the task must complete"
            );
            assert!(exists(&marker), "iteration {i}: finished without running");
            ran += 1;
        }
    }
    // Anything still to run has run by the time shutdown(wait) returns.
    pool.shutdown(ShutdownOptions::wait());
    let markers = (0..ITERATIONS)
        .filter(|i| exists(&dir.path(&format!("ran-{i}"))))
        .count();
    assert_eq!(
        markers, ran,
        "a task whose cancel returned true ran anyway (or one that ran left no mark)"
    );
    assert_eq!(withdrawn + ran, ITERATIONS as usize);
    eprintln!(
        "{withdrawn} withdrawn, {ran} ran; {while_sent_ahead} cancels came while the task was \
         sent ahead"
    );
}

#[test]
fn a_task_sent_ahead_fails_naming_the_pid_when_the_worker_is_killed() {
    let dir = Dir::new("killed");
    let (pool, blocker, ahead) = busy_pool_with_a_task_sent_ahead(&dir);
    let queued = pool.submit(Probe::Touch(dir.path("queued"))).unwrap();
    assert_eq!(pool.stats().queued, 1);
    let pid = worker_of(&dir);
    let pid_rx = rustix::process::Pid::from_raw(pid as i32).unwrap();
    rustix::process::kill_process(pid_rx, rustix::process::Signal::KILL).unwrap();

    for (what, f) in [
        ("running", &blocker),
        ("sent ahead", &ahead),
        ("queued", &queued),
    ] {
        let e = f.result(Some(LIMIT)).unwrap_err();
        let e = e
            .task_error()
            .unwrap_or_else(|| panic!("{what}: not a task failure: {e}"));
        assert!(e.is_broken(), "{what}: {e:?}");
        let reason = e.broken_executor().unwrap().reason();
        assert!(
            reason.contains(&format!("worker pid {pid}"))
                && reason.contains("was killed by signal 9 (SIGKILL)"),
            "{what}: {reason}"
        );
        assert!(e.to_string().contains(&format!("worker pid {pid}")), "{e}");
    }
    assert_eq!(
        ahead
            .result(None)
            .unwrap_err()
            .task_error()
            .unwrap()
            .worker_pid(),
        Some(pid)
    );
    assert!(pool.submit(Probe::Pid).unwrap_err().broken().is_some());
    assert!(!exists(&dir.path("ahead")) && !exists(&dir.path("queued")));
}

/// The pid of the worker running `dir`'s blocking task (which writes it into its `started`
/// file).
fn worker_of(dir: &Dir) -> u32 {
    std::fs::read_to_string(dir.path("started"))
        .unwrap()
        .trim()
        .parse()
        .expect("the blocking task writes its pid into its `started` file")
}

/// A revoke waiting for a worker that cannot answer (stopped), which then dies: the cancel
/// returns (the task never started, so it is withdrawn) instead of waiting for ever.
#[test]
fn a_revoke_waiting_on_a_worker_that_dies_returns() {
    let dir = Dir::new("dies");
    let (pool, blocker, ahead) = busy_pool_with_a_task_sent_ahead(&dir);
    let pid = rustix::process::Pid::from_raw(worker_of(&dir) as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::STOP).unwrap();
    let ahead = Arc::new(ahead);
    let cancel = {
        let ahead = Arc::clone(&ahead);
        std::thread::spawn(move || ahead.cancel())
    };
    // Give the revoke time to be written (its answer cannot come: the worker is stopped).
    std::thread::sleep(Duration::from_millis(50));
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(cancel.join().unwrap()));
    let cancelled = rx
        .recv_timeout(LIMIT)
        .expect("cancel hung on a dead worker");
    assert!(ahead.done());
    assert_eq!(cancelled, ahead.cancelled());
    assert!(
        blocker
            .result(Some(LIMIT))
            .unwrap_err()
            .task_error()
            .unwrap()
            .is_broken()
    );
    drop(pool);
    assert!(!exists(&dir.path("ahead")));
}

/// `shutdown(cancel_futures)` withdraws tasks sent ahead too (rule I4): they are cancelled when
/// it returns, and never run.
#[test]
fn shutdown_cancel_futures_withdraws_tasks_sent_ahead() {
    let dir = Dir::new("shutdown");
    let (pool, blocker, ahead) = busy_pool_with_a_task_sent_ahead(&dir);
    pool.shutdown(ShutdownOptions::no_wait().cancel_futures());
    assert!(ahead.cancelled());
    dir.release();
    assert_eq!(*blocker.result(Some(LIMIT)).unwrap(), 1);
    pool.shutdown(ShutdownOptions::wait());
    assert!(!exists(&dir.path("ahead")));
}

/// `cancel()` from a done callback, which runs on the pool's reader thread, cannot wait for the
/// worker's answer (that thread must read it): it returns false at once and the task runs, as
/// documented, instead of deadlocking.
#[test]
fn cancel_from_a_done_callback_on_the_reader_thread_does_not_deadlock() {
    let dir = Dir::new("callback");
    let (pool, blocker, ahead) = busy_pool_with_a_task_sent_ahead(&dir);
    let ahead = Arc::new(ahead);
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let ahead = Arc::clone(&ahead);
        blocker.add_done_callback(move |_| tx.send(ahead.cancel()).unwrap());
    }
    dir.release();
    let cancelled = rx.recv_timeout(LIMIT).expect("the callback never ran");
    assert!(!cancelled);
    assert_eq!(*ahead.result(Some(LIMIT)).unwrap(), 2);
    drop(pool);
    assert!(exists(&dir.path("ahead")));
}

/// With one request in flight per worker, nothing is sent ahead: the second task waits in the
/// parent's queue.
#[test]
fn one_request_in_flight_sends_nothing_ahead() {
    let dir = Dir::new("one");
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .max_in_flight_per_worker(1)
        .build()
        .unwrap();
    let blocker = pool.submit(dir.block()).unwrap();
    wait_for("the blocking task started", || exists(&dir.path("started")));
    let second = pool.submit(Probe::Touch(dir.path("second"))).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!((pool.sent_ahead(), pool.stats().queued), (0, 1));
    dir.release();
    assert_eq!(*blocker.result(Some(LIMIT)).unwrap(), 1);
    assert_eq!(*second.result(Some(LIMIT)).unwrap(), 2);
}

/// A second worker is used for a second long task rather than sending it ahead to the busy one
/// (sending ahead happens only while no worker is idle or starting).
#[test]
fn a_free_worker_is_preferred_to_sending_ahead() {
    let dir = Dir::new("prefer");
    let pool = ProcessPoolExecutor::new(2).unwrap();
    let blocker = pool.submit(dir.block()).unwrap();
    wait_for("the blocking task started", || exists(&dir.path("started")));
    let second = pool.submit(Probe::Pid).unwrap();
    // It completes while the first worker is still blocked: it ran on the other worker.
    second.result(Some(LIMIT)).unwrap();
    assert_eq!(blocker.state(), State::Running);
    assert_eq!(pool.stats().workers, 2);
    dir.release();
    blocker.result(Some(LIMIT)).unwrap();
}

/// With `OnWorkerDeath::Replace`, a task sent ahead to a worker that dies before starting it is
/// not lost and does not fail: it runs on the replacement worker. Only the task that was running
/// fails.
#[test]
fn replace_policy_sends_a_task_sent_ahead_again_to_the_replacement() {
    let dir = Dir::new("replace");
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .on_worker_death(OnWorkerDeath::Replace)
        .build()
        .unwrap();
    let first = *pool
        .submit(Probe::Pid)
        .unwrap()
        .result(Some(LIMIT))
        .unwrap();
    let dying = pool.submit(Probe::ExitWhen(dir.path("die"), 3)).unwrap();
    wait_for("the dying task started", || dying.running());
    let ahead = pool.submit(Probe::Pid).unwrap();
    wait_for("the second task was written to the worker", || {
        pool.sent_ahead() == 1
    });
    std::fs::write(dir.path("die"), b"").unwrap();
    let e = dying.result(Some(LIMIT)).unwrap_err();
    let e = e.task_error().unwrap();
    assert!(!e.is_broken(), "{e:?}");
    assert!(
        e.message()
            .contains(&format!("worker pid {first} exited with code 3")),
        "{e}"
    );
    let second = *ahead.result(Some(LIMIT)).unwrap();
    assert_ne!(second, first, "it ran on the replacement");
    assert!(pool.broken().is_none());
}

/// Requests sent ahead spread evenly over busy workers: with both workers blocked and four in
/// flight allowed, four more tasks go two and two (not one worker's three free places filled
/// first), so long tasks do not pile up behind one worker while the other runs dry.
#[test]
fn requests_sent_ahead_spread_evenly_over_busy_workers() {
    for round in 0..20 {
        let dir = Dir::new(&format!("spread-{round}"));
        let pool = ProcessPoolExecutor::builder()
            .max_workers(2)
            .max_in_flight_per_worker(4)
            .build()
            .unwrap();
        let blockers: Vec<_> = (0..2)
            .map(|i| {
                pool.submit(Probe::Block {
                    started: dir.path(&format!("started-{i}")),
                    release: dir.path("release"),
                })
                .unwrap()
            })
            .collect();
        wait_for("both workers run a blocking task", || {
            blockers.iter().all(|b| b.running())
        });
        let probes: Vec<_> = (0..4).map(|_| pool.submit(Probe::Pid).unwrap()).collect();
        wait_for("all four were sent ahead", || pool.sent_ahead() == 4);
        dir.release();
        let mut per_worker = std::collections::HashMap::new();
        for p in &probes {
            *per_worker
                .entry(*p.result(Some(LIMIT)).unwrap())
                .or_insert(0) += 1;
        }
        let mut counts: Vec<usize> = per_worker.into_values().collect();
        counts.sort_unstable();
        assert_eq!(counts, [2, 2], "round {round}");
    }
}
