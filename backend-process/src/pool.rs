//! [`ProcessPoolExecutor`]: the shared queue, the scheduling state (which worker may take the
//! next request), breakage, `terminate`/`kill`, shutdown and the executor traits. One worker's
//! threads and pipes are in [`crate::slot`].
//!
//! # Locks
//! `sched` (the queue and every slot's counts) is never held while taking a slot's `state`
//! (the order is slot `state` → `sched`), and neither is held while writing to a pipe or while
//! completing a future (done callbacks run user code).

use std::collections::VecDeque;
use std::fmt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use executor_core::{
    Batch, BrokenExecutor, BrokenKind, Executor, FutureHandle, Introspect, LazyOutcomes, PoolStats,
    Promise, RejectReason, RunTimer, Shutdown, ShutdownOptions, SubmitError, TaskError,
};
use parking_lot::Mutex;
use rustix::process::Signal;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::builder::{
    BuildError, DEFAULT_MAX_IN_FLIGHT_PER_WORKER, MAX_QUIET_IN_FLIGHT, Options, ProcessPoolBuilder,
    SEND_AHEAD,
};
use crate::job::{Many, Pending, Queued, Single};
use crate::page::StartPage;
use crate::registry::RemoteTask;
use crate::slot::{self, Slot};
use crate::wire;

/// The least work (by the giving worker's recent chunks) worth taking back from one worker for
/// another (see [`Sched::steal_for`]): a few round trips through the pipes, which the taken
/// chunks then no longer wait out behind a held-up worker.
const STEAL_WORTH: std::time::Duration = std::time::Duration::from_micros(200);

/// A pool of worker processes (Python's `ProcessPoolExecutor`): each task is serialized with
/// serde, sent by its registered name to a worker (this same binary, re-executed) over the
/// worker's own pipes, run there, and its result sent back. A panic or error in a task fails
/// that future with the worker's message, pid and backtrace; a worker that dies breaks the pool,
/// and every pending future then fails with an error naming the worker's pid and its exit code
/// or signal (rule L6).
///
/// Workers start lazily, one per `submit` at most, up to `max_workers` (default: the number of
/// cores), and idle ones are reused. While every worker is busy, each gets the next requests ahead
/// of time (see [`max_in_flight_per_worker`](ProcessPoolBuilder::max_in_flight_per_worker)),
/// so it never waits for the parent between tasks; such a task stays PENDING, and `cancel()`
/// withdraws it from the worker, until the worker starts it (rule L13). The binary must call [`worker_main`](crate::worker_main)
/// first thing in `main` (or, for a test binary, contain [`test_worker!`](crate::test_worker)).
///
/// ```no_run
/// use executor_core::{Executor, MapOptions};
/// use backend_process::ProcessPoolExecutor;
/// # #[derive(serde::Serialize, serde::Deserialize)] struct IsPrime(u64);
/// # impl executor_core::Task for IsPrime { type Output = bool; fn run(self) -> Result<bool, executor_core::TaskError> { Ok(true) } }
/// # impl backend_process::RemoteTask for IsPrime { const NAME: &'static str = "is_prime"; }
/// # backend_process::register!(IsPrime);
///
/// fn main() {
///     backend_process::worker_main();
///     let pool = ProcessPoolExecutor::new(4).unwrap();
///     let primes = pool
///         .map((1_000_000..1_000_100).map(IsPrime), MapOptions::new().chunksize(16))
///         .unwrap()
///         .filter(|r| *r.as_ref().unwrap())
///         .count();
///     println!("{primes} primes");
/// }
/// ```
pub struct ProcessPoolExecutor {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) max_workers: usize,
    pub(crate) program: PathBuf,
    pub(crate) options: Options,
    pub(crate) sched: Mutex<Sched>,
    /// The slots' writer threads, joined by `shutdown(wait)`.
    threads: Mutex<Vec<JoinHandle<()>>>,
    pub(crate) completed: AtomicU64,
    next_request: AtomicU64,
}

/// The queue and who may take from it, under one lock.
pub(crate) struct Sched {
    pub(crate) jobs: VecDeque<Queued>,
    /// Shut down: no new submits; writers exit once the queue is empty and their worker idle.
    pub(crate) closed: bool,
    /// `terminate_workers`/`kill_workers` in progress, with this signal.
    pub(crate) stopping: Option<Signal>,
    /// Why the pool broke, once it has (the first reason wins).
    pub(crate) broken: Option<BrokenExecutor>,
    pub(crate) slots: Vec<SlotSched>,
    /// The pids of live (not yet reaped) workers, for killing them.
    pub(crate) workers: Vec<u32>,
    /// `shutdown(cancel_futures)` was called: chunks a worker gives back are cancelled, not
    /// queued again.
    pub(crate) cancelled: bool,
}

