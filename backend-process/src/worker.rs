//! The worker side: the user's own binary, re-executed by the pool (rule L4).
//!
//! Two threads: a reader that moves request frames from stdin into a local queue and answers
//! `Revoke` frames at once, and the runner (the main thread) that takes requests from the queue
//! one by one. Both sides of "start it or revoke it" take the request out of that queue under
//! its lock, so exactly one of them gets it (rule L13). The runner writes `Started` (flushed
//! before the task runs, together with the previous response, in one write), runs the chunk,
//! and writes `Response`; it flushes whenever the queue runs dry.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufReader, BufWriter};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::registry;
use crate::wire::{self, MAGIC, ToParent, ToWorker};

/// Set in a worker's environment; its value is the parent's pid.
pub(crate) const WORKER_ENV: &str = "BACKEND_PROCESS_WORKER";

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
/// fn main() {
///     backend_process::worker_main();
///     // ... the program, which may now make a ProcessPoolExecutor ...
/// }
/// # main();
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

/// Serves the parent until it closes stdin: a reader thread queues requests and answers revokes;
/// this thread runs the queue in order.
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
    // The protocol gets the original stdout; the task's own prints go to stderr. Close-on-exec,
    // so that a process a task starts cannot hold the parent's end of the stream open.
    let protocol = rustix::io::fcntl_dupfd_cloexec(io::stdout(), 0).map_err(io::Error::from)?;
    rustix::stdio::dup2_stdout(io::stderr()).map_err(io::Error::from)?;
    let mut out = BufWriter::with_capacity(wire::PIPE_BUFFER, File::from(protocol));
    std::panic::set_hook(Box::new(|info| {
        let trace = std::backtrace::Backtrace::force_capture().to_string();
        BACKTRACE.with(|b| *b.borrow_mut() = Some(format!("{info}\n{trace}")));
    }));
    io::Write::write_all(&mut out, MAGIC)?;
    io::Write::flush(&mut out)?;
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue::default()),
        queued: Condvar::new(),
        out: Mutex::new(out),
    });
    let reader = {
        let shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("backend-process-worker-reader".into())
            .spawn(move || shared.read_requests())?
    };
    let served = shared.run_requests();
    if served.is_ok() {
        // The reader has seen the end of stdin (the queue closed); it ends at once.
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
    /// Signalled when a request is queued or the queue closes.
    queued: Condvar,
    /// The protocol stream. Both threads write whole frames under this lock.
    out: Mutex<BufWriter<File>>,
}

/// Requests received and not started, in order. Taking one out of here is the worker's atomic
/// decision between "start it" (the runner pops it) and "revoke it" (the reader removes it).
#[derive(Default)]
struct Queue {
    requests: VecDeque<Queued>,
    /// The parent closed stdin (or sent nonsense): no more requests will come.
    closed: bool,
    error: Option<io::Error>,
}

/// A request frame as received: its id, and the whole frame (header and payload).
struct Queued {
    id: u64,
    frame: Vec<u8>,
}

impl Shared {
    /// The reader thread: queues requests, answers revokes at once (even while a task runs).
    fn read_requests(&self) {
        let mut input = BufReader::with_capacity(wire::PIPE_BUFFER, io::stdin().lock());
        let error = loop {
            let mut frame = Vec::new();
            match wire::read_frame(&mut input, &mut frame) {
                Ok(true) => {}
                Ok(false) => break None,
                Err(e) => break Some(e),
            }
            let header = match wire::split::<ToWorker<'_>>(&frame) {
                Ok((header, _)) => header,
                Err(e) => break Some(e),
            };
            match header {
                ToWorker::Request { id, .. } => {
                    self.queue.lock().requests.push_back(Queued { id, frame });
                    self.queued.notify_one();
                }
                ToWorker::Revoke { id } => {
                    let revoked = {
                        let mut queue = self.queue.lock();
                        let at = queue.requests.iter().position(|q| q.id == id);
                        at.and_then(|at| queue.requests.remove(at)).is_some()
                    };
                    let mut out = self.out.lock();
                    let answer = ToParent::Revoked { id, revoked };
                    if let Err(e) = wire::write_frame(&mut *out, &answer, &[])
                        .and_then(|()| io::Write::flush(&mut *out))
                    {
                        break Some(e);
                    }
                }
            }
        };
        let mut queue = self.queue.lock();
        queue.closed = true;
        queue.error = error;
        drop(queue);
        self.queued.notify_one();
    }

    /// The runner (the main thread, whose panics the hook traces): takes requests in order,
    /// announces each (`Started`, flushed with the previous response in one write), runs it,
    /// and writes its response; flushes whenever the queue runs dry.
    fn run_requests(&self) -> io::Result<()> {
        let mut outcomes = Vec::new();
        let mut unflushed = false;
        loop {
            let request = {
                let mut queue = self.queue.lock();
                loop {
                    if let Some(request) = queue.requests.pop_front() {
                        break Some(request);
                    }
                    if queue.closed {
                        break None;
                    }
                    if unflushed {
                        MutexGuard::unlocked(&mut queue, || {
                            io::Write::flush(&mut *self.out.lock())
                        })?;
                        unflushed = false;
                        continue;
                    }
                    self.queued.wait(&mut queue);
                }
            };
            let Some(Queued { id, frame }) = request else {
                break;
            };
            {
                let mut out = self.out.lock();
                wire::write_frame(&mut *out, &ToParent::Started { id }, &[])?;
                io::Write::flush(&mut *out)?;
            }
            let (task, payload) = match wire::split::<ToWorker<'_>>(&frame)? {
                (ToWorker::Request { task, .. }, payload) => (task, payload),
                (ToWorker::Revoke { .. }, _) => unreachable!("only requests are queued"),
            };
            let ran = Instant::now();
            match registry::lookup(task) {
                Some(registration) => (registration.run)(payload, &mut outcomes),
                None => registry::unknown(task, payload, &mut outcomes),
            }
            let nanos = u64::try_from(ran.elapsed().as_nanos()).unwrap_or(u64::MAX);
            let response = ToParent::Response { id, nanos };
            wire::write_frame(&mut *self.out.lock(), &response, &outcomes)?;
            unflushed = true;
        }
        io::Write::flush(&mut *self.out.lock())
    }
}
