//! Rule L10: workers never outlive their parent. A parent process (this test binary, re-run in
//! a "parent" mode) starts a pool whose workers block in tasks, reports their pids, and is then
//! killed with SIGKILL, so it runs no shutdown code at all; every worker must exit.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use backend_process::{ProcessPoolExecutor, RemoteTask};
use executor_core::{Executor, Task, TaskError};
use serde::{Deserialize, Serialize};

backend_process::test_worker!();

const PARENT_ENV: &str = "BACKEND_PROCESS_TEST_PARENT_DIR";
const PARENT_ENTRY: &str = "__parent_death_parent_entry";
const LIMIT: Duration = Duration::from_secs(60);
/// How long a worker's task holds it: far longer than the test waits, so a worker still alive
/// at the end is one that outlived its parent, not one whose task ended.
const HOLD: Duration = Duration::from_secs(600);

/// Writes its worker's pid into `dir/worker-{i}`, then waits (up to [`HOLD`]) for a file that
/// never comes.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Hold {
    dir: PathBuf,
    i: usize,
}

impl Task for Hold {
    type Output = ();
    fn run(self) -> Result<(), TaskError> {
        let file = self.dir.join(format!("worker-{}", self.i));
        let partial = file.with_extension("partial");
        std::fs::write(&partial, std::process::id().to_string())
            .and_then(|()| std::fs::rename(&partial, &file))
            .map_err(TaskError::from_error)?;
        let until = Instant::now() + HOLD;
        while Instant::now() < until && !self.dir.join("never").exists() {
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }
}

impl RemoteTask for Hold {
    const NAME: &'static str = "backend_process::tests::parent_death::hold";
}
backend_process::register!(Hold);

/// The parent's side: runs only when re-executed by the test below.
#[test]
fn __parent_death_parent_entry() {
    let Some(dir) = std::env::var_os(PARENT_ENV).map(PathBuf::from) else {
        return;
    };
    let pool = ProcessPoolExecutor::new(2).unwrap();
    let held: Vec<_> = (0..2)
        .map(|i| {
            pool.submit(Hold {
                dir: dir.clone(),
                i,
            })
            .unwrap()
        })
        .collect();
    // Wait to be killed (the test does it once both workers have reported).
    let until = Instant::now() + HOLD;
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(held);
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Gone, or a zombie waiting for whoever inherited it to reap it: either way not running.
fn exited(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
    }
}

#[test]
fn workers_exit_when_their_parent_is_killed() {
    let dir = std::env::temp_dir().join(format!(
        "backend-process-parent-death-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let mut parent = Command::new(std::env::current_exe().unwrap())
        .args([PARENT_ENTRY, "--exact", "--nocapture", "--test-threads=1"])
        .env(PARENT_ENV, &dir)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + LIMIT;
    let pids: Vec<i32> = loop {
        let pids: Vec<i32> = (0..2)
            .filter_map(|i| read_pid(&dir.join(format!("worker-{i}"))))
            .collect();
        if pids.len() == 2 {
            break pids;
        }
        assert!(
            Instant::now() < deadline,
            "the parent's workers never started their tasks"
        );
        assert!(
            parent.try_wait().unwrap().is_none(),
            "the parent exited early"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(pids.iter().all(|&pid| !exited(pid)), "both workers run");

    parent.kill().unwrap(); // SIGKILL: no destructor, no shutdown runs in the parent
    parent.wait().unwrap();

    let deadline = Instant::now() + LIMIT;
    while !pids.iter().all(|&pid| exited(pid)) {
        if Instant::now() > deadline {
            for &pid in &pids {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
            panic!("workers {pids:?} outlived their killed parent");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
