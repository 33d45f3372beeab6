//! Running a workload: serially, on any executor, or with async I/O on the tokio backend.
//!
//! A run returns one [`Item`] per task, in input order; [`Tally`] then checks them against the
//! scenario's expectations. The clock stops before tallying, so verification (e.g. recomputing
//! each blob's checksum) is not part of what is measured.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use backend_async::AsyncExecutor;
use executor_core::{Executor, MapOptions, ResultError, Task, TaskError};

use crate::azure::{AzureContainer, FetchAzureBlob, container_client, fetch_azure_blob};
use crate::blob::{Digest, expected_digest};
use crate::io::{FetchBlob, fetch_blob};
use crate::schema::{Expect, Point, Workload};
use crate::tasks::{Faulty, IsPrime, NoOp};

/// Everything the workloads need from their surroundings.
///
/// ```
/// let env = scenarios::RunEnv::new(None);
/// assert!(env.blob_url().is_none());
/// ```
#[derive(Debug, Clone)]
pub struct RunEnv {
    blob_url: Option<String>,
    client: reqwest::Client,
    azure: Option<Arc<AzureContainer>>,
}

impl RunEnv {
    /// `blob_url`: the base URL of the blob server (`io-fanout` needs one).
    ///
    /// ```
    /// let env = scenarios::RunEnv::new(Some("http://127.0.0.1:9".into()));
    /// assert_eq!(env.blob_url(), Some("http://127.0.0.1:9"));
    /// ```
    pub fn new(blob_url: Option<String>) -> RunEnv {
        RunEnv {
            blob_url,
            // Falls back to a plain client only if TLS-free client setup itself fails.
            client: crate::io::blob_client().unwrap_or_default(),
            azure: None,
        }
    }

    /// This environment with the container that the `azure-blobs` set-up filled
    /// (`scenarios::azure::upload_images`): the runs download its blobs, and
    /// [`Tally::of_in`] checks them against the digests it remembered.
    ///
    /// ```
    /// use scenarios::azure::AzureContainer;
    /// let c = AzureContainer { url: "http://127.0.0.1:9/devstoreaccount1/c?sig=x".into(), blobs: vec![] };
    /// let env = scenarios::RunEnv::new(None).with_azure(c.clone());
    /// assert_eq!(env.azure(), Some(&c));
    /// ```
    pub fn with_azure(mut self, container: AzureContainer) -> RunEnv {
        self.azure = Some(Arc::new(container));
        self
    }

    /// The `azure-blobs` container, if the set-up made one.
    ///
    /// ```
    /// assert!(scenarios::RunEnv::new(None).azure().is_none());
    /// ```
    pub fn azure(&self) -> Option<&AzureContainer> {
        self.azure.as_deref()
    }

    fn container(&self) -> Result<&AzureContainer, RunError> {
        self.azure().ok_or_else(|| {
            RunError("azure-blobs needs a container filled by its set-up, and none was".into())
        })
    }

    /// The blob server's base URL, if any.
    ///
    /// ```
    /// assert_eq!(scenarios::RunEnv::new(None).blob_url(), None);
    /// ```
    pub fn blob_url(&self) -> Option<&str> {
        self.blob_url.as_deref()
    }

    fn url(&self) -> Result<&str, RunError> {
        self.blob_url()
            .ok_or_else(|| RunError("io-fanout needs a blob server, and none was started".into()))
    }
}

/// One task's result.
///
/// ```
/// let item: scenarios::Item = Ok(scenarios::Output::Bool(true));
/// assert!(item.is_ok());
/// ```
pub type Item = Result<Output, Fault>;

/// A successful task's value.
///
/// ```
/// assert_eq!(scenarios::Output::U64(3), scenarios::Output::U64(3));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// `is_prime`'s answer.
    Bool(bool),
    /// A no-op's or a faulty task's echo.
    U64(u64),
    /// A downloaded blob's size and checksum.
    Digest(Digest),
}

