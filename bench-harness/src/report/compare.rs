//! Comparing two runs: which rows got slower, which checks broke.

use std::fmt;

use comfy_table::{CellAlignment, ContentArrangement, Table, presets};

use super::format;
use crate::Record;

/// Longest note shown in the comparison table.
const NOTE_WIDTH: usize = 60;

/// What a comparison concludes about one row.
///
/// ```
/// use bench_harness::report::Verdict;
/// assert_eq!(Verdict::Regression.to_string(), "REGRESSION");
/// assert_eq!(Verdict::Ok.to_string(), "ok");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Within the threshold either way, and no check broke.
    Ok,
    /// Faster by more than the threshold (`new / old < 1 / (1 + threshold)`), no check broke.
    Faster,
    /// Slower by more than the threshold (`new / old > 1 + threshold`), or a check that passed
    /// in the old run fails in the new one.
    Regression,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Ok => "ok",
            Verdict::Faster => "faster",
            Verdict::Regression => "REGRESSION",
        })
    }
}

/// One row measured in both runs.
///
/// ```
/// use bench_harness::{report, Record};
/// let new = Record { median_s: 0.150, ..Record::example() };
/// let cmp = report::compare(&[Record::example()], &[new], 0.10);
/// let change = &cmp.changes()[0];
/// assert_eq!(change.key, Record::example().key());
/// assert!((change.ratio.unwrap() - 1.25).abs() < 1e-9);
/// assert!(change.slower && !change.check_broke);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// [`Record::key`] of both rows.
    pub key: String,
    /// The row in the old run.
    pub old: Record,
    /// The row in the new run.
    pub new: Record,
    /// `new.median_s / old.median_s`; `None` where the old median is not a positive finite
    /// number or the new one is not finite (then only the check can make a regression).
    pub ratio: Option<f64>,
    /// Slower by more than the threshold.
    pub slower: bool,
    /// The check passed in the old run and fails in the new one.
    pub check_broke: bool,
    /// The conclusion: [`Verdict::Regression`] if `slower || check_broke`.
    pub verdict: Verdict,
}

/// The result of [`compare`]: the rows in both runs with their verdicts, and the rows found in
/// only one of them. Displays as a table (key, old median, new median, ratio, verdict, note)
/// followed by the unmatched rows and a summary line.
///
/// ```
/// use bench_harness::{report, Record};
/// let cmp = report::compare(&[Record::example()], &[Record::example()], 0.10);
/// assert_eq!(cmp.regressions(), 0);
/// assert!(cmp.to_string().contains("1.00×"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    threshold: f64,
    changes: Vec<Change>,
    only_old: Vec<Record>,
    only_new: Vec<Record>,
}

impl Comparison {
    /// How many matched rows regressed (slower beyond the threshold, or a check that broke).
    ///
    /// ```
    /// use bench_harness::{report, Record};
    /// let broken = Record { check: "expected 5 primes, got 4".into(), ..Record::example() };
    /// assert_eq!(report::compare(&[Record::example()], &[broken], 0.10).regressions(), 1);
    /// ```
    pub fn regressions(&self) -> usize {
        self.regressed().count()
    }

    /// The matched rows that regressed, in the new run's order.
    ///
    /// ```
    /// use bench_harness::{report, Record};
    /// let slow = Record { median_s: 0.2, ..Record::example() };
    /// let cmp = report::compare(&[Record::example()], &[slow], 0.10);
    /// assert_eq!(cmp.regressed().next().unwrap().new.median_s, 0.2);
    /// ```
    pub fn regressed(&self) -> impl Iterator<Item = &Change> {
        self.changes
            .iter()
            .filter(|c| c.verdict == Verdict::Regression)
    }

    /// Every row found in both runs, in the new run's order.
    ///
    /// ```
    /// use bench_harness::{report, Record};
    /// let cmp = report::compare(&[Record::example()], &[Record::example()], 0.10);
    /// assert_eq!(cmp.changes().len(), 1);
    /// ```
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    /// Rows of the old run with no match in the new one (in the old run's order).
    ///
    /// ```
    /// use bench_harness::{report, Record};
    /// let cmp = report::compare(&[Record::example()], &[], 0.10);
    /// assert_eq!(cmp.only_in_old(), &[Record::example()]);
    /// ```
    pub fn only_in_old(&self) -> &[Record] {
        &self.only_old
    }

