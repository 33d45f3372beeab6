//! [`ProcessPoolExecutor`]: worker processes fed through their pipes, one driver thread each.

use std::fmt;
use std::io::{BufReader, BufWriter};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use executor_core::{
    Batch, BrokenExecutor, BrokenKind, Executor, FutureHandle, Introspect, PoolStats, Promise,
    RejectReason, Shutdown, ShutdownOptions, SubmitError, TaskError,
};
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::registry::RemoteTask;
use crate::wire::{self, Outcomes, Request, Response, WireError};
use crate::worker::{TEST_ENTRY, WORKER_ENV};

/// A pool of worker processes (Python's `ProcessPoolExecutor`): each task is serialized with
/// serde, sent by its registered name to a worker (this same binary, re-executed) over the
/// worker's own pipes, run there, and its result sent back. A panic or error in a task fails
/// that future with the worker's message, pid and backtrace; a worker that dies breaks the pool,
/// and every pending future then fails with an error naming the worker's pid and its exit code
/// or signal (rule L6).
///
/// Workers start lazily, one per `submit` at most, up to `max_workers` (default: the number of
/// cores), and idle ones are reused. The binary must call [`worker_main`](crate::worker_main)
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

struct Inner {
    max_workers: usize,
    program: PathBuf,
    options: Options,
    receiver: Receiver<Box<dyn Pending>>,
    gate: RwLock<Gate>,
    drivers: Mutex<Vec<JoinHandle<()>>>,
    /// The pids of live workers, for killing them when the pool breaks.
    workers: Mutex<Vec<u32>>,
    spawned: AtomicUsize,
    idle: AtomicUsize,
    running: AtomicUsize,
    completed: AtomicU64,
    next_request: AtomicU64,
}

struct Gate {
    sender: Option<Sender<Box<dyn Pending>>>,
    broken: Option<BrokenExecutor>,
}

/// What a worker's death does (rule L6).
///
/// ```
/// use backend_process::{OnWorkerDeath, ProcessPoolExecutor};
/// let pool = ProcessPoolExecutor::builder()
///     .on_worker_death(OnWorkerDeath::Replace)
///     .build()
///     .unwrap();
/// # drop(pool);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnWorkerDeath {
    /// As in Python: the pool breaks, and every pending future fails with an error naming the
    /// dead worker's pid and its exit code or signal.
    #[default]
    BreakPool,
    /// Only the dead worker's task fails (with the same details); a fresh worker replaces it.
    Replace,
}

/// The pool's options, made by [`ProcessPoolBuilder`].
#[derive(Debug, Clone, Default)]
struct Options {
    /// Sent to each new worker before any task (name, serialized task).
    initializer: Option<(&'static str, Vec<u8>)>,
    max_tasks_per_child: Option<usize>,
    on_death: OnWorkerDeath,
}

/// Options for a [`ProcessPoolExecutor`] (Python's constructor arguments, plus a policy for dead
/// workers).
///
/// ```
/// let pool = backend_process::ProcessPoolExecutor::builder()
///     .max_workers(2)
///     .max_tasks_per_child(100)
///     .build()
///     .unwrap();
/// assert_eq!(pool.max_workers(), 2);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ProcessPoolBuilder {
    max_workers: Option<usize>,
    options: Options,
    initializer_error: Option<String>,
}

impl ProcessPoolBuilder {
    /// At most this many worker processes (default: one per core); 0 is an error (rule L3).
    ///
    /// ```
    /// assert!(backend_process::ProcessPoolExecutor::builder().max_workers(0).build().is_err());
    /// ```
    pub fn max_workers(mut self, max_workers: usize) -> Self {
        self.max_workers = Some(max_workers);
        self
    }

