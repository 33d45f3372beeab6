//! Rule L12: the number of open descriptors does not grow with the number of queued tasks.
//!
//! Alone in its test binary: it counts this process's descriptors, and `cargo test` runs the tests
//! of one binary on threads of one process, where another test's pool would open its own.

use std::time::Duration;

use backend_process::{ProcessPoolExecutor, RemoteTask};
use executor_core::{Executor, State, Task, TaskError};
use serde::{Deserialize, Serialize};

backend_process::test_worker!();

const LIMIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Job {
    Pid,
    Sleep(u64),
}

impl Task for Job {
    type Output = u32;

    fn run(self) -> Result<u32, TaskError> {
        match self {
            Job::Pid => Ok(std::process::id()),
            Job::Sleep(ms) => {
                std::thread::sleep(Duration::from_millis(ms));
                Ok(0)
            }
        }
    }
}

impl RemoteTask for Job {
    const NAME: &'static str = "backend_process::tests::descriptors::job";
}

backend_process::register!(Job);

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn a_million_queued_tasks_use_no_more_descriptors() {
    let before_pool = open_fds();
    let pool = ProcessPoolExecutor::new(1).unwrap();
    // Holds the only worker for longer than the test needs; killed at the end.
    let blocker = pool.submit(Job::Sleep(60_000)).unwrap();
    while blocker.state() != State::Running {
        std::thread::yield_now();
    }
    // A worker costs the parent its two pipes and its doorbell (its start page's memfd is closed
    // once mapped).
    let before = open_fds();
    assert_eq!(before, before_pool + 3, "descriptors of one worker");
    let futures: Vec<_> = (0..1_000_000)
        .map(|_| pool.submit(Job::Pid).unwrap())
        .collect();
    assert_eq!(open_fds(), before, "descriptors grew with the queue");
    pool.kill_workers();
    assert!(futures.iter().all(|f| f.cancelled()));
    assert!(blocker.result(Some(LIMIT)).is_err());
}