/// A failed task.
///
/// ```
/// let f = scenarios::Fault::Panicked("boom".into());
/// assert_eq!(f.to_string(), "panicked: boom");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The task panicked.
    Panicked(String),
    /// The task returned an error, or its result never came (timeout, broken pool, ...).
    Failed(String),
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Panicked(m) => write!(f, "panicked: {m}"),
            Fault::Failed(m) => write!(f, "failed: {m}"),
        }
    }
}

fn fault_of_task(e: &TaskError) -> Fault {
    if e.is_panic() {
        Fault::Panicked(e.message().to_string())
    } else {
        Fault::Failed(e.to_string())
    }
}

fn fault_of(e: &ResultError) -> Fault {
    match e {
        ResultError::Failed(t) => fault_of_task(t),
        other => Fault::Failed(other.to_string()),
    }
}

/// A run that could not be carried out at all (as opposed to tasks that failed).
///
/// ```
/// let e = scenarios::RunError("pool is broken".into());
/// assert_eq!(e.to_string(), "pool is broken");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunError(pub String);

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RunError {}

/// An executor every workload runs on: the thread pool, the process pool and the tokio
/// backend all are one.
///
/// ```
/// fn takes_pool(_: &impl scenarios::Pool) {}
/// takes_pool(&backend_threads::ThreadPoolExecutor::new(1).unwrap());
/// ```
pub trait Pool:
    Executor<IsPrime>
    + Executor<NoOp>
    + Executor<Faulty>
    + Executor<FetchBlob>
    + Executor<FetchAzureBlob>
{
}

impl<E> Pool for E where
    E: Executor<IsPrime>
        + Executor<NoOp>
        + Executor<Faulty>
        + Executor<FetchBlob>
        + Executor<FetchAzureBlob>
{
}

fn faulty(index: u64, panic_every: usize, error_every: usize) -> Faulty {
    Faulty {
        index,
        panic_every: panic_every as u64,
        error_every: error_every as u64,
    }
}

fn fetch(url: &str, index: u64, size_kib: usize) -> FetchBlob {
    FetchBlob {
        base_url: url.to_string(),
        index,
        size: size_kib * 1024,
    }
}

fn run_inline<T: Task>(task: T, wrap: fn(T::Output) -> Output) -> Item {
    match catch_unwind(AssertUnwindSafe(|| task.run())) {
        Ok(Ok(v)) => Ok(wrap(v)),
        Ok(Err(e)) => Err(fault_of_task(&e)),
        Err(payload) => Err(Fault::Panicked(executor_core::panic_message(&*payload))),
    }
}

/// Runs the workload as a plain loop in this thread: the baseline.
///
/// ```
/// use scenarios::{run_serial, RunEnv, Workload, Output};
/// let items = run_serial(&Workload::Primes { numbers: vec![7, 8] }, &RunEnv::new(None)).unwrap();
/// assert_eq!(items, vec![Ok(Output::Bool(true)), Ok(Output::Bool(false))]);
/// ```
pub fn run_serial(workload: &Workload, env: &RunEnv) -> Result<Vec<Item>, RunError> {
    Ok(match workload {
        Workload::Primes { numbers } => numbers
            .iter()
            .map(|&n| run_inline(IsPrime(n), Output::Bool))
            .collect(),
        Workload::PrimeRange { start, count } => (*start..start + count)
            .map(|n| run_inline(IsPrime(n), Output::Bool))
            .collect(),
        Workload::Noop { tasks } => (0..*tasks as u64)
            .map(|i| run_inline(NoOp(i), Output::U64))
            .collect(),
        Workload::Faults {
            tasks,
            panic_every,
            error_every,
        } => (1..=*tasks as u64)
            .map(|i| run_inline(faulty(i, *panic_every, *error_every), Output::U64))
            .collect(),
        Workload::IoFanout {
            blobs, size_kib, ..
        } => {
            let url = env.url()?;
            (0..*blobs as u64)
                .map(|i| run_inline(fetch(url, i, *size_kib), Output::Digest))
                .collect()
        }
        Workload::AzureBlobs { .. } => env
            .container()?
            .tasks()
            .map(|t| run_inline(t, Output::Digest))
            .collect(),
    })
}