    /// Runs `task` in each new worker before any other task (Python's `initializer` with its
    /// `initargs`, as one registered task). If it fails in a worker, the pool breaks (rule L7).
    ///
    /// ```
    /// # #[derive(serde::Serialize, serde::Deserialize)] struct Warm;
    /// # impl executor_core::Task for Warm { type Output = (); fn run(self) -> Result<(), executor_core::TaskError> { Ok(()) } }
    /// # impl backend_process::RemoteTask for Warm { const NAME: &'static str = "docs::warm"; }
    /// let pool = backend_process::ProcessPoolExecutor::builder().initializer(Warm).build().unwrap();
    /// # drop(pool);
    /// ```
    pub fn initializer<T: RemoteTask<Output = ()>>(mut self, task: T) -> Self {
        match postcard::to_allocvec(&task) {
            Ok(bytes) => self.options.initializer = Some((T::NAME, bytes)),
            Err(e) => self.initializer_error = Some(e.to_string()),
        }
        self
    }

    /// A worker exits after this many tasks and a fresh one replaces it (rule L8); 0 is an error.
    ///
    /// ```
    /// assert!(backend_process::ProcessPoolExecutor::builder().max_tasks_per_child(0).build().is_err());
    /// ```
    pub fn max_tasks_per_child(mut self, tasks: usize) -> Self {
        self.options.max_tasks_per_child = Some(tasks);
        self
    }

    /// What a worker's death does; the default breaks the pool, as Python does.
    ///
    /// ```
    /// use backend_process::OnWorkerDeath;
    /// let b = backend_process::ProcessPoolExecutor::builder().on_worker_death(OnWorkerDeath::Replace);
    /// # drop(b);
    /// ```
    pub fn on_worker_death(mut self, policy: OnWorkerDeath) -> Self {
        self.options.on_death = policy;
        self
    }

    /// Checks the options and makes the pool. No worker starts until the first `submit`.
    ///
    /// ```
    /// assert!(backend_process::ProcessPoolExecutor::builder().build().is_ok());
    /// ```
    pub fn build(self) -> Result<ProcessPoolExecutor, BuildError> {
        let invalid = |field, value: &str, expected: &str| BuildError {
            field,
            value: value.to_owned(),
            expected: expected.to_owned(),
        };
        let max_workers = self
            .max_workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        if max_workers == 0 {
            return Err(invalid("max_workers", "0", "must be at least 1"));
        }
        if self.options.max_tasks_per_child == Some(0) {
            return Err(invalid("max_tasks_per_child", "0", "must be at least 1"));
        }
        if let Some(e) = self.initializer_error {
            return Err(invalid(
                "initializer",
                "the task",
                &format!("must serialize: {e}"),
            ));
        }
        let program = std::env::current_exe().map_err(|e| {
            invalid(
                "program",
                "the current executable",
                &format!("must be readable to re-execute as a worker: {e}"),
            )
        })?;
        let (sender, receiver) = crossbeam_channel::unbounded();
        Ok(ProcessPoolExecutor {
            inner: Arc::new(Inner {
                max_workers,
                program,
                options: self.options,
                receiver,
                gate: RwLock::new(Gate {
                    sender: Some(sender),
                    broken: None,
                }),
                drivers: Mutex::new(Vec::new()),
                workers: Mutex::new(Vec::new()),
                spawned: AtomicUsize::new(0),
                idle: AtomicUsize::new(0),
                running: AtomicUsize::new(0),
                completed: AtomicU64::new(0),
                next_request: AtomicU64::new(0),
            }),
        })
    }
}

/// A submitted request and the promise its response completes, whatever the task type.
trait Pending: Send {
    /// PENDING → RUNNING, right before the request goes to an idle worker; `false` if the future
    /// was cancelled (then nothing is sent).
    fn start(&self) -> bool;
    fn request(&self) -> &Request;
    fn finish(self: Box<Self>, outcomes: Outcomes, pid: u32);
    fn fail(self: Box<Self>, error: TaskError);
    fn cancel(self: Box<Self>);
}

/// One task.
struct Single<T: RemoteTask>
where
    T::Output: Serialize + DeserializeOwned,
{
    promise: Promise<T::Output>,
    request: Request,
}

