//! The reporting layer: files written as results arrive, read back, rendered and compared.

use std::fs;
use std::path::Path;

use bench_harness::Record;
use bench_harness::report::{self, ResultSink, Verdict};

/// A row of `scenario` on `backend`, with a median of `median_s` and the derived fields filled in
/// as the harness would (speedup against a serial median of `serial_s`).
fn row(
    scenario: &str,
    backend: &str,
    workers: Option<usize>,
    chunksize: Option<usize>,
    median_s: f64,
    serial_s: f64,
) -> Record {
    let tasks = 64;
    let ideal_s = workers.map(|w| serial_s / w.min(4) as f64);
    Record {
        scenario: scenario.into(),
        workload: scenario.into(),
        backend: backend.into(),
        max_workers: workers,
        chunksize,
        buffersize: None,
        tasks,
        repeats: 5,
        median_s,
        min_s: median_s * 0.95,
        max_s: median_s * 1.08,
        per_task_us: median_s / tasks as f64 * 1e6,
        speedup: Some(serial_s / median_s),
        ideal_s: ideal_s.or(Some(serial_s)),
        efficiency: Some(ideal_s.unwrap_or(serial_s) / median_s),
        vs_cpython: None,
        failed_tasks: 0,
        check: "ok".into(),
        chunksize_auto: false,
        chunksize_chosen: None,
        skipped: false,
    }
}

/// [`row`] whose chunk size `map` chose (`chosen`; `None`: no timed run finished).
fn auto_row(
    scenario: &str,
    backend: &str,
    workers: usize,
    chosen: Option<usize>,
    median_s: f64,
    serial_s: f64,
) -> Record {
    Record {
        chunksize_auto: true,
        chunksize_chosen: chosen,
        ..row(scenario, backend, Some(workers), None, median_s, serial_s)
    }
}

/// Three scenarios, one per chart kind: a workers sweep, a chunksize sweep, one point per
/// backend.
fn sample() -> Vec<Record> {
    let mut rows = Vec::new();
    // primes: workers sweep (chunksize fixed).
    let serial = 1.234;
    rows.push(row("primes", "serial", None, None, serial, serial));
    for w in [1, 2, 4, 8] {
        let threads = serial / (w.min(4) as f64) * 1.05;
        let process = serial / (w.min(4) as f64) * 1.2 + 0.02;
        rows.push(row("primes", "threads", Some(w), Some(1), threads, serial));
        rows.push(row("primes", "process", Some(w), Some(1), process, serial));
    }
    // noop-map: chunksize sweep (workers fixed).
    let serial = 0.000_85;
    rows.push(row("noop-map", "serial", None, None, serial, serial));
    for c in [1, 4, 16, 64, 256] {
        let threads = 0.0447 / c as f64 + 0.0009;
        let process = 0.789 / c as f64 + 0.002;
        rows.push(row(
            "noop-map",
            "threads",
            Some(4),
            Some(c),
            threads,
            serial,
        ));
        rows.push(row(
            "noop-map",
            "process",
            Some(4),
            Some(c),
            process,
            serial,
        ));
    }
    // io-fanout: one point per backend.
    let serial = 3.2;
    rows.push(row("io-fanout", "serial", None, None, serial, serial));
    rows.push(row("io-fanout", "threads", Some(16), None, 0.215, serial));
    rows.push(row("io-fanout", "async", Some(16), None, 0.204, serial));
    let mut failing = row("io-fanout", "process", Some(16), None, 0.26, serial);
    failing.check = format!("expected 64 | blobs, got 63: {}", "x".repeat(200));
    failing.failed_tasks = 1;
    rows.push(failing);
    rows
}

#[test]
fn jsonl_round_trips_through_read_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    let rows = sample();
    let mut sink = ResultSink::create(dir.path()).unwrap();
    for r in &rows {
        sink.push(r).unwrap();
    }
    assert_eq!(sink.records(), rows.as_slice());
    assert_eq!(sink.dir(), dir.path());
    let back = report::read_jsonl(&dir.path().join("results.jsonl")).unwrap();
    assert_eq!(back, rows);
}

#[test]
fn read_jsonl_skips_blank_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.jsonl");
    let line = serde_json::to_string(&Record::example()).unwrap();
    fs::write(&path, format!("\n{line}\n   \n{line}\n\n")).unwrap();
    assert_eq!(report::read_jsonl(&path).unwrap().len(), 2);
}

