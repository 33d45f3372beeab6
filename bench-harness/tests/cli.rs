//! The `bench-harness` binary end to end: real runs (quick), exit codes, files written, errors.

use std::path::Path;
use std::process::{Command, Output};

use bench_harness::report::read_jsonl;

fn harness(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bench-harness"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the harness binary starts")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_quick_run_prints_a_table_and_writes_every_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = harness(
        &["run", "primes", "faults", "--quick", "--out", "res"],
        dir.path(),
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    for needle in [
        "primes", "faults", "serial", "threads", "process", "async", "speedup",
    ] {
        assert!(stdout.contains(needle), "table lacks {needle}:\n{stdout}");
    }
    let res = dir.path().join("res");
    let records = read_jsonl(&res.join("results.jsonl")).unwrap();
    // primes quick: serial + 3 backends × 1 point; faults: serial + 3 × 2 chunk sizes; and
    // CPython's two executors (faults: submit per task, so one row each).
    let cpython = records
        .iter()
        .filter(|r| r.backend.starts_with("cpython-"))
        .count();
    assert_eq!(records.len(), 4 + 7 + cpython);
    assert_eq!(cpython, 4, "python3 runs the same scenarios side by side");
    assert!(
        records
            .iter()
            .filter(|r| ["threads", "process", "async"].contains(&r.backend.as_str()))
            .all(|r| r.vs_cpython.is_some())
    );
    assert!(records.iter().all(|r| r.check_passed()));
    let csv = std::fs::read_to_string(res.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + records.len());
    let md = std::fs::read_to_string(res.join("results.md")).unwrap();
    assert!(md.contains("## primes") && md.contains("## faults"), "{md}");
    assert!(res.join("primes.svg").exists());
    assert!(res.join("faults-chunksize.svg").exists());
}

#[test]
fn a_wrong_result_fails_the_run_but_keeps_every_row() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wrong.yaml"),
        "name: wrong\nworkload: {primes: {numbers: [7, 8]}}\nbackends: [serial, threads]\n\
         matrix: {max_workers: [1]}\nexpect: {primes: 2}\n",
    )
    .unwrap();
    let out = harness(
        &["run", "--file", "wrong.yaml", "--quick", "--out", "res"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("FAILED wrong / serial"),
        "{}",
        text(&out.stderr)
    );
    let records = read_jsonl(&dir.path().join("res/results.jsonl")).unwrap();
    assert_eq!(
        records.len(),
        4,
        "every row was written (serial, threads, 2 × CPython)"
    );
    assert!(
        records
            .iter()
            .all(|r| r.check == "expected primes = 2, got 1")
    );
}

#[test]
fn validate_names_file_line_and_field_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("typo.yaml"),
        "name: t\nworkload: {noop: {tasks: 3}}\nexpect: {ok: 3}\nmatrix:\n  chunk_size: [2]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("good.yaml"),
        "name: g\nworkload: {noop: {tasks: 3}}\nexpect: {ok: 3}\n",
    )
    .unwrap();
    let out = harness(&["validate", "good.yaml", "typo.yaml"], dir.path());
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("ok      good.yaml (g)"), "{stdout}");
    assert!(
        stdout.contains("INVALID typo.yaml:5:3: matrix.chunk_size: unknown field `chunk_size`"),
        "{stdout}"
    );

    let out = harness(&["validate"], dir.path());
    assert!(out.status.success(), "the built-in scenarios are valid");
    assert_eq!(text(&out.stdout).lines().count(), scenarios::BUILTIN.len());
}