fn map_all<E, T>(
    pool: &E,
    tasks: impl Iterator<Item = T>,
    options: MapOptions,
    wrap: fn(T::Output) -> Output,
) -> Result<RunOutput, RunError>
where
    E: Executor<T>,
    T: Task,
{
    let results = pool
        .map(tasks, options)
        .map_err(|e| RunError(e.to_string()))?;
    // Read before the results: with `auto`, `map` has chosen by the time it returns.
    let chunksize = results.chunksize();
    Ok(RunOutput {
        items: results
            .map(|r| r.map(wrap).map_err(|e| fault_of(&e)))
            .collect(),
        chunksize: Some(chunksize),
    })
}

/// What one run on an executor produced: one [`Item`] per task, in input order, and the chunk
/// size `map` used (the one it chose, for [`Chunking::Auto`](crate::Chunking::Auto)).
///
/// ```
/// use std::time::Duration;
/// use scenarios::{run_on, Chunking, Point, RunEnv, Workload};
/// let pool = backend_threads::ThreadPoolExecutor::new(2).unwrap();
/// let point = Point { max_workers: 2, chunksize: Chunking::Fixed(8), buffersize: None };
/// let w = Workload::PrimeRange { start: 10, count: 32 };
/// let run = run_on(&pool, &w, &point, Duration::from_secs(60), &RunEnv::new(None)).unwrap();
/// assert_eq!(run.items.len(), 32);
/// assert_eq!(run.chunksize, Some(8));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutput {
    /// One result per task, in input order (fewer if a `map` timed out).
    pub items: Vec<Item>,
    /// The chunk size of `map`'s chunks; `None` where the run did not use `map` (`noop`, and
    /// downloads as async tasks on tokio).
    pub chunksize: Option<usize>,
}

impl RunOutput {
    /// A run that did not use `map`.
    fn unchunked(items: Vec<Item>) -> RunOutput {
        RunOutput {
            items,
            chunksize: None,
        }
    }
}

