//! Scenario files: the built-in ones are valid, and every kind of mistake is reported with the
//! file, line and field.

use scenarios::{Backend, Chunking, Scenario, ScenarioError, Workers, Workload};

fn err(text: &str) -> ScenarioError {
    Scenario::parse("s.yaml", text).expect_err("this scenario is invalid")
}

const BASE: &str = "name: s\nworkload: {noop: {tasks: 4}}\nexpect: {ok: 4}\n";

#[test]
fn builtin_scenarios_parse_and_cover_the_issue() {
    let all = scenarios::builtin().unwrap();
    let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "primes",
            "io-fanout",
            "chunksize-sweep",
            "overhead",
            "faults",
            "azure-blobs"
        ]
    );
    let primes = &all[0];
    assert_eq!(
        primes.workload,
        Workload::Primes {
            numbers: vec![
                112272535095293,
                112582705942171,
                112272535095293,
                115280095190773,
                115797848077099,
                1099726899285419
            ]
        }
    );
    assert_eq!(
        primes.expect.outputs.as_deref(),
        Some(&[true, true, true, true, true, false][..])
    );
    let sweep = &all[2];
    assert_eq!(
        sweep.matrix.chunksize,
        [
            Chunking::Fixed(1),
            Chunking::Fixed(16),
            Chunking::Fixed(256),
            Chunking::Fixed(4096),
            Chunking::Auto
        ]
    );
    // Quick mode sweeps the same chunk sizes, `auto` included.
    assert_eq!(sweep.quick_mode().matrix.chunksize, sweep.matrix.chunksize);
    assert!(sweep.description.contains("auto"), "{}", sweep.description);
    for s in &all {
        assert_eq!(s.backends, Backend::all(), "{}", s.name);
        assert!(!s.description.is_empty(), "{}", s.name);
    }
}

#[test]
fn the_expected_results_in_the_files_are_true() {
    // The YAML files state expectations by hand; recompute them here so a typo cannot hide.
    for s in scenarios::builtin().unwrap() {
        for (label, s) in [("full", s.clone()), ("quick", s.quick_mode())] {
            let (w, e) = (&s.workload, &s.expect);
            match w {
                Workload::Primes { numbers } => {
                    let outputs: Vec<bool> =
                        numbers.iter().map(|&n| scenarios::is_prime(n)).collect();
                    assert_eq!(e.outputs.as_ref(), Some(&outputs), "{} {label}", s.name);
                }
                Workload::PrimeRange { start, count } => {
                    let primes = (*start..start + count)
                        .filter(|&n| scenarios::is_prime(n))
                        .count();
                    assert_eq!(e.primes, Some(primes), "{} {label}", s.name);
                }
                Workload::Faults {
                    tasks,
                    panic_every,
                    error_every,
                } => {
                    let fates: Vec<_> = (1..=*tasks as u64)
                        .map(|index| {
                            scenarios::Faulty {
                                index,
                                panic_every: *panic_every as u64,
                                error_every: *error_every as u64,
                            }
                            .fate()
                        })
                        .collect();
                    let count = |f: Result<(), bool>| fates.iter().filter(|x| **x == f).count();
                    assert_eq!(e.ok, Some(count(Ok(()))), "{} {label}", s.name);
                    assert_eq!(e.panicked, Some(count(Err(true))), "{} {label}", s.name);
                    assert_eq!(e.failed, Some(count(Err(false))), "{} {label}", s.name);
                }
                Workload::IoFanout {
                    blobs, size_kib, ..
                } => {
                    assert_eq!(e.verified_bytes, Some((blobs * size_kib * 1024) as u64));
                    assert_eq!(e.ok, Some(*blobs));
                }
                Workload::Noop { tasks } => assert_eq!(e.ok, Some(*tasks)),
                Workload::AzureBlobs {
                    images,
                    width,
                    height,
                } => {
                    // The set-up's images are deterministic: their sizes add up to this.
                    let bytes: usize = (0..*images as u64)
                        .map(|i| scenarios::azure::png_image(i, *width, *height).len())
                        .sum();
                    assert_eq!(e.verified_bytes, Some(bytes as u64), "{} {label}", s.name);
                    assert_eq!(e.ok, Some(*images), "{} {label}", s.name);
                }
            }
        }
    }
}

