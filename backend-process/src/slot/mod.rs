//! One worker slot: its writer thread (starts the worker, feeds it requests, retires or replaces
//! it), its reader thread (takes the worker's answers), and how `cancel()` asks the worker to
//! withdraw a request sent ahead ([`TaskRevoker`], rule L13). This file holds the slot's state
//! and what happens to a request as the worker answers; `writer.rs`, `reader.rs` and
//! `revoke.rs` hold the two threads and the revoker.
//!
//! # A request's life in a slot
//! The writer takes it from the pool's queue (while the worker has fewer than
//! `max_in_flight_per_worker` requests and the `max_tasks_per_child` budget allows), records it
//! as an [`Entry`] (*unsent*), gives its future a [`TaskRevoker`], then writes it (*sent*). The
//! worker answers `Started` (*started*: the future becomes RUNNING), then `Response` (the entry
//! goes and the future completes). A quiet request (a chunk of `map`) gets no `Started`: it has
//! started once the worker's start page says so ([`SlotState::has_started`], [`crate::page`]). A `cancel()` meanwhile asks the revoker: an unsent entry is
//! simply dropped; a sent one gets a `Revoke` frame, and the worker's `Revoked` answer says
//! whether it took the request out of its queue before starting it.
//!
//! # When the worker ends
//! The reader sees the end of the stream, reaps the worker, marks started what the start page
//! says had started, and deals with every entry left:
//! a revoke waiting for an answer gets "revoked" if the request never started; otherwise, as the
//! policy says, started requests fail (broken pool, or only themselves with
//! [`OnWorkerDeath::Replace`](crate::OnWorkerDeath)), and requests sent ahead but not started
//! fail with the broken-pool error (naming the pid and exit status), are cancelled
//! (`terminate_workers`/`kill_workers`), or are kept and sent again to the replacement worker.

use std::cell::Cell;
use std::collections::VecDeque;
use std::io::{self, BufWriter};
use std::os::fd::OwnedFd;
use std::process::ChildStdin;
use std::sync::{Arc, Weak};

use parking_lot::{Condvar, Mutex};

use crate::job::{Payload, Pending};
use crate::page::StartPage;
use crate::pool::Inner;
use crate::wire::{self, ToWorker};

mod reader;
mod revoke;
mod writer;

pub(crate) use reader::feed;
use revoke::TaskRevoker;
pub(crate) use revoke::revoke_not_started;
pub(crate) use writer::drive;