#[test]
fn a_bad_scenario_file_stops_the_run_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        "name: b\nworkload: {noop: {tasks: 3}}\nexpect: {ok: 3}\nrepeats: 0\n",
    )
    .unwrap();
    let out = harness(&["run", "--file", "bad.yaml"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("bad.yaml:4:10: repeats: must be at least 1"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn unknown_names_and_backends_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = harness(&["run", "primez"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no scenario named `primez` (known: primes, io-fanout"),
        "{}",
        text(&out.stderr)
    );
    let out = harness(&["run", "--backend", "gpu"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown backend `gpu`"));
}

#[test]
fn list_shows_every_builtin_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let out = harness(&["list"], dir.path());
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    for s in scenarios::builtin().unwrap() {
        assert!(stdout.contains(&s.name), "{stdout}");
    }
}

#[test]
fn compare_exits_non_zero_on_a_regression_only() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, median: f64| {
        let mut r = bench_harness::Record::example();
        r.median_s = median;
        let line = serde_json::to_string(&r).unwrap();
        std::fs::write(dir.path().join(name), format!("{line}\n")).unwrap();
    };
    write("old.jsonl", 1.0);
    write("same.jsonl", 1.05);
    write("slow.jsonl", 1.5);
    let out = harness(&["compare", "old.jsonl", "same.jsonl"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stdout));
    let out = harness(&["compare", "old.jsonl", "slow.jsonl"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("REGRESSION"),
        "{}",
        text(&out.stdout)
    );
    let out = harness(
        &["compare", "old.jsonl", "slow.jsonl", "--threshold", "60"],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "50 % slower is within a 60 % threshold"
    );
    let out = harness(&["compare", "old.jsonl", "missing.jsonl"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("missing.jsonl"));
}

#[test]
fn without_python_the_run_says_so_and_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_bench-harness"))
        .args(["run", "primes", "--quick", "--out", "res"])
        .env(bench_harness::PYTHON_ENV, "/nonexistent/python3")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("no CPython side by side: `/nonexistent/python3`"),
        "{stderr}"
    );
    let records = read_jsonl(&dir.path().join("res/results.jsonl")).unwrap();
    assert_eq!(records.len(), 4, "serial + the three Rust backends");
    assert!(records.iter().all(|r| r.vs_cpython.is_none()));
}

#[test]
fn no_cpython_skips_python() {
    let dir = tempfile::tempdir().unwrap();
    let out = harness(
        &["run", "overhead", "--quick", "--no-cpython", "--out", "res"],
        dir.path(),
    );
    assert!(out.status.success());
    assert!(!text(&out.stderr).contains("CPython"));
    let records = read_jsonl(&dir.path().join("res/results.jsonl")).unwrap();
    assert!(records.iter().all(|r| !r.backend.starts_with("cpython")));
}

/// Runs `run azure-blobs overhead --quick --no-cpython --out res` in `dir`, with no storage
/// account in the environment and what `configure` adds.
fn azure_and_overhead(dir: &Path, configure: impl FnOnce(&mut Command) -> &mut Command) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bench-harness"));
    command
        .args([
            "run",
            "azure-blobs",
            "overhead",
            "--quick",
            "--no-cpython",
            "--out",
            "res",
        ])
        .env_remove(scenarios::azure::CONTAINER_SAS_URL_ENV)
        .env_remove(scenarios::azure::CONNECTION_STRING_ENV)
        .current_dir(dir);
    configure(&mut command).output().unwrap()
}

/// A `$AZURITE_BLOB_BIN` that does not exist is a configuration error: the rows fail (unlike a
/// machine without Node.js, where they are skipped).
#[test]
fn without_azurite_the_azure_rows_fail_saying_why_and_the_run_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let out = azure_and_overhead(dir.path(), |c| {
        c.env(
            bench_harness::azurite::AZURITE_BIN_ENV,
            "/nonexistent/azurite-blob",
        )
    });
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "azure-blobs set-up failed: $AZURITE_BLOB_BIN is /nonexistent/azurite-blob, which does not exist"
        ),
        "{stderr}"
    );
    let records = read_jsonl(&dir.path().join("res/results.jsonl")).unwrap();
    let (azure, rest): (Vec<_>, Vec<_>) = records.iter().partition(|r| r.scenario == "azure-blobs");
    assert_eq!(azure.len(), 4, "one failed row per backend");
    assert!(
        azure
            .iter()
            .all(|r| r.check.contains("set-up failed") && r.failed() && !r.skipped)
    );
    assert!(!rest.is_empty() && rest.iter().all(|r| r.check_passed()));
    assert!(!stderr.contains("SKIPPED"), "{stderr}");
}

/// On a machine without Node.js (no `node`, no `npm` on PATH) and nothing else named, the
/// azure-blobs rows are skipped, saying what to install, and the run succeeds. This holds even
/// where Azurite is installed in the workspace (as `.ci/run` does): it cannot run without node.
#[test]
fn without_node_the_azure_rows_are_skipped_saying_why_and_the_run_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    // A PATH with nothing on it: the harness needs nothing from PATH for `overhead` (the
    // process pool runs this same binary by its path).
    let bin = tempfile::tempdir().unwrap();
    let out = azure_and_overhead(dir.path(), |c| {
        c.env("PATH", bin.path())
            .env_remove(bench_harness::azurite::AZURITE_BIN_ENV)
    });
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let skipped_lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("SKIPPED"))
        .collect();
    assert_eq!(
        skipped_lines.len(),
        1,
        "once per scenario, not per row: {stderr}"
    );
    assert!(
        skipped_lines[0].starts_with("SKIPPED azure-blobs: azure-blobs needs Node.js"),
        "{stderr}"
    );
    assert!(
        skipped_lines[0].contains("apt-get install nodejs npm"),
        "{stderr}"
    );
    assert!(skipped_lines[0].contains("$AZURITE_BLOB_BIN"), "{stderr}");
    assert!(!stderr.contains("FAILED"), "{stderr}");
    assert!(
        !stderr.contains("installing"),
        "npm was not tried: {stderr}"
    );

    let res = dir.path().join("res");
    let records = read_jsonl(&res.join("results.jsonl")).unwrap();
    let (azure, rest): (Vec<_>, Vec<_>) = records.iter().partition(|r| r.scenario == "azure-blobs");
    assert_eq!(azure.len(), 4, "one skipped row per backend");
    for r in &azure {
        assert!(r.skipped && !r.failed() && !r.check_passed(), "{r:?}");
        assert!(
            r.check.starts_with("skipped: azure-blobs needs Node.js"),
            "{r:?}"
        );
        assert!(r.median_s.is_nan() && r.repeats == 0, "{r:?}");
    }
    assert!(!rest.is_empty() && rest.iter().all(|r| r.check_passed() && !r.skipped));

    let md = std::fs::read_to_string(res.join("results.md")).unwrap();
    let summary = md.lines().nth(2).unwrap();
    assert!(
        summary.ends_with("every check that ran passed; 4 rows skipped."),
        "{summary}"
    );
    assert!(!md.contains("failed"), "{md}");
    assert!(
        md.contains("- skipped: `azure-blobs` (4 rows): azure-blobs needs Node.js"),
        "{md}"
    );
    let stdout = text(&out.stdout);
    assert!(stdout.contains("skipped: azure-blobs needs"), "{stdout}");
}
