//! The scenario file format. The full reference, field by field, is `scenarios/SCHEMA.md`.
//!
//! Every struct rejects unknown fields, so a typo is an error naming the file, the line and the
//! field rather than a silently ignored setting.

use std::fmt;
use std::num::NonZeroUsize;

use executor_core::MapOptions;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// One scenario: a workload, the backends and matrix to run it on, and what its results must be.
///
/// ```
/// let s = scenarios::Scenario::parse("demo.yaml", "
/// name: demo
/// workload:
///   primes:
///     numbers: [7, 8]
/// expect:
///   outputs: [true, false]
/// ").unwrap();
/// assert_eq!(s.name, "demo");
/// assert_eq!(s.repeats, 3);
/// assert_eq!(s.backends.len(), 4);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// The scenario's name: lowercase letters, digits and `-` (it names output files).
    pub name: String,
    /// One or two sentences for people reading the report.
    pub description: String,
    /// What each run does.
    pub workload: Workload,
    /// Which backends run it (default: all four, serial first).
    pub backends: Vec<Backend>,
    /// The parameter grid; every combination is one row per backend.
    pub matrix: Matrix,
    /// Timed runs per row (at least 1; default 3). The report shows their median, min and max.
    pub repeats: usize,
    /// Untimed runs before the timed ones (default 1): starts workers, warms caches.
    pub warmup: usize,
    /// A run that takes longer than this fails its row instead of hanging (default 300 s).
    pub timeout_s: f64,
    /// What every run's results must be.
    pub expect: Expect,
    /// A smaller version for `--quick` and the regression tests: same workload kind, smaller
    /// parameters, its own expectations.
    pub quick: Option<Quick>,
}

/// The `quick:` block: what quick mode (`--quick`, the regression tests) changes. Each part is
/// optional; a smaller workload needs its own expectations.
///
/// ```
/// let s = scenarios::Scenario::parse("q.yaml", "
/// name: q
/// workload: {noop: {tasks: 100000}}
/// expect: {ok: 100000}
/// quick:
///   workload: {noop: {tasks: 10}}
///   expect: {ok: 10}
/// ").unwrap();
/// assert_eq!(s.quick_mode().workload.tasks(), 10);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Quick {
    /// The smaller workload (same kind).
    pub workload: Option<Workload>,
    /// Its expectations (required with `workload`).
    pub expect: Option<Expect>,
    /// A smaller matrix.
    pub matrix: Option<Matrix>,
}

/// What one run does. Written as a map with one key, the kind:
/// `workload: {primes: {numbers: [7, 8]}}`.
///
/// ```
/// use scenarios::Workload;
/// let w = Workload::Primes { numbers: vec![7, 8, 9] };
/// assert_eq!(w.kind(), "primes");
/// assert_eq!(w.tasks(), 3);
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub enum Workload {
    /// One `is_prime` task per number (the blog post's example).
    Primes {
        /// The numbers to check.
        numbers: Vec<u64>,
    },
    /// `is_prime` over `count` consecutive integers from `start`: the chunksize sweep.
    PrimeRange {
        /// The first integer.
        start: u64,
        /// How many integers.
        count: u64,
    },
    /// Tasks that do nothing: what the executor itself costs per task.
    Noop {
        /// How many tasks.
        tasks: usize,
    },
    /// Download `blobs` blobs of `size_kib` KiB each from a loopback HTTP server that answers
    /// after `latency_ms`: a web server loading images from blob storage.
    IoFanout {
        /// How many blobs.
        blobs: usize,
        /// Size of each blob in KiB (1 KiB = 1024 bytes).
        size_kib: usize,
        /// The server's latency per request, milliseconds.
        latency_ms: u64,
    },
    /// Download `images` PNG images of `width` × `height` pixels from Azure Blob Storage with
    /// the official Azure SDK: the harness's own Azurite on loopback, or the account the
    /// environment names (see `scenarios::azure`). The set-up (not timed) uploads them.
    AzureBlobs {
        /// How many images (one blob each).
        images: usize,
        /// Width in pixels (1..=4096).
        width: u32,
        /// Height in pixels (1..=4096).
        height: u32,
    },
    /// `tasks` small CPU tasks of which every `panic_every`-th panics and every
    /// `error_every`-th returns an error (panic wins where both apply); 0 disables either.
    Faults {
        /// How many tasks.
        tasks: usize,
        /// Every n-th task (1-based) panics.
        #[serde(default)]
        panic_every: usize,
        /// Every n-th task (1-based) returns an error.
        #[serde(default)]
        error_every: usize,
    },
}

