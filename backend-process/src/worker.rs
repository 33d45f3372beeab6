//! The worker side: the user's own binary, re-executed by the pool (rule L4).
//!
//! Two threads share a local queue of requests. The runner (the main thread) reads the parent's
//! request pipe (the original stdin; the task's own stdin is `/dev/null`) itself, between
//! requests: when its queue runs dry (then it waits on the pipe), and before it decides whether
//! held responses go back. So a busy worker is not woken for each batch of requests the parent
//! sends ahead. The reader thread sleeps on the worker's *doorbell*, a second pipe the parent
//! rings after a `Revoke` or a `Withdraw` (which must be answered even while a task runs) and
//! whenever the request pipe is full: it then reads the request pipe at once, under the same
//! lock. Both sides of "start it or revoke it" take the request out of the queue under its lock,
//! so exactly one of them gets it (rule L13). The runner records the start in the
//! [start page](crate::page) (and, for a loud request, writes `Started`, flushed before the task
//! runs), runs the chunk, and writes `Response`: at once, or, for a chunk of `map` the parent
//! lets it hold, possibly with the next ones, in one write, held at most [`HOLD`] (a timer the
//! runner arms when it starts holding wakes the reader thread to send them). Everything goes out
//! whenever the queue runs dry.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufWriter};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::page::StartPage;
use crate::registry;
use crate::wire::{self, MAGIC, ToParent, ToWorker};

/// Set in a worker's environment; its value is the parent's pid.
pub(crate) const WORKER_ENV: &str = "BACKEND_PROCESS_WORKER";

/// Names the descriptor of a worker's doorbell (the read end of a pipe) in its environment.
pub(crate) const DOORBELL_ENV: &str = "BACKEND_PROCESS_DOORBELL";

/// The name of the test that [`test_worker!`](crate::test_worker) defines, which the pool asks a
/// test binary to run when it re-executes it as a worker.
pub const TEST_ENTRY: &str = "__backend_process_worker_entry";

thread_local! {
    static BACKTRACE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The backtrace captured by the worker's panic hook for the last panic on this thread.
pub(crate) fn take_backtrace() -> Option<String> {
    BACKTRACE.with(|b| b.borrow_mut().take())
}

/// Turns this process into a worker if the pool started it as one, and never returns then;
/// otherwise returns at once. Call it first thing in `main` (the one line this backend asks of a
/// binary that uses it), before parsing arguments or starting anything.
///
/// ```
/// // First thing in `main`:
/// backend_process::worker_main();
/// // ... the program, which may now make a ProcessPoolExecutor ...
/// ```
pub fn worker_main() {
    if std::env::var_os(WORKER_ENV).is_none() {
        return;
    }
    let code = match serve() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("backend-process worker {}: {e}", std::process::id());
            1
        }
    };
    std::process::exit(code);
}

/// How long a worker may hold the response of a chunk of `map` while it runs the next ones, so
/// that several responses go back in one write (one wake-up of the parent's reader instead of
/// one each). The parent allows it unless its policy is
/// [`OnWorkerDeath::Replace`](crate::OnWorkerDeath): a response held when the worker dies is
/// lost, and its chunk fails with the others the worker held (the pool breaks anyway, and
/// every pending future fails); under `Replace` only the dead worker's own task may fail.
///
/// In a `map` of short chunks, responses usually go back before this, when the requests still
/// queued are as many as those held (see `Asks`): the bound matters at the end of a `map`, and
/// wherever it is reached first. At 1 ms that happened a few times a `map`, each time waking the
/// reader thread on its timer, which took the core from the runner; at 3 ms the reader's wake-ups
/// per 11 ms `map` of 200k `is_prime` items at chunksize 256 fell from about 19 to 16, and the
/// `map` took 1.4–2 % less (median, in turns in one process; `backend-process/PERFORMANCE.md`).
pub(crate) const HOLD: Duration = Duration::from_millis(3);

