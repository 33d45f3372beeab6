//! Many-iteration stress tests of the races between `submit`, `cancel`, `shutdown` and drop
//! (rules A2, G2, I1–I5, K1), run from several threads at once.
//!
//! Each task is a [`Tracked`] task that counts its own runs, so a test can check that no task
//! runs twice, that a refused task comes back (and never runs), and that no accepted task is
//! lost. Every wait has a generous limit: a future left pending for ever fails the test with
//! a timeout instead of hanging it. No assertion about the pool depends on how fast anything is;
//! two tests also check, summed over all their iterations, that both sides of their race were
//! seen at least once (which only says the race was exercised).

use std::hint::spin_loop;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use backend_threads::{ThreadPoolExecutor, TrySubmitError};
use executor_core::{
    Executor, FutureHandle, Introspect, ResultError, Shutdown, ShutdownOptions, Task, TaskError,
};

/// The most any future may take to complete once it should.
const LIMIT: Duration = Duration::from_secs(30);

/// A task that counts its runs in `runs[id]` and returns its id.
struct Tracked {
    id: usize,
    runs: Arc<Vec<AtomicU32>>,
}

impl Task for Tracked {
    type Output = usize;

    fn run(self) -> Result<usize, TaskError> {
        self.runs[self.id].fetch_add(1, Ordering::SeqCst);
        Ok(self.id)
    }
}

fn counters(n: usize) -> Arc<Vec<AtomicU32>> {
    Arc::new((0..n).map(|_| AtomicU32::new(0)).collect())
}

/// Spins for a number of rounds that varies with `seed`, to move a racing call around.
fn jitter(seed: usize) {
    for _ in 0..(seed.wrapping_mul(2_654_435_761) % 2_000) {
        spin_loop();
    }
}

fn pool(workers: usize, max_queued: Option<usize>) -> ThreadPoolExecutor {
    let builder = ThreadPoolExecutor::builder().max_workers(workers);
    match max_queued {
        Some(n) => builder.max_queued(n),
        None => builder,
    }
    .build()
    .unwrap()
}

/// A one-way signal: set once, waited on by many.
#[derive(Default)]
struct Flag {
    set: Mutex<bool>,
    changed: Condvar,
}

impl Flag {
    fn set(&self) {
        *self.set.lock().unwrap() = true;
        self.changed.notify_all();
    }

    /// Waits until set; panics after [`LIMIT`].
    fn wait(&self, what: &str) {
        let deadline = Instant::now() + LIMIT;
        let mut set = self.set.lock().unwrap();
        while !*set {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "{what}");
            set = self.changed.wait_timeout(set, left).unwrap().0;
        }
    }
}

/// What one submitter saw: accepted (with the future) or refused (the task came back).
enum Seen {
    Accepted(usize, FutureHandle<usize>),
    Refused(usize),
}

/// `threads` submitters of `per_thread` tracked tasks each, started together with a shutdown
/// thread that runs `shutdown` once a number of submits (chosen by `seed`) have begun, plus some
/// jitter, so that over the iterations the shutdown lands everywhere in the stream of submits.
/// Each submitter's last submit waits until the shutdown has returned, so it must be refused.
/// Returns what the submitters saw and the stats the shutdown thread read right after its call
/// returned.
fn submit_racing_shutdown(
    pool: Arc<ThreadPoolExecutor>,
    runs: &Arc<Vec<AtomicU32>>,
    threads: usize,
    per_thread: usize,
    options: ShutdownOptions,
    seed: usize,
) -> (Vec<Seen>, executor_core::PoolStats) {
    let start = Arc::new(Barrier::new(threads + 1));
    let attempts = Arc::new(AtomicUsize::new(0));
    let shut = Arc::new(Flag::default());
    let submitters: Vec<_> = (0..threads)
        .map(|t| {
            let pool = Arc::clone(&pool);
            let runs = Arc::clone(runs);
            let start = Arc::clone(&start);
            let attempts = Arc::clone(&attempts);
            let shut = Arc::clone(&shut);
            thread::spawn(move || {
                start.wait();
                let mut seen = Vec::with_capacity(per_thread);
                let mut refused = false;
                for i in 0..per_thread {
                    let id = t * per_thread + i;
                    let task = Tracked {
                        id,
                        runs: Arc::clone(&runs),
                    };
                    let last = i + 1 == per_thread;
                    if last {
                        shut.wait("shutdown never returned");
                    } else {
                        attempts.fetch_add(1, Ordering::SeqCst);
                    }
                    match pool.submit(task) {
                        Ok(f) => {
                            assert!(!refused, "submit accepted after an earlier refusal");
                            assert!(!last, "submit accepted after shutdown returned");
                            seen.push(Seen::Accepted(id, f));
                        }
                        Err(e) => {
                            assert!(e.is_shutdown(), "refused for another reason: {e}");
                            let back = e.into_inner();
                            assert_eq!(back.id, id, "a refusal handed back another task");
                            refused = true;
                            seen.push(Seen::Refused(id));
                        }
                    }
                }
                seen
            })
        })
        .collect();
    let shutter = {
        let pool = Arc::clone(&pool);
        let target = seed.wrapping_mul(7) % (threads * (per_thread - 1) + 1);
        thread::spawn(move || {
            start.wait();
            // The submitters always get there (the workers drain any bounded queue).
            while attempts.load(Ordering::SeqCst) < target {
                thread::yield_now();
            }
            jitter(seed);
            pool.shutdown(options);
            let stats = pool.stats();
            shut.set();
            stats
        })
    };
    drop(pool);
    let seen = submitters
        .into_iter()
        .flat_map(|s| s.join().unwrap())
        .collect();
    (seen, shutter.join().unwrap())
}

