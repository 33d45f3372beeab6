//! The chunks of `map` go quiet: a worker starts them without telling the parent through the pipe
//! (it records the start in its start page, a word of memory both share), and may hold their
//! responses to send several in one write. What that must not change, with real workers:
//!
//! - when a worker dies, the parent still knows exactly which chunks it had started: under
//!   `OnWorkerDeath::Replace` only the dying chunk fails and no chunk runs twice; under
//!   `terminate_workers` the running chunk fails and the ones sent ahead are cancelled;
//! - a held response goes out within the hold's bound even while the worker is stuck in the next
//!   chunk;
//! - `sent_ahead()` and `stats().running` count a quiet chunk that runs as running;
//! - the chunks sent ahead to a worker held up in a long chunk go to the worker that ran out
//!   (work stealing), each runs once, and the results come in order.

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use backend_process::{OnWorkerDeath, ProcessPoolExecutor, RemoteTask};
use executor_core::{
    Executor, Introspect, MapOptions, ResultError, Shutdown, ShutdownOptions, Task, TaskError,
};
use serde::{Deserialize, Serialize};
use support::{Dir, LIMIT, within};

backend_process::test_worker!();

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Step {
    /// Appends a line to `ran-<n>` in `dir` (so a step that runs twice shows), returns `n`.
    Mark { dir: PathBuf, n: u64 },
    /// Marks, creates `started`, then waits (at most a minute) until `release` exists.
    Block { dir: PathBuf, n: u64 },
    /// Marks, then waits (at most a minute) until `go` exists and exits the worker with code 7.
    Die { dir: PathBuf, n: u64 },
    /// Marks, then waits (at most [`HELD_UP`]) until every step from `n + 1` to `until - 1` has
    /// run; fails if they did not.
    WaitFor { dir: PathBuf, n: u64, until: u64 },
    /// Cannot be serialized, so it is never sent.
    Unsendable(Refuse),
}

/// A value whose `Serialize` fails.
#[derive(Debug, Clone, Deserialize)]
struct Refuse;

impl Serialize for Refuse {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom(
            "this value refuses to be serialized",
        ))
    }
}

fn mark(dir: &std::path::Path, n: u64) -> Result<(), TaskError> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("ran-{n}")))
        .and_then(|mut f| f.write_all(b"ran\n"))
        .map_err(TaskError::from_error)
}

fn wait_until(path: &std::path::Path) {
    let limit = Instant::now() + LIMIT;
    while !path.exists() && Instant::now() < limit {
        std::thread::sleep(Duration::from_millis(1));
    }
}

impl Task for Step {
    type Output = u64;