/// A response is held only if its request ran shorter than this (wall time, so preemption
/// counts: at 100 µs, a chunk of 20 µs that was preempted went back in a write of its own).
const HOLD_SHORTER_THAN: Duration = Duration::from_micros(500);

/// Serves the parent until it closes stdin: this thread runs the requests in order, reading them
/// from the pipe as it goes; a reader thread answers the doorbell and the hold timer.
fn serve() -> io::Result<()> {
    // If the parent dies, so does the worker (rule L10).
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(io::Error::from)?;
    if let Some(names) = Some(registry::duplicate_names()).filter(|d| !d.is_empty()) {
        return Err(io::Error::other(format!(
            "tasks registered twice under the same name: {}",
            names.join(", ")
        )));
    }
    let page = StartPage::inherited().transpose()?;
    let doorbell = crate::inherit::inherited(DOORBELL_ENV)
        .ok_or_else(|| io::Error::other("the parent passed no doorbell"))??;
    // The protocol gets the original stdout; the task's own prints go to stderr. Close-on-exec,
    // so that a process a task starts cannot hold the parent's end of the stream open.
    let protocol = rustix::io::fcntl_dupfd_cloexec(io::stdout(), 0).map_err(io::Error::from)?;
    rustix::stdio::dup2_stdout(io::stderr()).map_err(io::Error::from)?;
    // Likewise the requests come in on a close-on-exec copy of stdin, and the task's own stdin
    // is empty: a task that reads it, or a program it starts that inherits it, gets the end of
    // input at once, instead of blocking on the pipe or taking requests out of it (which lost
    // them and hung the pool). Non-blocking: each read takes what is there (see `Shared::pull`).
    let requests = rustix::io::fcntl_dupfd_cloexec(io::stdin(), 0).map_err(io::Error::from)?;
    rustix::stdio::dup2_stdin(File::open("/dev/null")?).map_err(io::Error::from)?;
    rustix::fs::fcntl_setfl(&requests, rustix::fs::OFlags::NONBLOCK).map_err(io::Error::from)?;
    let mut out = BufWriter::with_capacity(wire::PIPE_BUFFER, File::from(protocol));
    std::panic::set_hook(Box::new(|info| {
        let trace = std::backtrace::Backtrace::force_capture().to_string();
        BACKTRACE.with(|b| *b.borrow_mut() = Some(format!("{info}\n{trace}")));
    }));
    io::Write::write_all(&mut out, MAGIC)?;
    io::Write::flush(&mut out)?;
    let timer = rustix::time::timerfd_create(
        rustix::time::TimerfdClockId::Monotonic,
        rustix::time::TimerfdFlags::CLOEXEC | rustix::time::TimerfdFlags::NONBLOCK,
    )
    .map_err(io::Error::from)?;
    let nudge = rustix::event::eventfd(
        0,
        rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
    )
    .map_err(io::Error::from)?;
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue::default()),
        requests,
        nudge,
        out: Mutex::new(Output {
            stream: out,
            held: 0,
            timer,
        }),
        page,
    });
    let reader = {
        let shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("backend-process-worker-reader".into())
            .spawn(move || shared.answer_doorbell(doorbell))?
    };
    let served = shared.run_requests();
    if served.is_ok() {
        // The parent closed stdin, and the doorbell with it: the reader ends at once.
        let _ = reader.join();
    }
    served?;
    match shared.queue.lock().error.take() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// What the two threads of a worker share.
struct Shared {
    queue: Mutex<Queue>,
    /// The parent's request pipe (non-blocking), read only under the queue's lock.
    requests: OwnedFd,
    /// An eventfd the reader thread signals when it queued requests (or the queue closed) while
    /// the runner waits on the pipe: the reader may have taken what woke it.
    nudge: OwnedFd,
    /// The protocol stream. Both threads write whole frames under this lock. Lock order:
    /// `queue`, then `out`.
    out: Mutex<Output>,
    /// Where the runner records each request it starts; `None` if the parent made none (then it
    /// sends no quiet request).
    page: Option<StartPage>,
}