#[test]
fn read_jsonl_error_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.jsonl");
    let good = serde_json::to_string(&Record::example()).unwrap();
    let mut value = serde_json::to_value(Record::example()).unwrap();
    value.as_object_mut().unwrap().remove("median_s");
    // Line 1 good, line 2 blank, line 3 missing a field.
    fs::write(&path, format!("{good}\n\n{value}\n{good}\n")).unwrap();
    let err = report::read_jsonl(&path).unwrap_err();
    assert_eq!(err.line(), Some(3));
    assert_eq!(err.path(), path.as_path());
    assert_eq!(
        err.to_string(),
        format!("{}:3: missing field `median_s`", path.display())
    );
    assert!(std::error::Error::source(&err).is_some());

    // A syntax error: the line, and where in it.
    fs::write(&path, format!("{good}\n{{\"scenario\": \n")).unwrap();
    let err = report::read_jsonl(&path).unwrap_err();
    assert_eq!(err.line(), Some(2));
    assert!(
        err.to_string()
            .starts_with(&format!("{}:2: EOF while parsing", path.display())),
        "{err}"
    );

    // A missing file: the file, no line.
    let missing = dir.path().join("nope.jsonl");
    let err = report::read_jsonl(&missing).unwrap_err();
    assert_eq!(err.line(), None);
    assert!(
        err.to_string()
            .starts_with(&format!("{}: ", missing.display()))
    );
}

#[test]
fn a_sink_dropped_without_finish_keeps_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let rows = sample();
    {
        let mut sink = ResultSink::create(dir.path()).unwrap();
        for (i, r) in rows.iter().enumerate() {
            sink.push(r).unwrap();
            // Written as it arrives: readable while the sink is still open.
            let jsonl = fs::read_to_string(dir.path().join("results.jsonl")).unwrap();
            assert_eq!(jsonl.lines().count(), i + 1);
            let csv = fs::read_to_string(dir.path().join("results.csv")).unwrap();
            assert_eq!(csv.lines().count(), i + 2, "header + {} rows", i + 1);
        }
        // Dropped here, no finish.
    }
    let back = report::read_jsonl(&dir.path().join("results.jsonl")).unwrap();
    assert_eq!(back, rows);
    let mut reader = csv::Reader::from_path(dir.path().join("results.csv")).unwrap();
    let from_csv: Vec<Record> = reader.deserialize().map(Result::unwrap).collect();
    assert_eq!(from_csv, rows);
    assert!(!dir.path().join("results.md").exists());
}

#[test]
fn csv_has_the_header_at_once_and_parses_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = ResultSink::create(&dir.path().join("nested/out")).unwrap();
    let header_only = fs::read_to_string(sink.dir().join("results.csv")).unwrap();
    assert_eq!(header_only.lines().count(), 1);

    let rows = sample();
    for r in &rows {
        sink.push(r).unwrap();
    }
    let mut reader = csv::Reader::from_path(sink.dir().join("results.csv")).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        [
            "scenario",
            "workload",
            "backend",
            "max_workers",
            "chunksize",
            "buffersize",
            "tasks",
            "repeats",
            "median_s",
            "min_s",
            "max_s",
            "per_task_us",
            "speedup",
            "ideal_s",
            "efficiency",
            "vs_cpython",
            "failed_tasks",
            "check",
            "chunksize_auto",
            "chunksize_chosen",
            "skipped",
        ]
    );
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), rows.len());
    // None is an empty cell; the serial row has no workers.
    assert_eq!(&records[0][2], "serial");
    assert_eq!(&records[0][3], "");
    assert_eq!(&records[1][3], "1");
}

#[test]
fn create_truncates_earlier_results() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = ResultSink::create(dir.path()).unwrap();
    sink.push(&Record::example()).unwrap();
    drop(sink);
    let sink = ResultSink::create(dir.path()).unwrap();
    assert!(sink.records().is_empty());
    assert_eq!(
        fs::read_to_string(dir.path().join("results.jsonl")).unwrap(),
        ""
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("results.csv"))
            .unwrap()
            .lines()
            .count(),
        1
    );
}

#[test]
fn finish_writes_markdown_and_charts_and_lists_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = ResultSink::create(dir.path()).unwrap();
    for r in &sample() {
        sink.push(r).unwrap();
    }
    let written = sink.finish().unwrap();
    let d = dir.path();
    assert_eq!(written.jsonl, d.join("results.jsonl"));
    assert_eq!(written.csv, d.join("results.csv"));
    assert_eq!(written.markdown, d.join("results.md"));
    assert_eq!(
        written.charts,
        vec![
            d.join("primes-workers.svg"),
            d.join("noop-map-chunksize.svg"),
            d.join("io-fanout.svg"),
        ]
    );
    let paths = written.paths();
    assert_eq!(paths.len(), 6);
    for p in &paths {
        assert!(p.is_file(), "{} listed but missing", p.display());
    }
    // The written report shows each scenario's charts under its heading.
    let md = fs::read_to_string(&written.markdown).unwrap();
    let primes = md.find("## primes").unwrap();
    let chart = md.find("](primes-workers.svg)").unwrap();
    let next = md.find("## noop-map").unwrap();
    assert!(primes < chart && chart < next);
    assert!(md.contains("](noop-map-chunksize.svg)"));
    assert!(md.contains("](io-fanout.svg)"));
}