    fn run(self) -> Result<u64, TaskError> {
        match self {
            Step::Mark { dir, n } => {
                mark(&dir, n)?;
                Ok(n)
            }
            Step::Block { dir, n } => {
                mark(&dir, n)?;
                std::fs::write(dir.join("started"), b"").map_err(TaskError::from_error)?;
                wait_until(&dir.join("release"));
                Ok(n)
            }
            Step::Die { dir, n } => {
                mark(&dir, n)?;
                wait_until(&dir.join("go"));
                std::process::exit(7)
            }
            Step::WaitFor { dir, n, until } => {
                mark(&dir, n)?;
                let limit = Instant::now() + HELD_UP;
                let mut next = n + 1;
                while next < until {
                    if dir.join(format!("ran-{next}")).exists() {
                        next += 1;
                    } else if Instant::now() > limit {
                        return Err(TaskError::msg(format!(
                            "step {next} did not run while step {n} waited for it"
                        )));
                    } else {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                }
                Ok(n)
            }
            Step::Unsendable(_) => unreachable!("it cannot reach a worker"),
        }
    }
}

impl RemoteTask for Step {
    const NAME: &'static str = "backend_process::tests::quiet_chunks::step";
}

backend_process::register!(Step);

/// How long [`Step::WaitFor`] waits for the steps after it: far longer than they take to run
/// anywhere they can run.
const HELD_UP: Duration = Duration::from_secs(20);

/// How many times step `n` ran.
fn runs(dir: &Dir, n: u64) -> usize {
    std::fs::read_to_string(dir.path(&format!("ran-{n}"))).map_or(0, |text| text.lines().count())
}

fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !condition() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Thirteen steps in chunks of one, one worker holding up to eight: step 0 blocks until all
/// eight are written to the worker, step 4 kills it once the test has read the results of steps
/// 0 to 3. Those responses were held (more requests were queued than responses held) while the
/// worker is stuck in step 4, so they must go out within the hold's bound for the test to go on.
fn map_through_a_death(policy: OnWorkerDeath) -> (Dir, Vec<Result<u64, ResultError>>) {
    let dir = Dir::new("quiet-death");
    let root = dir.root();
    let results = within("a map through a worker's death", move || {
        let pool = ProcessPoolExecutor::builder()
            .max_workers(1)
            .max_in_flight_per_worker(8)
            .on_worker_death(policy)
            .build()
            .unwrap();
        let steps = (0..13).map(|n| {
            let dir = root.clone();
            match n {
                0 => Step::Block { dir, n },
                4 => Step::Die { dir, n },
                _ => Step::Mark { dir, n },
            }
        });
        let mut results = pool.map(steps, MapOptions::new().chunksize(1)).unwrap();
        wait_for("step 0 runs", || root.join("started").exists());
        wait_for("seven chunks sent ahead", || pool.sent_ahead() == 7);
        std::fs::write(root.join("release"), b"").unwrap();
        let mut seen: Vec<_> = results.by_ref().take(4).collect();
        wait_for("step 4 runs", || root.join("ran-4").exists());
        std::fs::write(root.join("go"), b"").unwrap();
        seen.extend(results);
        seen
    });
    (dir, results)
}

/// Under `Replace`, a map whose worker dies loses only the chunk that was running: the chunks
/// sent ahead quietly (never started) run once, on the replacement; none runs twice.
#[test]
fn replace_fails_only_the_dying_chunk_and_runs_none_twice() {
    let (dir, results) = map_through_a_death(OnWorkerDeath::Replace);
    assert_eq!(results.len(), 13);
    for (n, result) in results.iter().enumerate() {
        match n {
            4 => {
                let e = match result {
                    Err(ResultError::Failed(e)) => e,
                    other => panic!("step {n}: {other:?}"),
                };
                assert!(!e.is_broken(), "step {n}: {e:?}");
                assert!(e.message().contains("exited with code 7"), "step {n}: {e}");
            }
            _ => assert_eq!(result.as_ref().ok(), Some(&(n as u64)), "step {n}"),
        }
        assert_eq!(runs(&dir, n as u64), 1, "step {n} ran once");
    }
}

/// By default (the pool breaks), the chunks sent ahead never run; every item after the dead
/// chunk fails with the broken-pool error naming the worker; nothing ran twice.
#[test]
fn a_death_breaks_the_pool_and_the_chunks_sent_ahead_never_run() {
    let (dir, results) = map_through_a_death(OnWorkerDeath::BreakPool);
    assert_eq!(results.len(), 13);
    for (n, result) in results.iter().enumerate() {
        if n < 4 {
            assert_eq!(result.as_ref().ok(), Some(&(n as u64)), "step {n}");
            continue;
        }
        let e = match result {
            Err(ResultError::Failed(e)) => e,
            other => panic!("step {n}: {other:?}"),
        };
        assert!(e.is_broken(), "step {n}: {e:?}");
        assert!(
            e.to_string().contains("exited with code 7"),
            "step {n}: {e}"
        );
    }
    for n in 0..13 {
        let expected = usize::from(n <= 4);
        assert_eq!(runs(&dir, n), expected, "step {n}");
    }
}

/// `terminate_workers` in the middle of a map: the chunk the worker runs fails (it started: the
/// start page says so, though no `Started` frame came), the chunks sent ahead are cancelled.
/// Meanwhile the pool's counts show the quiet chunk as running and the others as sent ahead.
#[test]
fn terminate_fails_the_running_chunk_and_cancels_those_sent_ahead() {
    let dir = Dir::new("quiet-terminate");
    let root = dir.root();
    let results = within("a map through terminate_workers", move || {
        let pool = ProcessPoolExecutor::builder()
            .max_workers(1)
            .max_in_flight_per_worker(4)
            .build()
            .unwrap();
        let steps = (0..7).map(|n| {
            let dir = root.clone();
            if n == 0 {
                Step::Block { dir, n }
            } else {
                Step::Mark { dir, n }
            }
        });
        let results = pool.map(steps, MapOptions::new().chunksize(1)).unwrap();
        wait_for("step 0 runs", || root.join("started").exists());
        wait_for("three chunks sent ahead", || pool.sent_ahead() == 3);
        assert_eq!(pool.stats().running, 1);
        pool.terminate_workers();
        results.collect::<Vec<_>>()
    });
    assert_eq!(results.len(), 7);
    match &results[0] {
        Err(ResultError::Failed(e)) => {
            assert!(e.is_broken(), "{e:?}");
            assert!(e.to_string().contains("signal 15"), "{e}");
        }
        other => panic!("step 0: {other:?}"),
    }
    for (n, result) in results.iter().enumerate().skip(1) {
        assert!(
            matches!(result, Err(e) if e.is_cancelled()),
            "step {n}: {result:?}"
        );
        assert_eq!(runs(&dir, n as u64), 0, "step {n} never ran");
    }
}

/// `map` hands its chunks over in groups (`submit_batches`): the group is queued whole, every
/// chunk runs once, and after shutdown every chunk of a group comes back, tasks and all, except
/// one with nothing to send (no item serializes), which is complete, as with `submit_batch`.
#[test]
fn a_group_of_chunks_is_queued_whole_or_refused_whole() {
    let dir = Dir::new("quiet-groups");
    let root = dir.root();
    within("groups of chunks", move || {
        let pool = ProcessPoolExecutor::new(2).unwrap();
        let steps = |range: std::ops::Range<u64>| -> Vec<Step> {
            range
                .map(|n| Step::Mark {
                    dir: root.clone(),
                    n,
                })
                .collect()
        };
        // 300 steps in chunks of 3: groups of 1, 2, 4, ... chunks, all of one map.
        let results: Vec<u64> = pool
            .map(steps(0..300), MapOptions::new().chunksize(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(results, (0..300).collect::<Vec<_>>());
        let batches = pool.submit_batches(vec![steps(300..302), steps(302..305)]);
        assert_eq!(
            batches
                .iter()
                .map(|b| b.as_ref().unwrap().len())
                .collect::<Vec<_>>(),
            [2, 3]
        );
        drop(batches);
        pool.shutdown(ShutdownOptions::wait());
        let refused = pool.submit_batches(vec![steps(400..402), steps(402..405)]);
        let handed_back: Vec<Vec<Step>> = refused
            .into_iter()
            .map(|r| {
                let e = r.unwrap_err();
                assert!(e.is_shutdown(), "{e}");
                e.into_parts().1
            })
            .collect();
        assert_eq!(handed_back.iter().map(Vec::len).collect::<Vec<_>>(), [2, 3]);
        let mixed = pool.submit_batches(vec![vec![Step::Unsendable(Refuse)], steps(405..407)]);
        assert_eq!(mixed[0].as_ref().map(|b| b.len()).ok(), Some(1));
        assert!(mixed[1].as_ref().is_err_and(|e| e.is_shutdown()));
        let single = pool.submit_batch(vec![Step::Unsendable(Refuse)]);
        assert_eq!(
            single.map(|b| b.len()).ok(),
            Some(1),
            "the same as one by one"
        );
    });
    for n in 0..305 {
        assert_eq!(runs(&dir, n), 1, "step {n}");
    }
    for n in 400..407 {
        assert_eq!(runs(&dir, n), 0, "step {n} was refused");
    }
}

/// A worker held up in a long chunk gives back the chunks sent ahead to it once the other worker
/// has run out of work (the parent's work stealing): step 40 waits until every later step has
/// run, which, for the steps sent ahead to its worker (up to 16 deep here, and kept about as deep
/// as the other worker's by the scheduler), only another worker can do. Without the stealing,
/// step 40 fails after [`HELD_UP`]. Every step runs exactly once, and the results come in order.
#[test]
fn chunks_sent_ahead_to_a_held_up_worker_go_to_the_one_that_ran_out() {
    for round in 0..3 {
        let dir = Dir::new("quiet-steal");
        let root = dir.root();
        let results = within("a map with a held-up worker", move || {
            let pool = ProcessPoolExecutor::builder()
                .max_workers(2)
                .max_in_flight_per_worker(16)
                .build()
                .unwrap();
            let steps = (0..64).map(|n| {
                let dir = root.clone();
                match n {
                    40 => Step::WaitFor { dir, n, until: 64 },
                    _ => Step::Mark { dir, n },
                }
            });
            pool.map(steps, MapOptions::new().chunksize(1))
                .unwrap()
                .map(|r| r.map_err(|e| e.to_string()))
                .collect::<Vec<_>>()
        });
        let expected: Vec<Result<u64, String>> = (0..64).map(Ok).collect();
        assert_eq!(results, expected, "round {round}");
        for n in 0..64 {
            assert_eq!(runs(&dir, n), 1, "round {round}: step {n}");
        }
    }
}
