//! Scenario-driven regression tests: every built-in YAML scenario, in quick mode, on every
//! backend, must produce the results its `expect:` block names (correctness, never timing).

use std::collections::BTreeSet;

use bench_harness::{RunOptions, rows, run};
use scenarios::{Backend, Scenario, Workload};

backend_process::test_worker!();

fn scenario(name: &str) -> Scenario {
    scenarios::builtin()
        .expect("the built-in scenarios parse")
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no built-in scenario `{name}`"))
}

fn quick() -> RunOptions {
    RunOptions {
        quick: true,
        ..RunOptions::default()
    }
}

/// Runs one scenario quick on every backend and checks every row.
fn check(name: &str) {
    let s = scenario(name);
    assert_eq!(
        s.backends,
        Backend::all(),
        "built-in scenarios run on every backend"
    );
    let mut streamed = Vec::new();
    let records = run(std::slice::from_ref(&s), &quick(), |r| {
        streamed.push(r.clone());
        Ok(())
    })
    .expect("the run completes");
    assert_eq!(
        records, streamed,
        "each row is handed over as it is measured"
    );
    assert_eq!(records.len(), rows(&s, &quick()));
    let backends: BTreeSet<&str> = records.iter().map(|r| r.backend.as_str()).collect();
    assert_eq!(
        backends,
        BTreeSet::from(["async", "process", "serial", "threads"])
    );
    for r in &records {
        assert!(r.check_passed(), "{}: {}", r.key(), r.check);
        assert_eq!(r.repeats, 1, "{}", r.key());
        assert!(r.median_s.is_finite() && r.median_s > 0.0, "{}", r.key());
        assert!(r.min_s <= r.median_s && r.median_s <= r.max_s);
        if r.backend != "serial" {
            assert!(r.speedup.is_some(), "{}: speedup against serial", r.key());
        }
    }
}

#[test]
fn primes_quick_on_every_backend() {
    check("primes");
}

#[test]
fn io_fanout_quick_on_every_backend() {
    check("io-fanout");
}

#[test]
fn chunksize_sweep_quick_on_every_backend() {
    check("chunksize-sweep");
}

/// `auto` in the matrix: on every backend that maps, a row keyed `chunksize=auto` that carries
/// the size `map` chose; the table and Markdown show it.
#[test]
fn chunksize_sweep_auto_rows_report_the_size_map_chose() {
    let s = scenario("chunksize-sweep");
    assert!(s.matrix.chunksize.iter().any(|c| c.is_auto()));
    let records = run(&[s], &quick(), |_| Ok(())).unwrap();
    let auto: Vec<_> = records.iter().filter(|r| r.chunksize_auto).collect();
    let backends: BTreeSet<&str> = auto.iter().map(|r| r.backend.as_str()).collect();
    // Serial runs no map; the tokio backend maps CPU work too.
    assert_eq!(backends, BTreeSet::from(["async", "process", "threads"]));
    for r in &auto {
        assert!(r.check_passed(), "{}: {}", r.key(), r.check);
        assert!(r.key().contains("/ chunksize=auto /"), "{}", r.key());
        assert_eq!(r.chunksize, None, "{}", r.key());
        let chosen = r.chunksize_chosen.expect("the size map chose");
        assert!(
            (1..=executor_core::AUTO_CHUNK_MAX).contains(&chosen),
            "{}: {chosen}",
            r.key()
        );
        assert_eq!(r.chunk_label(), format!("auto ({chosen})"));
    }
    // Fixed rows are as before: their size, no flag, nothing chosen.
    for r in records.iter().filter(|r| !r.chunksize_auto) {
        assert_eq!(r.chunksize.is_some(), r.backend != "serial", "{}", r.key());
        assert_eq!(r.chunksize_chosen, None, "{}", r.key());
    }
    let table = bench_harness::report::table(&records);
    for r in &auto {
        assert!(table.contains(&r.chunk_label()), "{table}");
    }
}

#[test]
fn overhead_quick_on_every_backend() {
    check("overhead");
}

#[test]
fn faults_quick_on_every_backend() {
    let s = scenario("faults");
    check("faults");
    // The faults are reported, not hidden: every row counts the failing tasks.
    let small = s.quick_mode();
    let expected = small.expect.failed.unwrap_or(0) + small.expect.panicked.unwrap_or(0);
    assert!(expected > 0);
    let records = run(&[s], &quick(), |_| Ok(())).unwrap();
    assert!(records.iter().all(|r| r.failed_tasks == expected));
}

/// Real images in a real blob store: the harness starts Azurite (no mock), uploads the quick
/// scenario's PNG files through the Azure SDK, downloads them on every backend, and every size
/// and CRC-32 must match what was uploaded.
#[test]
fn azure_blobs_quick_on_every_backend() {
    check("azure-blobs");
    let s = scenario("azure-blobs").quick_mode();
    let Workload::AzureBlobs { images, .. } = s.workload else {
        panic!("azure-blobs is an azure-blobs workload")
    };
    assert!(images > 0 && s.expect.verified_bytes.unwrap_or(0) > 0);
    assert_eq!(s.expect.ok, Some(images), "every image must be verified");
}