thread_local! {
    /// Set on a slot's reader thread: it cannot wait for an answer that it must read itself.
    static READER: Cell<bool> = const { Cell::new(false) };
    /// Set on any of the pool's own threads: they cannot wait for the pool's threads to end.
    static POOL_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread is one of a process pool's own threads (a writer or a reader).
pub(crate) fn on_pool_thread() -> bool {
    POOL_THREAD.get()
}

/// One worker slot: the worker it runs now (replaced after `max_tasks_per_child` or, with
/// `OnWorkerDeath::Replace`, a death) and the requests that worker holds.
pub(crate) struct Slot {
    pub(crate) index: usize,
    pool: Weak<Inner>,
    state: Mutex<SlotState>,
    /// The worker's stdin; `None` while no worker is up and once closed. Lock order where more
    /// than one is held: `input`, then `state`, then the pool's `sched`.
    input: Mutex<Option<BufWriter<RequestPipe>>>,
    /// Wakes this slot's writer; always waited on with the pool's `sched` lock.
    pub(crate) wake: Condvar,
}

struct SlotState {
    /// In the order they were taken from the queue. A deque: answers come back oldest first, and
    /// taking the oldest out of a `Vec` moved every later entry (some hundred, for short chunks
    /// of `map` sent ahead).
    entries: VecDeque<Entry>,
    /// The reader has seen the worker end and dealt with its entries (the ones left are kept
    /// for a replacement).
    ended: bool,
    /// The writer closed stdin on purpose: an end of stream with no entry left is expected.
    closing: bool,
    /// At most this many bytes written to the worker's stdin may still be in the pipe: written
    /// requests it has not acknowledged (`Started`, `Revoked`) and revokes it has not answered.
    /// The reader writes to the pipe itself only while this leaves room (`room`).
    unread: usize,
    /// Bytes the worker's stdin pipe surely holds without blocking its writer.
    room: usize,
    /// The current worker's start page (`None`: none could be made; then every request is
    /// loud).
    page: Option<Arc<StartPage>>,
    /// Request frames written to the current worker: the next one's sequence number.
    written: u64,
    /// The current worker may hold the responses of quiet requests (see [`crate::worker::HOLD`]).
    hold: bool,
}

impl SlotState {
    /// Whether the worker has started `entry`: it said so (`Started`), or, for a quiet request,
    /// its start page is past the request's sequence number (it runs requests in the order it
    /// reads them).
    fn has_started(&self, entry: &Entry) -> bool {
        match entry.progress {
            Progress::Started => true,
            Progress::Unsent => false,
            Progress::Written => self
                .page
                .as_ref()
                .is_some_and(|page| entry.seq < page.started()),
        }
    }

    /// How many requests the worker runs (or ran, unanswered) and how many it holds unstarted.
    pub(crate) fn census(&self) -> (usize, usize) {
        let started = self.entries.iter().filter(|e| self.has_started(e)).count();
        let written = self
            .entries
            .iter()
            .filter(|e| e.progress != Progress::Unsent)
            .count();
        (started, written - started)
    }
}

/// Bytes a pipe surely holds without blocking the writer (one page, the least Linux gives).
pub(crate) const PIPE_ROOM: usize = 4096;

/// The size a worker's stdin pipe is grown to where the system allows, so that the reader thread
/// can write whole chunks of small tasks itself instead of waking the writer (256 KiB: sixteen
/// workers take 4 MiB of the 64 MiB of pipe buffers Linux lets a user have by default).
const PIPE_GROWN: usize = 256 * 1024;

/// Grows the worker's stdin pipe (best effort) and returns the bytes it surely holds: half its
/// size (small writes can leave pages part-filled), and never less than one page.
pub(crate) fn grow_pipe(stdin: &std::process::ChildStdin) -> usize {
    let _ = rustix::pipe::fcntl_setpipe_size(stdin, PIPE_GROWN);
    rustix::pipe::fcntl_getpipe_size(stdin).map_or(PIPE_ROOM, |size| (size / 2).max(PIPE_ROOM))
}

/// The parent's end of a worker's request pipe (its stdin), and of its doorbell.
///
/// The worker's runner reads the request pipe itself, between tasks: a busy worker is not woken
/// for each write (see [`crate::worker`]). A frame that must be read while the runner may be in a
/// task (a `Revoke`, a `Withdraw`) is followed by a [`ring`](RequestPipe::ring), which wakes the
/// worker's reader thread to read the pipe at once; so is a write that finds the pipe full, so
/// that a writer never waits for a task to end (a `cancel()` waits for the stdin lock it holds).
pub(crate) struct RequestPipe {
    /// Non-blocking: a full pipe rings the doorbell before it is waited on.
    pipe: ChildStdin,
    /// The doorbell pipe's write end (non-blocking: a full doorbell has rung already).
    bell: OwnedFd,
}

impl RequestPipe {
    /// Wraps a worker's stdin (made non-blocking here) and its doorbell's write end.
    pub(crate) fn new(pipe: ChildStdin, bell: OwnedFd) -> io::Result<Self> {
        rustix::fs::fcntl_setfl(&pipe, rustix::fs::OFlags::NONBLOCK)?;
        Ok(RequestPipe { pipe, bell })
    }

    /// Wakes the worker's reader thread to read the request pipe now. A doorbell already full of
    /// rings (or a worker gone) needs nothing more.
    pub(crate) fn ring(&self) {
        let _ = rustix::io::write(&self.bell, &[1]);
    }
}

impl io::Write for RequestPipe {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        use rustix::event::{PollFd, PollFlags};
        use rustix::io::Errno;
        loop {
            match rustix::io::write(&self.pipe, bytes) {
                Ok(written) => return Ok(written),
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => {
                    // Full, and the runner may be in a long task: its reader thread empties the
                    // pipe. Waiting for room returns once it has (or the worker is gone: then the
                    // write fails with `EPIPE`).
                    self.ring();
                    let mut fds = [PollFd::new(&self.pipe, PollFlags::OUT)];
                    match rustix::event::poll(&mut fds, None) {
                        Ok(_) | Err(Errno::INTR) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What a `Revoke` frame may take in the pipe.
const REVOKE_COST: usize = 32;

/// What a request frame may take in the pipe: length prefix, header, payload.
fn request_cost(task: &str, payload: &[u8]) -> usize {
    4 + 16 + task.len() + payload.len()
}

/// A request this slot's worker holds (or is about to).
struct Entry {
    id: u64,
    job: Box<dyn Pending>,
    payload: Payload,
    /// [`request_cost`] of its frame.
    cost: usize,
    /// Among the request frames written to the current worker (set when written).
    seq: u64,
    /// Sent without `Started` (a chunk of `map`): see [`crate::page`].
    quiet: bool,
    progress: Progress,
    revoker: Arc<TaskRevoker>,
    /// A `Revoke` was written and waits for the worker's answer.
    revoking: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    /// Taken from the queue, not written yet (or kept for a replacement worker).
    Unsent,
    /// Written to the worker, not started there.
    Written,
    /// The worker said `Started`.
    Started,
}

impl Slot {
    pub(crate) fn new(index: usize, pool: Weak<Inner>) -> Self {
        Slot {
            index,
            pool,
            state: Mutex::new(SlotState {
                entries: VecDeque::new(),
                ended: false,
                closing: false,
                unread: 0,
                room: PIPE_ROOM,
                page: None,
                written: 0,
                hold: false,
            }),
            input: Mutex::new(None),
            wake: Condvar::new(),
        }
    }

    /// A `cancel()` asks to withdraw request `id`: the answer now, or `None` if a `Revoke` went
    /// to the worker (the reader will answer).
    fn request_revoke(&self, id: u64) -> Option<bool> {
        let mut state = self.state.lock();
        let Some(at) = state.entries.iter().position(|e| e.id == id) else {
            // Answered, failed, or revoked already: not ours to cancel any more.
            return Some(false);
        };
        if state.has_started(&state.entries[at]) {
            return Some(false);
        }
        match state.entries[at].progress {
            Progress::Started => Some(false),
            Progress::Unsent => {
                // Never written: it simply will not be.
                let entry = state.entries.remove(at).expect("found just now");
                drop(state);
                entry.revoker.answer(true, Some(entry.job));
                if let Some(pool) = self.pool.upgrade() {
                    pool.release(self.index, 1, 0);
                }
                Some(true)
            }
            Progress::Written => {
                state.entries[at].revoking = true;
                state.unread += REVOKE_COST;
                drop(state);
                let mut input = self.input.lock();
                if let Some(input) = input.as_mut() {
                    // If this fails the worker is gone: the reader answers at its end.
                    let _ = wire::write_frame(input, &ToWorker::Revoke { id }, &[])
                        .and_then(|()| std::io::Write::flush(input));
                    input.get_ref().ring();
                }
                None
            }
        }
    }

    /// `Started { id }`.
    fn started(&self, id: u64) {
        let mut state = self.state.lock();
        let Some(at) = state.entries.iter().position(|e| e.id == id) else {
            return;
        };
        if state.entries[at].progress == Progress::Written {
            // The worker has read it.
            state.unread -= state.entries[at].cost;
        }
        let entry = &mut state.entries[at];
        entry.progress = Progress::Started;
        entry.job.start();
        if std::mem::take(&mut entry.revoking) {
            entry.revoker.answer(false, None);
        }
    }

    /// `Response { id, nanos }`: takes the entry out and frees its place (without waking
    /// anyone); the caller completes the returned job with the payload.
    fn responded(&self, pool: &Inner, id: u64, nanos: u64) -> Option<(Box<dyn Pending>, Payload)> {
        let entry = {
            let mut state = self.state.lock();
            let at = state.entries.iter().position(|e| e.id == id)?;
            let entry = state.entries.remove(at).expect("found just now");
            if entry.progress == Progress::Written {
                state.unread -= entry.cost;
            }
            entry
        };
        if entry.revoking {
            entry.revoker.answer(false, None);
        }
        pool.answered(self.index, entry.quiet, nanos);
        pool.completed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Some((entry.job, entry.payload))
    }

    /// `Revoked { id, revoked }`; `true` if it freed a place (without waking anyone).
    fn revoked(&self, pool: &Inner, id: u64, revoked: bool) -> bool {
        let mut state = self.state.lock();
        // Whatever the answer, the worker has read the `Revoke`.
        state.unread = state.unread.saturating_sub(REVOKE_COST);
        let Some(at) = state.entries.iter().position(|e| e.id == id) else {
            return false;
        };
        if !revoked {
            // It started (its `Started` came first and answered already) or is about to.
            if std::mem::take(&mut state.entries[at].revoking) {
                state.entries[at].revoker.answer(false, None);
            }
            return false;
        }
        let entry = state.entries.remove(at).expect("found just now");
        if entry.progress == Progress::Written {
            state.unread -= entry.cost;
        }
        drop(state);
        entry.revoker.answer(true, Some(entry.job));
        pool.withdrawn(self.index, entry.seq);
        true
    }

    /// Asks the worker to give back up to `count` chunks of `map` it has not started (for
    /// another worker that ran out: see `Sched::steal_for`). Only when the stdin lock is free
    /// (a reader calls this, and must not wait for a writer blocked on a full pipe); `false` if
    /// nothing was written.
    pub(crate) fn withdraw(&self, count: usize) -> bool {
        let Some(mut input) = self.input.try_lock() else {
            return false;
        };
        let Some(out) = input.as_mut() else {
            return false;
        };
        {
            let mut state = self.state.lock();
            if state.ended || state.room.saturating_sub(state.unread) < REVOKE_COST {
                return false;
            }
            state.unread += REVOKE_COST;
        }
        let count = u32::try_from(count).unwrap_or(u32::MAX);
        // If this fails the worker is gone: its reader deals with the end.
        let _ = wire::write_frame(out, &ToWorker::Withdraw { count }, &[])
            .and_then(|()| std::io::Write::flush(out));
        out.get_ref().ring();
        true
    }

    /// `Withdrawn { ids, read }`: the worker gave these requests back unstarted, having read
    /// `read` request frames. Each leaves the slot; one a `cancel()` is withdrawing (or asking
    /// about right now) is withdrawn for it, the rest go back to the pool's queue. Returns the
    /// slot they were taken for, if they went back.
    fn given_back(&self, pool: &Inner, ids: &[u64], read: u64) -> Option<Arc<Slot>> {
        let mut back = Vec::new();
        let mut withdrawn = Vec::new();
        let mut seqs = Vec::with_capacity(ids.len());
        let all_read = {
            let mut state = self.state.lock();
            // The worker has read the `Withdraw`.
            state.unread = state.unread.saturating_sub(REVOKE_COST);
            for id in ids {
                let Some(at) = state.entries.iter().position(|e| e.id == *id) else {
                    continue;
                };
                let entry = state.entries.remove(at).expect("found just now");
                if entry.progress == Progress::Written {
                    state.unread -= entry.cost;
                }
                seqs.push(entry.seq);
                // Under the slot's lock, as `cancel()`'s revoke asks it: either the revoker is
                // taken back before any cancel asks (then a cancel finds the request queued),
                // or the cancel is answered "withdrawn".
                if entry.revoking || !entry.job.clear_revoker() {
                    withdrawn.push(entry);
                } else {
                    back.push(crate::job::Queued {
                        job: entry.job,
                        payload: entry.payload,
                    });
                }
            }
            // A request taken for this worker before the `Withdraw` may have been written after
            // it, or not yet, or not even entered here (a writer takes requests from the queue
            // under the pool's lock and enters them under this one after): the worker could not
            // give it, and may be asked again. With both locks held, every request the pool
            // counts as the slot's and that is not among its entries is such a one, or one
            // answered whose count is not yet taken back (then asking again costs a look).
            read == state.written
                && state.entries.iter().all(|e| e.progress != Progress::Unsent)
                && pool.sched.lock().slots[self.index].in_flight <= state.entries.len() + seqs.len()
        };
        for entry in withdrawn {
            entry.revoker.answer(true, Some(entry.job));
        }
        pool.given_back(self.index, seqs, back, all_read)
    }

    /// [`SlotState::census`] of this slot.
    pub(crate) fn census(&self) -> (usize, usize) {
        self.state.lock().census()
    }
}

/// Takes `job` into this slot's entries, unsent, with a revoker set under the slot's lock, so
/// that a `cancel()` from now on finds the entry. `false` (and nothing kept) if the job was
/// cancelled while it was queued: it never goes out.
fn enter(slot: &Arc<Slot>, state: &mut SlotState, job: Box<dyn Pending>, payload: Payload) -> bool {
    let id = job.id();
    let revoker = Arc::new(TaskRevoker::new(Arc::downgrade(slot), id));
    if !job.set_revoker(Arc::clone(&revoker) as Arc<dyn executor_core::Revoker>) {
        return false;
    }
    let cost = request_cost(job.task(), &payload);
    let quiet = job.quiet();
    state.entries.push_back(Entry {
        id,
        job,
        payload,
        cost,
        seq: 0,
        quiet,
        progress: Progress::Unsent,
        revoker,
        revoking: false,
    });
    true
}

/// What a request frame needs: id, task name, quiet, hold, payload.
type Frame = (u64, &'static str, bool, bool, Payload);

/// Writes the requests `next` hands out, in order, then flushes once. Stops at the first failed
/// write: the worker is gone or going, and its reader deals with what it held.
fn write_requests(out: &mut impl std::io::Write, mut next: impl FnMut() -> Option<Frame>) {
    let mut wrote = false;
    while let Some((id, task, quiet, hold, payload)) = next() {
        let header = ToWorker::Request {
            id,
            task,
            quiet,
            hold,
        };
        if wire::write_frame(out, &header, &payload).is_err() {
            return;
        }
        wrote = true;
    }
    if wrote {
        let _ = out.flush();
    }
}

/// Marks entry `at` written (with its sequence number, before the worker can start it) and
/// returns what its frame needs. A request is quiet only if the worker has a start page.
fn mark_written(state: &mut SlotState, at: usize) -> Frame {
    let seq = state.written;
    state.written += 1;
    let quiet = state.page.is_some();
    let hold = state.hold;
    let entry = &mut state.entries[at];
    entry.progress = Progress::Written;
    entry.seq = seq;
    entry.quiet &= quiet;
    let frame = (
        entry.id,
        entry.job.task(),
        entry.quiet,
        entry.quiet && hold,
        Arc::clone(&entry.payload),
    );
    state.unread += entry.cost;
    frame
}