/// The protocol stream and what it holds back.
struct Output {
    stream: BufWriter<File>,
    /// Responses held: written to `stream` and not flushed yet.
    held: usize,
    /// Armed while responses are held, to fire [`HOLD`] after the first: the reader polls it
    /// and sends them. (It used to wake every `HOLD` while any request allowed holding, even
    /// when nothing was held: a dozen wake-ups per worker in a 12 ms `map` of long chunks, on a
    /// core the runner needs.)
    timer: OwnedFd,
}

impl Output {
    /// Holds one more response, written to `stream` already.
    fn hold(&mut self) -> io::Result<()> {
        self.held += 1;
        if self.held == 1 {
            self.set_timer(HOLD)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.held > 0 {
            self.held = 0;
            self.set_timer(Duration::ZERO)?;
        }
        io::Write::flush(&mut self.stream)
    }

    /// Arms the timer to fire once, `after` from now; zero disarms it.
    fn set_timer(&self, after: Duration) -> io::Result<()> {
        let zero = rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let value = rustix::time::Itimerspec {
            it_interval: zero,
            it_value: rustix::time::Timespec {
                tv_sec: after.as_secs() as _,
                tv_nsec: after.subsec_nanos() as _,
            },
        };
        rustix::time::timerfd_settime(
            &self.timer,
            rustix::time::TimerfdTimerFlags::empty(),
            &value,
        )
        .map(drop)
        .map_err(io::Error::from)
    }
}

/// When held responses go back to make the parent send more. Once they are as many as the
/// requests still queued, they go, so that the parent's next requests arrive before the queue
/// runs dry; unless the parent sent nothing since the last time they went for that reason: then
/// it has nothing to send (the end of a `map`), and they stay held until the queue runs dry (or
/// [`HOLD`]). Without that, the end of every `map` went back in one write per halving of the
/// queue, down to one response a write, each waking the parent's reader.
#[derive(Debug, Default)]
struct Asks {
    /// Request frames read when held responses last went back to ask for more.
    read_then: Option<u64>,
}

impl Asks {
    /// Whether the `held` responses go now, with `queued` requests queued and `read` request
    /// frames read so far.
    fn send_now(&mut self, held: usize, queued: usize, read: u64) -> bool {
        let ask = held >= queued && self.read_then != Some(read);
        if ask {
            self.read_then = Some(read);
        }
        ask
    }
}

/// Requests received and not started, in order. Taking one out of here is the worker's atomic
/// decision between "start it" (the runner pops it) and "revoke it" (a `Revoke` removes it).
#[derive(Default)]
struct Queue {
    requests: VecDeque<Queued>,
    /// Bytes read from the request pipe and not yet taken as frames (the start of the next one).
    inbox: Vec<u8>,
    /// Request frames read so far: the next one's sequence number.
    read: u64,
    /// Requests queued or running whose responses may be held.
    holding: usize,
    /// The runner waits on the request pipe and the nudge (see `Shared::nudge`).
    waiting: bool,
    /// The parent closed stdin (or sent nonsense): no more requests will come.
    closed: bool,
    error: Option<io::Error>,
}

/// A request frame as received: its id, its place among the requests read, how it is answered,
/// and the whole frame (header and payload).
struct Queued {
    id: u64,
    seq: u64,
    quiet: bool,
    hold: bool,
    frame: Vec<u8>,
}

impl Shared {
    /// Reads what the request pipe holds, without waiting, and takes every whole frame in it:
    /// requests join the queue, revokes and withdrawals are answered at once. At the end of the
    /// stream (or on nonsense) the queue closes. Called with the queue's lock held, by either
    /// thread; the caller wakes the runner if it needs to.
    fn pull(&self, queue: &mut Queue) {
        use rustix::io::Errno;
        if queue.closed {
            return;
        }
        let ended = loop {
            // Room for what a pipe holds at once, and for the whole of a frame begun.
            let pending = wire::frame_len(&queue.inbox)
                .filter(|&len| len <= wire::MAX_FRAME)
                .map_or(0, |len| len + wire::LEN_PREFIX);
            let room = wire::PIPE_BUFFER.max(pending.saturating_sub(queue.inbox.len()));
            queue.inbox.reserve(room);
            let spare = queue.inbox.capacity() - queue.inbox.len();
            match rustix::io::read(
                &self.requests,
                rustix::buffer::spare_capacity(&mut queue.inbox),
            ) {
                Ok(0) => break None,
                // Filled: there may be more.
                Ok(n) if n == spare => {}
                Ok(_) | Err(Errno::AGAIN) => break Some(Ok(())),
                Err(Errno::INTR) => {}
                Err(e) => break Some(Err(io::Error::from(e))),
            }
        };
        let taken = self.take_frames(queue);
        let error = match (ended, taken) {
            (_, Err(e)) | (Some(Err(e)), _) => Some(e),
            (Some(Ok(())), Ok(())) => return,
            // The end of the stream: clean only between frames.
            (None, Ok(())) if queue.inbox.is_empty() => None,
            (None, Ok(())) => Some(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the request stream ended inside a frame",
            )),
        };
        queue.closed = true;
        queue.error = error;
    }

