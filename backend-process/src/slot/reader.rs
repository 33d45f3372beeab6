//! A slot's reader thread: takes the worker's frames (`Started`, `Response`, `Revoked`), sends
//! the next small requests itself when that cannot block, and deals with the worker's end.

use std::collections::VecDeque;
use std::io::BufReader;
use std::process::{Child, ChildStdout, ExitStatus};
use std::sync::Arc;
use std::time::Duration;

use executor_core::{BrokenExecutor, BrokenKind, TaskError};

use super::{
    POOL_THREAD, Progress, READER, Slot, SlotState, enter, mark_written, request_cost,
    write_requests,
};
use crate::OnWorkerDeath;
use crate::job::{Pending, Queued};
use crate::pool::{Inner, Phase, describe_exit};
use crate::wire::{self, ToParent};

/// A slot's reader thread for one worker: takes the worker's frames until its output ends, then
/// reaps it and deals with what it held.
pub(super) fn read(
    pool: Arc<Inner>,
    slot: Arc<Slot>,
    mut child: Child,
    mut output: BufReader<ChildStdout>,
    pid: u32,
) {
    READER.set(true);
    crate::sched::prefer_short_slices();
    POOL_THREAD.set(true);
    let mut frame = Vec::new();
    // A place was freed by a frame read since the last `feed`.
    let mut freed = false;
    let garbled = loop {
        match wire::read_frame(&mut output, &mut frame) {
            Ok(true) => {}
            Ok(false) => break false,
            Err(_) => break true,
        }
        // The worker's answers often come several to one write: the places they free are filled
        // once, after the last of them (one write to the worker, one wake-up of a writer).
        let last = output.buffer().is_empty();
        match wire::split::<ToParent>(&frame) {
            Ok((ToParent::Started { id }, _)) => slot.started(id),
            Ok((ToParent::Response { id, nanos }, payload)) => {
                if let Some((job, spare)) = slot.responded(&pool, id, nanos) {
                    freed = true;
                    if last {
                        refill(&pool, &slot, &mut freed);
                    }
                    // The worker counted as free again (and, after the last answer of a write,
                    // given its next requests) before the future completes, so that a submitter
                    // woken by the completion reuses it instead of starting another (rule L3).
                    job.finish(payload, spare, pid, Duration::from_nanos(nanos));
                    continue;
                }
            }
            Ok((ToParent::Revoked { id, revoked }, _)) => {
                freed |= slot.revoked(&pool, id, revoked);
            }
            Ok((ToParent::Withdrawn { ids, read }, _)) => {
                if let Some(thief) = slot.given_back(&pool, &ids, read) {
                    feed(&pool, &thief);
                    if ids.is_empty() {
                        // Nothing came back: the worker may not have had the requests it was
                        // still being sent; the asker looks again (until an answer says the
                        // worker had read them all and has none to give).
                        let _ = pool.steal_for(thief.index);
                    }
                }
                freed = true;
            }
            Err(_) => break true,
        }
        if last {
            refill(&pool, &slot, &mut freed);
        }
    };
    let expected = {
        let state = slot.state.lock();
        state.closing && state.entries.is_empty() && !garbled
    };
    // Out of the list before it is reaped, so that nobody signals a reused pid.
    pool.forget_worker(pid);
    if !expected {
        // It died, or spoke nonsense: make sure it is gone.
        let _ = child.kill();
    }
    let status = child.wait();
    if !expected {
        worker_died(&pool, &slot, pid, status);
    }
    let mut sched = pool.sched.lock();
    sched.slots[slot.index].phase = Phase::Ended;
    sched.wake_writers(&pool.options);
}

