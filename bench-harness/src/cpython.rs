//! CPython side by side: the same scenario rows on `concurrent.futures`.
//!
//! The harness writes its embedded Python script (`cpython_runner.py`) to a temporary file and
//! runs it once per row with the row's parameters as JSON on stdin; the script times the runs
//! itself (`time.perf_counter` around submitting every task and collecting every result, as the
//! Rust side does) and prints the durations and the last run's results, which the harness checks
//! against the scenario's `expect:` exactly like a Rust row.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use scenarios::{Chunking, Digest, Fault, Item, Output, Point, RunEnv, Workload};
use serde::Deserialize;
use serde_json::{Value, json};

const SCRIPT: &str = include_str!("cpython_runner.py");

/// The environment variable that names the Python interpreter (default `python3`).
pub const PYTHON_ENV: &str = "BENCH_HARNESS_PYTHON";

/// A CPython interpreter, found and ready to run rows.
///
/// ```
/// match bench_harness::Python::find() {
///     Ok(python) => assert!(python.version().starts_with('3')),
///     Err(why) => assert!(why.contains("python3"), "{why}"),
/// }
/// ```
#[derive(Debug)]
pub struct Python {
    program: String,
    version: String,
    script: PathBuf,
}

/// Which `concurrent.futures` executor runs a row.
///
/// ```
/// assert_eq!(bench_harness::PythonExecutor::Process.name(), "process");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PythonExecutor {
    /// `ThreadPoolExecutor`.
    Threads,
    /// `ProcessPoolExecutor` (fork start method on Linux).
    Process,
}

impl PythonExecutor {
    /// `threads` or `process`.
    ///
    /// ```
    /// assert_eq!(bench_harness::PythonExecutor::Threads.name(), "threads");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            PythonExecutor::Threads => "threads",
            PythonExecutor::Process => "process",
        }
    }
}

/// One row's outcome from CPython: the timed runs' durations and the last run's results.
#[derive(Debug)]
pub struct PythonRun {
    /// Seconds per timed run.
    pub times: Vec<f64>,
    /// The last run's per-task results, in input order.
    pub items: Vec<Item>,
}

#[derive(Deserialize)]
struct Answer {
    times: Vec<f64>,
    items: Vec<(String, Value)>,
}

impl Python {
    /// Finds the interpreter (`$BENCH_HARNESS_PYTHON`, else `python3` on `PATH`) and checks that
    /// it runs; the error says what was tried.
    ///
    /// ```
    /// let _ = bench_harness::Python::find(); // Ok on a machine with python3
    /// ```
    pub fn find() -> Result<Python, String> {
        let program = std::env::var(PYTHON_ENV).unwrap_or_else(|_| "python3".to_string());
        let out = Command::new(&program)
            .args([
                "-c",
                "import sys, concurrent.futures; print(sys.version.split()[0])",
            ])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("`{program}` (python3, or ${PYTHON_ENV}) cannot be run: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "`{program}` (python3, or ${PYTHON_ENV}) failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let script = std::env::temp_dir().join(format!(
            "bench-harness-cpython-{}-{}.py",
            std::process::id(),
            SCRIPT_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::write(&script, SCRIPT)
            .map_err(|e| format!("cannot write {}: {e}", script.display()))?;
        Ok(Python {
            program,
            version,
            script,
        })
    }

    /// The interpreter's version (`3.11.7`).
    ///
    /// ```
    /// if let Ok(p) = bench_harness::Python::find() { assert!(p.version().contains('.')); }
    /// ```
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Runs one row: `warmup` untimed and `repeats` timed runs of `workload` on a
    /// `max_workers`-sized executor. A run that takes longer than the timeout is killed. `env`
    /// says where the blobs are: the loopback blob server (`io-fanout`), or the container the
    /// set-up filled (`azure-blobs`: each task GETs one blob's SAS URL with urllib).
    ///
    /// CPython has no automatic chunk size: a [`Chunking::Auto`] point is an error where the
    /// chunk size matters (`ProcessPoolExecutor.map`), and runs with the default of 1 where it
    /// is ignored (`ThreadPoolExecutor`, and the workloads run with `submit`).
    ///
    /// ```
    /// use scenarios::{Chunking, Point, RunEnv, Workload, Output};
    /// use bench_harness::{Python, PythonExecutor};
    /// if let Ok(python) = Python::find() {
    ///     let point = Point { max_workers: 2, chunksize: Chunking::Fixed(1), buffersize: None };
    ///     let w = Workload::Primes { numbers: vec![7, 8] };
    ///     let env = RunEnv::new(None);
    ///     let run = python.run(&w, PythonExecutor::Threads, &point, 0, 1, 60.0, &env).unwrap();
    ///     assert_eq!(run.times.len(), 1);
    ///     assert_eq!(run.items, vec![Ok(Output::Bool(true)), Ok(Output::Bool(false))]);
    ///     let auto = Point { chunksize: Chunking::Auto, ..point };
    ///     let e = python.run(&w, PythonExecutor::Process, &auto, 0, 1, 60.0, &env).unwrap_err();
    ///     assert!(e.contains("no automatic chunk size"), "{e}");
    /// }
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        workload: &Workload,
        executor: PythonExecutor,
        point: &Point,
        warmup: usize,
        repeats: usize,
        timeout_s: f64,
        env: &RunEnv,
    ) -> Result<PythonRun, String> {
        let chunksize = match point.chunksize {
            Chunking::Fixed(n) => n,
            Chunking::Auto if executor == PythonExecutor::Process && python_uses_map(workload) => {
                return Err(
                    "CPython's ProcessPoolExecutor.map has no automatic chunk size (`auto`)"
                        .to_string(),
                );
            }
            // Ignored here (ThreadPoolExecutor.map, or submit per task): Python's default.
            Chunking::Auto => 1,
        };
        let azure_urls: Option<Vec<String>> = env
            .azure()
            .filter(|_| matches!(workload, Workload::AzureBlobs { .. }))
            .map(|c| c.tasks().map(|t| t.blob_url()).collect());
        let config = json!({
            "workload": workload_json(workload),
            "executor": executor.name(),
            "max_workers": point.max_workers,
            "chunksize": chunksize,
            "buffersize": point.buffersize,
            "warmup": warmup,
            "repeats": repeats,
            "timeout_s": timeout_s,
            "blob_url": env.blob_url(),
            "azure_urls": azure_urls,
        });
        let mut child = Command::new(&self.program)
            .arg(&self.script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.program))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(config.to_string().as_bytes())
                .map_err(|e| format!("cannot send the row to python: {e}"))?;
        }
        // Read both pipes on their own threads, so a chatty child never blocks on a full pipe.
        let mut stdout = child.stdout.take().ok_or("python's stdout is missing")?;
        let mut stderr = child.stderr.take().ok_or("python's stderr is missing")?;
        let out = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        });
        let err = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let limit = Duration::from_secs_f64(timeout_s * (warmup + repeats) as f64 + 60.0);
        let start = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if start.elapsed() > limit => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "python ran past {:.0} s and was killed",
                        limit.as_secs_f64()
                    ));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => return Err(format!("cannot wait for python: {e}")),
            }
        };
        let stdout = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
        if !status.success() {
            let last = stderr.lines().last().unwrap_or("").to_string();
            return Err(format!("python {status}: {last}"));
        }
        let answer: Answer = serde_json::from_str(&stdout)
            .map_err(|e| format!("python's answer cannot be read: {e}"))?;
        Ok(PythonRun {
            times: answer.times,
            items: answer.items.into_iter().map(item).collect(),
        })
    }
}