/// The table rows (lines starting with `|`, less the header and its rule) under each heading.
fn markdown_rows(md: &str) -> Vec<(String, usize)> {
    let mut sections: Vec<(String, usize)> = Vec::new();
    for line in md.lines() {
        if let Some(name) = line.strip_prefix("## ") {
            sections.push((name.to_string(), 0));
        } else if line.starts_with('|')
            && let Some((_, n)) = sections.last_mut()
        {
            *n += 1;
        }
    }
    sections.into_iter().map(|(s, n)| (s, n - 2)).collect()
}

#[test]
fn markdown_has_a_section_and_a_row_per_record() {
    let rows = sample();
    let md = report::markdown(&rows);
    assert!(md.starts_with("# "));
    assert_eq!(
        markdown_rows(&md),
        vec![
            ("primes".to_string(), 9),
            ("noop-map".to_string(), 11),
            ("io-fanout".to_string(), 4),
        ]
    );
    // Every table line has as many cells as the header: escaped pipes do not split cells.
    for line in md.lines().filter(|l| l.starts_with('|')) {
        let cells = line.replace("\\|", "").matches('|').count() - 1;
        assert_eq!(cells, 13, "{line}");
    }
    assert!(md.contains("expected 64 \\| blobs"));
    // Markdown keeps the whole failure message.
    assert!(md.contains(&"x".repeat(200)));
    // Where the baseline and the ideal come from.
    assert!(md.contains("Baseline: the `serial` row (median 1.23 s"));
    assert!(md.contains("Ideal (308 ms to 1.23 s here): the physical limit of each row, total CPU work ÷ usable cores"), "{md}");
    assert!(
        md.contains("here the latency part: latency × ⌈N / concurrency⌉"),
        "{md}"
    );
    assert!(md.contains("**1 check failed**"));
    // The serial row: no workers, no chunk.
    assert!(md.contains("| primes | serial | - | - | - | 64 | 1.23 s |"));
    // No charts are linked from the plain report.
    assert!(!md.contains(".svg"));
}

#[test]
fn markdown_escapes_markup_in_names_and_messages() {
    let r = Record {
        scenario: "a<b>".into(),
        check: "got *2* | wanted_1\nsee [log]".into(),
        ..Record::example()
    };
    let md = report::markdown(&[r]);
    assert!(md.contains("\n## a\\<b\\>\n"), "{md}");
    assert!(
        md.contains("| got \\*2\\* \\| wanted\\_1 see \\[log\\] |"),
        "{md}"
    );
}

#[test]
fn markdown_without_a_serial_row_says_so() {
    let r = Record {
        speedup: None,
        ideal_s: None,
        efficiency: None,
        vs_cpython: None,
        ..Record::example()
    };
    let md = report::markdown(&[r]);
    assert!(md.contains("no `serial` row"), "{md}");
    assert!(md.contains("Ideal: none"), "{md}");
}

#[test]
fn table_shows_human_units_grouped_by_scenario() {
    let mut rows = sample();
    // An interleaved row still lands in its scenario's group.
    let late = row("primes", "async", Some(2), Some(1), 0.000_000_85, 1.234);
    rows.push(late);
    let table = report::table(&rows);
    for text in [
        "1.23 s",
        "45.6 ms",
        "850 ns",
        "1.0×",
        "3.8×",
        "95 %",
        "scenario",
        "min–max",
        "per task",
        "efficiency",
    ] {
        assert!(table.contains(text), "{text} missing from\n{table}");
    }
    // µs: noop-map's serial median.
    assert!(table.contains("850 µs"), "{table}");
    let lines: Vec<&str> = table.lines().collect();
    let pos = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} missing"))
    };
    // Grouped: the late primes row comes before noop-map.
    assert!(pos("850 ns") < pos("noop-map"));
    // The scenario is named once, on its group's first row.
    assert_eq!(table.matches("primes").count(), 1);
    // Long check messages are cut in the table, and the failed tasks counted.
    assert!(!table.contains(&"x".repeat(100)));
    assert!(table.contains("expected 64 | blobs"));
    assert!(table.contains('…'));
    // None is "-".
    assert!(lines[pos("serial")].contains(" - "));
    // One line per row (plus borders and header).
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("ok") || l.contains("expected"))
            .count(),
        rows.len()
    );
}

#[test]
fn table_of_nothing_is_just_the_header() {
    let table = report::table(&[]);
    assert!(table.contains("backend"));
    // Top border, header, bottom border and nothing else.
    assert_eq!(table.lines().count(), 4, "{table}");
    assert!(!table.contains(" - "), "{table}");
}

/// The texts of an SVG's `<text>` elements.
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..];
            Some(body[..body.find("</text>")?].trim().to_string())
        })
        .collect()
}