#[test]
fn defaults_fill_what_is_left_out() {
    let s = Scenario::parse("s.yaml", BASE).unwrap();
    assert_eq!(s.repeats, 3);
    assert_eq!(s.warmup, 1);
    assert_eq!(s.timeout_s, 300.0);
    assert_eq!(s.backends, Backend::all());
    assert_eq!(s.matrix.max_workers, vec![Workers::Cores]);
    assert_eq!(s.matrix.points().len(), 1);
    assert_eq!(s.quick_mode().workload, s.workload);
}

#[test]
fn unknown_fields_are_rejected_with_line_and_path() {
    let e = err(&format!(
        "{BASE}matrix:\n  max_workers: [2]\n  chunk_size: [4]\n"
    ));
    assert_eq!(e.field(), "matrix.chunk_size");
    assert_eq!(e.line(), Some(6));
    assert!(e.message().starts_with("unknown field `chunk_size`"), "{e}");
    assert!(
        e.to_string()
            .starts_with("s.yaml:6:3: matrix.chunk_size: unknown field"),
        "{e}"
    );

    let e = err("name: s\nworkload:\n  noop:\n    tasks: 4\n    sleep: 1\nexpect: {ok: 4}\n");
    assert_eq!((e.field(), e.line()), ("workload.noop.sleep", Some(5)));

    let e = err(&format!("{BASE}expect_more: 1\n"));
    assert_eq!((e.field(), e.line()), ("expect_more", Some(4)));
}

#[test]
fn wrong_values_name_the_field() {
    let e = err("name: s\nworkload: {noop: {tasks: many}}\nexpect: {ok: 4}\n");
    assert_eq!((e.field(), e.line()), ("workload.noop.tasks", Some(2)));

    let e = err("name: s\nworkload: {sleep: {ms: 4}}\nexpect: {ok: 4}\n");
    assert_eq!(e.field(), "workload");
    assert!(e.message().contains("unknown variant `sleep`"), "{e}");

    let e = err(&format!("{BASE}matrix: {{max_workers: [2, 0]}}\n"));
    assert_eq!((e.field(), e.line()), ("matrix.max_workers[1]", Some(4)));
    assert!(e.message().contains("or `cores`"), "{e}");

    let e = err(&format!("{BASE}matrix: {{max_workers: [all]}}\n"));
    assert_eq!(e.field(), "matrix.max_workers[0]");

    let e = err(&format!("{BASE}backends: [threads, gpu]\n"));
    assert_eq!((e.field(), e.line()), ("backends[1]", Some(4)));

    let e = err(&format!("{BASE}matrix: {{buffersize: [null, 0]}}\n"));
    assert_eq!(e.field(), "matrix.buffersize[1]");

    let e = err("name: s\nworkload: {noop: {tasks: 4}}\n");
    assert_eq!(e.message(), "missing field `expect`");
}

#[test]
fn chunksize_accepts_integers_and_auto() {
    let s = Scenario::parse(
        "s.yaml",
        &format!("{BASE}matrix:\n  max_workers: [1, 2]\n  chunksize: [1, 16, auto, \"auto\"]\n"),
    )
    .unwrap();
    assert_eq!(
        s.matrix.chunksize,
        [
            Chunking::Fixed(1),
            Chunking::Fixed(16),
            Chunking::Auto,
            Chunking::Auto
        ]
    );
    // Every point carries its choice; workers outermost, in the order written.
    let chunks: Vec<String> = s
        .matrix
        .points()
        .iter()
        .map(|p| format!("{}x{}", p.max_workers, p.chunksize))
        .collect();
    assert_eq!(
        chunks,
        [
            "1x1", "1x16", "1xauto", "1xauto", "2x1", "2x16", "2xauto", "2xauto"
        ]
    );
    // In quick mode's own matrix too.
    let s = Scenario::parse(
        "s.yaml",
        &format!("{BASE}quick:\n  matrix: {{chunksize: [auto]}}\n"),
    )
    .unwrap();
    assert_eq!(s.matrix.chunksize, [Chunking::Fixed(1)]);
    assert_eq!(s.quick_mode().matrix.chunksize, [Chunking::Auto]);
    assert!(s.quick_mode().matrix.points()[0].chunksize.is_auto());
}