/// (a) Submitters race `shutdown(no_wait)` / `shutdown(wait)`: every submit either returns a
/// future that completes with its task's value or is refused for shutdown with the task handed
/// back; no task is lost, none runs twice, none that was refused runs.
#[test]
fn submits_racing_shutdown_lose_nothing() {
    const ITERATIONS: usize = 600;
    const THREADS: usize = 3;
    const PER_THREAD: usize = 30;
    let (mut accepted_total, mut refused_total) = (0, 0);
    for it in 0..ITERATIONS {
        let max_queued = if it % 2 == 0 { None } else { Some(4) };
        let options = if it % 3 == 0 {
            ShutdownOptions::wait()
        } else {
            ShutdownOptions::no_wait()
        };
        let runs = counters(THREADS * PER_THREAD);
        let pool = Arc::new(pool(2, max_queued));
        let (seen, after) =
            submit_racing_shutdown(Arc::clone(&pool), &runs, THREADS, PER_THREAD, options, it);
        if options.wait {
            assert_eq!(
                (after.workers, after.queued, after.running),
                (0, 0, 0),
                "iteration {it}: shutdown(wait) returned with work left: {after:?}"
            );
        }
        assert_eq!(seen.len(), THREADS * PER_THREAD);
        let mut accepted = 0;
        for s in &seen {
            match s {
                Seen::Accepted(id, f) => {
                    accepted += 1;
                    match f.result(Some(LIMIT)) {
                        Ok(v) => assert_eq!(v, id),
                        Err(e) => panic!("iteration {it}: accepted task {id} ended with {e}"),
                    }
                }
                Seen::Refused(_) => refused_total += 1,
            }
        }
        accepted_total += accepted;
        drop(pool);
        for s in &seen {
            let (id, want) = match s {
                Seen::Accepted(id, _) => (*id, 1),
                Seen::Refused(id) => (*id, 0),
            };
            assert_eq!(
                runs[id].load(Ordering::SeqCst),
                want,
                "iteration {it}: task {id} ran the wrong number of times"
            );
        }
    }
    // Both outcomes occur: the shutdown waits for up to all racing submits to begin, and each
    // submitter's last submit comes after the shutdown.
    assert!(accepted_total > 0 && refused_total >= ITERATIONS * THREADS);
}