fn assert_well_formed_svg(path: &Path) -> String {
    let svg = fs::read_to_string(path).unwrap();
    let name = path.display();
    assert!(
        svg.starts_with("<svg") || svg.starts_with("<?xml"),
        "{name}"
    );
    assert!(svg.trim_end().ends_with("</svg>"), "{name}");
    // Every element closed, in order; text escaped (no stray '<' or '&' in content).
    let mut open: Vec<String> = Vec::new();
    let mut rest = svg.as_str();
    while let Some(i) = rest.find('<') {
        let content = &rest[..i];
        for (j, _) in content.match_indices('&') {
            let entity = &content[j..];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&#"]
                    .iter()
                    .any(|e| entity.starts_with(e)),
                "{name}: raw & in {content:?}"
            );
        }
        rest = &rest[i + 1..];
        let end = rest
            .find('>')
            .unwrap_or_else(|| panic!("{name}: unclosed <"));
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        assert!(!tag.contains('<'), "{name}: '<' inside a tag: {tag:?}");
        if tag.starts_with('?') || tag.starts_with('!') || tag.ends_with('/') {
            continue;
        }
        if let Some(closing) = tag.strip_prefix('/') {
            assert_eq!(open.pop().as_deref(), Some(closing.trim()), "{name}");
        } else {
            open.push(tag.split_whitespace().next().unwrap_or("").to_string());
        }
    }
    assert!(open.is_empty(), "{name}: left open: {open:?}");
    assert_eq!(svg.matches("<svg").count(), 1);
    svg
}

#[test]
fn charts_draw_one_file_per_chart_kind_with_labels() {
    let dir = tempfile::tempdir().unwrap();
    let files = report::charts(&sample(), dir.path()).unwrap();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "primes-workers.svg",
            "noop-map-chunksize.svg",
            "io-fanout.svg"
        ]
    );

    // Workers sweep: speedup lines per backend, the ideal, axis labels with units.
    let svg = assert_well_formed_svg(&files[0]);
    let texts = svg_texts(&svg);
    for label in [
        "primes: speedup by max_workers",
        "threads",
        "process",
        "serial (1×)",
        "speedup over serial (×)",
    ] {
        assert!(texts.iter().any(|t| t == label), "{label} not in {texts:?}");
    }
    assert!(texts.iter().any(|t| t.starts_with("ideal")), "{texts:?}");
    assert!(
        texts.iter().any(|t| t.starts_with("max_workers")),
        "{texts:?}"
    );
    // Ticks at the measured worker counts.
    for w in ["1", "2", "4", "8"] {
        assert!(texts.iter().any(|t| t == w), "tick {w} not in {texts:?}");
    }

    // Chunksize sweep: one line per (backend, workers), serial reference, log₂ axis ticks.
    let svg = assert_well_formed_svg(&files[1]);
    let texts = svg_texts(&svg);
    for label in [
        "noop-map: median time by chunksize",
        "threads, 4 workers",
        "process, 4 workers",
        "serial (850 µs)",
    ] {
        assert!(texts.iter().any(|t| t == label), "{label} not in {texts:?}");
    }
    assert!(
        texts.iter().any(|t| t.starts_with("chunksize")),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|t| t.starts_with("median time per run (")),
        "{texts:?}"
    );
    for c in ["1", "4", "16", "64", "256"] {
        assert!(texts.iter().any(|t| t == c), "tick {c} not in {texts:?}");
    }

    // Bars: one per backend, labelled with the speedup.
    let svg = assert_well_formed_svg(&files[2]);
    let texts = svg_texts(&svg);
    for label in ["serial", "threads", "async", "process", "median"] {
        assert!(texts.iter().any(|t| t == label), "{label} not in {texts:?}");
    }
    assert!(texts.iter().any(|t| t.contains("14.9×")), "{texts:?}");
    assert!(
        texts.iter().any(|t| t.contains("check failed")),
        "{texts:?}"
    );
    // The background, four bars, the legend's box and swatch.
    assert!(svg.matches("<rect").count() > 4, "{svg}");
}

#[test]
fn charts_sweep_both_ways_and_sanitize_names() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = "Odd <Name> & 1";
    let mut rows = vec![row(scenario, "serial", None, None, 1.0, 1.0)];
    for w in [2, 4] {
        for c in [1, 8] {
            rows.push(row(scenario, "threads", Some(w), Some(c), 0.5, 1.0));
        }
    }
    let files = report::charts(&rows, &dir.path().join("charts")).unwrap();
    let names: Vec<_> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["odd-name-1-chunksize.svg", "odd-name-1-workers.svg"]
    );
    for f in &files {
        let svg = assert_well_formed_svg(f);
        // The title keeps the name, escaped.
        assert!(svg.contains("Odd &lt;Name&gt; &amp; 1: "), "{svg}");
    }
    assert!(report::charts(&[], dir.path()).unwrap().is_empty());
}

