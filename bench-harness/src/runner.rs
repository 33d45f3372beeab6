//! Runs scenarios: each backend at each matrix point, warm-up then timed repeats, one
//! [`Record`] per row, handed over the moment it is measured.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use backend_async::AsyncExecutor;
use backend_process::ProcessPoolExecutor;
use backend_threads::ThreadPoolExecutor;
use executor_core::{Shutdown, ShutdownOptions};
use indicatif::{ProgressBar, ProgressStyle};
use scenarios::{Backend, Chunking, Point, RunEnv, RunError, RunOutput, Scenario, Tally, Workload};

use crate::Record;
use crate::azurite::{AzureSetup, SetupError};
use crate::cpython::{Python, PythonExecutor, python_uses_map};
use crate::server::BlobServer;

/// How to run: quick mode, which backends, repeat counts, progress bar.
///
/// ```
/// let o = bench_harness::RunOptions::default();
/// assert!(!o.quick && o.backends.is_empty());
/// ```
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Run each scenario's `quick:` version, once, without warm-up (the regression tests).
    pub quick: bool,
    /// Only these backends (empty: each scenario's own list).
    pub backends: Vec<Backend>,
    /// Override every scenario's `repeats`.
    pub repeats: Option<usize>,
    /// Override every scenario's `warmup`.
    pub warmup: Option<usize>,
    /// Show a progress bar on stderr (only drawn on a terminal).
    pub progress: bool,
    /// CPython side by side: `Some(true)` adds `cpython-threads` and `cpython-process` to every
    /// scenario, `Some(false)` removes them, `None` keeps each scenario's own list. Where no
    /// `python3` can be run, the harness says so once and runs the rest.
    pub cpython: Option<bool>,
}

/// Why a whole run stopped (a row's failures are in its record instead).
///
/// ```
/// let e = bench_harness::HarnessError("cannot start the blob server".into());
/// assert_eq!(e.to_string(), "cannot start the blob server");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HarnessError(pub String);

impl std::fmt::Display for HarnessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HarnessError {}

/// This machine's usable cores (the physical limit for CPU work).
///
/// ```
/// assert!(bench_harness::cores() >= 1);
/// ```
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// The scenario as it will run under `options` (quick mode, overrides applied).
///
/// ```
/// let s = scenarios::builtin().unwrap().remove(0);
/// let o = bench_harness::RunOptions { quick: true, ..Default::default() };
/// assert_eq!(bench_harness::effective(&s, &o).repeats, 1);
/// ```
pub fn effective(scenario: &Scenario, options: &RunOptions) -> Scenario {
    let mut s = if options.quick {
        scenario.quick_mode()
    } else {
        scenario.clone()
    };
    match options.cpython {
        Some(true) => {
            for b in Backend::cpython() {
                if !s.backends.contains(&b) {
                    s.backends.push(b);
                }
            }
        }
        Some(false) => s.backends.retain(|b| !b.is_cpython()),
        None => {}
    }
    if !options.backends.is_empty() {
        s.backends.retain(|b| {
            options.backends.contains(b) || (b.is_cpython() && options.cpython == Some(true))
        });
    }
    // Serial first (the baseline), CPython next (the Rust rows report their ratio to it).
    s.backends.sort_by_key(|b| match b {
        Backend::Serial => 0,
        b if b.is_cpython() => 1,
        _ => 2,
    });
    if let Some(r) = options.repeats {
        s.repeats = r.max(1);
    }
    if let Some(w) = options.warmup {
        s.warmup = w;
    }
    s
}

/// How many rows a scenario makes under `options` (serial: one; other backends: one per point).
///
/// ```
/// let s = scenarios::builtin().unwrap().remove(0); // primes: 4 backends, 3 pool sizes
/// assert_eq!(bench_harness::rows(&s, &Default::default()), 1 + 3 * 3);
/// ```
pub fn rows(scenario: &Scenario, options: &RunOptions) -> usize {
    let s = effective(scenario, options);
    s.backends.iter().map(|b| points_of(&s, *b).len()).sum()
}

