//! The terminal table and the Markdown report.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use comfy_table::{CellAlignment, ContentArrangement, Table, presets};

use super::chart;
use super::format::{self, COLUMNS, by_scenario, cells, numeric_column};
use crate::Record;

/// Longest check message shown in the terminal table (the Markdown report shows it whole).
const CHECK_WIDTH: usize = 60;

/// The results as a terminal table: one row per record, grouped by scenario (scenarios in the
/// order they first appear, rows in input order; the scenario is named on its first row).
///
/// Columns: scenario, backend, workers, chunk, buffer, tasks, median, min–max, per task,
/// speedup, efficiency, vs CPython, check. Durations are human (`"1.23 s"`, `"45.6 ms"`, `"789 µs"`),
/// speedups `"3.9×"`, efficiencies `"92 %"`, and `"-"` stands for "none". A failed check shows
/// its message, cut to 60 characters; failed tasks are counted next to the check. The layout is
/// fixed (UTF-8 box drawing, no terminal-width detection, no colours), so the output is the same
/// on a terminal, in a pipe and in a log file.
///
/// ```
/// let table = bench_harness::report::table(&[bench_harness::Record::example()]);
/// assert!(table.contains("median"));
/// assert!(table.contains("120 ms"));
/// assert!(table.contains("115–131 ms"));
/// assert!(table.contains("1.9×"));
/// assert!(table.contains("95 %"));
/// ```
pub fn table(records: &[Record]) -> String {
    let mut table = Table::new();
    table
        .load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(COLUMNS.to_vec());
    for (_, rows) in by_scenario(records) {
        for (i, r) in rows.into_iter().enumerate() {
            let mut row = cells(r);
            if i > 0 {
                row[0] = String::new();
            }
            row[12] = format::truncate(&row[12], CHECK_WIDTH);
            table.add_row(row.to_vec());
        }
    }
    for i in 0..COLUMNS.len() {
        if let Some(column) = table.column_mut(i) {
            column.set_cell_alignment(if numeric_column(i) {
                CellAlignment::Right
            } else {
                CellAlignment::Left
            });
        }
    }
    table.to_string()
}

/// The results as a GitHub-flavoured Markdown report: a summary (the failed checks, one line
/// each; the [skipped](Record::skipped) rows counted apart, with their reason once per
/// scenario, and not as failures), then one `## scenario`
/// section per scenario (in first-seen order) with a line on where the speedup's serial
/// baseline and the ideal come from, and a pipe table with the same columns as [`table`]
/// (check messages whole, on one line; characters Markdown reads as markup, such as `|`, `*`
/// and `<`, backslash-escaped: `\|`).
///
/// The ideal is the physical limit of a row: total CPU work ÷ usable cores, or
/// latency × ⌈N / concurrency⌉, whichever is larger; efficiency = ideal ÷ median.
///
/// [`ResultSink::finish`](super::ResultSink::finish) writes this report as `results.md`, with
/// each scenario's charts shown under its heading.
///
/// ```
/// use bench_harness::Record;
/// let mut io = Record::example();
/// io.scenario = "io-fanout".into();
/// let md = bench_harness::report::markdown(&[Record::example(), io]);
/// assert!(md.contains("\n## primes\n"));
/// assert!(md.contains("\n## io-fanout\n"));
/// assert!(md.contains("| primes | threads | 2 | 1 | - | 6 | 120 ms |"));
///
/// let skipped = Record { check: "skipped: no Node.js".into(), skipped: true, ..Record::example() };
/// let md = bench_harness::report::markdown(&[Record::example(), skipped]);
/// assert!(md.contains("every check that ran passed; 1 row skipped."), "{md}");
/// assert!(md.contains("- skipped: `primes` (1 row): no Node.js"), "{md}");
/// ```
pub fn markdown(records: &[Record]) -> String {
    render_markdown(records, &[])
}