#[test]
fn charts_without_a_serial_row_plot_times() {
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<Record> = [1, 2, 4]
        .into_iter()
        .map(|w| Record {
            max_workers: Some(w),
            median_s: 0.1 / w as f64,
            speedup: None,
            ..Record::example()
        })
        .collect();
    let files = report::charts(&rows, dir.path()).unwrap();
    let svg = assert_well_formed_svg(&files[0]);
    let texts = svg_texts(&svg);
    assert!(
        texts
            .iter()
            .any(|t| t == "primes: median time by max_workers"),
        "{texts:?}"
    );
}

#[test]
fn compare_flags_slowdowns_beyond_the_threshold() {
    let old = sample();
    let mut new = old.clone();
    new[1].median_s *= 1.20; // primes / threads / 1 worker: 20 % slower
    new[2].median_s *= 1.05; // primes / process / 1 worker: 5 % slower
    new[3].median_s *= 0.5; // twice as fast
    let cmp = report::compare(&old, &new, 0.10);
    assert_eq!(cmp.regressions(), 1);
    let regressed: Vec<_> = cmp.regressed().collect();
    assert_eq!(regressed[0].key, old[1].key());
    assert!(regressed[0].slower);
    assert!((regressed[0].ratio.unwrap() - 1.2).abs() < 1e-9);
    assert_eq!(cmp.changes()[2].verdict, Verdict::Ok);
    assert_eq!(cmp.changes()[3].verdict, Verdict::Faster);
    assert_eq!(cmp.changes().len(), old.len());
    assert!(cmp.only_in_old().is_empty() && cmp.only_in_new().is_empty());

    let text = cmp.to_string();
    let line = text.lines().find(|l| l.contains("REGRESSION")).unwrap();
    assert!(line.contains(&old[1].key()), "{line}");
    assert!(line.contains("1.20×"), "{line}");
    assert!(text.contains("faster"));
    assert!(text.contains("1 regression,"), "{text}");

    // The threshold is strict: exactly 1 + threshold is not a regression.
    let exact = vec![Record {
        median_s: 0.25,
        ..Record::example()
    }];
    let base = vec![Record {
        median_s: 0.2,
        ..Record::example()
    }];
    assert_eq!(report::compare(&base, &exact, 0.25).regressions(), 0);
    assert_eq!(report::compare(&base, &exact, 0.2499).regressions(), 1);
}

#[test]
fn compare_flags_a_check_that_broke() {
    let old = vec![Record::example()];
    let broken = Record {
        check: "expected 5 primes, got 4".into(),
        ..Record::example()
    };
    let cmp = report::compare(&old, std::slice::from_ref(&broken), 0.10);
    assert_eq!(cmp.regressions(), 1);
    let change = &cmp.changes()[0];
    assert!(change.check_broke && !change.slower);
    assert_eq!(change.verdict, Verdict::Regression);
    assert!(
        cmp.to_string()
            .contains("check broke: expected 5 primes, got 4")
    );

    // Failing in both runs, or fixed: not a regression.
    let both = report::compare(
        std::slice::from_ref(&broken),
        std::slice::from_ref(&broken),
        0.10,
    );
    assert_eq!(both.regressions(), 0);
    assert!(both.to_string().contains("check still fails"));
    let fixed = report::compare(std::slice::from_ref(&broken), &old, 0.10);
    assert_eq!(fixed.regressions(), 0);
    assert!(fixed.to_string().contains("check fixed"));
}

#[test]
fn compare_lists_rows_found_in_one_run_only() {
    let old = sample();
    let mut new = old.clone();
    let gone = new.remove(0);
    let added = Record {
        backend: "cpython-threads".into(),
        ..Record::example()
    };
    new.push(added.clone());
    let cmp = report::compare(&old, &new, 0.10);
    assert_eq!(cmp.only_in_old(), std::slice::from_ref(&gone));
    assert_eq!(cmp.only_in_new(), std::slice::from_ref(&added));
    assert_eq!(cmp.changes().len(), old.len() - 1);
    assert_eq!(cmp.regressions(), 0);
    let text = cmp.to_string();
    assert!(text.contains("only in old (1):"), "{text}");
    assert!(text.contains(&format!("  {}", gone.key())), "{text}");
    assert!(text.contains("only in new (1):"), "{text}");
    assert!(text.contains(&added.key()), "{text}");
}

#[test]
fn compare_matches_repeated_keys_in_order() {
    let a = Record::example();
    let b = Record {
        median_s: a.median_s * 2.0,
        ..Record::example()
    };
    let cmp = report::compare(&[a.clone(), b.clone()], &[a, b], 0.10);
    assert_eq!(cmp.regressions(), 0);
    assert_eq!(cmp.changes().len(), 2);
}