/// A chunk of `map`: one request, one future, one outcome per item.
struct Many<T: RemoteTask>
where
    T::Output: Serialize + DeserializeOwned,
{
    promise: Promise<Vec<Result<T::Output, TaskError>>>,
    request: Request,
}

/// A task's outcome as the parent sees it.
fn decode<T: RemoteTask>(
    outcome: Result<Vec<u8>, WireError>,
    pid: u32,
) -> Result<T::Output, TaskError>
where
    T::Output: Serialize + DeserializeOwned,
{
    match outcome {
        Ok(bytes) => postcard::from_bytes(&bytes).map_err(|e| {
            TaskError::msg(format!(
                "the parent cannot decode the result of `{}`: {e}",
                T::NAME
            ))
        }),
        Err(wire) => {
            let error = if wire.panic {
                TaskError::panic(wire.message)
            } else {
                TaskError::msg(wire.message)
            };
            let error = error.with_task_name(T::NAME).with_worker_pid(pid);
            Err(match wire.backtrace {
                Some(trace) => error.with_backtrace(trace),
                None => error,
            })
        }
    }
}

impl<T: RemoteTask> Pending for Single<T>
where
    T::Output: Serialize + DeserializeOwned,
{
    fn start(&self) -> bool {
        self.promise.set_running_or_notify_cancel().is_ok()
    }
    fn request(&self) -> &Request {
        &self.request
    }
    fn finish(self: Box<Self>, outcomes: Outcomes, pid: u32) {
        let outcome = match outcomes.into_iter().next() {
            Some(outcome) => decode::<T>(outcome, pid),
            None => Err(TaskError::msg("the worker answered with no outcome").with_worker_pid(pid)),
        };
        let _ = self.promise.complete(outcome);
    }
    fn fail(self: Box<Self>, error: TaskError) {
        let _ = self.promise.set_error(error);
    }
    fn cancel(self: Box<Self>) {
        self.promise.cancel();
    }
}

impl<T: RemoteTask> Pending for Many<T>
where
    T::Output: Serialize + DeserializeOwned,
{
    fn start(&self) -> bool {
        self.promise.set_running_or_notify_cancel().is_ok()
    }
    fn request(&self) -> &Request {
        &self.request
    }
    fn finish(self: Box<Self>, outcomes: Outcomes, pid: u32) {
        let expected = self.request.items.len();
        let outcome = if outcomes.len() == expected {
            Ok(outcomes.into_iter().map(|o| decode::<T>(o, pid)).collect())
        } else {
            Err(TaskError::msg(format!(
                "the worker answered {} outcomes for a chunk of {expected}",
                outcomes.len()
            ))
            .with_worker_pid(pid))
        };
        let _ = self.promise.complete(outcome);
    }
    fn fail(self: Box<Self>, error: TaskError) {
        let _ = self.promise.set_error(error);
    }
    fn cancel(self: Box<Self>) {
        self.promise.cancel();
    }
}

/// A builder option out of range; names the option.
///
/// ```
/// let e = backend_process::ProcessPoolExecutor::new(0).unwrap_err();
/// assert_eq!(e.to_string(), "invalid process pool option `max_workers` = 0: must be at least 1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError {
    field: &'static str,
    value: String,
    expected: String,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid process pool option `{}` = {}: {}",
            self.field, self.value, self.expected
        )
    }
}