/// Several threads shut the pool down at once (wait and no-wait) while others submit:
/// idempotent, nothing lost, every accepted future completes.
#[test]
fn concurrent_shutdowns_while_submitting() {
    const ITERATIONS: usize = 600;
    for it in 0..ITERATIONS {
        let runs = counters(60);
        let pool = Arc::new(pool(2, Some(3)));
        let start = Arc::new(Barrier::new(4));
        let shutters: Vec<_> = [ShutdownOptions::wait(), ShutdownOptions::no_wait()]
            .into_iter()
            .enumerate()
            .map(|(k, options)| {
                let pool = Arc::clone(&pool);
                let start = Arc::clone(&start);
                thread::spawn(move || {
                    start.wait();
                    jitter(it * 2 + k);
                    pool.shutdown(options);
                })
            })
            .collect();
        let submitters: Vec<_> = (0..2)
            .map(|t| {
                let pool = Arc::clone(&pool);
                let runs = Arc::clone(&runs);
                let start = Arc::clone(&start);
                thread::spawn(move || {
                    start.wait();
                    (0..30)
                        .filter_map(|i| {
                            let id = t * 30 + i;
                            let runs = Arc::clone(&runs);
                            pool.submit(Tracked { id, runs }).ok().map(|f| (id, f))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for s in shutters {
            s.join().unwrap();
        }
        let accepted: Vec<_> = submitters
            .into_iter()
            .flat_map(|s| s.join().unwrap())
            .collect();
        assert!(pool.submit(|| ()).unwrap_err().is_shutdown());
        for (id, f) in &accepted {
            assert_eq!(f.result(Some(LIMIT)).unwrap(), id, "iteration {it}");
        }
        drop(pool);
        let ran: u32 = runs.iter().map(|r| r.load(Ordering::SeqCst)).sum();
        assert_eq!(ran as usize, accepted.len(), "iteration {it}");
        assert!(runs.iter().all(|r| r.load(Ordering::SeqCst) <= 1));
    }
}

/// (b) `cancel()` races the worker starting the task: exactly one of "cancel returned true" and
/// "the task ran" holds for every task, and the future's outcome agrees.
#[test]
fn cancel_racing_worker_start_is_exactly_once() {
    const ROUNDS: usize = 600;
    const PER_ROUND: usize = 50;
    let pool = ThreadPoolExecutor::new(2).unwrap();
    let runs = counters(ROUNDS * PER_ROUND);
    let mut cancelled_total = 0;
    let mut all = Vec::with_capacity(ROUNDS * PER_ROUND);
    for round in 0..ROUNDS {
        let futures: Arc<Vec<(usize, FutureHandle<usize>)>> = Arc::new(
            (0..PER_ROUND)
                .map(|i| {
                    let id = round * PER_ROUND + i;
                    let runs = Arc::clone(&runs);
                    (id, pool.submit(Tracked { id, runs }).unwrap())
                })
                .collect(),
        );
        // The workers take the tasks front to back while this thread cancels back to front:
        // somewhere in the middle they meet.
        let canceller = {
            let futures = Arc::clone(&futures);
            thread::spawn(move || {
                futures
                    .iter()
                    .rev()
                    .enumerate()
                    .map(|(k, (id, f))| {
                        if k % 7 == round % 7 {
                            jitter(k + round);
                        }
                        (*id, f.cancel())
                    })
                    .collect::<Vec<_>>()
            })
        };
        let verdicts = canceller.join().unwrap();
        let futures = Arc::try_unwrap(futures).unwrap_or_else(|_| unreachable!());
        for ((id, f), (vid, cancelled)) in futures.into_iter().rev().zip(verdicts) {
            assert_eq!(id, vid);
            cancelled_total += usize::from(cancelled);
            all.push((id, f, cancelled));
        }
    }
    pool.shutdown(ShutdownOptions::wait());
    for (id, f, cancelled) in &all {
        let ran = runs[*id].load(Ordering::SeqCst);
        match f.result(Some(LIMIT)) {
            Ok(v) => {
                assert_eq!(v, id);
                assert!(!cancelled, "task {id}: cancel() returned true, yet it ran");
                assert_eq!(ran, 1, "task {id} finished but ran {ran} times");
            }
            Err(ResultError::Cancelled(_)) => {
                assert!(
                    cancelled,
                    "task {id} is cancelled though cancel() returned false"
                );
                assert_eq!(ran, 0, "task {id} was cancelled, yet it ran");
            }
            Err(e) => panic!("task {id}: {e}"),
        }
        // A second cancel agrees with the first.
        assert_eq!(f.cancel(), *cancelled);
    }
    // Both outcomes must occur, over all rounds, for the race to have been exercised.
    assert!(cancelled_total > 0 && cancelled_total < all.len());
}

/// (c) `shutdown(cancel_futures)` races submitters (some of which also cancel their own
/// futures), with and without a queue bound: every accepted future ends done, with its value
/// (ran once) or cancelled (never ran); a refused task comes back.
#[test]
fn shutdown_cancel_futures_racing_submits_leaves_nothing_pending() {
    const ITERATIONS: usize = 600;
    const THREADS: usize = 3;
    const PER_THREAD: usize = 30;
    let (mut finished, mut cancelled) = (0, 0);
    for it in 0..ITERATIONS {
        let max_queued = if it % 2 == 0 { None } else { Some(2) };
        let options = if it % 4 < 2 {
            ShutdownOptions::no_wait().cancel_futures()
        } else {
            ShutdownOptions::wait().cancel_futures()
        };
        let runs = counters(THREADS * PER_THREAD);
        let pool = Arc::new(pool(2, max_queued));
        let (seen, after) =
            submit_racing_shutdown(Arc::clone(&pool), &runs, THREADS, PER_THREAD, options, it);
        if options.wait {
            assert_eq!(
                (after.workers, after.queued, after.running),
                (0, 0, 0),
                "iteration {it}: {after:?}"
            );
        } else {
            assert_eq!(
                after.queued, 0,
                "iteration {it}: cancel_futures left work queued"
            );
        }
        for s in seen.iter().step_by(3) {
            if let Seen::Accepted(_, f) = s {
                f.cancel();
            }
        }
        for s in &seen {
            let Seen::Accepted(id, f) = s else { continue };
            let ran = || runs[*id].load(Ordering::SeqCst);
            match f.result(Some(LIMIT)) {
                Ok(v) => {
                    assert_eq!(v, id);
                    assert_eq!(ran(), 1, "iteration {it}: task {id}");
                    finished += 1;
                }
                Err(ResultError::Cancelled(_)) => {
                    // It may still be dequeued by a worker later: wait for the pool to finish
                    // before reading the count (below).
                    cancelled += 1;
                }
                Err(e) => panic!("iteration {it}: accepted task {id} ended with {e}"),
            }
            assert!(f.done());
        }
        drop(pool);
        for s in &seen {
            match s {
                Seen::Accepted(id, f) if f.cancelled() => {
                    assert_eq!(runs[*id].load(Ordering::SeqCst), 0, "a cancelled task ran")
                }
                Seen::Accepted(..) => {}
                Seen::Refused(id) => {
                    assert_eq!(runs[*id].load(Ordering::SeqCst), 0, "a refused task ran")
                }
            }
        }
    }
    // Both outcomes must occur, over all iterations, for the race to have been exercised.
    assert!(finished > 0 && cancelled > 0);
}

/// (d) Many threads submit to a pool whose queue holds 2 while 2 workers drain it, half with
/// blocking `submit`, half with `try_submit` retried on `Full`: every task completes once, and
/// the queue is never seen above its bound.
#[test]
fn bounded_queue_many_submitters_all_complete() {
    const THREADS: usize = 6;
    const PER_THREAD: usize = 5000;
    const BOUND: usize = 2;
    let pool = Arc::new(pool(2, Some(BOUND)));
    let runs = counters(THREADS * PER_THREAD);
    let stop = Arc::new(AtomicBool::new(false));
    let fulls = Arc::new(AtomicUsize::new(0));
    // Both workers start held, and are let go once a `try_submit` has met the full queue, so
    // that the `Full` path is certain to be taken (after that, the workers drain freely).
    let holds: Vec<_> = (0..2)
        .map(|_| {
            let (tx, rx) = mpsc::channel::<()>();
            let f = pool.submit(move || rx.recv_timeout(LIMIT).is_ok()).unwrap();
            (tx, f)
        })
        .collect();
    let releaser = {
        let fulls = Arc::clone(&fulls);
        let senders: Vec<_> = holds.iter().map(|(tx, _)| tx.clone()).collect();
        thread::spawn(move || {
            let deadline = Instant::now() + LIMIT;
            while fulls.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
                thread::yield_now();
            }
            for tx in senders {
                let _ = tx.send(());
            }
        })
    };
    let monitor = {
        let pool = Arc::clone(&pool);
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let mut most = 0;
            while !stop.load(Ordering::SeqCst) {
                most = most.max(pool.stats().queued);
                thread::yield_now();
            }
            most
        })
    };
    let submitters: Vec<_> = (0..THREADS)
        .map(|t| {
            let pool = Arc::clone(&pool);
            let runs = Arc::clone(&runs);
            let fulls = Arc::clone(&fulls);
            thread::spawn(move || {
                (0..PER_THREAD)
                    .map(|i| {
                        let id = t * PER_THREAD + i;
                        let mut task = Tracked {
                            id,
                            runs: Arc::clone(&runs),
                        };
                        let f = if t % 2 == 0 {
                            pool.submit(task).unwrap()
                        } else {
                            loop {
                                match pool.try_submit(task) {
                                    Ok(f) => break f,
                                    Err(TrySubmitError::Full(back)) => {
                                        assert_eq!(back.id, id);
                                        fulls.fetch_add(1, Ordering::SeqCst);
                                        task = back;
                                        thread::yield_now();
                                    }
                                    Err(e) => panic!("{e}"),
                                }
                            }
                        };
                        (id, f)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let futures: Vec<_> = submitters
        .into_iter()
        .flat_map(|s| s.join().unwrap())
        .collect();
    stop.store(true, Ordering::SeqCst);
    let most = monitor.join().unwrap();
    releaser.join().unwrap();
    for (_, f) in &holds {
        assert!(
            *f.result(Some(LIMIT)).unwrap(),
            "a held worker was never released"
        );
    }
    for (id, f) in &futures {
        assert_eq!(f.result(Some(LIMIT)).unwrap(), id);
    }
    pool.shutdown(ShutdownOptions::wait());
    assert!(most <= BOUND, "the queue held {most} > {BOUND}");
    assert!(runs.iter().all(|r| r.load(Ordering::SeqCst) == 1));
    let s = pool.stats();
    assert_eq!(s.completed, (THREADS * PER_THREAD + 2) as u64);
    assert_eq!((s.workers, s.queued, s.running), (0, 0, 0));
    assert!(fulls.load(Ordering::SeqCst) > 0);
}

/// (e) Dropping the pool while tasks are still queued is `shutdown(wait)`: when the drop
/// returns, every queued task has run, once, and its future is done.
#[test]
fn drop_with_queued_tasks_runs_them_all() {
    const ITERATIONS: usize = 600;
    const TASKS: usize = 40;
    for it in 0..ITERATIONS {
        let max_queued = if it % 2 == 0 { None } else { Some(8) };
        let runs = counters(TASKS);
        let pool = pool(2, max_queued);
        let futures: Vec<_> = (0..TASKS)
            .map(|id| {
                let runs = Arc::clone(&runs);
                pool.submit(Tracked { id, runs }).unwrap()
            })
            .collect();
        if it % 3 == 0 {
            // Drop it on another thread.
            thread::spawn(move || drop(pool)).join().unwrap();
        } else {
            drop(pool);
        }
        for (id, f) in futures.iter().enumerate() {
            // Zero timeout: the drop must already have waited for it.
            match f.result(Some(Duration::ZERO)) {
                Ok(v) => assert_eq!(*v, id),
                Err(e) => panic!("iteration {it}: task {id} after drop: {e}"),
            }
            assert_eq!(runs[id].load(Ordering::SeqCst), 1);
        }
    }
}

/// (e) The last handle to the pool is dropped by a task running on the pool itself, while other
/// tasks are still queued: the drop cannot join its own thread, yet every queued task still runs.
#[test]
fn last_handle_dropped_on_a_worker_still_runs_the_queue() {
    const ITERATIONS: usize = 400;
    const TASKS: usize = 20;
    for it in 0..ITERATIONS {
        let workers = 1 + it % 2;
        let runs = counters(TASKS);
        let pool = Arc::new(pool(workers, None));
        let (tx, rx) = mpsc::channel::<()>();
        let first = {
            let same = Arc::clone(&pool);
            pool.submit(move || {
                // Wait until the test has let go of its handle, then drop the last one here.
                rx.recv_timeout(LIMIT).expect("never told to go");
                drop(same);
            })
            .unwrap()
        };
        let futures: Vec<_> = (0..TASKS)
            .map(|id| {
                let runs = Arc::clone(&runs);
                pool.submit(Tracked { id, runs }).unwrap()
            })
            .collect();
        drop(pool);
        tx.send(()).unwrap();
        first.result(Some(LIMIT)).unwrap();
        for (id, f) in futures.iter().enumerate() {
            match f.result(Some(LIMIT)) {
                Ok(v) => assert_eq!(*v, id),
                Err(e) => panic!("iteration {it}: task {id}: {e}"),
            }
            assert_eq!(runs[id].load(Ordering::SeqCst), 1);
        }
    }
}
