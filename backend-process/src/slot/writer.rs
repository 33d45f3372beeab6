//! A slot's writer thread: starts the worker (handshake, initializer), takes requests from the
//! pool's queue and writes them, retires or replaces the worker.

use std::collections::VecDeque;
use std::io::{BufReader, BufWriter};
use std::process::{ChildStdout, Command, Stdio};
use std::sync::Arc;

use executor_core::{BrokenExecutor, BrokenKind, TaskError};

use rustix::pipe::PipeFlags;

use super::{
    POOL_THREAD, Progress, RequestPipe, Slot, enter, mark_written, reader, write_requests,
};
use crate::OnWorkerDeath;
use crate::job::Queued;
use crate::page::StartPage;
use crate::pool::{Inner, Phase, describe_exit};
use crate::wire::{self, Items, ToParent, ToWorker};
use crate::worker::{DOORBELL_ENV, TEST_ENTRY, WORKER_ENV};

/// How long a writer waits before it looks again at a worker that is held up, after a look
/// that took nothing from it.
const LOOK_AGAIN: std::time::Duration = std::time::Duration::from_millis(1);

/// What a slot's writer does next.
enum Next {
    Send(Vec<Queued>),
    /// The worker has served `max_tasks_per_child` requests and holds none.
    Retire,
    /// Shut down (queue empty) or broken, and the worker holds nothing.
    Exit,
    /// Stopping or broken while the worker holds requests: end it.
    Kill,
    /// The worker has ended and the reader has dealt with it.
    Ended,
    /// The worker has run out while another may be held up in one request with chunks queued
    /// behind it: look, and take some back if so (see `Sched::stall_watch`).
    Steal,
}

/// How a worker's life in a slot ended.
enum End {
    Retired,
    Exited,
    Ended,
}

/// A slot's writer thread: start a worker, feed it, and when it retires (`max_tasks_per_child`)
/// or dies (with `OnWorkerDeath::Replace`), start the next, until shutdown or breakage.
pub(crate) fn drive(pool: Arc<Inner>, slot: Arc<Slot>) {
    POOL_THREAD.set(true);
    crate::sched::prefer_short_slices();
    loop {
        let (reader, pid) = match start_worker(&pool, &slot) {
            Ok(started) => started,
            Err(broken) => {
                pool.break_pool(broken);
                fail_kept(&pool, &slot);
                pool.slot_gone(slot.index);
                return;
            }
        };
        let end = serve(&pool, &slot, pid);
        if !matches!(end, End::Ended) {
            // Retire or exit: close stdin; the worker finishes and exits, the reader reaps it.
            slot.state.lock().closing = true;
            drop(slot.input.lock().take());
        }
        if reader.join().is_err() {
            eprintln!("backend-process: a worker's reader thread panicked");
        }
        let again = {
            let sched = pool.sched.lock();
            let kept = sched.slots[slot.index].in_flight > 0;
            let open = !sched.closed || !sched.jobs.is_empty() || kept;
            let healthy = sched.broken.is_none() && sched.stopping.is_none();
            let replace = pool.options.on_death == OnWorkerDeath::Replace;
            match end {
                End::Retired => healthy && open,
                // A death: `Replace` starts a fresh worker (the reader kept what the dead one
                // held but had not started); otherwise the pool broke.
                End::Ended => healthy && replace && open,
                End::Exited => false,
            }
        };
        if !again {
            fail_kept(&pool, &slot);
            pool.slot_gone(slot.index);
            return;
        }
    }
}

/// Deals with whatever a slot still holds when no replacement worker will come (requests kept
/// from a dead worker, never started): the broken-pool error if the pool broke, else cancelled.
fn fail_kept(pool: &Inner, slot: &Slot) {
    let entries = std::mem::take(&mut slot.state.lock().entries);
    if entries.is_empty() {
        return;
    }
    pool.release(slot.index, entries.len(), 0);
    let broken = pool.sched.lock().broken.clone();
    for entry in entries {
        if entry.revoking {
            entry.revoker.answer(true, Some(entry.job));
            continue;
        }
        match &broken {
            Some(broken) => entry.job.fail(TaskError::broken(broken.clone())),
            None => entry.job.cancel_or_fail(crate::pool::stopped_error()),
        }
    }
}

