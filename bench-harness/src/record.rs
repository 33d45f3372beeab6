//! One measured row: a scenario on one backend at one point of its matrix.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

// A row whose runs never finished has no times: NaN, which JSON writes as `null`.
fn nan_if_null<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

// The fixed chunk size: a number, or none (`null` in JSON, an empty cell in CSV). The CSV
// writes `auto` in the chunksize column of an automatic row (`chunksize_auto` says so too),
// which is no fixed size either.
fn fixed_chunksize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    struct Cell;
    impl<'de> Visitor<'de> for Cell {
        type Value = Option<usize>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a chunk size (an integer), `auto` or nothing")
        }
        fn visit_none<E: de::Error>(self) -> Result<Option<usize>, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Option<usize>, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
            d.deserialize_any(Cell)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<usize>, E> {
            usize::try_from(v)
                .map(Some)
                .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<usize>, E> {
            usize::try_from(v)
                .map(Some)
                .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<usize>, E> {
            match v {
                "auto" | "" => Ok(None),
                _ => v
                    .parse()
                    .map(Some)
                    .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self)),
            }
        }
    }
    d.deserialize_option(Cell)
}

/// One row of results: what ran, how long it took, and whether its results were right.
///
/// Every export (JSON lines, CSV, Markdown, the terminal table, the charts) is made from these.
///
/// ```
/// use bench_harness::Record;
/// let r = Record::example();
/// assert_eq!(r.backend, "threads");
/// assert!(r.check_passed());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The scenario's name (`primes`, `io-fanout`, ...).
    pub scenario: String,
    /// The workload kind (`primes`, `prime-range`, `noop`, `io-fanout`, `faults`, `azure-blobs`).
    pub workload: String,
    /// `serial`, `threads`, `process`, `async`, or CPython's `cpython-threads` and
    /// `cpython-process`.
    pub backend: String,
    /// The pool size; `None` for the serial baseline.
    pub max_workers: Option<usize>,
    /// `map`'s fixed chunk size; `None` where the workload does not use `map`, for serial, and
    /// where `map` chose it ([`chunksize_auto`](Record::chunksize_auto)).
    #[serde(default, deserialize_with = "fixed_chunksize")]
    pub chunksize: Option<usize>,
    /// `map`'s buffer size; `None` when unbounded.
    pub buffersize: Option<usize>,
    /// Tasks (items) per run.
    pub tasks: usize,
    /// Timed runs (warm-up runs excluded).
    pub repeats: usize,
    /// Median wall time of one run, seconds.
    #[serde(deserialize_with = "nan_if_null")]
    pub median_s: f64,
    /// Fastest run, seconds.
    #[serde(deserialize_with = "nan_if_null")]
    pub min_s: f64,
    /// Slowest run, seconds.
    #[serde(deserialize_with = "nan_if_null")]
    pub max_s: f64,
    /// `median_s / tasks`, microseconds.
    #[serde(deserialize_with = "nan_if_null")]
    pub per_task_us: f64,
    /// Serial median / this median (`None` where no serial row was measured).
    pub speedup: Option<f64>,
    /// The physical limit for this row, seconds: total CPU work / usable cores, or latency ×
    /// ⌈tasks / concurrency⌉, whichever is larger (`None` where neither applies).
    pub ideal_s: Option<f64>,
    /// `ideal_s / median_s`: 1.0 is the physical limit.
    pub efficiency: Option<f64>,
    /// CPython's median on the same scenario and point / this median (threads and async against
    /// `ThreadPoolExecutor`, process against `ProcessPoolExecutor`): how many times faster than
    /// Python. `None` where CPython did not run.
    #[serde(default)]
    pub vs_cpython: Option<f64>,
    /// Tasks that failed (error or panic) in the last run; a fault scenario expects some.
    pub failed_tasks: usize,
    /// `"ok"`, or what did not match the scenario's expectations; for a
    /// [`skipped`](Record::skipped) row, `"skipped: "` and why.
    pub check: String,
    /// `map` chose the chunk size from measured task cost (the matrix said `auto`); then
    /// [`chunksize`](Record::chunksize) is `None` and the choice is in
    /// [`chunksize_chosen`](Record::chunksize_chosen). `false` in files written before `auto`.
    #[serde(default)]
    pub chunksize_auto: bool,
    /// The chunk size `map` chose, for an automatic row: the median of its timed runs' choices
    /// (the lower middle one for an even count). `None` for fixed rows and where no timed run
    /// finished.
    #[serde(default)]
    pub chunksize_chosen: Option<usize>,
    /// The row was not run because something it needs is missing on this machine (the
    /// `azure-blobs` scenario without Node.js for Azurite); [`check`](Record::check) says what
    /// and how to get it. A skipped row has no times, is neither passed nor
    /// [`failed`](Record::failed), and does not fail a run. `false` in files written before
    /// rows could be skipped.
    ///
    /// ```
    /// use bench_harness::Record;
    /// let line = serde_json::to_string(&Record::example()).unwrap();
    /// assert!(line.contains("\"skipped\":false"));
    /// let old = line.replace(",\"skipped\":false", "");
    /// let back: Record = serde_json::from_str(&old).unwrap();
    /// assert!(!back.skipped);
    /// ```
    #[serde(default)]
    pub skipped: bool,
}