/// A worker ended without being asked to (rule L6): fail, cancel, or keep what it held, and
/// break the pool unless the policy replaces the worker.
fn worker_died(pool: &Inner, slot: &Slot, pid: u32, status: std::io::Result<ExitStatus>) {
    let (replace, stopping) = {
        let sched = pool.sched.lock();
        let replace = pool.options.on_death == OnWorkerDeath::Replace
            && !sched.closed
            && sched.broken.is_none()
            && sched.stopping.is_none();
        (replace, sched.stopping.is_some())
    };
    let entries = {
        let mut state = slot.state.lock();
        state.ended = true;
        // What its start page says it started, it did (a `Revoked` answer for any of them would
        // have come first: see the worker's reader).
        let started: Vec<bool> = state.entries.iter().map(|e| state.has_started(e)).collect();
        for (entry, started) in state.entries.iter_mut().zip(started) {
            if started {
                entry.progress = Progress::Started;
            }
        }
        let entries = std::mem::take(&mut state.entries);
        if !replace {
            entries
        } else {
            // Requests it had not started stay here, in place (a `cancel()` meanwhile still
            // finds them), for the replacement worker.
            let (mut kept, taken): (VecDeque<_>, VecDeque<_>) = entries
                .into_iter()
                .partition(|e| e.progress != Progress::Started && !e.revoking);
            for entry in &mut kept {
                entry.progress = Progress::Unsent;
            }
            state.entries = kept;
            taken
        }
    };
    let running = entries.iter().any(|e| e.progress == Progress::Started);
    let how = format!(
        "worker pid {pid} {}{}",
        describe_exit(status),
        if running { " while running a task" } else { "" }
    );
    let broken = (!replace)
        .then(|| pool.break_pool(BrokenExecutor::new(BrokenKind::ProcessPool, how.clone())));
    let mut released = 0;
    let mut outcomes: Vec<(Box<dyn Pending>, Outcome)> = Vec::new();
    for entry in entries {
        let started = entry.progress == Progress::Started;
        if entry.revoking {
            if !started {
                // Never started, and someone wants it withdrawn: it is.
                released += 1;
                entry.revoker.answer(true, Some(entry.job));
                continue;
            }
            entry.revoker.answer(false, None);
        }
        let outcome = match (&broken, started) {
            (None, true) => Outcome::Fail(TaskError::msg(how.clone()).with_worker_pid(pid)),
            (None, false) => unreachable!("kept in place above"),
            (Some(broken), true) => {
                Outcome::Fail(TaskError::broken(broken.clone()).with_worker_pid(pid))
            }
            (Some(broken), false) if stopping => {
                Outcome::Cancel(TaskError::broken(broken.clone()).with_worker_pid(pid))
            }
            (Some(broken), false) => {
                Outcome::Fail(TaskError::broken(broken.clone()).with_worker_pid(pid))
            }
        };
        released += 1;
        outcomes.push((entry.job, outcome));
    }
    if released > 0 {
        pool.release(slot.index, released, 0);
    }
    for (job, outcome) in outcomes {
        match outcome {
            Outcome::Fail(error) => job.fail(error),
            Outcome::Cancel(error) => job.cancel_or_fail(error),
        }
    }
}

enum Outcome {
    Fail(TaskError),
    /// It never started: cancel it (`terminate_workers`/`kill_workers`).
    Cancel(TaskError),
}

/// [`feed`] and wake the writers, if an answer has freed a place since the last time.
fn refill(pool: &Inner, slot: &Arc<Slot>, freed: &mut bool) {
    if std::mem::take(freed) {
        feed(pool, slot);
        pool.wake_writers();
        // The queue may be empty now, with this worker running out while another holds many.
        let _ = pool.steal_for(slot.index);
    }
}

/// Sends the slot's next requests from this thread, saving the writer thread a wake-up: on the
/// reader thread once an answer has freed a place, and on a submitting thread when the slot may
/// take the request it queued. Only when that cannot block (the reader must always be free to
/// drain the worker's answers, and `submit` never waits for a worker): the stdin lock is free,
/// and every byte written still fits in the pipe (see `SlotState::room`). Anything else (a large
/// chunk, a busy pipe) stays for the writer, which the caller wakes.
pub(crate) fn feed(pool: &Inner, slot: &Arc<Slot>) {
    let Some(mut input) = slot.input.try_lock() else {
        return;
    };
    let Some(out) = input.as_mut() else {
        return;
    };
    write_requests(out, || {
        let mut state = slot.state.lock();
        let room = state.room.saturating_sub(state.unread);
        let unsent = state
            .entries
            .iter()
            .position(|e| e.progress == Progress::Unsent);
        let at = match unsent {
            // Admitted by the writer, which is on its way to write it: help if it fits.
            Some(at) if state.entries[at].cost <= room => Some(at),
            Some(_) => None,
            None => take_one(pool, slot, &mut state, room),
        };
        at.map(|at| mark_written(&mut state, at))
    });
}

/// For [`feed`]: takes the next queued request for this slot if it may and the request fits in
/// `room`, and admits it as [`admit`] does; its index among the entries.
fn take_one(pool: &Inner, slot: &Arc<Slot>, state: &mut SlotState, room: usize) -> Option<usize> {
    loop {
        let Queued { job, payload } = {
            let mut sched = pool.sched.lock();
            let fits = sched
                .jobs
                .front()
                .is_some_and(|q| request_cost(q.job.task(), &q.payload) <= room);
            if !fits || state.ended || !sched.may_take(slot.index, sched.census(), &pool.options) {
                return None;
            }
            let queued = sched.jobs.pop_front().expect("the queue is not empty");
            sched.slots[slot.index].in_flight += 1;
            queued
        };
        if !enter(slot, state, job, payload) {
            // Cancelled while queued: try the next one.
            pool.release_quietly(slot.index, 1, 0);
            continue;
        }
        return Some(state.entries.len() - 1);
    }
}