/// The matrix points a backend runs: one for serial; where chunksize does not apply (CPython's
/// thread pool ignores it; CPython rows run with `submit` have none), one per distinct pool size
/// and buffer size; on CPython's process pool, none with `auto`.
fn points_of(scenario: &Scenario, backend: Backend) -> Vec<Option<Point>> {
    if backend == Backend::Serial {
        return vec![None];
    }
    let mut points: Vec<Point> = scenario.matrix.points();
    // CPython's ThreadPoolExecutor ignores chunksize, and rows run with submit have none.
    let chunksize_applies =
        backend == Backend::CpythonProcess && python_uses_map(&scenario.workload);
    if chunksize_applies {
        // CPython's map has no automatic chunk size (its `chunksize` is a number, default 1),
        // so there is nothing to run for `auto`: the Rust auto rows are compared with
        // CPython's fastest fixed chunk size instead (see `vs_cpython` in `run`).
        points.retain(|p| !p.chunksize.is_auto());
    }
    if backend.is_cpython() && !chunksize_applies {
        let mut seen = Vec::new();
        points.retain(|p| {
            let key = (p.max_workers, p.buffersize);
            let new = !seen.contains(&key);
            seen.push(key);
            new
        });
    }
    points.into_iter().map(Some).collect()
}

/// Runs every scenario under `options`, calling `on_record` with each row as soon as it is
/// measured (so a sink can write it before the next row starts). Returns every record.
///
/// A scenario that cannot run on this machine (`azure-blobs` without Node.js for Azurite; see
/// [`AzureSetup::prepare`]) still gives one record per row, [`skipped`](Record::skipped), with
/// the reason in its check; a set-up that failed gives failed rows saying why.
///
/// ```
/// let s = scenarios::Scenario::parse("t.yaml", "
/// name: t
/// workload: {primes: {numbers: [7, 9]}}
/// backends: [serial, threads]
/// matrix: {max_workers: [2]}
/// repeats: 1
/// warmup: 0
/// expect: {outputs: [true, false]}
/// ").unwrap();
/// let mut seen = 0;
/// let records = bench_harness::run(&[s], &Default::default(), |_| { seen += 1; Ok(()) }).unwrap();
/// assert_eq!((records.len(), seen), (2, 2));
/// assert!(records.iter().all(|r| r.check_passed()));
/// ```
pub fn run(
    scenarios: &[Scenario],
    options: &RunOptions,
    mut on_record: impl FnMut(&Record) -> std::io::Result<()>,
) -> Result<Vec<Record>, HarnessError> {
    let mut plans: Vec<Scenario> = scenarios.iter().map(|s| effective(s, options)).collect();
    let python = if plans
        .iter()
        .any(|s| s.backends.iter().any(|b| b.is_cpython()))
    {
        match Python::find() {
            Ok(python) => {
                eprintln!(
                    "bench-harness: CPython {} runs the same scenarios side by side",
                    python.version()
                );
                Some(python)
            }
            Err(why) => {
                eprintln!("bench-harness: no CPython side by side: {why}; running the rest");
                for plan in &mut plans {
                    plan.backends.retain(|b| !b.is_cpython());
                }
                None
            }
        }
    } else {
        None
    };
    let total_runs: usize = plans
        .iter()
        .map(|s| {
            s.backends
                .iter()
                .map(|b| points_of(s, *b).len())
                .sum::<usize>()
                * (s.warmup + s.repeats)
        })
        .sum();
    let bar = if options.progress {
        let bar = ProgressBar::new(total_runs as u64);
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} runs  {msg}")
                .map_err(|e| HarnessError(e.to_string()))?
                .progress_chars("=> "),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut records = Vec::new();
    for scenario in &plans {
        let server = match &scenario.workload {
            Workload::IoFanout { latency_ms, .. } => Some(
                BlobServer::start(Duration::from_millis(*latency_ms))
                    .map_err(|e| HarnessError(format!("cannot start the blob server: {e}")))?,
            ),
            _ => None,
        };
        let mut env = RunEnv::new(server.as_ref().map(BlobServer::base_url));
        // The azure-blobs set-up (not timed): Azurite or the account in the environment, and
        // the images uploaded. `_azure` keeps the harness's Azurite running until the
        // scenario's last row, and stops it when dropped (however this iteration ends). Without
        // it every row says why instead: skipped where Azurite cannot run on this machine
        // (no Node.js), failed otherwise.
        let (_azure, no_setup) = match &scenario.workload {
            Workload::AzureBlobs {
                images,
                width,
                height,
            } => {
                bar.set_message(format!(
                    "{}: set-up, uploading {images} images",
                    scenario.name
                ));
                match AzureSetup::prepare(*images, *width, *height) {
                    Ok(setup) => {
                        bar.suspend(|| {
                            eprintln!("bench-harness: {} uses {}", scenario.name, setup.place)
                        });
                        env = env.with_azure(setup.container.clone());
                        (Some(setup), None)
                    }
                    Err(SetupError::Unavailable(why)) => {
                        (None, Some((format!("skipped: {why}"), true)))
                    }
                    Err(SetupError::Failed(why)) => (
                        None,
                        Some((format!("{} set-up failed: {why}", scenario.name), false)),
                    ),
                }
            }
            _ => (None, None),
        };
        let mut serial_median = None;
        let mut python_medians: HashMap<(PythonExecutor, usize, Option<usize>), f64> =
            HashMap::new();
        for backend in &scenario.backends {
            for point in points_of(scenario, *backend) {
                bar.set_message(format!(
                    "{} on {}{}",
                    scenario.name,
                    backend,
                    point.map_or(String::new(), |p| format!(
                        " (workers {}, chunksize {})",
                        p.max_workers, p.chunksize
                    ))
                ));
                let mut record = match (python.as_ref(), point, &no_setup) {
                    (_, _, Some((why, skipped))) => {
                        // Nothing to run against: every row says why, and the run goes on.
                        bar.inc((scenario.warmup + scenario.repeats) as u64);
                        let uses_map = if backend.is_cpython() {
                            *backend == Backend::CpythonProcess
                                && python_uses_map(&scenario.workload)
                        } else {
                            !(*backend == Backend::Async && scenario.workload.is_io())
                        };
                        let mut record = blank_record(scenario, *backend, point, uses_map);
                        record.check = why.clone();
                        record.skipped = *skipped;
                        record
                    }
                    (Some(python), Some(point), None) if backend.is_cpython() => {
                        measure_python(python, scenario, *backend, point, &env, serial_median, &bar)
                    }
                    _ => measure(scenario, *backend, point, &env, serial_median, &bar),
                };
                let executor = if matches!(backend, Backend::Process | Backend::CpythonProcess) {
                    PythonExecutor::Process
                } else {
                    PythonExecutor::Threads
                };
                if backend.is_cpython() {
                    if record.check_passed() {
                        python_medians.insert(
                            (executor, record.max_workers.unwrap_or(1), record.chunksize),
                            record.median_s,
                        );
                    }
                } else if *backend != Backend::Serial && record.median_s.is_finite() {
                    let workers = record.max_workers.unwrap_or(1);
                    // The same chunk size, else a row without one (ThreadPoolExecutor, submit).
                    // An `auto` row has no fixed size: it meets CPython at its best, the fastest
                    // chunk size CPython ran at this point (the ratio is then a floor).
                    let python = if record.chunksize_auto {
                        python_medians
                            .iter()
                            .filter(|((e, w, _), _)| *e == executor && *w == workers)
                            .map(|(_, median)| *median)
                            .min_by(f64::total_cmp)
                    } else {
                        [record.chunksize, None]
                            .iter()
                            .find_map(|c| python_medians.get(&(executor, workers, *c)))
                            .copied()
                    };
                    record.vs_cpython = python.map(|p| p / record.median_s);
                }
                if *backend == Backend::Serial && record.check_passed() {
                    serial_median = Some(record.median_s);
                }
                on_record(&record)
                    .map_err(|e| HarnessError(format!("cannot write results: {e}")))?;
                records.push(record);
            }
        }
    }
    bar.finish_and_clear();
    Ok(records)
}