impl Workload {
    /// The kind as written in YAML (`prime-range`, ...).
    ///
    /// ```
    /// assert_eq!(scenarios::Workload::Noop { tasks: 1 }.kind(), "noop");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            Workload::Primes { .. } => "primes",
            Workload::PrimeRange { .. } => "prime-range",
            Workload::Noop { .. } => "noop",
            Workload::IoFanout { .. } => "io-fanout",
            Workload::AzureBlobs { .. } => "azure-blobs",
            Workload::Faults { .. } => "faults",
        }
    }

    /// Tasks (items) per run.
    ///
    /// ```
    /// let w = scenarios::Workload::PrimeRange { start: 10, count: 5 };
    /// assert_eq!(w.tasks(), 5);
    /// ```
    pub fn tasks(&self) -> usize {
        match self {
            Workload::Primes { numbers } => numbers.len(),
            Workload::PrimeRange { count, .. } => usize::try_from(*count).unwrap_or(usize::MAX),
            Workload::Noop { tasks } | Workload::Faults { tasks, .. } => *tasks,
            Workload::IoFanout { blobs, .. } => *blobs,
            Workload::AzureBlobs { images, .. } => *images,
        }
    }

    /// Whether the work is waiting (I/O) rather than computing.
    ///
    /// ```
    /// use scenarios::Workload;
    /// assert!(Workload::IoFanout { blobs: 1, size_kib: 1, latency_ms: 1 }.is_io());
    /// assert!(Workload::AzureBlobs { images: 1, width: 8, height: 8 }.is_io());
    /// assert!(!Workload::Noop { tasks: 1 }.is_io());
    /// ```
    pub fn is_io(&self) -> bool {
        matches!(
            self,
            Workload::IoFanout { .. } | Workload::AzureBlobs { .. }
        )
    }
}

/// The parameter grid. Each list is one axis; every combination is measured.
///
/// ```
/// let m = scenarios::Matrix::default();
/// assert_eq!(m.points().len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matrix {
    /// Pool sizes: integers ≥ 1, or `cores` (this machine's available parallelism).
    #[serde(default = "default_workers")]
    pub max_workers: Vec<Workers>,
    /// `map` chunk sizes: integers ≥ 1, or `auto` (`map` chooses from measured task cost;
    /// default `[1]`).
    #[serde(default = "default_chunksize")]
    pub chunksize: Vec<Chunking>,
    /// `map` buffer sizes, each ≥ 1 or `null` for unbounded (default `[null]`).
    #[serde(default = "default_buffersize")]
    pub buffersize: Vec<Option<NonZeroUsize>>,
}

impl Default for Matrix {
    fn default() -> Self {
        Matrix {
            max_workers: default_workers(),
            chunksize: default_chunksize(),
            buffersize: default_buffersize(),
        }
    }
}

fn default_workers() -> Vec<Workers> {
    vec![Workers::Cores]
}

fn default_chunksize() -> Vec<Chunking> {
    vec![Chunking::Fixed(1)]
}

fn default_buffersize() -> Vec<Option<NonZeroUsize>> {
    vec![None]
}

/// One point of the matrix, resolved.
///
/// ```
/// let p = scenarios::Matrix::default().points()[0];
/// assert_eq!(p.chunksize, scenarios::Chunking::Fixed(1));
/// assert!(p.max_workers >= 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Point {
    /// Pool size.
    pub max_workers: usize,
    /// `map` chunk size: fixed, or chosen by `map` ([`Chunking::Auto`]).
    pub chunksize: Chunking,
    /// `map` buffer size (`None`: unbounded).
    pub buffersize: Option<usize>,
}

impl Matrix {
    /// Every combination, workers outermost, in the order written.
    ///
    /// ```
    /// let s = scenarios::Scenario::parse("m.yaml", "
    /// name: m
    /// workload: {noop: {tasks: 1}}
    /// matrix: {max_workers: [1, 2], chunksize: [1, 8, 64]}
    /// expect: {ok: 1}
    /// ").unwrap();
    /// assert_eq!(s.matrix.points().len(), 6);
    /// ```
    pub fn points(&self) -> Vec<Point> {
        let mut points = Vec::new();
        for workers in &self.max_workers {
            for chunksize in &self.chunksize {
                for buffersize in &self.buffersize {
                    points.push(Point {
                        max_workers: workers.get(),
                        chunksize: *chunksize,
                        buffersize: buffersize.map(NonZeroUsize::get),
                    });
                }
            }
        }
        points
    }
}