/// One slot as the scheduler sees it.
pub(crate) struct SlotSched {
    pub(crate) slot: Arc<Slot>,
    pub(crate) phase: Phase,
    /// Requests taken from the queue for this slot and not answered yet (running, sent ahead,
    /// being written, or kept for a replacement worker).
    pub(crate) in_flight: usize,
    /// Requests the current worker has finished (for `max_tasks_per_child`).
    pub(crate) served: usize,
    /// Its writer is parked on the slot's condvar.
    pub(crate) waiting: bool,
    /// Its writer is parked with a timeout, watching another worker that may be held up (see
    /// [`Sched::stall_watch`]): it is woken for work only; the timeout brings the next look.
    pub(crate) watching: bool,
    /// How long its worker's chunks of `map` run, in ns: a running average (0: none ran yet).
    quiet_nanos: u64,
    /// The ready worker's start page, if it has one (for [`SlotSched::backlog`]).
    pub(crate) page: Option<Arc<StartPage>>,
    /// The sequence number of the first request the ready worker was sent after its
    /// initializer (which is request 0 when there is one).
    pub(crate) first_seq: u64,
    /// Requests the current worker withdrew (answered `Revoked` or `Withdrawn`): never started,
    /// though once a later one starts, its start page counts them as passed. Those it has
    /// passed are counted here; the others wait in `withdrawn_ahead`, by sequence number.
    pub(crate) withdrawn: usize,
    /// The sequence numbers of withdrawn requests its start page has not passed yet (a chunk
    /// given back is among the last sent, and stays here until a later request starts).
    pub(crate) withdrawn_ahead: Vec<u64>,
    /// A `Withdraw` was sent to the current worker for the slot with this index, and not
    /// answered yet (one at a time).
    pub(crate) giving_to: Option<usize>,
    /// The current worker's start page said this when it last gave nothing back (what it has
    /// queued is not a chunk of `map`, or it started it meanwhile): not asked again until it
    /// starts another request.
    pub(crate) gave_nothing_at: Option<u64>,
}

impl SlotSched {
    fn new(slot: Arc<Slot>) -> Self {
        SlotSched {
            slot,
            phase: Phase::Starting,
            in_flight: 0,
            served: 0,
            waiting: false,
            watching: false,
            quiet_nanos: 0,
            page: None,
            first_seq: 0,
            withdrawn: 0,
            withdrawn_ahead: Vec::new(),
            giving_to: None,
            gave_nothing_at: None,
        }
    }

    /// A new worker is starting in this slot: what was counted of the last one goes (the
    /// requests kept for it, `in_flight`, stay).
    pub(crate) fn starting(&mut self) {
        self.phase = Phase::Starting;
        self.served = 0;
        self.withdrawn = 0;
        self.withdrawn_ahead.clear();
        self.giving_to = None;
        self.gave_nothing_at = None;
    }

    /// The work its ready worker has queued, which the scheduler balances: the requests sent
    /// and not started where the worker has a start page, else those not answered. Counting the
    /// unanswered ones, a worker that held a batch of finished chunks' responses looked busier
    /// than it was, and at the end of a `map` the other got that much more to do.
    fn backlog(&self) -> usize {
        let Some(page) = &self.page else {
            return self.in_flight;
        };
        // The requests it has started (or passed over, revoked) and not answered: the one it
        // runs, and the responses it holds. (Counted from the start page and the answers, all
        // under the pool's lock: a request taken and not yet written counts as queued.)
        let started = page.started();
        let begun = started.saturating_sub(self.first_seq);
        let begun = usize::try_from(begun).unwrap_or(usize::MAX);
        let passed = self.withdrawn
            + self
                .withdrawn_ahead
                .iter()
                .filter(|&&seq| seq < started)
                .count();
        self.in_flight
            .saturating_sub(begun.saturating_sub(self.served + passed))
    }

    /// Whether chunks may be asked back from its worker now: it is ready, has a start page, has
    /// no `Withdraw` unanswered, and did not give nothing back since it last started a request.
    fn may_give(&self) -> bool {
        let Some(page) = &self.page else {
            return false;
        };
        self.phase == Phase::Ready
            && self.giving_to.is_none()
            && self.gave_nothing_at != Some(page.started())
    }

    /// How long (ns) a worker with chunks queued must have been in one request to count as
    /// held up: four of its usual chunks, and at least [`STEAL_WORTH`].
    fn held_up_after(&self) -> u64 {
        let floor = u64::try_from(STEAL_WORTH.as_nanos()).unwrap_or(u64::MAX);
        self.quiet_nanos.saturating_mul(4).max(floor)
    }

    /// Whether its worker is held up: it has requests queued behind the one it runs, and has
    /// been running that one for [`held_up_after`](SlotSched::held_up_after) or longer (by its
    /// start page's clock).
    fn held_up(&self, now: u64) -> bool {
        self.backlog() > 0
            && self
                .page
                .as_ref()
                .and_then(|page| page.running_for(now))
                .is_some_and(|running| running >= self.held_up_after())
    }

    /// Requests with these sequence numbers were withdrawn from the current worker unstarted.
    fn note_withdrawn(&mut self, seqs: impl IntoIterator<Item = u64>) {
        self.withdrawn_ahead.extend(seqs);
        // Those the start page has passed count from now on (the list stays short).
        if let Some(page) = &self.page {
            let started = page.started();
            let ahead = self.withdrawn_ahead.len();
            self.withdrawn_ahead.retain(|&seq| seq >= started);
            self.withdrawn += ahead - self.withdrawn_ahead.len();
        }
    }