/// Feeds one worker until it must retire, the pool is done with it, or it ends.
fn serve(pool: &Inner, slot: &Arc<Slot>, pid: u32) -> End {
    // Requests kept from a worker that died (`Replace`) go to this one first.
    write_unsent(slot);
    // Whether the last look took something (or there was none): if not, the next one waits
    // `LOOK_AGAIN`.
    let mut watch = true;
    loop {
        let next = next(pool, slot, watch);
        watch = true;
        match next {
            Next::Send(requests) => {
                admit(pool, slot, requests);
                write_unsent(slot);
            }
            Next::Retire => return End::Retired,
            Next::Exit => return End::Exited,
            Next::Kill => {
                let how = pool.sched.lock().stopping;
                pool.signal_worker(pid, how.unwrap_or(rustix::process::Signal::KILL));
                wait_ended(pool, slot);
                return End::Ended;
            }
            Next::Ended => return End::Ended,
            Next::Steal => watch = pool.steal_for(slot.index),
        }
    }
}

/// Waits (on the slot's condvar) until the writer has something to do, and takes requests from
/// the queue if that is it.
fn next(pool: &Inner, slot: &Slot, watch: bool) -> Next {
    let i = slot.index;
    let mut sched = pool.sched.lock();
    loop {
        let s = &sched.slots[i];
        if s.phase == Phase::Ended {
            return Next::Ended;
        }
        let idle = s.in_flight == 0;
        if sched.stopping.is_some() || (sched.broken.is_some() && !idle) {
            return Next::Kill;
        }
        if idle && (sched.broken.is_some() || (sched.closed && sched.jobs.is_empty())) {
            return Next::Exit;
        }
        if idle && sched.budget(i, &pool.options) == 0 {
            return Next::Retire;
        }
        let mut taken = Vec::new();
        while !sched.jobs.is_empty() && sched.may_take(i, sched.census(), &pool.options) {
            let queued = sched.jobs.pop_front().expect("the queue is not empty");
            sched.slots[i].in_flight += 1;
            taken.push(queued);
        }
        if !taken.is_empty() {
            // This slot is no longer idle: another may now send ahead.
            sched.wake_writers(&pool.options);
            return Next::Send(taken);
        }
        let look = match (watch, sched.stall_watch(i)) {
            (true, Some(std::time::Duration::ZERO)) => return Next::Steal,
            (true, look) => look,
            // Right after a look that took nothing, the next one waits a while (a worker whose
            // queue is not a chunk of `map` gives nothing, however often it is asked).
            (false, look) => look.map(|after| after.max(LOOK_AGAIN)),
        };
        sched.slots[i].waiting = true;
        sched.slots[i].watching = look.is_some();
        let timed_out = match look {
            None => {
                slot.wake.wait(&mut sched);
                false
            }
            Some(after) => slot.wake.wait_for(&mut sched, after).timed_out(),
        };
        sched.slots[i].waiting = false;
        sched.slots[i].watching = false;
        if timed_out {
            return Next::Steal;
        }
    }
}

fn wait_ended(pool: &Inner, slot: &Slot) {
    let mut sched = pool.sched.lock();
    while sched.slots[slot.index].phase != Phase::Ended {
        sched.slots[slot.index].waiting = true;
        slot.wake.wait(&mut sched);
        sched.slots[slot.index].waiting = false;
    }
}

/// Records taken requests as the slot's (unsent) entries and gives their futures a revoker; a
/// request cancelled meanwhile is dropped, and one that arrives after its worker ended goes back
/// to the front of the queue.
fn admit(pool: &Inner, slot: &Arc<Slot>, requests: Vec<Queued>) {
    let mut dropped = 0;
    let mut back = Vec::new();
    {
        let mut state = slot.state.lock();
        for Queued { job, payload } in requests {
            if state.ended {
                back.push(Queued { job, payload });
                continue;
            }
            if !enter(slot, &mut state, job, payload) {
                dropped += 1;
            }
        }
    }
    let released = dropped + back.len();
    if released > 0 {
        pool.release(slot.index, released, 0);
    }
    if !back.is_empty() {
        let mut sched = pool.sched.lock();
        if let Some(broken) = sched.broken.clone() {
            drop(sched);
            for queued in back {
                queued.job.fail(TaskError::broken(broken.clone()));
            }
        } else if sched.stopping.is_some() {
            drop(sched);
            for queued in back {
                queued.job.cancel_or_fail(crate::pool::stopped_error());
            }
        } else {
            for queued in back.into_iter().rev() {
                sched.jobs.push_front(queued);
            }
            sched.wake_writers(&pool.options);
        }
    }
}