/// [`markdown`] with `![..](chart.svg)` links to those of `charts` (as [`super::charts`]
/// returned them for `dir`) that belong to each scenario.
pub(crate) fn markdown_with_charts(records: &[Record], dir: &Path, charts: &[PathBuf]) -> String {
    let plan = chart::plan(records);
    let links: Vec<(String, String, String)> = plan
        .into_iter()
        .filter_map(|p| {
            let path = dir.join(&p.file);
            charts.contains(&path).then(|| {
                let alt = format!("{}: {}", p.scenario, p.kind.describe());
                (p.scenario, alt, p.file)
            })
        })
        .collect();
    render_markdown(records, &links)
}

/// The report; `charts` holds (scenario, alt text, relative file) for the charts to show.
fn render_markdown(records: &[Record], charts: &[(String, String, String)]) -> String {
    let mut out = String::new();
    let groups = by_scenario(records);
    out.push_str("# Benchmark results\n\n");
    let failed: Vec<&Record> = records.iter().filter(|r| r.failed()).collect();
    let skipped = records.iter().filter(|r| r.skipped).count();
    let _ = writeln!(
        out,
        "{} {} in {} {}; {}{}.",
        records.len(),
        plural(records.len(), "row", "rows"),
        groups.len(),
        plural(groups.len(), "scenario", "scenarios"),
        match (failed.len(), skipped) {
            (0, 0) => "every check passed".to_string(),
            (0, _) => "every check that ran passed".to_string(),
            (1, _) => "**1 check failed**".to_string(),
            (n, _) => format!("**{n} checks failed**"),
        },
        match skipped {
            0 => String::new(),
            n => format!("; {n} {} skipped", plural(n, "row", "rows")),
        }
    );
    for r in &failed {
        let _ = writeln!(out, "- {}: {}", code(&r.key()), escape(&r.check));
    }
    // Why rows were skipped: once per scenario (and reason), not per row.
    let mut reasons: Vec<(&str, &str, usize)> = Vec::new();
    for r in records {
        if let Some(why) = r.skip_reason() {
            match reasons
                .iter_mut()
                .find(|(s, w, _)| *s == r.scenario && *w == why)
            {
                Some((_, _, n)) => *n += 1,
                None => reasons.push((&r.scenario, why, 1)),
            }
        }
    }
    for (scenario, why, n) in &reasons {
        let _ = writeln!(
            out,
            "- skipped: {} ({n} {}): {}",
            code(scenario),
            plural(*n, "row", "rows"),
            escape(why)
        );
    }
    out.push('\n');
    out.push_str(
        "Durations are per run (median, fastest–slowest of the timed runs) and per task \
         (median ÷ tasks). Speedup = serial median ÷ median; efficiency = ideal ÷ median, where \
         the ideal is the physical limit of the row (100 % reaches it). vs CPython = the median of \
         CPython's `concurrent.futures` on the same scenario and point (ThreadPoolExecutor for \
         `threads` and `async`, ProcessPoolExecutor for `process`) ÷ this median: how many times \
         faster than Python. `-` means none.\n",
    );
    if records.iter().any(|r| r.chunksize_auto) {
        out.push_str(
            "\nChunk `auto (N)`: `map` chose the chunk size from the measured cost of the first \
             items and chose N (the median of the timed runs' choices). CPython has no automatic \
             chunk size, so it runs no `auto` rows; an `auto` row's vs CPython is against \
             CPython's fastest chunk size at the same point (a floor for the ratio).\n",
        );
    }

    for (scenario, rows) in groups {
        let _ = write!(out, "\n## {}\n\n", escape(scenario));
        let _ = writeln!(out, "{}\n", describe_scenario(&rows));
        for (_, why, n) in reasons.iter().filter(|(s, _, _)| *s == scenario) {
            let _ = writeln!(
                out,
                "Skipped ({n} {}, not run on this machine): {}\n",
                plural(*n, "row", "rows"),
                escape(why)
            );
        }
        let _ = writeln!(out, "{}\n", baseline_line(&rows));
        let _ = writeln!(out, "{}\n", ideal_line(&rows));

        let header: Vec<String> = COLUMNS.iter().map(|c| escape(c)).collect();
        let _ = writeln!(out, "| {} |", header.join(" | "));
        let rule: Vec<&str> = (0..COLUMNS.len())
            .map(|i| if numeric_column(i) { "---:" } else { "---" })
            .collect();
        let _ = writeln!(out, "|{}|", rule.join("|"));
        for r in &rows {
            let row: Vec<String> = cells(r).iter().map(|c| escape(c)).collect();
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        for (_, alt, file) in charts.iter().filter(|(s, _, _)| s == scenario) {
            let _ = write!(out, "\n![{}]({})\n", escape_alt(alt), file);
        }
    }
    out
}

/// Workload, tasks and repeats of a scenario's rows (values that differ are listed).
fn describe_scenario(rows: &[&Record]) -> String {
    let workloads = distinct(rows.iter().map(|r| code(&r.workload)));
    let tasks = distinct(rows.iter().map(|r| r.tasks.to_string()));
    let repeats = distinct(rows.iter().map(|r| r.repeats.to_string()));
    let backends = distinct(rows.iter().map(|r| escape(&r.backend)));
    format!(
        "Workload {}, {} tasks per run, median of {} timed runs; backends: {}.",
        workloads.join(" / "),
        tasks.join(" / "),
        repeats.join(" / "),
        backends.join(", ")
    )
}

/// Where the speedup's baseline comes from (a `serial` row with no time, failed or skipped, is
/// none).
fn baseline_line(rows: &[&Record]) -> String {
    match rows
        .iter()
        .find(|r| r.backend == "serial" && r.median_s.is_finite())
    {
        Some(serial) => format!(
            "Baseline: the `serial` row (median {}, {} per task), the same tasks run one after \
             another on the calling thread; speedup = {} ÷ median.",
            format::human_duration(serial.median_s),
            format::human_duration(serial.per_task_us * 1e-6),
            format::human_duration(serial.median_s),
        ),
        None if rows.iter().any(|r| r.speedup.is_some()) => {
            "Baseline: no `serial` row in these results; speedups are as recorded with each row."
                .to_string()
        }
        None => {
            "Baseline: none (no `serial` row was measured), so there is no speedup.".to_string()
        }
    }
}

/// Where the ideal comes from, with its range over the rows.
fn ideal_line(rows: &[&Record]) -> String {
    let ideals: Vec<f64> = rows
        .iter()
        .filter_map(|r| r.ideal_s)
        .filter(|v| v.is_finite())
        .collect();
    if ideals.is_empty() {
        return "Ideal: none computed for this scenario, so there is no efficiency.".to_string();
    }
    let lo = ideals.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ideals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let span = if (hi - lo).abs() <= f64::EPSILON * hi.abs() {
        format::human_duration(lo)
    } else {
        format!(
            "{} to {}",
            format::human_duration(lo),
            format::human_duration(hi)
        )
    };
    let io = rows.iter().all(|r| r.workload == "io-fanout");
    let which = if io {
        "here the latency part: latency × ⌈N / concurrency⌉, one latency per wave of \
         concurrent requests"
    } else {
        "total CPU work ÷ usable cores, or latency × ⌈N / concurrency⌉ where tasks wait, \
         whichever is larger"
    };
    format!("Ideal ({span} here): the physical limit of each row, {which}.")
}

/// The distinct values of `it`, in first-seen order.
fn distinct(it: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in it {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// Markdown text (a table cell, a heading): on one line, with the characters Markdown would
/// read as markup (`|` included, which would split a table cell) backslash-escaped.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in format::one_line(s).chars() {
        if matches!(c, '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Image alt text: brackets would end it early.
fn escape_alt(s: &str) -> String {
    escape(&s.replace('[', "(").replace(']', ")"))
}

/// An inline code span (backticks inside would end it early).
fn code(s: &str) -> String {
    format!("`{}`", format::one_line(s).replace('`', "'"))
}