    /// Takes the whole frames at the start of the queue's inbox.
    fn take_frames(&self, queue: &mut Queue) -> io::Result<()> {
        let mut at = 0;
        let result = loop {
            let rest = &queue.inbox[at..];
            let Some(len) = wire::frame_len(rest) else {
                break Ok(());
            };
            if len > wire::MAX_FRAME {
                break Err(wire::too_large(len));
            }
            let Some(frame) = rest.get(wire::LEN_PREFIX..wire::LEN_PREFIX + len) else {
                break Ok(());
            };
            let frame = frame.to_vec();
            at += wire::LEN_PREFIX + len;
            if let Err(e) = self.take_frame(queue, frame) {
                break Err(e);
            }
        };
        queue.inbox.drain(..at);
        if queue.inbox.is_empty() && queue.inbox.capacity() > 4 * wire::PIPE_BUFFER {
            // After a large frame: back to the usual size.
            queue.inbox = Vec::new();
        }
        result
    }

    /// A whole frame from the parent.
    fn take_frame(&self, queue: &mut Queue, frame: Vec<u8>) -> io::Result<()> {
        match wire::split::<ToWorker<'_>>(&frame)?.0 {
            ToWorker::Request {
                id, quiet, hold, ..
            } => {
                let seq = queue.read;
                queue.read += 1;
                queue.holding += usize::from(hold);
                queue.requests.push_back(Queued {
                    id,
                    seq,
                    quiet,
                    hold,
                    frame,
                });
                Ok(())
            }
            ToWorker::Withdraw { count } => {
                // The last chunks of `map` queued, as many as asked for; the answer goes out
                // before the queue is let go, as a `Revoked` does (see below).
                let mut ids = Vec::new();
                while ids.len() < count as usize && queue.requests.back().is_some_and(|q| q.quiet) {
                    let given = queue.requests.pop_back().expect("checked just now");
                    queue.holding -= usize::from(given.hold);
                    ids.push(given.id);
                }
                ids.reverse();
                let read = queue.read;
                self.answer(&ToParent::Withdrawn { ids, read })
            }
            ToWorker::Revoke { id } => {
                let at = queue.requests.iter().position(|q| q.id == id);
                let revoked = at.and_then(|at| queue.requests.remove(at));
                if revoked.as_ref().is_some_and(|q| q.hold) {
                    queue.holding -= 1;
                }
                // The answer is in the pipe before the queue is let go: so once the runner may
                // start a later request, the parent is sure to read that this one was withdrawn
                // before it can learn that the worker ended (its start page then says a later
                // request started, and everything before it would count as started).
                self.answer(&ToParent::Revoked {
                    id,
                    revoked: revoked.is_some(),
                })
            }
        }
    }

    /// The reader thread: sleeps on the doorbell and the hold timer. When the parent rings, it
    /// reads the request pipe at once (the runner may be in a long task), so that a `Revoke` or
    /// a `Withdraw` is answered and a full pipe emptied; when the timer fires, it sends the
    /// responses held. Ends when the parent closes the doorbell.
    fn answer_doorbell(&self, doorbell: OwnedFd) {
        use rustix::event::{PollFd, PollFlags};
        crate::sched::prefer_short_slices();
        let timer = match self.out.lock().timer.try_clone() {
            Ok(timer) => timer,
            Err(e) => {
                self.close(e);
                return;
            }
        };
        loop {
            let mut fds = [
                PollFd::new(&doorbell, PollFlags::IN),
                PollFd::new(&timer, PollFlags::IN),
            ];
            match rustix::event::poll(&mut fds, None) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return self.close(e.into()),
            }
            let rung = !fds[0].revents().is_empty();
            if !fds[1].revents().is_empty() {
                // Consume the expiry (the runner may have disarmed it since: then nothing is
                // there, and the read fails with `EAGAIN`, which is fine).
                let _ = rustix::io::read(&timer, &mut [0u8; 8]);
                let mut out = self.out.lock();
                if out.held > 0 {
                    if let Err(e) = out.flush() {
                        drop(out);
                        return self.close(e);
                    }
                }
            }
            if rung {
                match rustix::io::read(&doorbell, &mut [0u8; 64]) {
                    // The parent closed it (with stdin): nothing more to answer.
                    Ok(0) => return,
                    Ok(_) | Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {}
                    Err(e) => return self.close(e.into()),
                }
                self.answer_ring();
            }
        }
    }

    /// What a ring of the doorbell does: reads the request pipe now, and wakes the runner if it
    /// waits and there is something for it (it may be waiting on the very bytes just taken).
    fn answer_ring(&self) {
        let mut queue = self.queue.lock();
        self.pull(&mut queue);
        if queue.waiting && (!queue.requests.is_empty() || queue.closed) {
            self.wake_runner();
        }
    }

    /// Wakes the runner from its wait on the request pipe.
    fn wake_runner(&self) {
        let _ = rustix::io::write(&self.nudge, &1u64.to_ne_bytes());
    }

    /// Writes `answer` (to a `Revoke` or a `Withdraw`) and flushes it, with what is held. Call
    /// it holding the queue's lock: the answer must be in the pipe before the queue is let go.
    fn answer(&self, answer: &ToParent) -> io::Result<()> {
        let mut out = self.out.lock();
        wire::write_frame(&mut out.stream, answer, &[]).and_then(|()| out.flush())
    }

    /// No more requests will come (the reader thread failed): the runner finishes what is
    /// queued, then ends with `error`.
    fn close(&self, error: io::Error) {
        let mut queue = self.queue.lock();
        queue.closed = true;
        queue.error.get_or_insert(error);
        if queue.waiting {
            self.wake_runner();
        }
    }

    /// The next request to run, read from the pipe if the queue has none, waiting for one if the
    /// pipe has none either (then what is held goes first, and the start page says idle);
    /// `None` once the stream has ended and the queue is empty.
    fn next_request(&self) -> io::Result<Option<Queued>> {
        use rustix::event::{PollFd, PollFlags};
        let mut queue = self.queue.lock();
        loop {
            if let Some(request) = queue.requests.pop_front() {
                return Ok(Some(request));
            }
            self.pull(&mut queue);
            if let Some(request) = queue.requests.pop_front() {
                return Ok(Some(request));
            }
            if queue.closed {
                return Ok(None);
            }
            if let Some(page) = &self.page {
                page.idle();
            }
            // Lock order: `queue`, then `out`.
            let mut out = self.out.lock();
            if out.held > 0 {
                out.flush()?;
            }
            drop(out);
            queue.waiting = true;
            drop(queue);
            let mut fds = [
                PollFd::new(&self.requests, PollFlags::IN),
                PollFd::new(&self.nudge, PollFlags::IN),
            ];
            match rustix::event::poll(&mut fds, None) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
            if !fds[1].revents().is_empty() {
                let _ = rustix::io::read(&self.nudge, &mut [0u8; 8]);
            }
            queue = self.queue.lock();
            queue.waiting = false;
        }
    }

    /// The runner (the main thread, whose panics the hook traces): takes requests in order,
    /// records each in the start page, announces a loud one (`Started`, flushed with what is
    /// held in one write), runs it, and writes its response: at once, unless the request lets it
    /// be held; then it is held while the requests still queued outnumber the responses held (so
    /// that the parent, which sends more as responses come back, never lets the queue run dry;
    /// past that, held on only if the parent sent nothing after the last such write), and at
    /// most [`HOLD`]. Everything goes out whenever the queue runs dry.
    fn run_requests(&self) -> io::Result<()> {
        let mut outcomes = Vec::new();
        let mut asks = Asks::default();
        while let Some(Queued {
            id,
            seq,
            quiet,
            hold,
            frame,
        }) = self.next_request()?
        {
            let ran = crate::page::now_nanos();
            if let Some(page) = &self.page {
                page.start(seq, ran);
            }
            if !quiet {
                let mut out = self.out.lock();
                wire::write_frame(&mut out.stream, &ToParent::Started { id }, &[])?;
                out.flush()?;
            }
            let (task, payload) = match wire::split::<ToWorker<'_>>(&frame)? {
                (ToWorker::Request { task, .. }, payload) => (task, payload),
                (ToWorker::Revoke { .. } | ToWorker::Withdraw { .. }, _) => {
                    unreachable!("only requests are queued")
                }
            };
            match registry::lookup(task) {
                Some(registration) => (registration.run)(payload, &mut outcomes),
                None => registry::unknown(task, payload, &mut outcomes),
            }
            let nanos = crate::page::now_nanos().saturating_sub(ran);
            let response = ToParent::Response { id, nanos };
            // Only short chunks are worth holding: a long one's wake-up is a small part of it,
            // and holding its response would only delay it.
            let may_hold = hold && Duration::from_nanos(nanos) < HOLD_SHORTER_THAN;
            let (queued, holding, read) = {
                let mut queue = self.queue.lock();
                queue.holding -= usize::from(hold);
                // Whether the held responses go depends on how many requests are left: count
                // those in the pipe too, if it may matter.
                if may_hold && self.out.lock().held >= queue.requests.len() {
                    self.pull(&mut queue);
                }
                (queue.requests.len(), queue.holding, queue.read)
            };
            let hold = may_hold;
            let mut out = self.out.lock();
            wire::write_frame(&mut out.stream, &response, &outcomes)?;
            // Held only while such requests are left, and (see `Asks`) while the queue
            // outnumbers them or the parent has nothing more to send.
            if !hold || holding == 0 || asks.send_now(out.held, queued, read) {
                out.flush()?;
            } else {
                out.hold()?;
            }
        }
        self.out.lock().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::{Asks, Output, Queue, Shared};
    use crate::wire::{self, ToParent, ToWorker};
    use parking_lot::Mutex;
    use std::fs::File;
    use std::io::{BufReader, BufWriter, Write};

    /// A worker's shared state over fresh pipes, as `serve` makes it (the request pipe's read
    /// end non-blocking), and the parent's ends: where it writes requests, where it reads the
    /// answers.
    fn worker() -> (Shared, File, BufReader<File>) {
        let (requests, parent) = rustix::pipe::pipe().unwrap();
        rustix::fs::fcntl_setfl(&requests, rustix::fs::OFlags::NONBLOCK).unwrap();
        let (answers, protocol) = rustix::pipe::pipe().unwrap();
        let timer = rustix::time::timerfd_create(
            rustix::time::TimerfdClockId::Monotonic,
            rustix::time::TimerfdFlags::CLOEXEC,
        )
        .unwrap();
        let nudge = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).unwrap();
        let shared = Shared {
            queue: Mutex::new(Queue::default()),
            requests,
            nudge,
            out: Mutex::new(Output {
                stream: BufWriter::new(File::from(protocol)),
                held: 0,
                timer,
            }),
            page: None,
        };
        (
            shared,
            File::from(parent),
            BufReader::new(File::from(answers)),
        )
    }

    fn frame(header: &ToWorker<'_>, payload: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        wire::write_frame(&mut bytes, header, payload).unwrap();
        bytes
    }

    fn request(id: u64) -> Vec<u8> {
        let header = ToWorker::Request {
            id,
            task: "t",
            quiet: true,
            hold: false,
        };
        frame(&header, &[id as u8; 100])
    }

    /// Pulls once; the ids and sequence numbers queued, and whether the queue closed.
    fn pull(shared: &Shared) -> (Vec<(u64, u64)>, bool) {
        let mut queue = shared.queue.lock();
        shared.pull(&mut queue);
        let queued = queue.requests.iter().map(|q| (q.id, q.seq)).collect();
        (queued, queue.closed)
    }

    #[test]
    fn a_request_is_queued_once_its_whole_frame_is_read() {
        let (shared, mut parent, _answers) = worker();
        assert_eq!(
            pull(&shared),
            (vec![], false),
            "an empty pipe queues nothing"
        );
        let (one, two, three) = (request(1), request(2), request(3));
        parent.write_all(&one[..3]).unwrap();
        assert_eq!(pull(&shared), (vec![], false), "part of the length prefix");
        parent.write_all(&one[3..50]).unwrap();
        assert_eq!(pull(&shared), (vec![], false), "part of the frame");
        let mut rest = one[50..].to_vec();
        rest.extend_from_slice(&two);
        rest.extend_from_slice(&three[..70]);
        parent.write_all(&rest).unwrap();
        assert_eq!(pull(&shared), (vec![(1, 0), (2, 1)], false));
        parent.write_all(&three[70..]).unwrap();
        assert_eq!(pull(&shared), (vec![(1, 0), (2, 1), (3, 2)], false));
        // The request keeps its whole frame, payload and all, for the runner.
        let queue = shared.queue.lock();
        assert_eq!(queue.requests[2].frame, three[4..]);
        assert!(queue.inbox.is_empty());
    }

    #[test]
    fn a_revoke_read_from_the_pipe_is_answered_at_once() {
        let (shared, mut parent, mut answers) = worker();
        let mut bytes = request(1);
        bytes.extend_from_slice(&request(2));
        bytes.extend_from_slice(&frame(&ToWorker::Revoke { id: 1 }, &[]));
        bytes.extend_from_slice(&frame(&ToWorker::Revoke { id: 9 }, &[]));
        parent.write_all(&bytes).unwrap();
        assert_eq!(pull(&shared), (vec![(2, 1)], false));
        let mut answer = Vec::new();
        for (id, revoked) in [(1, true), (9, false)] {
            assert!(wire::read_frame(&mut answers, &mut answer).unwrap());
            match wire::split::<ToParent>(&answer).unwrap().0 {
                ToParent::Revoked {
                    id: got,
                    revoked: was,
                } => {
                    assert_eq!((got, was), (id, revoked));
                }
                other => panic!("not a `Revoked`: {other:?}"),
            }
        }
    }

    #[test]
    fn the_stream_may_end_between_frames_but_not_inside_one() {
        let (shared, mut parent, _answers) = worker();
        parent.write_all(&request(1)).unwrap();
        drop(parent);
        // A read that does not fill the buffer is the last of a pull: the end shows at the next.
        assert_eq!(pull(&shared), (vec![(1, 0)], false));
        assert_eq!(pull(&shared), (vec![(1, 0)], true));
        assert!(shared.queue.lock().error.is_none(), "a clean end");

        let (shared, mut parent, _answers) = worker();
        parent.write_all(&request(1)[..40]).unwrap();
        drop(parent);
        assert_eq!(pull(&shared), (vec![], false));
        assert_eq!(pull(&shared), (vec![], true));
        let error = shared.queue.lock().error.take().expect("an error");
        assert_eq!(error.kind(), std::io::ErrorKind::UnexpectedEof, "{error}");
    }

    /// The runner waits on the request pipe while the reader thread, rung, may take the bytes
    /// that woke it (or take them between the runner's last look and its wait): the nudge wakes
    /// it all the same. Many times, each request answered by the runner within the limit.
    #[test]
    fn a_request_the_reader_thread_takes_still_reaches_a_waiting_runner() {
        const ROUNDS: u64 = 2_000;
        let (shared, mut parent, _answers) = worker();
        let shared = std::sync::Arc::new(shared);
        let (tx, rx) = std::sync::mpsc::channel();
        let runner = {
            let shared = std::sync::Arc::clone(&shared);
            std::thread::spawn(move || {
                while let Some(request) = shared.next_request().unwrap() {
                    tx.send(request.id).unwrap();
                }
            })
        };
        for id in 0..ROUNDS {
            parent.write_all(&request(id)).unwrap();
            shared.answer_ring();
            let got = rx.recv_timeout(std::time::Duration::from_secs(10));
            assert_eq!(got, Ok(id), "the runner missed request {id}");
        }
        drop(parent);
        runner.join().unwrap();
    }

    #[test]
    fn a_frame_over_the_limit_closes_the_queue_without_waiting_for_it() {
        let (shared, mut parent, _answers) = worker();
        let too_long = u32::try_from(wire::MAX_FRAME + 1).unwrap();
        parent.write_all(&request(1)).unwrap();
        parent.write_all(&too_long.to_le_bytes()).unwrap();
        assert_eq!(pull(&shared), (vec![(1, 0)], true));
        let error = shared.queue.lock().error.take().expect("an error");
        assert!(error.to_string().contains("exceeds"), "{error}");
        assert!(
            shared.queue.lock().inbox.capacity() < wire::MAX_FRAME,
            "room was made for the frame"
        );
    }

    /// A runner's queue, `queued` requests deep, run one at a time with every response held
    /// until `Asks` says it goes; `refill(held)` is what the parent sends on such a write.
    /// Returns the writes made and whether the queue ever ran dry with requests still to come.
    fn drain(mut queued: usize, steps: usize, refill: impl Fn(usize) -> usize) -> (usize, bool) {
        let mut asks = Asks::default();
        let mut read = queued as u64;
        let (mut held, mut writes, mut dry) = (0, 0, false);
        for _ in 0..steps {
            if queued == 0 {
                // The queue ran dry: what is held goes (a write), and the runner waits.
                writes += usize::from(held > 0);
                dry = refill(held) > 0;
                break;
            }
            queued -= 1;
            held += 1;
            if asks.send_now(held, queued, read) {
                writes += 1;
                let sent = refill(held);
                queued += sent;
                read += sent as u64;
                held = 0;
            }
        }
        (writes, dry)
    }

    #[test]
    fn at_the_end_of_a_map_held_responses_wait_for_the_queue_to_run_dry() {
        // 64 requests and nothing more to come: one write to ask for more (at 32 held, 32
        // queued), which brings none, then the rest in one write when the queue runs dry. The
        // rule without the parent's answer made 7 writes: 32, 16, 8, 4, 2, 1, 1.
        assert_eq!(drain(64, 1000, |_| 0), (2, false));
    }

    #[test]
    fn while_the_parent_sends_more_the_queue_never_runs_dry() {
        // The parent answers every write with as many requests as responses came back.
        let (writes, dry) = drain(64, 10_000, |held| held);
        assert!(!dry);
        // One write per 32 responses, as the queue's depth allows.
        assert_eq!(writes, 10_000 / 32);
    }

    #[test]
    fn a_refill_after_a_quiet_spell_makes_the_next_write_ask_again() {
        let mut asks = Asks::default();
        assert!(asks.send_now(4, 4, 10));
        // Nothing new was read: held on, however few are queued.
        assert!(!asks.send_now(5, 3, 10));
        assert!(!asks.send_now(9, 0, 10));
        // The parent sent one more since: the next time the held outnumber the queue, they go.
        assert!(asks.send_now(2, 1, 11));
    }
}