#[test]
fn human_durations() {
    assert_eq!(report::human_duration(1.234), "1.23 s");
    assert_eq!(report::human_duration(0.0456), "45.6 ms");
    assert_eq!(report::human_duration(0.000_789), "789 µs");
    assert_eq!(report::human_duration(8.5e-7), "850 ns");
}

/// `sample()` with `auto` rows in the noop-map chunksize sweep: threads chose 1250 (outside
/// the fixed sizes), process chose 64 (on one), async never finished a timed run.
fn sample_with_auto() -> Vec<Record> {
    let mut rows = sample();
    let at = rows.iter().rposition(|r| r.scenario == "noop-map").unwrap() + 1;
    let auto = [
        auto_row("noop-map", "threads", 4, Some(1250), 0.0011, 0.000_85),
        auto_row("noop-map", "process", 4, Some(64), 0.0151, 0.000_85),
        Record {
            check: "map timed out".into(),
            ..auto_row("noop-map", "async", 4, None, 0.02, 0.000_85)
        },
    ];
    rows.splice(at..at, auto);
    rows
}

#[test]
fn auto_rows_key_as_auto_and_label_the_chosen_size() {
    let r = auto_row("noop-map", "threads", 4, Some(1250), 0.0011, 0.000_85);
    assert_eq!(
        r.key(),
        "noop-map / threads / workers=4 / chunksize=auto / buffersize=-"
    );
    assert_eq!(r.chunk_label(), "auto (1250)");
    let unfinished = auto_row("noop-map", "async", 4, None, 0.02, 0.000_85);
    assert_eq!(unfinished.chunk_label(), "auto");
    assert!(unfinished.key().contains("chunksize=auto"));
    // A fixed row keeps its key and label exactly as before `auto` existed.
    let fixed = row("noop-map", "threads", Some(4), Some(16), 0.003, 0.000_85);
    assert_eq!(
        fixed.key(),
        "noop-map / threads / workers=4 / chunksize=16 / buffersize=-"
    );
    assert_eq!(fixed.chunk_label(), "16");
}

#[test]
fn auto_rows_show_auto_and_the_chosen_size_in_table_and_markdown() {
    let rows = sample_with_auto();
    let table = report::table(&rows);
    let line = |needle: &str| {
        table
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} missing from\n{table}"))
            .to_string()
    };
    assert!(line("auto (1250)").contains("threads"), "{table}");
    assert!(line("auto (64)").contains("process"), "{table}");
    assert!(line("map timed out").contains(" auto "), "{table}");

    let md = report::markdown(&rows);
    assert!(
        md.contains("| noop-map | threads | 4 | auto (1250) | - | 64 | 1.10 ms |"),
        "{md}"
    );
    assert!(
        md.contains("| noop-map | process | 4 | auto (64) | - |"),
        "{md}"
    );
    assert!(md.contains("| noop-map | async | 4 | auto | - |"), "{md}");
    // What `auto (N)` means, said once, only where there are auto rows.
    assert_eq!(
        md.matches("Chunk `auto (N)`: `map` chose").count(),
        1,
        "{md}"
    );
    assert!(!report::markdown(&sample()).contains("auto (N)"));
    // The failed auto row is listed by its key.
    assert!(
        md.contains("`noop-map / async / workers=4 / chunksize=auto / buffersize=-`"),
        "{md}"
    );
    // Still one row per record, 13 cells each.
    assert_eq!(
        markdown_rows(&md),
        vec![
            ("primes".to_string(), 9),
            ("noop-map".to_string(), 14),
            ("io-fanout".to_string(), 4),
        ]
    );
    for line in md.lines().filter(|l| l.starts_with('|')) {
        assert_eq!(
            line.replace("\\|", "").matches('|').count() - 1,
            13,
            "{line}"
        );
    }
}