static SCRIPT_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Drop for Python {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.script);
    }
}

fn workload_json(workload: &Workload) -> Value {
    match workload {
        Workload::Primes { numbers } => json!({"primes": {"numbers": numbers}}),
        Workload::PrimeRange { start, count } => {
            json!({"prime-range": {"start": start, "count": count}})
        }
        Workload::Noop { tasks } => json!({"noop": {"tasks": tasks}}),
        Workload::IoFanout {
            blobs,
            size_kib,
            latency_ms,
        } => json!({"io-fanout": {"blobs": blobs, "size_kib": size_kib, "latency_ms": latency_ms}}),
        Workload::AzureBlobs {
            images,
            width,
            height,
        } => json!({"azure-blobs": {"images": images, "width": width, "height": height}}),
        Workload::Faults {
            tasks,
            panic_every,
            error_every,
        } => {
            json!({"faults": {"tasks": tasks, "panic_every": panic_every, "error_every": error_every}})
        }
    }
}

fn item((tag, value): (String, Value)) -> Item {
    // A failed download's message could quote a blob's SAS URL: never keep its signature.
    let message = || {
        scenarios::azure::scrub(
            &value
                .as_str()
                .map_or_else(|| value.to_string(), String::from),
        )
    };
    match tag.as_str() {
        "ok" => match &value {
            Value::Bool(b) => Ok(Output::Bool(*b)),
            Value::Number(n) => n
                .as_u64()
                .map(Output::U64)
                .ok_or_else(|| Fault::Failed(format!("python returned {n}"))),
            Value::Array(a) => match (
                a.first().and_then(Value::as_u64),
                a.get(1).and_then(Value::as_u64),
            ) {
                (Some(len), Some(crc)) => Ok(Output::Digest(Digest {
                    len,
                    checksum: crc as u32,
                })),
                _ => Err(Fault::Failed(format!("python returned {value}"))),
            },
            other => Err(Fault::Failed(format!("python returned {other}"))),
        },
        "panic" => Err(Fault::Panicked(message())),
        _ => Err(Fault::Failed(message())),
    }
}

/// Whether CPython runs this workload with `map` (so `chunksize` matters) or with `submit` and
/// `result` per task (no-ops, and faults: Python's `map` stops at the first exception, which
/// would lose the other results).
pub(crate) fn python_uses_map(workload: &Workload) -> bool {
    !matches!(workload, Workload::Noop { .. } | Workload::Faults { .. })
}
