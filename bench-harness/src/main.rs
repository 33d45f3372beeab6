//! `bench-harness`: runs the YAML scenarios on every backend and reports.
//!
//! ```text
//! bench-harness                         # every built-in scenario on every backend
//! bench-harness run primes io-fanout    # some of them
//! bench-harness run azure-blobs         # PNG images from Azure Blob Storage (Azurite, or
//!                                       # $BENCH_AZURE_CONTAINER_SAS_URL / a connection string)
//! bench-harness run --file my.yaml --backend threads,process --quick
//! bench-harness list
//! bench-harness validate scenarios/*.yaml
//! bench-harness compare old/results.jsonl new/results.jsonl --threshold 10
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bench_harness::report::{self, ResultSink};
use bench_harness::{RunOptions, rows};
use clap::{Args, Parser, Subcommand};
use scenarios::{Backend, Scenario, ScenarioError};

/// Runs YAML scenarios (prime checks, I/O fan-out, chunksize sweeps, overhead, faults, images
/// from Azure Blob Storage) on the serial baseline, the thread pool, the process pool and the
/// tokio backend, and reports: a terminal table, JSON lines, CSV, Markdown and SVG charts.
#[derive(Parser)]
#[command(
    name = "bench-harness",
    version,
    args_conflicts_with_subcommands = true,
    after_help = ENVIRONMENT
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenarios (the default when no command is given).
    Run(RunArgs),
    /// List the scenarios with their workload, backends and matrix.
    List(SourceArgs),
    /// Check scenario files without running them; errors name file, line and field.
    Validate {
        /// Scenario files (default: the built-in ones).
        files: Vec<PathBuf>,
    },
    /// Compare two results.jsonl files; exit 1 if any row got slower beyond the threshold or
    /// its check started failing.
    Compare {
        /// The baseline results.jsonl.
        old: PathBuf,
        /// The new results.jsonl.
        new: PathBuf,
        /// Allowed slowdown in percent: a row regresses when new median > old median × (1 + t/100).
        #[arg(long, default_value_t = 10.0)]
        threshold: f64,
    },
}

#[derive(Args, Clone)]
struct SourceArgs {
    /// Read scenarios from these YAML files instead of the built-in ones.
    #[arg(long = "file", short = 'f', value_name = "YAML")]
    files: Vec<PathBuf>,
}

#[derive(Args, Clone)]
struct RunArgs {
    /// Scenarios to run, by name (default: all).
    names: Vec<String>,
    #[command(flatten)]
    source: SourceArgs,
    /// Only these backends (serial, threads, process, async, cpython-threads, cpython-process);
    /// comma-separated or repeated.
    #[arg(long = "backend", short = 'b', value_delimiter = ',', value_parser = parse_backend)]
    backends: Vec<Backend>,
    /// Each scenario's small version, run once without warm-up (checks results, not speed).
    #[arg(long)]
    quick: bool,
    /// Timed runs per row (overrides the scenarios' `repeats`).
    #[arg(long)]
    repeats: Option<usize>,
    /// Untimed warm-up runs per row (overrides the scenarios' `warmup`).
    #[arg(long)]
    warmup: Option<usize>,
    /// Directory for results.jsonl, results.csv, results.md and the charts.
    #[arg(long, default_value = "harness-results")]
    out: PathBuf,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
    /// Do not run CPython's concurrent.futures side by side (by default it runs when `python3`,
    /// or $BENCH_HARNESS_PYTHON, can be run).
    #[arg(long)]
    no_cpython: bool,
}

const ENVIRONMENT: &str = "\
Environment:
  BENCH_HARNESS_PYTHON             the Python for CPython side by side (default: python3)
  AZURITE_BLOB_BIN                 the azurite-blob program for azure-blobs (default: the
                                   workspace's node_modules, else installed with npm into
                                   target/azurite; without Node.js, azure-blobs is skipped)
  BENCH_AZURE_CONTAINER_SAS_URL    run azure-blobs in this container (a SAS URL allowing read,
                                   write, create, list) instead of Azurite
  AZURE_STORAGE_CONNECTION_STRING  run azure-blobs in this account (container bench-harness)
                                   instead of Azurite; https needs --features azure-tls";

fn parse_backend(name: &str) -> Result<Backend, String> {
    Backend::from_name(name).ok_or_else(|| {
        format!(
            "unknown backend `{name}` (expected one of serial, threads, process, async, \
             cpython-threads, cpython-process)"
        )
    })
}