#[test]
fn auto_rows_round_trip_through_jsonl_and_csv() {
    let dir = tempfile::tempdir().unwrap();
    let rows = sample_with_auto();
    let mut sink = ResultSink::create(dir.path()).unwrap();
    for r in &rows {
        sink.push(r).unwrap();
    }
    // JSON lines: no fixed size, the flag, and the size chosen.
    let jsonl = fs::read_to_string(dir.path().join("results.jsonl")).unwrap();
    let values: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let line = values
        .iter()
        .find(|v| v["backend"] == "threads" && v["chunksize_auto"] == true)
        .unwrap();
    let value = line;
    assert_eq!(value["chunksize"], serde_json::Value::Null, "{line}");
    assert_eq!(value["chunksize_auto"], true, "{line}");
    assert_eq!(value["chunksize_chosen"], 1250, "{line}");
    assert_eq!(
        values
            .iter()
            .filter(|v| v["chunksize_auto"] == true)
            .count(),
        3
    );
    let fixed = &values[1];
    assert_eq!(fixed["chunksize"], 1);
    assert_eq!(fixed["chunksize_auto"], false);
    assert_eq!(fixed["chunksize_chosen"], serde_json::Value::Null);
    assert_eq!(
        report::read_jsonl(&dir.path().join("results.jsonl")).unwrap(),
        rows
    );

    // CSV: `auto` in the chunksize column, the new columns after the old ones (old positions
    // unchanged; `skipped` came later still).
    let mut reader = csv::Reader::from_path(dir.path().join("results.csv")).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header[4], "chunksize");
    assert_eq!(
        header[header.len() - 3..],
        ["chunksize_auto", "chunksize_chosen", "skipped"]
    );
    let (auto_col, chosen_col) = (header.len() - 3, header.len() - 2);
    let cells: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let auto: Vec<&csv::StringRecord> = cells.iter().filter(|c| &c[4] == "auto").collect();
    assert_eq!(auto.len(), 3);
    assert_eq!(&auto[0][2], "threads");
    assert_eq!(&auto[0][auto_col], "true");
    assert_eq!(&auto[0][chosen_col], "1250");
    assert_eq!(&auto[2][chosen_col], "", "no size chosen");
    assert!(cells.iter().all(|c| c.len() == header.len()));
    let mut reader = csv::Reader::from_path(dir.path().join("results.csv")).unwrap();
    let back: Vec<Record> = reader.deserialize().map(Result::unwrap).collect();
    assert_eq!(back, rows);
}

#[test]
fn results_written_before_auto_still_read_and_compare() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.jsonl");
    // A file from before `auto`: no chunksize_auto, no chunksize_chosen.
    let old_rows = sample();
    let mut text = String::new();
    for r in &old_rows {
        let mut value = serde_json::to_value(r).unwrap();
        let object = value.as_object_mut().unwrap();
        assert!(object.remove("chunksize_auto").is_some());
        assert!(object.remove("chunksize_chosen").is_some());
        assert!(object.remove("skipped").is_some()); // later still
        text.push_str(&format!("{value}\n"));
    }
    fs::write(&path, text).unwrap();
    let old = report::read_jsonl(&path).unwrap();
    assert_eq!(old, old_rows);
    assert!(
        old.iter()
            .all(|r| !r.chunksize_auto && r.chunksize_chosen.is_none())
    );

    // A new run with `auto` rows: every old row still matches; the auto rows are new, and
    // never taken for a fixed row.
    let new = sample_with_auto();
    let cmp = report::compare(&old, &new, 0.10);
    assert_eq!(cmp.changes().len(), old.len());
    assert!(cmp.only_in_old().is_empty());
    assert_eq!(cmp.only_in_new().len(), 3);
    assert!(cmp.only_in_new().iter().all(|r| r.chunksize_auto));
    assert_eq!(cmp.regressions(), 0);

    // Two runs with `auto`: matched by key whatever size map chose each time.
    let mut again = new.clone();
    for r in again.iter_mut().filter(|r| r.chunksize_auto) {
        r.chunksize_chosen = r.chunksize_chosen.map(|c| c * 2);
    }
    let cmp = report::compare(&new, &again, 0.10);
    assert_eq!(cmp.changes().len(), new.len());
    assert!(cmp.only_in_new().is_empty() && cmp.only_in_old().is_empty());
}

#[test]
fn chunksize_chart_marks_auto_rows_at_the_size_map_chose() {
    let dir = tempfile::tempdir().unwrap();
    let files = report::charts(&sample_with_auto(), dir.path()).unwrap();
    let chart = files
        .iter()
        .find(|p| p.ends_with("noop-map-chunksize.svg"))
        .unwrap();
    let svg = assert_well_formed_svg(chart);
    let texts = svg_texts(&svg);
    for label in [
        "auto 1250",
        "auto 64",
        "auto: the chunksize map chose",
        "threads, 4 workers",
        "process, 4 workers",
        "serial (850 µs)",
    ] {
        assert!(texts.iter().any(|t| t == label), "{label} not in {texts:?}");
    }
    // The row with no size chosen has no place on the axis and is left out.
    assert_eq!(texts.iter().filter(|t| t.starts_with("auto ")).count(), 2);
    // Ticks stay at the fixed sizes; 1250 is past the last one, and the axis reaches it.
    for c in ["1", "4", "16", "64", "256"] {
        assert!(texts.iter().any(|t| t == c), "tick {c} not in {texts:?}");
    }
    assert!(!texts.iter().any(|t| t == "1250"), "{texts:?}");
    // A ring per auto row (and one in the legend).
    assert!(svg.matches("<circle").count() >= 3, "{svg}");
}