enum Executor {
    Serial,
    Threads(ThreadPoolExecutor),
    Process(ProcessPoolExecutor),
    Async(AsyncExecutor),
}

impl Executor {
    fn build(backend: Backend, workers: usize) -> Result<Executor, String> {
        Ok(match backend {
            Backend::Serial => Executor::Serial,
            Backend::Threads => {
                Executor::Threads(ThreadPoolExecutor::new(workers).map_err(|e| e.to_string())?)
            }
            Backend::Process => {
                Executor::Process(ProcessPoolExecutor::new(workers).map_err(|e| e.to_string())?)
            }
            Backend::Async => {
                Executor::Async(AsyncExecutor::new(workers).map_err(|e| e.to_string())?)
            }
            Backend::CpythonThreads | Backend::CpythonProcess => {
                return Err("CPython rows are run by the Python script".into());
            }
        })
    }

    fn run(
        &self,
        workload: &Workload,
        point: &Point,
        timeout: Duration,
        env: &RunEnv,
    ) -> Result<RunOutput, RunError> {
        match self {
            Executor::Serial => scenarios::run_serial(workload, env).map(|items| RunOutput {
                items,
                chunksize: None,
            }),
            Executor::Threads(p) => scenarios::run_on(p, workload, point, timeout, env),
            Executor::Process(p) => scenarios::run_on(p, workload, point, timeout, env),
            Executor::Async(p) => scenarios::run_async(p, workload, point, timeout, env),
        }
    }