impl std::error::Error for BuildError {}

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
        self.inner.gate.read().broken.clone()
    }

    /// Sends SIGTERM to every worker (Python's `terminate_workers`): tasks not yet started are
    /// cancelled, running ones fail with the broken-pool error, and the pool is shut down. Safe
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

    fn submit_pending(
        &self,
        pending: Box<dyn Pending>,
    ) -> Result<(), (RejectReason, Box<dyn Pending>)> {
        let gate = self.inner.gate.read();
        let sender = match (&gate.broken, &gate.sender) {
            (Some(broken), _) => return Err((RejectReason::Broken(broken.clone()), pending)),
            (None, None) => return Err((RejectReason::Shutdown, pending)),
            (None, Some(sender)) => sender,
        };
        if sender.send(pending).is_err() {
            unreachable!("the pool's receiver lives as long as the pool");
        }
        if self.inner.idle.load(Ordering::Acquire) == 0 {
            self.inner.spawn_worker();
        }
        Ok(())
    }

    fn request<T: Serialize>(&self, name: &str, tasks: &[T]) -> Result<Request, TaskError> {
        let items = tasks
            .iter()
            .map(|t| postcard::to_allocvec(t))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TaskError::msg(format!("the task `{name}` cannot be serialized: {e}")))?;
        Ok(Request {
            id: self.inner.next_request.fetch_add(1, Ordering::Relaxed),
            task: name.to_owned(),
            items,
        })
    }
}