    /// How many requests the worker may hold when the next one is a chunk of `map` (`quiet`),
    /// by default: about [`SEND_AHEAD`] of work, as measured.
    fn depth(&self, quiet: bool, options: &Options) -> usize {
        if let Some(max) = options.max_in_flight {
            return max;
        }
        if !quiet || self.quiet_nanos == 0 {
            return DEFAULT_MAX_IN_FLIGHT_PER_WORKER;
        }
        let fits = SEND_AHEAD.as_nanos() / u128::from(self.quiet_nanos);
        usize::try_from(fits)
            .unwrap_or(usize::MAX)
            .clamp(DEFAULT_MAX_IN_FLIGHT_PER_WORKER, MAX_QUIET_IN_FLIGHT)
    }

    /// A chunk of `map` ran `nanos` on its worker.
    fn note_quiet_run(&mut self, nanos: u64) {
        let nanos = nanos.max(1);
        self.quiet_nanos = if self.quiet_nanos == 0 {
            nanos
        } else {
            (self.quiet_nanos.saturating_mul(7).saturating_add(nanos) / 8).max(1)
        };
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Its worker is starting (handshake, initializer).
    Starting,
    /// Its worker serves requests.
    Ready,
    /// Its worker has ended (the reader has dealt with what it held).
    Ended,
    /// The slot's writer has exited.
    Gone,
}

/// How many slots are idle (a ready worker holding nothing) and starting, counted once per
/// decision.
#[derive(Clone, Copy)]
pub(crate) struct Census {
    idle: usize,
    starting: usize,
    /// Ready workers.
    ready: usize,
    /// The least [backlog](SlotSched::backlog) of any ready worker.
    least_backlog: usize,
}

impl Sched {
    fn idle(&self, i: usize) -> bool {
        let s = &self.slots[i];
        s.phase == Phase::Ready && s.in_flight == 0
    }

    pub(crate) fn census(&self) -> Census {
        let mut census = Census {
            idle: 0,
            starting: 0,
            ready: 0,
            least_backlog: usize::MAX,
        };
        for (i, s) in self.slots.iter().enumerate() {
            census.idle += usize::from(self.idle(i));
            census.starting += usize::from(s.phase == Phase::Starting);
            if s.phase == Phase::Ready {
                census.ready += 1;
                census.least_backlog = census.least_backlog.min(s.backlog());
            }
        }
        census
    }

    /// How many more requests this slot's worker may be given before it retires.
    pub(crate) fn budget(&self, i: usize, options: &Options) -> usize {
        let s = &self.slots[i];
        options
            .max_tasks_per_child
            .map_or(usize::MAX, |max| max.saturating_sub(s.served + s.in_flight))
    }

    /// Whether slot `i` may take the next queued request now: an idle worker always; a busy one
    /// (sending ahead) only while no other worker is idle or starting, so that a task never
    /// waits behind another while a worker is free, and only if no other worker has fewer
    /// queued (its [backlog](SlotSched::backlog)), so that requests sent ahead spread evenly
    /// (long tasks otherwise pile up behind one worker while another runs out of work).
    pub(crate) fn may_take(&self, i: usize, census: Census, options: &Options) -> bool {
        let s = &self.slots[i];
        let quiet = self.jobs.front().is_some_and(|q| q.job.quiet());
        let depth = s.depth(quiet, options);
        if s.phase != Phase::Ready || s.in_flight >= depth || self.budget(i, options) == 0 {
            return false;
        }
        // Short chunks of `map` sent further ahead come back, and are refilled, in batches of
        // about half the depth (see `worker::HOLD`): two busy workers' counts take turns to lag
        // by up to a batch, and a strict rule would let neither refill past the other. Such
        // chunks may be that many more than the fewest (about `SEND_AHEAD` / 2 of work).
        // Near the end of the queue, no more than a fair share of what is left: the last
        // requests spread over the workers instead of all going to the one refilled first.
        let slack = match options.max_in_flight {
            None if depth > DEFAULT_MAX_IN_FLIGHT_PER_WORKER => {
                (depth / 2).min(self.jobs.len() / census.ready.max(1))
            }
            _ => 0,
        };
        // A busy slot is neither idle nor starting itself.
        s.in_flight == 0
            || (census.idle == 0
                && census.starting == 0
                && s.backlog() <= census.least_backlog.saturating_add(slack))
    }

    /// Whether slot `i`'s writer has something to do: take a request, retire, exit, or deal
    /// with its worker's end.
    fn has_work(&self, i: usize, census: Census, options: &Options) -> bool {
        let s = &self.slots[i];
        match s.phase {
            Phase::Ended => return true,
            Phase::Starting | Phase::Gone => return false,
            Phase::Ready => {}
        }
        if self.stopping.is_some() || self.broken.is_some() {
            return true;
        }
        if s.in_flight == 0
            && ((self.closed && self.jobs.is_empty()) || self.budget(i, options) == 0)
        {
            return true;
        }
        !self.jobs.is_empty() && self.may_take(i, census, options)
    }