fn main() -> ExitCode {
    // The process pool runs this binary as its workers: in a worker this serves tasks and never
    // returns.
    backend_process::worker_main();
    let cli = Cli::parse();
    let result = match cli.command {
        None => run(cli.run),
        Some(Command::Run(args)) => run(args),
        Some(Command::List(source)) => list(&source),
        Some(Command::Validate { files }) => validate(&files),
        Some(Command::Compare {
            old,
            new,
            threshold,
        }) => compare(&old, &new, threshold),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

fn load(source: &SourceArgs) -> Result<Vec<Scenario>, String> {
    let loaded: Result<Vec<Scenario>, ScenarioError> = if source.files.is_empty() {
        scenarios::builtin()
    } else {
        source.files.iter().map(|f| Scenario::load(f)).collect()
    };
    loaded.map_err(|e| e.to_string())
}

fn run(args: RunArgs) -> Result<ExitCode, String> {
    let mut all = load(&args.source)?;
    if !args.names.is_empty() {
        let known: Vec<String> = all.iter().map(|s| s.name.clone()).collect();
        if let Some(unknown) = args.names.iter().find(|n| !known.contains(n)) {
            return Err(format!(
                "no scenario named `{unknown}` (known: {})",
                known.join(", ")
            ));
        }
        all.retain(|s| args.names.contains(&s.name));
    }
    let options = RunOptions {
        quick: args.quick,
        backends: args.backends.clone(),
        repeats: args.repeats,
        warmup: args.warmup,
        progress: !args.no_progress,
        cpython: Some(!args.no_cpython),
    };
    let total: usize = all.iter().map(|s| rows(s, &options)).sum();
    eprintln!(
        "bench-harness: {} scenario(s), {total} rows, {} core(s){}; results in {}",
        all.len(),
        bench_harness::cores(),
        if args.quick { ", quick mode" } else { "" },
        args.out.display()
    );
    let mut sink = ResultSink::create(&args.out)
        .map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
    let records =
        bench_harness::run(&all, &options, |r| sink.push(r)).map_err(|e| e.to_string())?;
    println!("{}", report::table(&records));
    let written = sink
        .finish()
        .map_err(|e| format!("cannot write reports: {e}"))?;
    for path in written.paths() {
        eprintln!("wrote {}", path.display());
    }
    // Skipped rows (a scenario this machine cannot run) are said once per scenario and do not
    // fail the run.
    let mut skipped: Vec<(&str, &str)> = Vec::new();
    for r in &records {
        if let Some(why) = r.skip_reason()
            && !skipped.iter().any(|(s, w)| *s == r.scenario && *w == why)
        {
            skipped.push((&r.scenario, why));
        }
    }
    for (scenario, why) in &skipped {
        eprintln!("SKIPPED {scenario}: {why}");
    }
    let failed: Vec<_> = records.iter().filter(|r| r.failed()).collect();
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        for r in &failed {
            eprintln!("FAILED {}: {}", r.key(), r.check);
        }
        Ok(ExitCode::from(1))
    }
}

fn list(source: &SourceArgs) -> Result<ExitCode, String> {
    for s in load(source)? {
        let points = s.matrix.points();
        println!(
            "{:<16} {:<12} backends: {:<28} {} point(s), {} task(s)\n    {}",
            s.name,
            s.workload.kind(),
            s.backends
                .iter()
                .map(|b| b.name())
                .collect::<Vec<_>>()
                .join(","),
            points.len(),
            s.workload.tasks(),
            s.description
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn validate(files: &[PathBuf]) -> Result<ExitCode, String> {
    let results: Vec<(String, Result<Scenario, ScenarioError>)> = if files.is_empty() {
        scenarios::BUILTIN
            .iter()
            .map(|(file, text)| {
                let name = format!("scenarios/{file}");
                let parsed = Scenario::parse(&name, text);
                (name, parsed)
            })
            .collect()
    } else {
        files
            .iter()
            .map(|f| (f.display().to_string(), Scenario::load(f)))
            .collect()
    };
    let mut bad = 0;
    for (file, result) in results {
        match result {
            Ok(s) => println!("ok      {file} ({})", s.name),
            Err(e) => {
                bad += 1;
                println!("INVALID {e}");
            }
        }
    }
    Ok(if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn compare(old: &Path, new: &Path, threshold: f64) -> Result<ExitCode, String> {
    if !(threshold.is_finite() && threshold >= 0.0) {
        return Err(format!("--threshold {threshold}: must be a percentage ≥ 0"));
    }
    let old = report::read_jsonl(old).map_err(|e| e.to_string())?;
    let new = report::read_jsonl(new).map_err(|e| e.to_string())?;
    let comparison = report::compare(&old, &new, threshold / 100.0);
    println!("{comparison}");
    Ok(if comparison.regressions() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