/// A pool size in the matrix: a number, or `cores`.
///
/// ```
/// use scenarios::Workers;
/// assert_eq!(Workers::Fixed(3).get(), 3);
/// assert!(Workers::Cores.get() >= 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workers {
    /// This machine's available parallelism.
    Cores,
    /// A fixed number (≥ 1).
    Fixed(usize),
}

impl Workers {
    /// The number of workers.
    ///
    /// ```
    /// assert_eq!(scenarios::Workers::Fixed(8).get(), 8);
    /// ```
    pub fn get(self) -> usize {
        match self {
            Workers::Cores => std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
            Workers::Fixed(n) => n,
        }
    }
}

impl<'de> Deserialize<'de> for Workers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Workers;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of workers (at least 1) or `cores`")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Workers, E> {
                match usize::try_from(v) {
                    Ok(n) if n >= 1 => Ok(Workers::Fixed(n)),
                    _ => Err(E::invalid_value(de::Unexpected::Unsigned(v), &self)),
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Workers, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Workers, E> {
                if v == "cores" {
                    Ok(Workers::Cores)
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(v), &self))
                }
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl Serialize for Workers {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Workers::Cores => serializer.serialize_str("cores"),
            Workers::Fixed(n) => serializer.serialize_u64(*n as u64),
        }
    }
}

/// A chunk size in the matrix: a fixed number of items per chunk, or `auto`, which lets `map`
/// choose it from measured task cost ([`MapOptions::auto_chunksize`]). Written as a positive
/// integer or the word `auto`; displays the same way, so a fixed size reads as before.
///
/// ```
/// use scenarios::Chunking;
/// let s = scenarios::Scenario::parse("c.yaml", "
/// name: c
/// workload: {noop: {tasks: 1}}
/// matrix: {chunksize: [1, 16, auto]}
/// expect: {ok: 1}
/// ").unwrap();
/// assert_eq!(s.matrix.chunksize, [Chunking::Fixed(1), Chunking::Fixed(16), Chunking::Auto]);
/// assert_eq!(Chunking::Fixed(16).to_string(), "16");
/// assert_eq!(Chunking::Auto.to_string(), "auto");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Chunking {
    /// This many items per chunk (≥ 1).
    Fixed(usize),
    /// `map` measures the first items and chooses ([`MapOptions::auto_chunksize`]).
    Auto,
}

impl Chunking {
    /// The fixed chunk size; `None` for [`Chunking::Auto`].
    ///
    /// ```
    /// use scenarios::Chunking;
    /// assert_eq!(Chunking::Fixed(8).fixed(), Some(8));
    /// assert_eq!(Chunking::Auto.fixed(), None);
    /// ```
    pub fn fixed(self) -> Option<usize> {
        match self {
            Chunking::Fixed(n) => Some(n),
            Chunking::Auto => None,
        }
    }

    /// Whether `map` chooses the chunk size.
    ///
    /// ```
    /// assert!(scenarios::Chunking::Auto.is_auto());
    /// assert!(!scenarios::Chunking::Fixed(1).is_auto());
    /// ```
    pub fn is_auto(self) -> bool {
        self == Chunking::Auto
    }

    /// `options` with this chunk size: [`MapOptions::chunksize`] for a fixed one,
    /// [`MapOptions::auto_chunksize`] for `auto`.
    ///
    /// ```
    /// use executor_core::MapOptions;
    /// use scenarios::Chunking;
    /// assert_eq!(Chunking::Fixed(64).apply(MapOptions::new()).get_chunksize(), 64);
    /// assert!(Chunking::Auto.apply(MapOptions::new()).is_auto_chunksize());
    /// ```
    pub fn apply(self, options: MapOptions) -> MapOptions {
        match self {
            Chunking::Fixed(n) => options.chunksize(n),
            Chunking::Auto => options.auto_chunksize(),
        }
    }
}

impl fmt::Display for Chunking {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Chunking::Fixed(n) => write!(f, "{n}"),
            Chunking::Auto => f.write_str("auto"),
        }
    }
}