    /// Whether slot `i`, whose worker is running out of chunks of `map` while the queue is
    /// empty, should take some back from another worker (rayon's work stealing, done by the
    /// parent): the slot to take from and how many. Chunks are sent ahead by how long the last
    /// ones ran; a worker held up (a long chunk among short ones, a core taken by another
    /// process) would otherwise keep its queue while the others idle at the end of the `map`.
    /// The giver is a worker [held up](SlotSched::held_up) if there is one, else the one with the
    /// most queued; half the difference goes (all of it when `i` has none left), up to `i`'s
    /// depth and `max_tasks_per_child` budget; and only from a held-up worker, or if that much
    /// work (by the giver's recent chunks) is worth the round trip ([`STEAL_WORTH`]): the short
    /// chunks left at the end of an ordinary `map` stay where they are.
    pub(crate) fn steal_for(&self, i: usize, options: &Options) -> Option<(usize, usize)> {
        if !self.jobs.is_empty()
            || self.cancelled
            || self.broken.is_some()
            || self.stopping.is_some()
        {
            return None;
        }
        let thief = &self.slots[i];
        if thief.phase != Phase::Ready || thief.page.is_none() {
            return None;
        }
        // (Whether the asker is itself held up cannot be told from here: its start page may
        // still show the request whose answer prompted this look.)
        let now = crate::page::now_nanos();
        let mine = thief.backlog();
        let (j, held_up, theirs) = self
            .slots
            .iter()
            .enumerate()
            .filter(|(j, s)| *j != i && s.may_give())
            .map(|(j, s)| (j, s.held_up(now), s.backlog()))
            .max_by_key(|&(_, held_up, backlog)| (held_up, backlog))?;
        let gap = theirs.saturating_sub(mine);
        let half = if mine == 0 { gap.div_ceil(2) } else { gap / 2 };
        let room = thief.depth(true, options).saturating_sub(thief.in_flight);
        let count = half.min(room).min(self.budget(i, options));
        let per_chunk = u128::from(self.slots[j].quiet_nanos);
        let worth = held_up || per_chunk.saturating_mul(count as u128) >= STEAL_WORTH.as_nanos();
        (count > 0 && worth).then_some((j, count))
    }

    /// For slot `i`'s writer, about to park with nothing to do: if its worker has nothing
    /// queued, the queue is empty, and another worker with chunks queued has been in its current
    /// request longer than its chunks usually run, that worker may be getting held up: how long
    /// until it counts as [held up](SlotSched::held_up) (zero: it is). The writer then parks only
    /// that long and looks ([`steal_for`](Sched::steal_for)): once the others have run out, no
    /// answer may come to prompt a look. A parked writer is woken for a look only once another
    /// worker is held up (see [`wake_writers`](Sched::wake_writers)), so an ordinary `map`'s end
    /// costs no wake-up; a worker held up after every writer parked is noticed at the next
    /// answer from any worker (its own held responses go within `worker::HOLD`).
    pub(crate) fn stall_watch(&self, i: usize) -> Option<std::time::Duration> {
        let me = &self.slots[i];
        if !self.jobs.is_empty()
            || self.cancelled
            || me.phase != Phase::Ready
            || me.page.is_none()
            || me.backlog() > 0
        {
            return None;
        }
        let now = crate::page::now_nanos();
        self.slots
            .iter()
            .enumerate()
            .filter(|(j, s)| *j != i && s.may_give() && s.backlog() > 0)
            .filter_map(|(_, s)| {
                let running = s.page.as_ref()?.running_for(now)?;
                (running > s.quiet_nanos).then(|| s.held_up_after().saturating_sub(running))
            })
            .min()
            .map(std::time::Duration::from_nanos)
    }

    /// Wakes every parked writer that now has something to do. Called after every change that
    /// may give one work (a submit, an answer, a worker ready or ended, a slot taking requests).
    pub(crate) fn wake_writers(&mut self, options: &Options) {
        let census = self.census();
        for i in 0..self.slots.len() {
            let s = &self.slots[i];
            if s.waiting
                && (self.has_work(i, census, options)
                    || (!s.watching && self.stall_watch(i) == Some(std::time::Duration::ZERO)))
            {
                self.slots[i].waiting = false;
                self.slots[i].slot.wake.notify_one();
            }
        }
    }
}

impl ProcessPoolExecutor {
    /// A builder with Python's defaults.
    ///
    /// ```
    /// let pool = backend_process::ProcessPoolExecutor::builder().max_workers(2).build().unwrap();
    /// assert_eq!(pool.max_workers(), 2);
    /// ```
    pub fn builder() -> ProcessPoolBuilder {
        ProcessPoolBuilder::default()
    }

    pub(crate) fn from_parts(max_workers: usize, program: PathBuf, options: Options) -> Self {
        ProcessPoolExecutor {
            inner: Arc::new(Inner {
                max_workers,
                program,
                options,
                sched: Mutex::new(Sched {
                    jobs: VecDeque::new(),
                    closed: false,
                    stopping: None,
                    broken: None,
                    slots: Vec::new(),
                    workers: Vec::new(),
                    cancelled: false,
                }),
                threads: Mutex::new(Vec::new()),
                completed: AtomicU64::new(0),
                next_request: AtomicU64::new(0),
            }),
        }
    }

    /// A pool of at most `max_workers` worker processes; 0 is an error (rule L3).
    ///
    /// ```
    /// let pool = backend_process::ProcessPoolExecutor::new(2).unwrap();
    /// assert_eq!(pool.max_workers(), 2);
    /// ```
    pub fn new(max_workers: usize) -> Result<Self, BuildError> {
        ProcessPoolExecutor::builder()
            .max_workers(max_workers)
            .build()
    }

    /// A pool with one worker per core (Python's default).
    ///
    /// ```
    /// let pool = backend_process::ProcessPoolExecutor::with_default_workers().unwrap();
    /// assert!(pool.max_workers() >= 1);
    /// ```
    pub fn with_default_workers() -> Result<Self, BuildError> {
        ProcessPoolExecutor::builder().build()
    }