/// Writes every unsent entry to the worker, in order, then flushes once. The pipe is written
/// without the slot's lock (the reader must always be able to take answers meanwhile); a
/// `Revoke` for an entry waits for the stdin lock, so it always follows its request.
fn write_unsent(slot: &Slot) {
    let mut input = slot.input.lock();
    let Some(out) = input.as_mut() else {
        return;
    };
    write_requests(out, || {
        let mut state = slot.state.lock();
        let at = state
            .entries
            .iter()
            .position(|e| e.progress == Progress::Unsent);
        at.map(|at| mark_written(&mut state, at))
    });
}

/// Starts a worker process for the slot: spawn, handshake, initializer, reader thread. Returns
/// the reader's handle and the worker's pid.
fn start_worker(
    pool: &Arc<Inner>,
    slot: &Arc<Slot>,
) -> Result<(std::thread::JoinHandle<()>, u32), BrokenExecutor> {
    let broken = |why: String| BrokenExecutor::new(BrokenKind::ProcessPool, why);
    {
        let mut sched = pool.sched.lock();
        sched.slots[slot.index].starting();
    }
    let mut command = Command::new(&pool.program);
    // A test binary runs the worker entry test; any other binary's `main` calls `worker_main`
    // before it looks at its arguments.
    command
        .args([
            TEST_ENTRY,
            "--exact",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .env(WORKER_ENV, std::process::id().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // Best effort: without a start page, every request is loud (announced through the pipe).
    let page = StartPage::create().ok();
    if let Some((_, fd)) = &page {
        StartPage::pass_to(fd, &mut command);
    }
    let (ring, bell) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)
        .map_err(|e| broken(format!("cannot make a worker's doorbell: {e}")))?;
    crate::inherit::pass_to(&ring, DOORBELL_ENV, &mut command);
    let spawned = command.spawn();
    // The worker has its copies of the doorbell's read end and of the page's descriptor (or
    // failed to start): the parent keeps the doorbell's write end and the page's mapping.
    drop(ring);
    let page = page.map(|(page, _fd)| Arc::new(page));
    let mut child = spawned.map_err(|e| broken(format!("cannot start a worker process: {e}")))?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        unreachable!("both pipes were requested");
    };
    let pid = child.id();
    pool.sched.lock().workers.push(pid);
    let room = super::grow_pipe(&stdin);
    let stdin = match RequestPipe::new(stdin, bell) {
        Ok(stdin) => stdin,
        Err(e) => {
            pool.forget_worker(pid);
            let _ = child.kill();
            let _ = child.wait();
            return Err(broken(format!(
                "cannot set up worker pid {pid}'s stdin: {e}"
            )));
        }
    };
    let mut input = BufWriter::with_capacity(wire::PIPE_BUFFER, stdin);
    let mut output = BufReader::with_capacity(wire::PIPE_BUFFER, stdout);
    if let Err(why) = handshake(pool, &mut input, &mut output) {
        drop(input);
        pool.forget_worker(pid);
        let _ = child.kill();
        let status = describe_exit(child.wait());
        let initializer = pool
            .options
            .initializer
            .as_ref()
            .map_or("", |(name, _)| name);
        return Err(broken(match why {
            NotReady::NoHeader => format!(
                "worker pid {pid} {status} before it was ready (does this binary call \
                 `backend_process::worker_main()` first in `main`, or, for tests, \
                 `backend_process::test_worker!()`?)"
            ),
            NotReady::Ended => {
                format!("initializer `{initializer}` failed in worker pid {pid}: {status}")
            }
            NotReady::Initializer(message) => {
                format!("initializer `{initializer}` failed in worker pid {pid}: {message}")
            }
        }));
    }
    // The new stdin goes in under the same locks as the kept requests are marked unsent (stdin
    // first, as everywhere): in between, a submitter's `feed` found them unsent and the old,
    // dead worker's stdin still in place, marked one written (numbered for the new worker) and
    // wrote it into the dead pipe, so the new worker never got it and nobody sent it again (a
    // task lost under `Replace`, about once in 15 runs of the resend test two at a time).
    let mut current_input = slot.input.lock();
    let withdrawn = {
        let mut state = slot.state.lock();
        state.ended = false;
        state.closing = false;
        state.unread = 0;
        state.room = room;
        // Under `Replace`, a response held when the worker dies would fail a chunk that
        // finished: only the dead worker's own task may fail.
        state.hold = page.is_some() && pool.options.on_death == OnWorkerDeath::BreakPool;
        state.page = page.clone();
        // The initializer, if any, was the first request written.
        state.written = u64::from(pool.options.initializer.is_some());
        // What the slot still holds was kept from a worker that died (`Replace`) and reached no
        // live worker, even if it is marked written: the writer may have written it to the dead
        // one's pipe just after its reader kept it. All of it goes to this worker, except what a
        // `cancel()` is withdrawing: that never started, so it is withdrawn.
        let (withdrawn, kept): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut state.entries)
            .into_iter()
            .partition(|e| e.revoking);
        state.entries = kept;
        for entry in &mut state.entries {
            entry.progress = Progress::Unsent;
        }
        withdrawn
    };
    *current_input = Some(input);
    drop(current_input);
    if !withdrawn.is_empty() {
        pool.release(slot.index, withdrawn.len(), 0);
        for entry in withdrawn {
            entry.revoker.answer(true, Some(entry.job));
        }
    }
    let reader = {
        let pool = Arc::clone(pool);
        let slot = Arc::clone(slot);
        std::thread::Builder::new()
            .name(format!("backend-process-reader_{}", slot.index))
            .spawn(move || reader::read(pool, slot, child, output, pid))
    };
    let reader = match reader {
        Ok(reader) => reader,
        Err(e) => {
            // `child` went with the failed closure (and was dropped, not reaped): end the worker
            // by its pid; it stays a zombie until this process exits.
            drop(slot.input.lock().take());
            pool.signal_worker(pid, rustix::process::Signal::KILL);
            pool.forget_worker(pid);
            return Err(broken(format!("cannot start a reader thread: {e}")));
        }
    };
    let mut sched = pool.sched.lock();
    // The reader may have seen the worker end already (it died, or `terminate_workers` killed it,
    // just after the handshake) and marked the slot `Ended`: that stays, or the writer would
    // wait for an end that has come and gone.
    let s = &mut sched.slots[slot.index];
    if s.phase == Phase::Starting {
        s.phase = Phase::Ready;
        s.page = page;
        s.first_seq = u64::from(pool.options.initializer.is_some());
    }
    sched.wake_writers(&pool.options);
    Ok((reader, pid))
}