/// Runs the workload on `pool` with `map` (chunksize and buffersize from `point`; for
/// [`Chunking::Auto`](crate::Chunking::Auto), [`MapOptions::auto_chunksize`]), except `noop`,
/// which measures `submit` then `result` per task. Every result is awaited at most `timeout`
/// from the start; later ones fail as timed out. The output says which chunk size `map` used.
///
/// ```
/// use std::time::Duration;
/// use scenarios::{run_on, Chunking, Point, RunEnv, Workload, Output};
/// let pool = backend_threads::ThreadPoolExecutor::new(2).unwrap();
/// let point = Point { max_workers: 2, chunksize: Chunking::Fixed(4), buffersize: None };
/// let w = Workload::PrimeRange { start: 10, count: 4 };
/// let run = run_on(&pool, &w, &point, Duration::from_secs(60), &RunEnv::new(None)).unwrap();
/// assert_eq!(run.items[1], Ok(Output::Bool(true))); // 11
/// assert_eq!(run.chunksize, Some(4));
///
/// // `auto`: map measures the first items and chooses; the output says what it chose.
/// let point = Point { chunksize: Chunking::Auto, ..point };
/// let w = Workload::PrimeRange { start: 10, count: 10_000 };
/// let run = run_on(&pool, &w, &point, Duration::from_secs(60), &RunEnv::new(None)).unwrap();
/// assert_eq!(run.items.len(), 10_000);
/// let chosen = run.chunksize.unwrap();
/// assert!((1..=executor_core::AUTO_CHUNK_MAX).contains(&chosen));
/// ```
pub fn run_on<E: Pool>(
    pool: &E,
    workload: &Workload,
    point: &Point,
    timeout: Duration,
    env: &RunEnv,
) -> Result<RunOutput, RunError> {
    let mut options = point.chunksize.apply(MapOptions::new().timeout(timeout));
    if let Some(b) = point.buffersize {
        options = options.buffersize(b);
    }
    match workload {
        Workload::Primes { numbers } => map_all(
            pool,
            numbers.clone().into_iter().map(IsPrime),
            options,
            Output::Bool,
        ),
        Workload::PrimeRange { start, count } => map_all(
            pool,
            (*start..start + count).map(IsPrime),
            options,
            Output::Bool,
        ),
        Workload::Faults {
            tasks,
            panic_every,
            error_every,
        } => {
            let (p, e) = (*panic_every, *error_every);
            map_all(
                pool,
                (1..=*tasks as u64).map(move |i| faulty(i, p, e)),
                options,
                Output::U64,
            )
        }
        Workload::IoFanout {
            blobs, size_kib, ..
        } => {
            let url = env.url()?;
            let size = *size_kib;
            map_all(
                pool,
                (0..*blobs as u64).map(|i| fetch(url, i, size)),
                options,
                Output::Digest,
            )
        }
        Workload::AzureBlobs { .. } => {
            map_all(pool, env.container()?.tasks(), options, Output::Digest)
        }
        Workload::Noop { tasks } => {
            let deadline = Instant::now() + timeout;
            let mut futures = Vec::with_capacity(*tasks);
            for i in 0..*tasks as u64 {
                let f = Executor::<NoOp>::submit(pool, NoOp(i))
                    .map_err(|e| RunError(format!("submit refused: {}", e.reason())))?;
                futures.push(f);
            }
            Ok(RunOutput::unchunked(
                futures
                    .iter()
                    .map(|f| {
                        let left = deadline.saturating_duration_since(Instant::now());
                        f.result(Some(left))
                            .map(|v| Output::U64(*v))
                            .map_err(|e| fault_of(&e))
                    })
                    .collect(),
            ))
        }
    }
}

/// Runs the workload on the tokio backend: I/O as async tasks (`submit_async` of an async HTTP
/// download, so a place is one in-flight request, not one blocked thread), CPU work as blocking
/// tasks through [`run_on`] (with `map`, so the chunk size applies to them).
///
/// ```
/// use std::time::Duration;
/// use scenarios::{run_async, Chunking, Point, RunEnv, Workload, Output};
/// let pool = backend_async::AsyncExecutor::new(2).unwrap();
/// let point = Point { max_workers: 2, chunksize: Chunking::Fixed(1), buffersize: None };
/// let run = run_async(&pool, &Workload::Noop { tasks: 3 }, &point, Duration::from_secs(60), &RunEnv::new(None)).unwrap();
/// assert_eq!(run.items.len(), 3);
/// assert_eq!(run.chunksize, None); // submit and result per task: no map
/// ```
pub fn run_async(
    pool: &AsyncExecutor,
    workload: &Workload,
    point: &Point,
    timeout: Duration,
    env: &RunEnv,
) -> Result<RunOutput, RunError> {
    let deadline = Instant::now() + timeout;
    let futures = match workload {
        Workload::IoFanout {
            blobs, size_kib, ..
        } => {
            let url = env.url()?;
            let mut futures = Vec::with_capacity(*blobs);
            for i in 0..*blobs as u64 {
                let client = env.client.clone();
                let url = url.to_string();
                let size = size_kib * 1024;
                let f = pool
                    .submit_async(async move { fetch_blob(&client, &url, i, size).await })
                    .map_err(|e| RunError(format!("submit refused: {}", e.reason())))?;
                futures.push(f);
            }
            futures
        }
        Workload::AzureBlobs { .. } => {
            let container = env.container()?;
            // One SDK client per run, shared by its downloads (it pools connections); each
            // run has its own because each row has its own runtime.
            let client = container_client(&container.url).map_err(|e| RunError(e.to_string()))?;
            let mut futures = Vec::with_capacity(container.blobs.len());
            for blob in &container.blobs {
                let client = client.clone();
                let name = blob.name.clone();
                let f = pool
                    .submit_async(async move { fetch_azure_blob(&client, &name).await })
                    .map_err(|e| RunError(format!("submit refused: {}", e.reason())))?;
                futures.push(f);
            }
            futures
        }
        _ => return run_on(pool, workload, point, timeout, env),
    };
    Ok(RunOutput::unchunked(
        futures
            .iter()
            .map(|f| {
                let left = deadline.saturating_duration_since(Instant::now());
                match f.result(Some(left)) {
                    Ok(Ok(d)) => Ok(Output::Digest(*d)),
                    Ok(Err(e)) => Err(fault_of_task(e)),
                    Err(e) => Err(fault_of(&e)),
                }
            })
            .collect(),
    ))
}