    /// The most worker processes this pool starts.
    ///
    /// ```
    /// assert_eq!(backend_process::ProcessPoolExecutor::new(3).unwrap().max_workers(), 3);
    /// ```
    pub fn max_workers(&self) -> usize {
        self.inner.max_workers
    }

    /// Whether the pool is broken (a worker died), and why.
    ///
    /// ```
    /// assert!(backend_process::ProcessPoolExecutor::new(1).unwrap().broken().is_none());
    /// ```
    pub fn broken(&self) -> Option<BrokenExecutor> {
        self.inner.sched.lock().broken.clone()
    }

    /// How many requests have been written to a worker that has not started them yet (sent
    /// ahead, rule L13): they are PENDING, and `cancel()` withdraws them from the worker.
    ///
    /// ```
    /// assert_eq!(backend_process::ProcessPoolExecutor::new(1).unwrap().sent_ahead(), 0);
    /// ```
    pub fn sent_ahead(&self) -> usize {
        self.inner.progress().1
    }

    /// Sends SIGTERM to every worker (Python's `terminate_workers`): tasks not yet started
    /// (queued, or sent ahead to a worker) are cancelled, running ones fail with the broken-pool
    /// error, and the pool is shut down. Safe
    /// to call twice, or on a pool with no workers (rule L9).
    ///
    /// ```
    /// let pool = backend_process::ProcessPoolExecutor::new(1).unwrap();
    /// pool.terminate_workers();
    /// pool.terminate_workers();
    /// ```
    pub fn terminate_workers(&self) {
        self.inner.stop_workers(rustix::process::Signal::TERM);
    }

    /// The same with SIGKILL (Python's `kill_workers`).
    ///
    /// ```
    /// let pool = backend_process::ProcessPoolExecutor::new(1).unwrap();
    /// pool.kill_workers();
    /// ```
    pub fn kill_workers(&self) {
        self.inner.stop_workers(rustix::process::Signal::KILL);
    }
}

impl ProcessPoolExecutor {
    fn submit_pending(&self, queued: Queued) -> Result<(), (RejectReason, Box<dyn Pending>)> {
        self.inner
            .submit(vec![queued])
            .map_err(|(reason, mut jobs)| (reason, jobs.pop().expect("the one job")))
    }