#[test]
fn bad_chunksizes_name_the_entry_and_say_what_is_allowed() {
    let allowed = "expected a chunk size (an integer, at least 1) or `auto`";
    for (value, index, what) in [
        ("[0]", 0, "integer `0`"),
        ("[1, -1]", 1, "integer `-1`"),
        ("[16, auto, fast]", 2, "string \"fast\""),
        ("[Auto]", 0, "string \"Auto\""),
    ] {
        let e = err(&format!("{BASE}matrix:\n  chunksize: {value}\n"));
        let field = format!("matrix.chunksize[{index}]");
        assert_eq!((e.field(), e.line()), (field.as_str(), Some(5)), "{e}");
        assert!(e.message().contains(what), "{e}");
        assert!(e.message().contains(allowed), "{e}");
        assert!(e.to_string().starts_with("s.yaml:5:"), "{e}");
        assert!(e.to_string().contains(&format!(": {field}: ")), "{e}");
    }
    // A float is neither.
    let e = err(&format!("{BASE}matrix: {{chunksize: [1.5]}}\n"));
    assert_eq!(e.field(), "matrix.chunksize[0]");
    assert!(e.message().contains(allowed), "{e}");
    // In the quick block, the path says so.
    let e = err(&format!(
        "{BASE}quick:\n  matrix: {{chunksize: [auto, 0]}}\n"
    ));
    assert_eq!(
        (e.field(), e.line()),
        ("quick.matrix.chunksize[1]", Some(5))
    );
}

#[test]
fn semantic_mistakes_name_the_field_and_line() {
    let cases: &[(&str, &str, u64, &str)] = &[
        (
            "name: S P\nworkload: {noop: {tasks: 4}}\nexpect: {ok: 4}\n",
            "name",
            1,
            "lowercase",
        ),
        (
            "name: s\nworkload: {noop: {tasks: 0}}\nexpect: {ok: 0}\n",
            "workload.noop.tasks",
            2,
            "at least 1",
        ),
        (&format!("{BASE}repeats: 0\n"), "repeats", 4, "at least 1"),
        (
            &format!("{BASE}timeout_s: -1\n"),
            "timeout_s",
            4,
            "positive",
        ),
        (
            &format!("{BASE}backends: []\n"),
            "backends",
            4,
            "at least one",
        ),
        (
            &format!("{BASE}backends: [threads, threads]\n"),
            "backends",
            4,
            "twice",
        ),
        (
            &format!("{BASE}matrix: {{chunksize: []}}\n"),
            "matrix.chunksize",
            4,
            "at least one value",
        ),
        (
            "name: s\nworkload: {noop: {tasks: 4}}\nexpect: {}\n",
            "expect",
            3,
            "at least one of",
        ),
        (
            "name: s\nworkload: {noop: {tasks: 4}}\nexpect: {ok: 5}\n",
            "expect",
            3,
            "4 tasks",
        ),
        (
            "name: s\nworkload: {noop: {tasks: 4}}\nexpect: {primes: 1}\n",
            "expect.primes",
            3,
            "does not find primes",
        ),
        (
            "name: s\nworkload: {primes: {numbers: [2, 3]}}\nexpect: {outputs: [true]}\n",
            "expect.outputs",
            3,
            "1 outputs for 2 numbers",
        ),
        (
            "name: s\nworkload: {io-fanout: {blobs: 1, size_kib: 0, latency_ms: 1}}\nexpect: {ok: 1}\n",
            "workload.io-fanout.size_kib",
            2,
            "between 1 and",
        ),
        (
            "name: s\nworkload: {azure-blobs: {images: 0, width: 8, height: 8}}\nexpect: {ok: 0}\n",
            "workload.azure-blobs.images",
            2,
            "at least 1",
        ),
        (
            "name: s\nworkload: {azure-blobs: {images: 200000, width: 8, height: 8}}\nexpect: {ok: 1}\n",
            "workload.azure-blobs.images",
            2,
            "more than 100000",
        ),
        (
            "name: s\nworkload:\n  azure-blobs:\n    images: 2\n    width: 0\n    height: 8\nexpect: {ok: 2}\n",
            "workload.azure-blobs.width",
            3,
            "between 1 and 4096",
        ),
        (
            "name: s\nworkload: {azure-blobs: {images: 2, width: 8, height: 5000}}\nexpect: {ok: 2}\n",
            "workload.azure-blobs.height",
            2,
            "between 1 and 4096",
        ),
        (
            "name: s\nworkload: {azure-blobs: {images: 2, width: 8, height: 8}}\nexpect: {ok: 3}\n",
            "expect",
            3,
            "2 tasks",
        ),
        (
            "name: s\nworkload: {azure-blobs: {images: 2, width: 8, height: 8}}\nexpect: {primes: 1}\n",
            "expect.primes",
            3,
            "does not find primes",
        ),
        (
            "name: s\nworkload: {azure-blobs: {images: 2, width: 8, height: 8}}\nexpect: {ok: 2}\nquick:\n  workload: {io-fanout: {blobs: 1, size_kib: 1, latency_ms: 0}}\n  expect: {ok: 1}\n",
            "quick.workload",
            5,
            "same workload",
        ),
        (
            "name: s\nworkload: {azure-blobs: {images: 4, width: 8, height: 8}}\nexpect: {ok: 4}\nquick:\n  workload: {azure-blobs: {images: 0, width: 8, height: 8}}\n  expect: {ok: 0}\n",
            "quick.workload.azure-blobs.images",
            5,
            "at least 1",
        ),
        (
            &format!(
                "{BASE}quick:\n  workload: {{primes: {{numbers: [2]}}}}\n  expect: {{ok: 1}}\n"
            ),
            "quick.workload",
            5,
            "same workload",
        ),
        (
            &format!("{BASE}quick:\n  workload: {{noop: {{tasks: 2}}}}\n"),
            "quick.expect",
            5,
            "its own expectations",
        ),
    ];
    for (text, field, line, message) in cases {
        let e = err(text);
        assert_eq!(e.field(), *field, "{e}");
        assert_eq!(e.line(), Some(*line), "{e}");
        assert!(e.message().contains(message), "{e}");
        assert!(e.to_string().starts_with(&format!("s.yaml:{line}:")), "{e}");
    }
}