    /// Rows of the new run with no match in the old one (in the new run's order).
    ///
    /// ```
    /// use bench_harness::{report, Record};
    /// let cmp = report::compare(&[], &[Record::example()], 0.10);
    /// assert_eq!(cmp.only_in_new(), &[Record::example()]);
    /// ```
    pub fn only_in_new(&self) -> &[Record] {
        &self.only_new
    }

    /// The threshold in effect (negative or `NaN` thresholds count as 0).
    ///
    /// ```
    /// use bench_harness::report;
    /// assert_eq!(report::compare(&[], &[], 0.10).threshold(), 0.10);
    /// assert_eq!(report::compare(&[], &[], -1.0).threshold(), 0.0);
    /// ```
    pub fn threshold(&self) -> f64 {
        self.threshold
    }
}

/// Compares two runs row by row: rows are matched by [`Record::key`] (scenario, backend,
/// workers, chunksize, buffersize; the k-th row with a key in `new` matches the k-th one in
/// `old`), and for each pair the ratio `new.median_s / old.median_s` is taken.
///
/// How the threshold compares (`threshold = 0.10` means 10 %; negative or `NaN` counts as 0):
///
/// - **regression** when `ratio > 1 + threshold`, strictly (at 0.10, 1.10× is still ok,
///   1.1001× is not), **or** when the check passed in `old` and fails in `new`, whatever the
///   time;
/// - **faster** when `ratio < 1 / (1 + threshold)` (the mirror image: at 0.10, a row that
///   takes less than 1/1.1 ≈ 0.909 of its old time) and no check broke;
/// - **ok** otherwise. A check that fails in both runs is not a regression (the note says it
///   still fails); one that failed before and passes now is noted as fixed.
///
/// Where the old median is not a positive finite number (or the new one is not finite) there is
/// no ratio, and only a broken check makes a regression. Rows found in only one run are listed
/// apart ([`Comparison::only_in_old`], [`Comparison::only_in_new`]) and are not regressions.
///
/// A [skipped](Record::skipped) row is no measurement: it is left out before matching, as if
/// absent from its run. So a row skipped in one run and measured in the other is listed as
/// only in the run that measured it, one skipped in both is not listed at all, and neither is
/// ever a regression (nor a broken check).
///
/// ```
/// use bench_harness::{report, Record};
/// let old = vec![Record::example()];
/// let new = vec![Record { median_s: old[0].median_s * 1.2, ..Record::example() }];
/// let cmp = report::compare(&old, &new, 0.10);
/// assert_eq!(cmp.regressions(), 1);
/// assert!(cmp.to_string().contains("REGRESSION"));
/// assert_eq!(report::compare(&old, &new, 0.25).regressions(), 0);
///
/// let skipped = Record { check: "skipped: no Node.js".into(), skipped: true, ..Record::example() };
/// let cmp = report::compare(&old, &[skipped], 0.10);
/// assert_eq!((cmp.regressions(), cmp.only_in_old().len(), cmp.only_in_new().len()), (0, 1, 0));
/// ```
pub fn compare(old: &[Record], new: &[Record], threshold: f64) -> Comparison {
    let threshold = threshold.max(0.0); // f64::max ignores NaN
    let old: Vec<&Record> = old.iter().filter(|r| !r.skipped).collect();
    let new = new.iter().filter(|r| !r.skipped);
    let mut used = vec![false; old.len()];
    let mut changes = Vec::new();
    let mut only_new = Vec::new();
    for n in new {
        let key = n.key();
        let found = old
            .iter()
            .enumerate()
            .position(|(i, o)| !used[i] && o.key() == key);
        let Some(i) = found else {
            only_new.push(n.clone());
            continue;
        };
        used[i] = true;
        let o = old[i];
        let ratio = (o.median_s.is_finite() && o.median_s > 0.0 && n.median_s.is_finite())
            .then(|| n.median_s / o.median_s);
        let slower = ratio.is_some_and(|r| r > 1.0 + threshold);
        let faster = ratio.is_some_and(|r| r < 1.0 / (1.0 + threshold));
        let check_broke = o.check_passed() && !n.check_passed();
        let verdict = if slower || check_broke {
            Verdict::Regression
        } else if faster {
            Verdict::Faster
        } else {
            Verdict::Ok
        };
        changes.push(Change {
            key,
            old: o.clone(),
            new: n.clone(),
            ratio,
            slower,
            check_broke,
            verdict,
        });
    }
    let only_old = old
        .iter()
        .zip(&used)
        .filter(|(_, used)| !**used)
        .map(|(o, _)| (*o).clone())
        .collect();
    Comparison {
        threshold,
        changes,
        only_old,
        only_new,
    }
}