/// What a run produced, counted, and checked against a scenario's expectations.
///
/// ```
/// use scenarios::{Expect, Output, Tally, Workload, Fault};
/// let w = Workload::Primes { numbers: vec![7, 8, 9] };
/// let items = vec![Ok(Output::Bool(true)), Ok(Output::Bool(false)), Err(Fault::Failed("x".into()))];
/// let t = Tally::of(&w, &items);
/// assert_eq!((t.ok, t.failed, t.primes), (2, 1, 1));
/// let expect = Expect { ok: Some(3), ..Expect::default() };
/// assert_eq!(t.check(&expect).unwrap_err(), "expected ok = 3, got 2 (first failure: failed: x)");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Tasks that succeeded (for `io-fanout` and `azure-blobs`: and whose blob matched).
    pub ok: usize,
    /// Tasks that failed (error, timeout, broken pool, wrong blob, or no result at all).
    pub failed: usize,
    /// Tasks that panicked.
    pub panicked: usize,
    /// `true` results.
    pub primes: usize,
    /// Every boolean result in order (`primes` workloads).
    pub outputs: Vec<bool>,
    /// Bytes whose size and checksum matched the blob asked for.
    pub verified_bytes: u64,
    /// The first few failures, for the report.
    pub problems: Vec<String>,
}

const MAX_PROBLEMS: usize = 3;

impl Tally {
    /// Counts `items` (one per task, in input order) of a run of `workload`; for `io-fanout`
    /// recomputes each blob's expected size and checksum. An `azure-blobs` run needs the digests
    /// its set-up remembered: use [`Tally::of_in`] (here every blob counts as failed).
    ///
    /// ```
    /// use scenarios::{Output, Tally, Workload};
    /// let t = Tally::of(&Workload::Noop { tasks: 2 }, &[Ok(Output::U64(0)), Ok(Output::U64(1))]);
    /// assert_eq!(t.ok, 2);
    /// ```
    pub fn of(workload: &Workload, items: &[Item]) -> Tally {
        Tally::count(workload, items, None)
    }

    /// [`Tally::of`] for a run in `env`: an `azure-blobs` blob counts as verified only if its
    /// size and CRC-32 are those the set-up remembered when it uploaded that blob
    /// ([`RunEnv::with_azure`]).
    ///
    /// ```
    /// use scenarios::azure::{AzureContainer, UploadedBlob};
    /// use scenarios::{Digest, Output, RunEnv, Tally, Workload};
    /// let png = Digest::of(b"png");
    /// let env = RunEnv::new(None).with_azure(AzureContainer {
    ///     url: "http://127.0.0.1:9/devstoreaccount1/c?sig=x".into(),
    ///     blobs: vec![UploadedBlob { name: "a.png".into(), digest: png }],
    /// });
    /// let w = Workload::AzureBlobs { images: 1, width: 1, height: 1 };
    /// let t = Tally::of_in(&w, &[Ok(Output::Digest(png))], &env);
    /// assert_eq!((t.ok, t.verified_bytes), (1, 3));
    /// let t = Tally::of_in(&w, &[Ok(Output::Digest(Digest::of(b"gif")))], &env);
    /// assert_eq!(t.failed, 1);
    /// ```
    pub fn of_in(workload: &Workload, items: &[Item], env: &RunEnv) -> Tally {
        Tally::count(workload, items, env.azure())
    }