impl<'de> Deserialize<'de> for Chunking {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Chunking;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a chunk size (an integer, at least 1) or `auto`")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Chunking, E> {
                match usize::try_from(v) {
                    Ok(n) if n >= 1 => Ok(Chunking::Fixed(n)),
                    _ => Err(E::invalid_value(de::Unexpected::Unsigned(v), &self)),
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Chunking, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Chunking, E> {
                if v == "auto" {
                    Ok(Chunking::Auto)
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(v), &self))
                }
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl Serialize for Chunking {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Chunking::Fixed(n) => serializer.serialize_u64(*n as u64),
            Chunking::Auto => serializer.serialize_str("auto"),
        }
    }
}

/// A backend a scenario runs on.
///
/// ```
/// use scenarios::Backend;
/// assert_eq!(Backend::all()[0], Backend::Serial);
/// assert_eq!(Backend::Process.to_string(), "process");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// A plain loop in the calling thread: the baseline every speedup is measured against.
    Serial,
    /// `backend_threads::ThreadPoolExecutor`.
    Threads,
    /// `backend_process::ProcessPoolExecutor`.
    Process,
    /// `backend_async::AsyncExecutor` (async variants for I/O workloads).
    Async,
    /// CPython's `concurrent.futures.ThreadPoolExecutor` on the same workload (needs `python3`).
    CpythonThreads,
    /// CPython's `concurrent.futures.ProcessPoolExecutor` on the same workload (needs `python3`).
    CpythonProcess,
}

impl Backend {
    /// The four Rust backends, serial first: a scenario's default.
    ///
    /// ```
    /// assert_eq!(scenarios::Backend::all().len(), 4);
    /// ```
    pub fn all() -> Vec<Backend> {
        vec![
            Backend::Serial,
            Backend::Threads,
            Backend::Process,
            Backend::Async,
        ]
    }

    /// CPython's two executors, for side-by-side runs.
    ///
    /// ```
    /// assert!(scenarios::Backend::cpython().iter().all(|b| b.is_cpython()));
    /// ```
    pub fn cpython() -> Vec<Backend> {
        vec![Backend::CpythonThreads, Backend::CpythonProcess]
    }

    /// Whether this is one of CPython's executors.
    ///
    /// ```
    /// assert!(!scenarios::Backend::Threads.is_cpython());
    /// ```
    pub fn is_cpython(self) -> bool {
        matches!(self, Backend::CpythonThreads | Backend::CpythonProcess)
    }

    /// The name used in YAML, on the command line and in reports.
    ///
    /// ```
    /// assert_eq!(scenarios::Backend::Async.name(), "async");
    /// assert_eq!(scenarios::Backend::CpythonProcess.name(), "cpython-process");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Backend::Serial => "serial",
            Backend::Threads => "threads",
            Backend::Process => "process",
            Backend::Async => "async",
            Backend::CpythonThreads => "cpython-threads",
            Backend::CpythonProcess => "cpython-process",
        }
    }

    /// Parses a backend name.
    ///
    /// ```
    /// use scenarios::Backend;
    /// assert_eq!(Backend::from_name("threads"), Some(Backend::Threads));
    /// assert_eq!(Backend::from_name("cpython-threads"), Some(Backend::CpythonThreads));
    /// assert_eq!(Backend::from_name("gpu"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Backend> {
        Backend::all()
            .into_iter()
            .chain(Backend::cpython())
            .find(|b| b.name() == name)
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What every run's results must be. Each field is optional; at least one must be given.
///
/// ```
/// let s = scenarios::Scenario::parse("e.yaml", "
/// name: e
/// workload: {faults: {tasks: 10, panic_every: 5, error_every: 3}}
/// expect: {ok: 6, failed: 2, panicked: 2}
/// ").unwrap();
/// assert_eq!(s.expect.panicked, Some(2));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Tasks that succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok: Option<usize>,
    /// Tasks that returned an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<usize>,
    /// Tasks that panicked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub panicked: Option<usize>,
    /// Results that are `true` (primes found).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primes: Option<usize>,
    /// Every result in input order (`primes` workload: is each number prime?).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Vec<bool>>,
    /// Bytes downloaded whose size and checksum matched (`io-fanout`, `azure-blobs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_bytes: Option<u64>,
}
