//! Number formatting shared by the table, the Markdown report, the comparison and the charts.

use crate::Record;

/// A duration in seconds as a person reads it: three significant digits and a unit that keeps
/// the number between 1 and 999 (`"1.23 s"`, `"45.6 ms"`, `"789 µs"`, `"850 ns"`).
///
/// Durations of an hour or more stay in seconds (`"5400 s"`); zero is `"0 s"`; a negative
/// duration keeps its sign; `NaN` and infinities are `"-"`.
///
/// ```
/// use bench_harness::report::human_duration;
/// assert_eq!(human_duration(1.234), "1.23 s");
/// assert_eq!(human_duration(0.045_6), "45.6 ms");
/// assert_eq!(human_duration(0.000_789), "789 µs");
/// assert_eq!(human_duration(0.000_000_85), "850 ns");
/// assert_eq!(human_duration(0.999_9), "1.00 s");
/// assert_eq!(human_duration(f64::NAN), "-");
/// ```
pub fn human_duration(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "-".to_string();
    }
    if seconds == 0.0 {
        return "0 s".to_string();
    }
    let sign = if seconds < 0.0 { "-" } else { "" };
    let s = seconds.abs();
    const UNITS: [(f64, &str); 4] = [(1.0, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns")];
    for (i, &(scale, unit)) in UNITS.iter().enumerate() {
        let last = i + 1 == UNITS.len();
        if s >= scale || last {
            let v = s / scale;
            let text = three_significant(v);
            // 999.96 ms rounds to "1000": move up a unit instead (never above seconds).
            if i > 0 && text.parse::<f64>().is_ok_and(|p| p >= 1000.0) {
                let (up_scale, up_unit) = UNITS[i - 1];
                return format!("{sign}{:.2} {up_unit}", s / up_scale);
            }
            return format!("{sign}{text} {unit}");
        }
    }
    unreachable!("the last unit always matches")
}

/// `v` with three significant digits for `v` in [1, 1000) (fewer decimals as it grows); values
/// below 1 (only for sub-nanosecond durations) keep three decimals.
fn three_significant(v: f64) -> String {
    if v >= 99.95 {
        format!("{v:.0}")
    } else if v >= 9.995 {
        format!("{v:.1}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// `"3.9×"`: one decimal from 1× up, none from 100× up, two significant digits below 1×
/// (`"0.45×"`, `"0.0011×"`: a slowdown by more than 2, or by 900, should not read `"0.0×"`);
/// `"-"` for `None` or non-finite values.
pub(crate) fn speedup(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => ratio(v),
        _ => "-".to_string(),
    }
}

/// A ratio with a `×` sign (see [`speedup`]).
pub(crate) fn ratio(v: f64) -> String {
    if !v.is_finite() {
        "-".to_string()
    } else if v >= 99.95 {
        format!("{v:.0}×")
    } else if v >= 0.995 {
        format!("{v:.1}×")
    } else if v > 0.0 {
        let decimals = (1 - v.log10().floor() as i32).clamp(2, 6) as usize;
        format!("{v:.decimals$}×")
    } else {
        "0×".to_string()
    }
}

/// A ratio with two decimals (`"1.23×"`), for comparing two runs where 1.04 and 1.05 differ.
pub(crate) fn ratio2(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.2}×")
    } else {
        "-".to_string()
    }
}

/// `"92 %"`; one decimal below 10 % (`"4.7 %"`), `"<0.1 %"` below that; `"-"` for `None` or
/// non-finite values.
pub(crate) fn percent(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => {
            let p = v * 100.0;
            if p >= 9.95 || p == 0.0 {
                format!("{p:.0} %")
            } else if p >= 0.05 {
                format!("{p:.1} %")
            } else if p > 0.0 {
                "<0.1 %".to_string()
            } else {
                format!("{p:.0} %")
            }
        }
        _ => "-".to_string(),
    }
}