/// The note of a change: what happened to its check.
fn note(c: &Change) -> String {
    let old_ok = c.old.check_passed();
    let new_ok = c.new.check_passed();
    let text = match (old_ok, new_ok) {
        (true, false) => format!("check broke: {}", format::one_line(&c.new.check)),
        (false, false) => format!("check still fails: {}", format::one_line(&c.new.check)),
        (false, true) => "check fixed".to_string(),
        (true, true) if c.ratio.is_none() => "no ratio (old median not positive)".to_string(),
        (true, true) => String::new(),
    };
    format::truncate(&text, NOTE_WIDTH)
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut table = Table::new();
        table
            .load_preset(presets::UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Disabled)
            .set_header(vec![
                "key",
                "old median",
                "new median",
                "ratio",
                "verdict",
                "note",
            ]);
        for c in &self.changes {
            table.add_row(vec![
                c.key.clone(),
                format::human_duration(c.old.median_s),
                format::human_duration(c.new.median_s),
                c.ratio.map_or_else(|| "-".to_string(), format::ratio2),
                c.verdict.to_string(),
                note(c),
            ]);
        }
        for i in 1..=3 {
            if let Some(column) = table.column_mut(i) {
                column.set_cell_alignment(CellAlignment::Right);
            }
        }
        if !self.changes.is_empty() {
            writeln!(f, "{table}")?;
        }
        for (title, rows) in [
            ("only in old", &self.only_old),
            ("only in new", &self.only_new),
        ] {
            if !rows.is_empty() {
                writeln!(f, "{title} ({}):", rows.len())?;
                for r in rows {
                    writeln!(
                        f,
                        "  {}  (median {})",
                        r.key(),
                        format::human_duration(r.median_s)
                    )?;
                }
            }
        }
        let faster = self
            .changes
            .iter()
            .filter(|c| c.verdict == Verdict::Faster)
            .count();
        let regressions = self.regressions();
        write!(
            f,
            "{} matched, {regressions} {}, {faster} faster \
             (regression: more than {} % slower, or a check that broke)",
            self.changes.len(),
            if regressions == 1 {
                "regression"
            } else {
                "regressions"
            },
            (self.threshold * 1000.0).round() / 10.0,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skipped() -> Record {
        Record {
            check: "skipped: azure-blobs needs Node.js".into(),
            skipped: true,
            median_s: f64::NAN,
            min_s: f64::NAN,
            max_s: f64::NAN,
            per_task_us: f64::NAN,
            speedup: None,
            ..Record::example()
        }
    }

    #[test]
    fn a_skipped_row_is_never_a_regression_but_counts_as_absent() {
        let measured = Record::example();
        // Measured before, skipped now: only in old, not a broken check.
        let cmp = compare(std::slice::from_ref(&measured), &[skipped()], 0.10);
        assert_eq!(cmp.regressions(), 0);
        assert!(cmp.changes().is_empty());
        assert_eq!(cmp.only_in_old(), std::slice::from_ref(&measured));
        assert!(cmp.only_in_new().is_empty());
        // Skipped before, measured now: only in new.
        let cmp = compare(&[skipped()], std::slice::from_ref(&measured), 0.10);
        assert_eq!(cmp.regressions(), 0);
        assert_eq!(cmp.only_in_new(), std::slice::from_ref(&measured));
        assert!(cmp.only_in_old().is_empty());
        // Skipped in both: not listed at all.
        let cmp = compare(&[skipped()], &[skipped()], 0.10);
        assert_eq!(cmp.regressions(), 0);
        assert!(cmp.changes().is_empty() && cmp.only_in_old().is_empty());
        assert!(cmp.only_in_new().is_empty());
        // A skipped row does not take the place of a measured one with the same key.
        let slow = Record {
            median_s: 1.0,
            ..Record::example()
        };
        let cmp = compare(&[skipped(), measured], &[slow], 0.10);
        assert_eq!(cmp.regressions(), 1, "the measured rows still match");
    }
}