#[test]
fn azure_blobs_reads_its_fields_and_rejects_unknown_or_wrong_ones() {
    let s = Scenario::parse(
        "a.yaml",
        "name: a\nworkload:\n  azure-blobs: {images: 3, width: 64, height: 32}\nexpect: {ok: 3, verified_bytes: 100}\n",
    )
    .unwrap();
    assert_eq!(
        s.workload,
        Workload::AzureBlobs {
            images: 3,
            width: 64,
            height: 32
        }
    );
    assert_eq!(s.workload.kind(), "azure-blobs");
    assert_eq!(s.workload.tasks(), 3);
    assert!(s.workload.is_io());
    assert_eq!(s.expect.verified_bytes, Some(100));

    let e = err(
        "name: a\nworkload:\n  azure-blobs:\n    images: 3\n    width: 64\n    height: 32\n    depth: 8\nexpect: {ok: 3}\n",
    );
    assert_eq!(
        (e.field(), e.line()),
        ("workload.azure-blobs.depth", Some(7))
    );
    assert!(e.message().starts_with("unknown field `depth`"), "{e}");
    assert!(
        e.to_string()
            .starts_with("s.yaml:7:5: workload.azure-blobs.depth: unknown field"),
        "{e}"
    );

    let e = err("name: a\nworkload: {azure-blobs: {images: 3, width: 64}}\nexpect: {ok: 3}\n");
    assert!(e.message().contains("missing field `height`"), "{e}");
    assert_eq!(e.line(), Some(2), "{e}");

    let e = err(
        "name: a\nworkload: {azure-blobs: {images: 3, width: -1, height: 2}}\nexpect: {ok: 3}\n",
    );
    assert_eq!(
        (e.field(), e.line()),
        ("workload.azure-blobs.width", Some(2))
    );
}

#[test]
fn syntax_errors_have_a_line_and_a_snippet() {
    let e = err("name: s\nworkload: {noop: {tasks: 4}\nexpect: {ok: 4}\n");
    assert!(e.line().is_some(), "{e}");
    assert!(e.to_string().contains("s.yaml"), "{e}");
}

#[test]
fn load_reads_files_and_names_them_in_errors() {
    let dir = std::env::temp_dir().join(format!("scenarios-schema-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("typo.yaml");
    std::fs::write(&path, format!("{BASE}warm_up: 2\n")).unwrap();
    let e = Scenario::load(&path).unwrap_err();
    assert_eq!(e.file(), path.display().to_string());
    assert_eq!((e.field(), e.line()), ("warm_up", Some(4)));
    std::fs::write(&path, BASE).unwrap();
    assert_eq!(Scenario::load(&path).unwrap().name, "s");
    std::fs::remove_dir_all(&dir).unwrap();
}