impl Record {
    /// Whether the row's results matched the scenario's expectations.
    ///
    /// ```
    /// let mut r = bench_harness::Record::example();
    /// assert!(r.check_passed());
    /// r.check = "expected 5 primes, got 4".into();
    /// assert!(!r.check_passed());
    /// ```
    pub fn check_passed(&self) -> bool {
        self.check == "ok"
    }

    /// Whether the row failed: its check did not pass and it was not
    /// [`skipped`](Record::skipped). What makes a run exit non-zero.
    ///
    /// ```
    /// use bench_harness::Record;
    /// let wrong = Record { check: "expected 5 primes, got 4".into(), ..Record::example() };
    /// assert!(wrong.failed());
    /// let skipped = Record { check: "skipped: no Node.js".into(), skipped: true, ..Record::example() };
    /// assert!(!skipped.failed() && !skipped.check_passed());
    /// assert!(!Record::example().failed());
    /// ```
    pub fn failed(&self) -> bool {
        !self.check_passed() && !self.skipped
    }

    /// Why a [`skipped`](Record::skipped) row was skipped: its check without the leading
    /// `"skipped: "`; `None` for a row that was not skipped.
    ///
    /// ```
    /// use bench_harness::Record;
    /// let skipped = Record { check: "skipped: no Node.js".into(), skipped: true, ..Record::example() };
    /// assert_eq!(skipped.skip_reason(), Some("no Node.js"));
    /// assert_eq!(Record::example().skip_reason(), None);
    /// ```
    pub fn skip_reason(&self) -> Option<&str> {
        self.skipped
            .then(|| self.check.strip_prefix("skipped: ").unwrap_or(&self.check))
    }

    /// The key that identifies "the same measurement" across two runs (for `compare`). An
    /// automatic chunk size is `chunksize=auto`, whatever size `map` chose, so automatic rows
    /// of two runs match each other and never a fixed row.
    ///
    /// ```
    /// let r = bench_harness::Record::example();
    /// assert_eq!(r.key(), "primes / threads / workers=2 / chunksize=1 / buffersize=-");
    /// let auto = bench_harness::Record { chunksize: None, chunksize_auto: true, chunksize_chosen: Some(1250), ..r };
    /// assert_eq!(auto.key(), "primes / threads / workers=2 / chunksize=auto / buffersize=-");
    /// ```
    pub fn key(&self) -> String {
        fn opt(v: Option<usize>) -> String {
            v.map_or_else(|| "-".to_string(), |v| v.to_string())
        }
        let chunksize = if self.chunksize_auto {
            "auto".to_string()
        } else {
            opt(self.chunksize)
        };
        format!(
            "{} / {} / workers={} / chunksize={chunksize} / buffersize={}",
            self.scenario,
            self.backend,
            opt(self.max_workers),
            opt(self.buffersize)
        )
    }

    /// The chunk size as the reports show it: the fixed size, `auto (N)` where `map` chose N
    /// (`auto` alone if no timed run finished), `-` where there is none.
    ///
    /// ```
    /// use bench_harness::Record;
    /// assert_eq!(Record::example().chunk_label(), "1");
    /// let auto = Record { chunksize: None, chunksize_auto: true, chunksize_chosen: Some(1250), ..Record::example() };
    /// assert_eq!(auto.chunk_label(), "auto (1250)");
    /// assert_eq!(Record { chunksize: None, ..Record::example() }.chunk_label(), "-");
    /// ```
    pub fn chunk_label(&self) -> String {
        match (self.chunksize_auto, self.chunksize_chosen, self.chunksize) {
            (true, Some(chosen), _) => format!("auto ({chosen})"),
            (true, None, _) => "auto".to_string(),
            (false, _, Some(c)) => c.to_string(),
            (false, _, None) => "-".to_string(),
        }
    }

    /// A plausible row, for examples and tests.
    ///
    /// ```
    /// assert_eq!(bench_harness::Record::example().tasks, 6);
    /// ```
    pub fn example() -> Record {
        Record {
            scenario: "primes".into(),
            workload: "primes".into(),
            backend: "threads".into(),
            max_workers: Some(2),
            chunksize: Some(1),
            buffersize: None,
            tasks: 6,
            repeats: 3,
            median_s: 0.120,
            min_s: 0.115,
            max_s: 0.131,
            per_task_us: 20_000.0,
            speedup: Some(1.9),
            ideal_s: Some(0.114),
            efficiency: Some(0.95),
            vs_cpython: Some(4.2),
            failed_tasks: 0,
            check: "ok".into(),
            chunksize_auto: false,
            chunksize_chosen: None,
            skipped: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_without_skipped_reads_as_not_skipped() {
        let mut value = serde_json::to_value(Record::example()).unwrap();
        assert!(value.as_object_mut().unwrap().remove("skipped").is_some());
        let back: Record = serde_json::from_value(value).unwrap();
        assert_eq!(back, Record::example());
        assert!(!back.skipped && !back.failed());
    }

    #[test]
    fn a_skipped_row_round_trips_and_is_neither_passed_nor_failed() {
        let skipped = Record {
            check: "skipped: azure-blobs needs Node.js".into(),
            skipped: true,
            median_s: f64::NAN,
            ..Record::example()
        };
        let line = serde_json::to_string(&skipped).unwrap();
        assert!(line.contains("\"skipped\":true"), "{line}");
        let back: Record = serde_json::from_str(&line).unwrap();
        assert!(back.skipped && back.median_s.is_nan());
        assert!(!back.check_passed() && !back.failed());
        assert_eq!(back.skip_reason(), Some("azure-blobs needs Node.js"));
    }
}