/// An optional count; `"-"` for `None`.
pub(crate) fn opt(v: Option<usize>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// `"115–131 ms"` when both ends share a unit, else `"850 µs – 1.20 ms"`.
pub(crate) fn range(min_s: f64, max_s: f64) -> String {
    let lo = human_duration(min_s);
    let hi = human_duration(max_s);
    match (lo.rsplit_once(' '), hi.rsplit_once(' ')) {
        (Some((lo_v, lo_u)), Some((hi_v, hi_u))) if lo_u == hi_u && lo != "-" => {
            format!("{lo_v}–{hi_v} {hi_u}")
        }
        _ => format!("{lo} – {hi}"),
    }
}

/// The check column: `"ok"`, or the message; failed tasks are appended when there were any
/// (a fault scenario expects some, so they are not an error by themselves).
pub(crate) fn check(r: &Record) -> String {
    let msg = one_line(&r.check);
    if r.failed_tasks == 0 {
        msg
    } else {
        let tasks = if r.failed_tasks == 1 { "task" } else { "tasks" };
        format!("{msg} ({} failed {tasks})", r.failed_tasks)
    }
}

/// `s` with line breaks (and runs of whitespace around them) turned into single spaces.
pub(crate) fn one_line(s: &str) -> String {
    if s.contains(['\n', '\r']) {
        s.split(['\n', '\r'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        s.to_string()
    }
}

/// At most `max` characters of `s`, ending in `…` when cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// The records grouped by scenario, scenarios in first-seen order, rows in input order.
pub(crate) fn by_scenario(records: &[Record]) -> Vec<(&str, Vec<&Record>)> {
    let mut groups: Vec<(&str, Vec<&Record>)> = Vec::new();
    for r in records {
        match groups.iter_mut().find(|(s, _)| *s == r.scenario) {
            Some((_, rows)) => rows.push(r),
            None => groups.push((&r.scenario, vec![r])),
        }
    }
    groups
}

/// The column headers shared by the terminal table and the Markdown report.
pub(crate) const COLUMNS: [&str; 13] = [
    "scenario",
    "backend",
    "workers",
    "chunk",
    "buffer",
    "tasks",
    "median",
    "min–max",
    "per task",
    "speedup",
    "efficiency",
    "vs CPython",
    "check",
];

/// Whether column `i` of [`COLUMNS`] holds numbers (right-aligned).
pub(crate) fn numeric_column(i: usize) -> bool {
    (2..=11).contains(&i)
}

/// One row's cells in [`COLUMNS`] order (the check cell untruncated).
pub(crate) fn cells(r: &Record) -> [String; 13] {
    [
        r.scenario.clone(),
        r.backend.clone(),
        opt(r.max_workers),
        r.chunk_label(),
        opt(r.buffersize),
        r.tasks.to_string(),
        human_duration(r.median_s),
        range(r.min_s, r.max_s),
        human_duration(r.per_task_us * 1e-6),
        speedup(r.speedup),
        percent(r.efficiency),
        speedup(r.vs_cpython),
        check(r),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(human_duration(12.345), "12.3 s");
        assert_eq!(human_duration(123.4), "123 s");
        assert_eq!(human_duration(5400.0), "5400 s");
        assert_eq!(human_duration(0.5), "500 ms");
        assert_eq!(human_duration(0.001), "1.00 ms");
        assert_eq!(human_duration(0.000_999_96), "1.00 ms");
        assert_eq!(human_duration(1e-6), "1.00 µs");
        assert_eq!(human_duration(1.5e-10), "0.150 ns");
        assert_eq!(human_duration(0.0), "0 s");
        assert_eq!(human_duration(-0.002), "-2.00 ms");
    }

    #[test]
    fn ratios_and_ranges() {
        assert_eq!(speedup(Some(3.94)), "3.9×");
        assert_eq!(speedup(Some(0.456)), "0.46×");
        assert_eq!(speedup(Some(0.018_64)), "0.019×");
        assert_eq!(speedup(Some(0.001_07)), "0.0011×");
        assert_eq!(speedup(Some(0.0)), "0×");
        assert_eq!(ratio2(1.2), "1.20×");
        assert_eq!(percent(Some(0.047)), "4.7 %");
        assert_eq!(percent(Some(0.0002)), "<0.1 %");
        assert_eq!(percent(Some(3.72)), "372 %");
        assert_eq!(speedup(Some(123.4)), "123×");
        assert_eq!(speedup(None), "-");
        assert_eq!(percent(Some(0.923)), "92 %");
        assert_eq!(percent(None), "-");
        assert_eq!(range(0.115, 0.131), "115–131 ms");
        assert_eq!(range(0.000_85, 0.0012), "850 µs – 1.20 ms");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
        assert_eq!(one_line("a\n  b\r\nc"), "a b c");
    }
}