/// Why a new worker did not become ready.
enum NotReady {
    /// It ended (or spoke nonsense) before its magic header.
    NoHeader,
    /// It ended while running the initializer.
    Ended,
    /// The initializer failed with this message.
    Initializer(String),
}

/// Waits for the worker's magic header and runs the initializer in it.
fn handshake(
    pool: &Inner,
    input: &mut BufWriter<RequestPipe>,
    output: &mut BufReader<ChildStdout>,
) -> Result<(), NotReady> {
    if !matches!(wire::skip_to_magic(output), Ok(true)) {
        return Err(NotReady::NoHeader);
    }
    let Some((name, payload)) = &pool.options.initializer else {
        return Ok(());
    };
    let id = u64::MAX;
    wire::write_frame(
        input,
        &ToWorker::Request {
            id,
            task: name,
            quiet: false,
            hold: false,
        },
        payload,
    )
    .and_then(|()| std::io::Write::flush(input))
    .map_err(|_| NotReady::Ended)?;
    let mut frame = Vec::new();
    loop {
        match wire::read_frame(output, &mut frame) {
            Ok(true) => {}
            Ok(false) | Err(_) => return Err(NotReady::Ended),
        }
        match wire::split::<ToParent>(&frame) {
            Ok((ToParent::Started { .. }, _)) => continue,
            Ok((ToParent::Response { id: answered, .. }, payload)) if answered == id => {
                let outcome = Items::new(payload).and_then(|mut items| items.next_outcome::<()>());
                return match outcome {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(NotReady::Initializer(e.message)),
                    Err(e) => Err(NotReady::Initializer(format!(
                        "its answer cannot be decoded: {e}"
                    ))),
                };
            }
            _ => {
                return Err(NotReady::Initializer(
                    "the worker answered out of turn".to_owned(),
                ));
            }
        }
    }
}