#[test]
fn auto_alone_or_beside_one_fixed_size_still_charts() {
    let dir = tempfile::tempdir().unwrap();
    // One fixed size and auto: a chunksize chart (auto counts as a second size).
    let rows = vec![
        row("pair", "serial", None, None, 1.0, 1.0),
        row("pair", "threads", Some(2), Some(1), 0.6, 1.0),
        auto_row("pair", "threads", 2, Some(512), 0.52, 1.0),
        auto_row("pair", "process", 2, Some(512), 0.55, 1.0),
    ];
    let files = report::charts(&rows, &dir.path().join("pair")).unwrap();
    assert_eq!(files.len(), 1);
    assert!(files[0].ends_with("pair-chunksize.svg"), "{files:?}");
    let texts = svg_texts(&assert_well_formed_svg(&files[0]));
    // Two labels at the same spot: both drawn (the second moved up, not on top).
    assert_eq!(
        texts.iter().filter(|t| *t == "auto 512").count(),
        2,
        "{texts:?}"
    );
    assert!(texts.iter().any(|t| t == "process, 2 workers"), "{texts:?}");

    // Only auto: no sweep to draw, so bars, named by what they ran.
    let rows = vec![
        row("solo", "serial", None, None, 1.0, 1.0),
        auto_row("solo", "threads", 2, Some(300), 0.5, 1.0),
    ];
    let files = report::charts(&rows, &dir.path().join("solo")).unwrap();
    assert!(files[0].ends_with("solo.svg"), "{files:?}");
    let texts = svg_texts(&assert_well_formed_svg(&files[0]));
    assert!(
        texts.iter().any(|t| t.contains("chunksize auto (300)")),
        "{texts:?}"
    );
}

/// A row of `scenario` on `backend` that was skipped, as the harness writes it: no times.
fn skipped_row(scenario: &str, backend: &str, workers: Option<usize>) -> Record {
    Record {
        repeats: 0,
        median_s: f64::NAN,
        min_s: f64::NAN,
        max_s: f64::NAN,
        per_task_us: f64::NAN,
        speedup: None,
        ideal_s: None,
        efficiency: None,
        check: "skipped: azure-blobs needs Node.js (for Azurite)".into(),
        skipped: true,
        ..row(scenario, backend, workers, None, 1.0, 1.0)
    }
}

#[test]
fn skipped_rows_are_written_read_back_and_reported_apart_from_failures() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows = vec![row("primes", "serial", None, None, 1.0, 1.0)];
    rows.push(skipped_row("azure-blobs", "serial", None));
    for w in [2, 4] {
        rows.push(skipped_row("azure-blobs", "threads", Some(w)));
    }
    let mut sink = ResultSink::create(dir.path()).unwrap();
    for r in &rows {
        sink.push(r).unwrap();
    }
    let written = sink.finish().unwrap();

    // JSON lines: the flag, no times (null), and back as they were.
    let jsonl = fs::read_to_string(&written.jsonl).unwrap();
    let values: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(values[0]["skipped"], false);
    assert_eq!(values[1]["skipped"], true);
    assert_eq!(values[1]["median_s"], serde_json::Value::Null);
    let back = report::read_jsonl(&written.jsonl).unwrap();
    assert_eq!(back.len(), rows.len());
    assert!(back[1..].iter().all(|r| r.skipped && !r.failed()));
    assert_eq!(back[1].check, rows[1].check);

    // CSV: the last column.
    let mut reader = csv::Reader::from_path(&written.csv).unwrap();
    let header = reader.headers().unwrap().clone();
    assert_eq!(&header[header.len() - 1], "skipped");
    let cells: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(&cells[0][header.len() - 1], "false");
    assert_eq!(&cells[1][header.len() - 1], "true");

    // Markdown: counted apart, the reason once, nothing failed.
    let md = fs::read_to_string(&written.markdown).unwrap();
    let summary = md.lines().nth(2).unwrap();
    assert_eq!(
        summary,
        "4 rows in 2 scenarios; every check that ran passed; 3 rows skipped."
    );
    assert_eq!(
        md.matches("azure-blobs needs Node.js").count(),
        2 + 3,
        "the summary and the section say it once each, plus the three rows' check cells:\n{md}"
    );
    assert!(md.contains("- skipped: `azure-blobs` (3 rows): azure-blobs needs Node.js"));
    assert!(!md.contains("failed"), "{md}");

    // Charts: nothing to draw for the skipped scenario, no failure drawn.
    assert!(
        written
            .charts
            .iter()
            .all(|c| !c.ends_with("azure-blobs-workers.svg"))
    );
    assert!(!dir.path().join("azure-blobs-workers.svg").exists());
    assert!(!dir.path().join("azure-blobs.svg").exists());

    // The terminal table shows why.
    let table = report::table(&back);
    assert!(table.contains("skipped: azure-blobs needs"), "{table}");

    // A failure beside them is still one.
    let mut with_failure = back.clone();
    with_failure[0].check = "expected 5 primes, got 4".into();
    let md = report::markdown(&with_failure);
    assert!(md.contains("**1 check failed**; 3 rows skipped."), "{md}");
}