    fn shutdown(&self) {
        let options = ShutdownOptions::wait().cancel_futures();
        match self {
            Executor::Serial => {}
            Executor::Threads(p) => p.shutdown(options),
            Executor::Process(p) => p.shutdown(options),
            Executor::Async(p) => p.shutdown(options),
        }
    }
}

/// The middle value (the lower of the two middle ones for an even count); `None` if empty.
fn lower_median(values: &mut [usize]) -> Option<usize> {
    values.sort_unstable();
    values.get(values.len().saturating_sub(1) / 2).copied()
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// The physical limit for one row: CPU work spread over the usable cores, or the latency paid
/// once per wave of `concurrency` requests, whichever is larger.
fn ideal(workload: &Workload, workers: usize, serial_median: Option<f64>) -> Option<f64> {
    match workload {
        Workload::IoFanout {
            blobs, latency_ms, ..
        } => {
            let waves = blobs.div_ceil(workers.max(1));
            Some(waves as f64 * *latency_ms as f64 / 1000.0)
        }
        // Azure's latency is not ours to set (nor known): no physical limit to compare with.
        Workload::Noop { .. } | Workload::AzureBlobs { .. } => None,
        Workload::Primes { .. } | Workload::PrimeRange { .. } | Workload::Faults { .. } => {
            serial_median.map(|s| s / workers.clamp(1, cores()) as f64)
        }
    }
}

fn measure(
    scenario: &Scenario,
    backend: Backend,
    point: Option<Point>,
    env: &RunEnv,
    serial_median: Option<f64>,
    bar: &ProgressBar,
) -> Record {
    let workers = point.map_or(1, |p| p.max_workers);
    let run_point = point.unwrap_or(Point {
        max_workers: 1,
        chunksize: Chunking::Fixed(1),
        buffersize: None,
    });
    let submits_one_by_one = matches!(scenario.workload, Workload::Noop { .. })
        || (backend == Backend::Async && scenario.workload.is_io());
    let uses_map = !submits_one_by_one;
    let mut record = blank_record(scenario, backend, point, uses_map);
    let executor = match Executor::build(backend, workers) {
        Ok(e) => e,
        Err(e) => {
            record.check = format!("cannot build the {backend} pool: {e}");
            bar.inc((scenario.warmup + scenario.repeats) as u64);
            return record;
        }
    };
    let timeout = Duration::from_secs_f64(scenario.timeout_s);
    let mut times = Vec::with_capacity(scenario.repeats);
    // The chunk size `map` used in each timed run (with `auto`, what it chose that time).
    let mut chosen = Vec::with_capacity(scenario.repeats);
    let mut problem = None;
    for i in 0..scenario.warmup + scenario.repeats {
        let start = Instant::now();
        let output = executor.run(&scenario.workload, &run_point, timeout, env);
        let elapsed = start.elapsed().as_secs_f64();
        bar.inc(1);
        if i >= scenario.warmup {
            times.push(elapsed);
        }
        let items = match output {
            Ok(RunOutput { items, chunksize }) => {
                if i >= scenario.warmup {
                    chosen.extend(chunksize);
                }
                items
            }
            Err(e) => {
                problem = Some(e.to_string());
                break;
            }
        };
        // The clock has stopped: checking (blob checksums included) is not measured.
        let tally = Tally::of_in(&scenario.workload, &items, env);
        record.failed_tasks = tally.failed + tally.panicked;
        if let Err(e) = tally.check(&scenario.expect) {
            problem = Some(e);
            break;
        }
    }
    executor.shutdown();
    if let Some(p) = problem {
        record.check = p;
    }
    if record.chunksize_auto {
        record.chunksize_chosen = lower_median(&mut chosen);
    }
    finish_record(
        &mut record,
        &scenario.workload,
        times,
        workers,
        backend,
        serial_median,
    );
    record
}

fn blank_record(
    scenario: &Scenario,
    backend: Backend,
    point: Option<Point>,
    uses_map: bool,
) -> Record {
    let mapped = point.filter(|_| uses_map);
    Record {
        scenario: scenario.name.clone(),
        workload: scenario.workload.kind().to_string(),
        backend: backend.name().to_string(),
        max_workers: point.map(|p| p.max_workers),
        chunksize: mapped.and_then(|p| p.chunksize.fixed()),
        chunksize_auto: mapped.is_some_and(|p| p.chunksize.is_auto()),
        chunksize_chosen: None,
        buffersize: mapped.and_then(|p| p.buffersize),
        tasks: scenario.workload.tasks(),
        repeats: 0,
        median_s: f64::NAN,
        min_s: f64::NAN,
        max_s: f64::NAN,
        per_task_us: f64::NAN,
        speedup: None,
        ideal_s: None,
        efficiency: None,
        vs_cpython: None,
        failed_tasks: 0,
        check: "ok".into(),
        skipped: false,
    }
}

/// Median, min, max, per-task time, speedup, ideal and efficiency from the timed runs.
fn finish_record(
    record: &mut Record,
    workload: &Workload,
    mut times: Vec<f64>,
    workers: usize,
    backend: Backend,
    serial_median: Option<f64>,
) {
    if times.is_empty() {
        return;
    }
    times.sort_by(f64::total_cmp);
    record.repeats = times.len();
    record.median_s = median(&times);
    record.min_s = times[0];
    record.max_s = times[times.len() - 1];
    record.per_task_us = record.median_s * 1e6 / record.tasks.max(1) as f64;
    let serial = if backend == Backend::Serial {
        Some(record.median_s)
    } else {
        serial_median
    };
    record.speedup = serial.map(|s| s / record.median_s);
    record.ideal_s = ideal(workload, workers, serial);
    record.efficiency = record.ideal_s.map(|i| i / record.median_s);
}

/// One CPython row: the script times the runs; the harness checks the last run's results.
fn measure_python(
    python: &Python,
    scenario: &Scenario,
    backend: Backend,
    point: Point,
    env: &RunEnv,
    serial_median: Option<f64>,
    bar: &ProgressBar,
) -> Record {
    // ThreadPoolExecutor.map ignores chunksize: its rows have none.
    let chunked = python_uses_map(&scenario.workload) && backend == Backend::CpythonProcess;
    let mut record = blank_record(scenario, backend, Some(point), chunked);
    let executor = if backend == Backend::CpythonProcess {
        PythonExecutor::Process
    } else {
        PythonExecutor::Threads
    };
    let run = python.run(
        &scenario.workload,
        executor,
        &point,
        scenario.warmup,
        scenario.repeats,
        scenario.timeout_s,
        env,
    );
    bar.inc((scenario.warmup + scenario.repeats) as u64);
    match run {
        Ok(run) => {
            let tally = Tally::of_in(&scenario.workload, &run.items, env);
            record.failed_tasks = tally.failed + tally.panicked;
            if let Err(e) = tally.check(&scenario.expect) {
                record.check = e;
            }
            finish_record(
                &mut record,
                &scenario.workload,
                run.times,
                point.max_workers,
                backend,
                serial_median,
            );
        }
        Err(e) => record.check = e,
    }
    record
}