#[test]
fn every_builtin_scenario_has_a_test_here() {
    let tested = [
        "primes",
        "io-fanout",
        "chunksize-sweep",
        "overhead",
        "faults",
        "azure-blobs",
    ];
    for s in scenarios::builtin().unwrap() {
        assert!(
            tested.contains(&s.name.as_str()),
            "add a regression test for the new scenario `{}`",
            s.name
        );
    }
}

/// A wrong expectation fails the row with a message saying what differs, and the run goes on
/// to the next row (nothing measured is lost).
#[test]
fn a_wrong_expectation_fails_its_rows_and_the_run_goes_on() {
    let s = Scenario::parse(
        "wrong.yaml",
        "
name: wrong
workload: {primes: {numbers: [7, 8, 9]}}
backends: [serial, threads]
matrix: {max_workers: [1, 2]}
expect: {primes: 2}
",
    )
    .unwrap();
    let records = run(&[s], &quick(), |_| Ok(())).unwrap();
    assert_eq!(records.len(), 3);
    for r in &records {
        assert_eq!(r.check, "expected primes = 2, got 1", "{}", r.key());
        assert!(r.median_s.is_finite(), "the failed run's time is kept");
    }
}

/// A task that outlives the scenario's timeout fails its row instead of hanging the harness.
#[test]
fn a_run_past_its_timeout_fails_instead_of_hanging() {
    let s = Scenario::parse(
        "slow.yaml",
        "
name: slow
workload: {primes: {numbers: [1099726899285419, 1099726899285419, 1099726899285419, 1099726899285419]}}
backends: [threads, process]
matrix: {max_workers: [1]}
timeout_s: 0.001
expect: {ok: 4}
",
    )
    .unwrap();
    let records = run(&[s], &quick(), |_| Ok(())).unwrap();
    for r in &records {
        assert!(
            r.check.contains("timed out") || r.check.contains("imeout"),
            "{}: {}",
            r.key(),
            r.check
        );
    }
}

/// The io-fanout scenario needs a server; the harness starts one on loopback per scenario.
#[test]
fn io_fanout_on_the_async_backend_uses_async_tasks() {
    let s = scenario("io-fanout");
    let options = RunOptions {
        quick: true,
        backends: vec![Backend::Async, Backend::Threads],
        ..RunOptions::default()
    };
    let records = run(&[s], &options, |_| Ok(())).unwrap();
    for r in &records {
        assert!(r.check_passed(), "{}: {}", r.key(), r.check);
        // map (with chunksize) on threads; one async task per download on tokio.
        assert_eq!(r.chunksize.is_none(), r.backend == "async", "{}", r.key());
    }
}

/// CPython's concurrent.futures runs every built-in scenario too (quick), and its results pass
/// the same checks; every Rust row then carries its ratio to CPython. Needs `python3` (CI has it).
#[test]
fn every_scenario_quick_on_cpython_side_by_side() {
    let all = scenarios::builtin().unwrap();
    let options = RunOptions {
        quick: true,
        cpython: Some(true),
        backends: vec![
            Backend::Serial,
            Backend::Threads,
            Backend::CpythonThreads,
            Backend::CpythonProcess,
        ],
        ..RunOptions::default()
    };
    let records = run(&all, &options, |_| Ok(())).unwrap();
    for s in &all {
        for backend in ["cpython-threads", "cpython-process"] {
            assert!(
                records
                    .iter()
                    .any(|r| r.scenario == s.name && r.backend == backend),
                "{} on {backend}",
                s.name
            );
        }
    }
    for r in &records {
        assert!(r.check_passed(), "{}: {}", r.key(), r.check);
        if r.backend == "threads" {
            assert!(r.vs_cpython.is_some(), "{}", r.key());
        }
        // CPython has no automatic chunk size: no CPython row is an `auto` one.
        if r.backend.starts_with("cpython-") {
            assert!(!r.chunksize_auto, "{}", r.key());
        }
    }
    // The sweep's CPython process rows: the fixed sizes only.
    let sweep = scenario("chunksize-sweep").quick_mode();
    let fixed = sweep
        .matrix
        .chunksize
        .iter()
        .filter(|c| !c.is_auto())
        .count();
    let process = records
        .iter()
        .filter(|r| r.scenario == "chunksize-sweep" && r.backend == "cpython-process")
        .count();
    assert_eq!(process, fixed);
    // The Rust `auto` row still meets CPython: its fastest fixed chunk size at that point.
    for r in records.iter().filter(|r| r.chunksize_auto) {
        let python = r.median_s * r.vs_cpython.expect("an auto row meets CPython");
        let fastest = records
            .iter()
            .filter(|p| {
                p.scenario == r.scenario
                    && p.max_workers == r.max_workers
                    && p.backend
                        == if r.backend == "process" {
                            "cpython-process"
                        } else {
                            "cpython-threads"
                        }
            })
            .map(|p| p.median_s)
            .fold(f64::INFINITY, f64::min);
        assert!(
            (python - fastest).abs() <= 1e-9 * fastest.max(1.0),
            "{}: compared with {python} s, CPython's fastest is {fastest} s",
            r.key()
        );
    }
}