impl Inner {
    /// Starts one more driver thread (which starts its worker), if below `max_workers`. Called
    /// with the gate read-locked.
    fn spawn_worker(self: &Arc<Self>) {
        let index = self
            .spawned
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_workers).then_some(n + 1)
            });
        let Ok(index) = index else { return };
        let inner = Arc::clone(self);
        let driver = std::thread::Builder::new()
            .name(format!("backend-process-driver_{index}"))
            .spawn(move || inner.drive());
        match driver {
            Ok(handle) => self.drivers.lock().push(handle),
            Err(e) => {
                self.spawned.fetch_sub(1, Ordering::AcqRel);
                eprintln!("backend-process: cannot start a driver thread: {e}");
            }
        }
    }

    /// One worker slot's life: start a worker, serve it queued requests, and start a fresh one
    /// when it retires (`max_tasks_per_child`) or, with [`OnWorkerDeath::Replace`], dies.
    fn drive(self: Arc<Self>) {
        loop {
            let mut worker = match self.start_worker() {
                Ok(worker) => worker,
                Err(broken) => {
                    self.break_pool(broken);
                    return;
                }
            };
            match self.serve(&mut worker) {
                Served::Retired => {
                    worker.retire(&self);
                    continue;
                }
                Served::QueueClosed => {
                    worker.retire(&self);
                    return;
                }
                Served::Died { status, job } => {
                    self.forget_worker(worker.pid);
                    let pid = worker.pid;
                    let how = format!(
                        "worker pid {pid} {} while running a task",
                        describe_exit(status)
                    );
                    let replace = self.options.on_death == OnWorkerDeath::Replace
                        && self.gate.read().sender.is_some();
                    if replace {
                        job.fail(TaskError::msg(how).with_worker_pid(pid));
                        continue;
                    }
                    let broken = self.break_pool(BrokenExecutor::new(BrokenKind::ProcessPool, how));
                    job.fail(TaskError::broken(broken).with_worker_pid(pid));
                    return;
                }
            }
        }
    }

    /// Starts a worker process, waits for its handshake, and runs the initializer in it.
    fn start_worker(&self) -> Result<Worker, BrokenExecutor> {
        let broken = |why: String| BrokenExecutor::new(BrokenKind::ProcessPool, why);
        let mut child = Command::new(&self.program)
            // A test binary runs the worker entry test; any other binary's `main` calls
            // `worker_main` before it looks at its arguments.
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
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| broken(format!("cannot start a worker process: {e}")))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            unreachable!("both pipes were requested");
        };
        let pid = child.id();
        self.workers.lock().push(pid);
        let mut worker = Worker {
            pid,
            child,
            input: BufWriter::new(stdin),
            output: BufReader::new(stdout),
            served: 0,
        };
        if !matches!(wire::skip_to_magic(&mut worker.output), Ok(true)) {
            let status = worker.end(self);
            return Err(broken(format!(
                "worker pid {pid} {} before it was ready (does this binary call \
                 `backend_process::worker_main()` first in `main`, or, for tests, \
                 `backend_process::test_worker!()`?)",
                describe_exit(status)
            )));
        }
        if let Some((name, bytes)) = &self.options.initializer {
            let request = Request {
                id: u64::MAX,
                task: (*name).to_owned(),
                items: vec![bytes.clone()],
            };
            let answer = wire::write_frame(&mut worker.input, &request)
                .and_then(|()| wire::read_frame::<Response>(&mut worker.output));
            let failure = match answer {
                Ok(Some(response)) => match response.outcomes.into_iter().next() {
                    Some(Ok(_)) => None,
                    Some(Err(e)) => Some(e.message),
                    None => Some("no answer".to_owned()),
                },
                Ok(None) | Err(_) => Some(String::new()),
            };
            if let Some(message) = failure {
                let status = worker.end(self);
                let what = if message.is_empty() {
                    describe_exit(status)
                } else {
                    message
                };
                return Err(broken(format!(
                    "initializer `{name}` failed in worker pid {pid}: {what}"
                )));
            }
        }
        Ok(worker)
    }

    /// Hands queued requests to the worker one at a time until it must retire or dies.
    fn serve(&self, worker: &mut Worker) -> Served {
        // IDLE from here; the worker counts itself idle again before it completes a future, so
        // that a submitter woken by that completion reuses it instead of starting another.
        self.idle.fetch_add(1, Ordering::AcqRel);
        loop {
            if self
                .options
                .max_tasks_per_child
                .is_some_and(|max| worker.served >= max)
            {
                self.idle.fetch_sub(1, Ordering::AcqRel);
                return Served::Retired;
            }
            let Ok(job) = self.receiver.recv() else {
                self.idle.fetch_sub(1, Ordering::AcqRel);
                return Served::QueueClosed;
            };
            if !job.start() {
                continue;
            }
            self.idle.fetch_sub(1, Ordering::AcqRel);
            self.running.fetch_add(1, Ordering::Relaxed);
            let answer = wire::write_frame(&mut worker.input, job.request())
                .and_then(|()| wire::read_frame::<Response>(&mut worker.output));
            self.running.fetch_sub(1, Ordering::Relaxed);
            match answer {
                Ok(Some(response)) if response.id == job.request().id => {
                    worker.served += 1;
                    self.completed.fetch_add(1, Ordering::Relaxed);
                    self.idle.fetch_add(1, Ordering::AcqRel);
                    job.finish(response.outcomes, worker.pid);
                }
                _ => {
                    // The worker died (or spoke nonsense): make sure it is gone, and reap it.
                    let _ = worker.child.kill();
                    let status = worker.child.wait();
                    return Served::Died { status, job };
                }
            }
        }
    }

    fn forget_worker(&self, pid: u32) {
        self.workers.lock().retain(|&p| p != pid);
    }

    /// Marks the pool broken (the first reason wins), refuses new work, fails every queued
    /// future, and kills the other workers, whose running futures then fail with the same
    /// reason (rule L6). Returns the reason in force.
    fn break_pool(&self, broken: BrokenExecutor) -> BrokenExecutor {
        let broken = {
            let mut gate = self.gate.write();
            gate.sender = None;
            gate.broken.get_or_insert(broken).clone()
        };
        let error = TaskError::broken(broken.clone());
        while let Ok(job) = self.receiver.try_recv() {
            job.fail(error.clone());
        }
        for pid in self.workers.lock().iter() {
            if let Some(pid) = rustix::process::Pid::from_raw(*pid as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
        broken
    }

    /// `terminate_workers` / `kill_workers`: shut down, cancel what has not started, signal every
    /// worker (their drivers then fail the running futures as broken), and reap them.
    fn stop_workers(&self, signal: rustix::process::Signal) {
        self.gate.write().sender = None;
        while let Ok(job) = self.receiver.try_recv() {
            job.cancel();
        }
        for pid in self.workers.lock().iter() {
            if let Some(pid) = rustix::process::Pid::from_raw(*pid as i32) {
                let _ = rustix::process::kill_process(pid, signal);
            }
        }
        self.shutdown(ShutdownOptions::wait());
    }

    fn shutdown(&self, options: ShutdownOptions) {
        self.gate.write().sender = None;
        if options.cancel_futures {
            while let Ok(job) = self.receiver.try_recv() {
                job.cancel();
            }
        }
        if options.wait {
            let drivers = std::mem::take(&mut *self.drivers.lock());
            for driver in drivers {
                if driver.join().is_err() {
                    eprintln!("backend-process: a driver thread panicked");
                }
            }
        }
    }
}

/// One running worker process and its pipes.
struct Worker {
    pid: u32,
    child: Child,
    input: BufWriter<ChildStdin>,
    output: BufReader<ChildStdout>,
    served: usize,
}

impl Worker {
    /// Closes its stdin (a worker exits at the end of its input) and reaps it.
    fn retire(self, inner: &Inner) {
        let _ = self.end(inner);
    }

    /// Ends the worker whatever state it is in, reaps it, and reports how it ended.
    fn end(mut self, inner: &Inner) -> std::io::Result<ExitStatus> {
        drop(self.input);
        let status = self.child.wait();
        inner.forget_worker(self.pid);
        status
    }
}

/// How serving a worker ended.
enum Served {
    /// It ran `max_tasks_per_child` tasks.
    Retired,
    /// The queue is closed and empty: shut down.
    QueueClosed,
    /// It died running `job`.
    Died {
        status: std::io::Result<ExitStatus>,
        job: Box<dyn Pending>,
    },
}

/// "exited with code 3", "was killed by signal 9 (SIGKILL)".
fn describe_exit(status: std::io::Result<ExitStatus>) -> String {
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

impl<T> Executor<T> for ProcessPoolExecutor
where
    T: RemoteTask,
    T::Output: Serialize + DeserializeOwned,
{
    /// Serializes the task and queues it for a worker process.
    fn submit(&self, task: T) -> Result<FutureHandle<T::Output>, SubmitError<T>> {
        let (promise, future) = Promise::for_task(&task);
        let request = match self.request(T::NAME, std::slice::from_ref(&task)) {
            Ok(request) => request,
            Err(e) => {
                let _ = promise.set_error(e);
                return Ok(future);
            }
        };
        match self.submit_pending(Box::new(Single::<T> { promise, request })) {
            Ok(()) => Ok(future),
            Err((reason, pending)) => {
                pending.cancel();
                Err(SubmitError::new(reason, task))
            }
        }
    }

    /// One request (one frame) per chunk; each item's outcome comes back in its own slot.
    fn submit_batch(&self, tasks: Vec<T>) -> Result<Batch<T::Output>, SubmitError<Vec<T>>> {
        let len = tasks.len();
        let (promise, future) = Promise::named(T::NAME);
        let request = match self.request(T::NAME, &tasks) {
            Ok(request) => request,
            Err(e) => {
                let _ = promise.set_error(e);
                return Ok(Batch::chunk(future, len));
            }
        };
        match self.submit_pending(Box::new(Many::<T> { promise, request })) {
            Ok(()) => Ok(Batch::chunk(future, len)),
            Err((reason, pending)) => {
                pending.cancel();
                Err(SubmitError::new(reason, tasks))
            }
        }
    }
}

impl Shutdown for ProcessPoolExecutor {
    /// Refuses new tasks; with `cancel_futures`, cancels queued ones; with `wait`, returns when
    /// every queued and running task is done and every worker has exited (and been reaped).
    fn shutdown(&self, options: ShutdownOptions) {
        self.inner.shutdown(options);
    }
}

impl Introspect for ProcessPoolExecutor {
    fn stats(&self) -> PoolStats {
        let inner = &self.inner;
        PoolStats {
            workers: inner.workers.lock().len(),
            idle: inner.idle.load(Ordering::Relaxed),
            queued: inner.receiver.len(),
            running: inner.running.load(Ordering::Relaxed),
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