    fn count(workload: &Workload, items: &[Item], azure: Option<&AzureContainer>) -> Tally {
        let mut t = Tally::default();
        let problem = |t: &mut Tally, p: String| {
            if t.problems.len() < MAX_PROBLEMS {
                t.problems.push(p);
            }
        };
        for (i, item) in items.iter().enumerate() {
            match item {
                Ok(Output::Bool(b)) => {
                    t.ok += 1;
                    t.primes += usize::from(*b);
                    t.outputs.push(*b);
                }
                Ok(Output::U64(_)) => t.ok += 1,
                Ok(Output::Digest(d)) => {
                    let want = match workload {
                        Workload::IoFanout { size_kib, .. } => {
                            Some(expected_digest(i as u64, size_kib * 1024))
                        }
                        Workload::AzureBlobs { .. } => azure.and_then(|c| c.expected(i)),
                        _ => Some(expected_digest(i as u64, 0)),
                    };
                    match want {
                        Some(want) if *d == want => {
                            t.ok += 1;
                            t.verified_bytes += d.len;
                        }
                        Some(want) => {
                            t.failed += 1;
                            problem(&mut t, format!("blob {i}: got {d}, expected {want}"));
                        }
                        None => {
                            t.failed += 1;
                            problem(
                                &mut t,
                                format!("blob {i}: no digest remembered to check it against"),
                            );
                        }
                    }
                }
                Err(f @ Fault::Panicked(_)) => {
                    t.panicked += 1;
                    problem(&mut t, f.to_string());
                }
                Err(f @ Fault::Failed(_)) => {
                    t.failed += 1;
                    problem(&mut t, f.to_string());
                }
            }
        }
        // A map that timed out ends early: the tasks it never reported count as failed.
        let missing = workload.tasks().saturating_sub(items.len());
        if missing > 0 {
            t.failed += missing;
            problem(
                &mut t,
                format!("{missing} of {} tasks never reported", workload.tasks()),
            );
        }
        t
    }

    /// `Ok` if every expectation holds, else what differs (and the first failure, if any).
    ///
    /// ```
    /// use scenarios::{Expect, Tally};
    /// let t = Tally { ok: 3, ..Tally::default() };
    /// assert!(t.check(&Expect { ok: Some(3), ..Expect::default() }).is_ok());
    /// ```
    pub fn check(&self, expect: &Expect) -> Result<(), String> {
        let mut wrong = Vec::new();
        let mut count = |name: &str, want: Option<usize>, got: usize| {
            if let Some(want) = want.filter(|w| *w != got) {
                wrong.push(format!("expected {name} = {want}, got {got}"));
            }
        };
        count("ok", expect.ok, self.ok);
        count("failed", expect.failed, self.failed);
        count("panicked", expect.panicked, self.panicked);
        count("primes", expect.primes, self.primes);
        if let Some(want) = &expect.outputs
            && *want != self.outputs
        {
            wrong.push(format!("expected outputs {want:?}, got {:?}", self.outputs));
        }
        if let Some(want) = expect.verified_bytes
            && want != self.verified_bytes
        {
            wrong.push(format!(
                "expected verified_bytes = {want}, got {}",
                self.verified_bytes
            ));
        }
        if wrong.is_empty() {
            return Ok(());
        }
        let mut message = wrong.join("; ");
        let expected_faults = expect.failed.unwrap_or(0) + expect.panicked.unwrap_or(0);
        if let Some(first) = self.problems.first().filter(|_| expected_faults == 0) {
            message.push_str(&format!(" (first failure: {first})"));
        }
        Err(message)
    }
}