    fn next_id(&self) -> u64 {
        self.inner.next_request.fetch_add(1, Ordering::Relaxed)
    }
}

impl Inner {
    /// Queues requests (in order; one `submit`, or a group of `map`'s chunks), sends them to a
    /// worker that may take them now (from this thread, when that cannot block; else its writer
    /// is woken), and starts a worker per request while none is idle and the pool is below
    /// `max_workers` (rule L3). All or none are queued.
    #[allow(clippy::type_complexity)] // the jobs handed back with the reason
    fn submit(
        self: &Arc<Self>,
        group: Vec<Queued>,
    ) -> Result<(), (RejectReason, Vec<Box<dyn Pending>>)> {
        let (spawn, taker) = {
            let mut sched = self.sched.lock();
            let refused = match (&sched.broken, sched.closed) {
                (Some(broken), _) => Some(RejectReason::Broken(broken.clone())),
                (None, true) => Some(RejectReason::Shutdown),
                (None, false) => None,
            };
            if let Some(reason) = refused {
                return Err((reason, group.into_iter().map(|q| q.job).collect()));
            }
            let quiet = group.iter().all(|q| q.job.quiet());
            let count = group.len();
            sched.jobs.extend(group);
            let idle = (0..sched.slots.len()).filter(|&i| sched.idle(i)).count();
            let live = sched
                .slots
                .iter()
                .filter(|s| s.phase != Phase::Gone)
                .count();
            let new = count
                .saturating_sub(idle)
                .min(self.max_workers.saturating_sub(live));
            let spawn: Vec<Arc<Slot>> = (0..new)
                .map(|_| {
                    let slot = Arc::new(Slot::new(sched.slots.len(), Arc::downgrade(self)));
                    sched.slots.push(SlotSched::new(Arc::clone(&slot)));
                    slot
                })
                .collect();
            // A chunk of `map` is written from here only to a worker that holds at most the
            // request it runs (else it would soon wait). A busier one's writer is woken only
            // while the worker holds fewer than the usual depth (4, or the depth set): a long
            // task may keep answers from coming, so that much is always sent ahead without them.
            // Deeper, automatic send-ahead for short chunks comes from the worker's reader, which
            // refills it in one write as each batch of answers comes back (waking the writer per
            // chunk `map` submits cost more wake-ups than it saved).
            let census = sched.census();
            let taker = (0..sched.slots.len())
                .find(|&i| {
                    sched.may_take(i, census, &self.options)
                        && !(quiet && sched.slots[i].in_flight > 1)
                })
                .map(|i| Arc::clone(&sched.slots[i].slot));
            if taker.is_none() {
                let usual = self
                    .options
                    .max_in_flight
                    .unwrap_or(DEFAULT_MAX_IN_FLIGHT_PER_WORKER);
                if !quiet || sched.slots.iter().any(|s| s.in_flight < usual) {
                    sched.wake_writers(&self.options);
                }
            }
            (spawn, taker)
        };
        if let Some(slot) = taker {
            slot::feed(self, &slot);
            self.wake_writers();
        }
        for slot in spawn {
            let inner = Arc::clone(self);
            let index = slot.index;
            let writer = std::thread::Builder::new()
                .name(format!("backend-process-writer_{index}"))
                .spawn(move || slot::drive(inner, slot));
            match writer {
                Ok(handle) => self.threads.lock().push(handle),
                Err(e) => {
                    self.slot_gone(index);
                    self.break_pool(BrokenExecutor::new(
                        BrokenKind::ProcessPool,
                        format!("cannot start a thread for a worker: {e}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Requests the workers have started and not answered, and requests written to them and not
    /// started (sent ahead), counted slot by slot (each slot's lock is taken alone).
    fn progress(&self) -> (usize, usize) {
        self.slots()
            .iter()
            .map(|slot| slot.census())
            .fold((0, 0), |(r, a), (sr, sa)| (r + sr, a + sa))
    }

    /// Every slot, taken from under the `sched` lock (to lock each slot's state on its own).
    fn slots(&self) -> Vec<Arc<Slot>> {
        self.sched
            .lock()
            .slots
            .iter()
            .map(|s| Arc::clone(&s.slot))
            .collect()
    }

    /// Slot `index`'s writer has exited (or never started).
    pub(crate) fn slot_gone(&self, index: usize) {
        let mut sched = self.sched.lock();
        sched.slots[index].phase = Phase::Gone;
        sched.wake_writers(&self.options);
    }

    /// Frees `count` places of slot `index` (answered, revoked, or failed requests); `served`
    /// of them count towards `max_tasks_per_child`. Wakes the writers that now have work.
    pub(crate) fn release(&self, index: usize, count: usize, served: usize) {
        self.release_quietly(index, count, served);
        self.wake_writers();
    }

    /// [`release`](Inner::release) without waking anyone: for the reader, which first sends the
    /// next requests itself, then wakes the writers that still have work.
    pub(crate) fn release_quietly(&self, index: usize, count: usize, served: usize) {
        let mut sched = self.sched.lock();
        let s = &mut sched.slots[index];
        s.in_flight -= count;
        s.served += served;
    }

    pub(crate) fn wake_writers(&self) {
        self.sched.lock().wake_writers(&self.options);
    }

    /// The worker withdrew the request it was sent as number `seq` (rule L13): it leaves the
    /// slot unrun.
    pub(crate) fn withdrawn(&self, index: usize, seq: u64) {
        let mut sched = self.sched.lock();
        let s = &mut sched.slots[index];
        s.in_flight -= 1;
        s.note_withdrawn([seq]);
    }

    /// Slot `i`'s worker is running out of chunks while the queue is empty: asks the busiest
    /// other worker to give some back (see [`Sched::steal_for`]), which go to slot `i` once
    /// they are back (see [`Inner::given_back`]).
    /// `true` if it asked.
    pub(crate) fn steal_for(&self, i: usize) -> bool {
        let (victim, j, count) = {
            let mut sched = self.sched.lock();
            let Some((j, count)) = sched.steal_for(i, &self.options) else {
                return false;
            };
            sched.slots[j].giving_to = Some(i);
            (Arc::clone(&sched.slots[j].slot), j, count)
        };
        if victim.withdraw(count) {
            return true;
        }
        let mut sched = self.sched.lock();
        if sched.slots[j].giving_to == Some(i) {
            sched.slots[j].giving_to = None;
        }
        false
    }

    /// Slot `j`'s worker gave back the requests it was sent as numbers `seqs`, unstarted
    /// (`Withdrawn`): they leave the slot unrun, and `back` (those no `cancel()` is withdrawing)
    /// go to the front of the queue, in order; or, if the pool is stopping, broken or
    /// cancelling, they are cancelled or fail as queued requests would. Returns the slot they
    /// were taken for, to be fed first.
    ///
    /// `all_read`: the worker had read every request written to it, and none waited to be
    /// written; only then does an empty answer mean it has none to give.
    pub(crate) fn given_back(
        &self,
        j: usize,
        seqs: Vec<u64>,
        back: Vec<Queued>,
        all_read: bool,
    ) -> Option<Arc<Slot>> {
        let (thief, refused) = {
            let mut sched = self.sched.lock();
            let s = &mut sched.slots[j];
            if seqs.is_empty() && all_read {
                s.gave_nothing_at = s.page.as_ref().map(|page| page.started());
            }
            s.in_flight -= seqs.len();
            s.note_withdrawn(seqs);
            let thief = s.giving_to.take();
            if let Some(broken) = sched.broken.clone() {
                (None, Some((back, Some(broken))))
            } else if sched.stopping.is_some() || sched.cancelled {
                (None, Some((back, None)))
            } else {
                for queued in back.into_iter().rev() {
                    sched.jobs.push_front(queued);
                }
                sched.wake_writers(&self.options);
                let thief = thief
                    .filter(|&i| sched.slots[i].phase == Phase::Ready)
                    .map(|i| Arc::clone(&sched.slots[i].slot));
                (thief, None)
            }
        };
        if let Some((back, broken)) = refused {
            for queued in back {
                match &broken {
                    Some(broken) => queued.job.fail(TaskError::broken(broken.clone())),
                    None => queued.job.cancel_or_fail(stopped_error()),
                }
            }
        }
        thief
    }

    /// [`release_quietly`](Inner::release_quietly) for an answered request, which ran `nanos`;
    /// a chunk of `map` (`quiet`) sets how far ahead the slot's next chunks go.
    pub(crate) fn answered(&self, index: usize, quiet: bool, nanos: u64) {
        let mut sched = self.sched.lock();
        let s = &mut sched.slots[index];
        s.in_flight -= 1;
        s.served += 1;
        if quiet {
            s.note_quiet_run(nanos);
        }
    }

    /// Takes a worker out of the list of live ones; call it before reaping the worker.
    pub(crate) fn forget_worker(&self, pid: u32) {
        self.sched.lock().workers.retain(|&p| p != pid);
    }

    /// Signals a worker if it is still in the list of live ones (so not reaped: its pid cannot
    /// have been reused).
    pub(crate) fn signal_worker(&self, pid: u32, how: Signal) {
        let sched = self.sched.lock();
        if sched.workers.contains(&pid) {
            signal(pid, how);
        }
    }

    /// Marks the pool broken (the first reason wins), refuses new work, fails every queued
    /// future, and kills the other workers, whose futures then fail with the same reason (rule
    /// L6). Returns the reason in force.
    pub(crate) fn break_pool(&self, broken: BrokenExecutor) -> BrokenExecutor {
        let (broken, jobs) = {
            let mut sched = self.sched.lock();
            sched.closed = true;
            let broken = sched.broken.get_or_insert(broken).clone();
            let jobs = std::mem::take(&mut sched.jobs);
            // `terminate_workers`/`kill_workers` signal the workers themselves. Under the lock:
            // a pid leaves the list before its worker is reaped, so it cannot have been reused.
            if sched.stopping.is_none() {
                for &pid in &sched.workers {
                    signal(pid, Signal::KILL);
                }
            }
            sched.wake_writers(&self.options);
            (broken, jobs)
        };
        let error = TaskError::broken(broken.clone());
        for queued in jobs {
            queued.job.fail(error.clone());
        }
        broken
    }

    /// `terminate_workers` / `kill_workers`: shut down, cancel what has not started (queued
    /// here, or sent ahead: the workers' readers cancel those once their worker is gone),
    /// signal every worker (the running futures fail as broken), and reap them.
    fn stop_workers(&self, signal_to_send: Signal) {
        let jobs = {
            let mut sched = self.sched.lock();
            sched.closed = true;
            sched.stopping.get_or_insert(signal_to_send);
            let jobs = std::mem::take(&mut sched.jobs);
            for &pid in &sched.workers {
                signal(pid, signal_to_send);
            }
            sched.wake_writers(&self.options);
            jobs
        };
        for queued in jobs {
            queued.job.cancel_or_fail(stopped_error());
        }
        self.shutdown(ShutdownOptions::wait());
    }

    fn shutdown(&self, options: ShutdownOptions) {
        let jobs = {
            let mut sched = self.sched.lock();
            sched.closed = true;
            sched.cancelled |= options.cancel_futures;
            let jobs = if options.cancel_futures {
                std::mem::take(&mut sched.jobs)
            } else {
                VecDeque::new()
            };
            sched.wake_writers(&self.options);
            jobs
        };
        for queued in jobs {
            queued.job.cancel_or_fail(stopped_error());
        }
        if options.cancel_futures {
            // And what was sent ahead to the workers and has not started: each worker decides.
            slot::revoke_not_started(&self.slots());
        }
        // A pool thread (a done callback run by a reader, say) cannot wait for the pool's threads.
        if options.wait && !slot::on_pool_thread() {
            let threads = std::mem::take(&mut *self.threads.lock());
            for thread in threads {
                if thread.join().is_err() {
                    eprintln!("backend-process: a worker's thread panicked");
                }
            }
        }
    }
}

/// The error a request gets if it must be cancelled but a refused revoke made it RUNNING.
pub(crate) fn stopped_error() -> TaskError {
    TaskError::abandoned("the process pool stopped before the task could run")
}

/// Sends `signal` to a worker that has not been reaped yet.
fn signal(pid: u32, signal: Signal) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

/// "exited with code 3", "was killed by signal 9 (SIGKILL)".
pub(crate) fn describe_exit(status: std::io::Result<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => format!("exited with code {code}"),
            (None, Some(signal)) => format!("was killed by signal {signal}{}", signal_name(signal)),
            (None, None) => format!("ended ({status})"),
        },
        Err(e) => format!("ended (its exit status is unknown: {e})"),
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        6 => " (SIGABRT)",
        9 => " (SIGKILL)",
        11 => " (SIGSEGV)",
        15 => " (SIGTERM)",
        _ => "",
    }
}

/// The error of a task that cannot cross to a worker: its `Serialize` failed or panicked.
fn unsendable<T: RemoteTask>(e: wire::EncodeError) -> TaskError
where
    T::Output: Serialize + DeserializeOwned,
{
    let message = format!("the task `{}` cannot be serialized: {e}", T::NAME);
    match e {
        wire::EncodeError::Failed(_) => TaskError::msg(message),
        wire::EncodeError::Panicked(_) => TaskError::panic(message),
    }
}

impl<T> Executor<T> for ProcessPoolExecutor
where
    T: RemoteTask,
    T::Output: Serialize + DeserializeOwned,
{
    /// Serializes the task and queues it for a worker process.
    fn submit(&self, task: T) -> Result<FutureHandle<T::Output>, SubmitError<T>> {
        let (promise, future) = Promise::for_task(&task);
        let (payload, _, failed) = wire::encode_items(std::slice::from_ref(&task));
        if let Some((_, e)) = failed.into_iter().next() {
            let _ = promise.set_error(unsendable::<T>(e));
            return Ok(future);
        }
        let job = Box::new(Single::<T> {
            id: self.next_id(),
            promise,
        });
        let queued = Queued {
            job,
            payload: Arc::new(payload),
        };
        match self.submit_pending(queued) {
            Ok(()) => Ok(future),
            Err((reason, job)) => {
                job.cancel_or_fail(stopped_error());
                Err(SubmitError::new(reason, task))
            }
        }
    }

    /// One request per chunk, encoded as one value each way; each item's outcome comes back in
    /// its own slot, and an item that cannot be serialized fails only its slot (rule H4).
    fn parallelism(&self) -> Option<usize> {
        Some(self.max_workers())
    }

    fn submit_batch(&self, tasks: Vec<T>) -> Result<Batch<T::Output>, SubmitError<Vec<T>>> {
        let (batch, queued) = self.prepare_chunk(&tasks);
        let Some(queued) = queued else {
            return Ok(batch);
        };
        match self.submit_pending(queued) {
            Ok(()) => Ok(batch),
            Err((reason, job)) => {
                job.cancel_or_fail(stopped_error());
                Err(SubmitError::new(reason, tasks))
            }
        }
    }

    /// Encodes every chunk, then queues them all at once: one lock of the queue, one worker
    /// fed or writer woken for the group, instead of one per chunk.
    fn submit_batches(
        &self,
        chunks: Vec<Vec<T>>,
    ) -> Vec<Result<Batch<T::Output>, SubmitError<Vec<T>>>> {
        let prepared: Vec<_> = chunks.iter().map(|c| self.prepare_chunk(c)).collect();
        let sent: Vec<bool> = prepared.iter().map(|(_, q)| q.is_some()).collect();
        let (batches, group): (Vec<_>, Vec<_>) = prepared.into_iter().unzip();
        let group: Vec<Queued> = group.into_iter().flatten().collect();
        let refused = match group.is_empty() {
            true => None,
            false => self.inner.submit(group).err(),
        };
        let Some((reason, jobs)) = refused else {
            return batches.into_iter().map(Ok).collect();
        };
        for job in jobs {
            job.cancel_or_fail(stopped_error());
        }
        // As `submit_batch` would: a chunk with nothing to send is complete, the others refused.
        batches
            .into_iter()
            .zip(chunks)
            .zip(sent)
            .map(|((batch, tasks), sent)| match sent {
                false => Ok(batch),
                true => Err(SubmitError::new(reason.clone(), tasks)),
            })
            .collect()
    }
}

impl ProcessPoolExecutor {
    /// A chunk of `map` as one request: its batch (the future `map` reads), and what to queue,
    /// unless there is nothing to send (an empty chunk, or no item serializes: then the batch is
    /// complete already).
    fn prepare_chunk<T>(&self, tasks: &[T]) -> (Batch<T::Output>, Option<Queued>)
    where
        T: RemoteTask,
        T::Output: Serialize + DeserializeOwned,
    {
        let len = tasks.len();
        let (promise, future) = Promise::named(T::NAME);
        let (payload, count, failed) = wire::encode_items(tasks);
        let failed: Vec<_> = failed
            .into_iter()
            .map(|(index, e)| (index, unsendable::<T>(e).with_task_name(T::NAME)))
            .collect();
        if count == 0 {
            let all = LazyOutcomes::new(len, failed.into_iter().map(|(_, e)| Err(e)));
            let _ = promise.set_result(all);
            return (Batch::lazy_chunk(future, len), None);
        }
        let timer = RunTimer::new();
        let job = Box::new(Many::<T> {
            id: self.next_id(),
            promise,
            len,
            failed,
            timer: timer.clone(),
        });
        let queued = Queued {
            job,
            payload: Arc::new(payload),
        };
        (Batch::lazy_chunk(future, len).timed(timer), Some(queued))
    }
}

impl Shutdown for ProcessPoolExecutor {
    /// Refuses new tasks; with `cancel_futures`, cancels the tasks not started (queued, or sent
    /// ahead to a worker, which withdraws them); with `wait`, returns when every queued and
    /// running task is done and every worker has exited (and been reaped).
    fn shutdown(&self, options: ShutdownOptions) {
        self.inner.shutdown(options);
    }
}

impl Introspect for ProcessPoolExecutor {
    fn stats(&self) -> PoolStats {
        let inner = &self.inner;
        let (running, _) = inner.progress();
        let sched = inner.sched.lock();
        PoolStats {
            workers: sched.workers.len(),
            idle: (0..sched.slots.len()).filter(|&i| sched.idle(i)).count(),
            queued: sched.jobs.len(),
            running,
            completed: inner.completed.load(Ordering::Relaxed),
        }
    }
}

impl Drop for ProcessPoolExecutor {
    fn drop(&mut self) {
        self.inner.shutdown(ShutdownOptions::wait());
    }
}

impl fmt::Debug for ProcessPoolExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessPoolExecutor")
            .field("max_workers", &self.inner.max_workers)
            .field("program", &self.inner.program)
            .field("stats", &self.stats())
            .finish()
    }
}
