//! Reading back the JSON lines a [`ResultSink`](super::ResultSink) wrote.

use std::fmt;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::Record;

/// Why a results file could not be read: which file, which line (1-based) and what is wrong.
///
/// Displays as `path:line: message` (`results.jsonl:3: missing field `median_s``), or
/// `path: message` where no line is involved (the file could not be opened).
///
/// ```
/// let dir = std::env::temp_dir().join(format!("report-error-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("results.jsonl");
/// std::fs::write(&path, "{\"scenario\": \"primes\"}\n").unwrap();
/// let err = bench_harness::report::read_jsonl(&path).unwrap_err();
/// assert_eq!(err.line(), Some(1));
/// assert!(err.to_string().ends_with("results.jsonl:1: missing field `workload`"), "{err}");
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Debug)]
pub struct ReportError {
    path: PathBuf,
    line: Option<usize>,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl ReportError {
    /// The file that could not be read.
    ///
    /// ```
    /// let err = bench_harness::report::read_jsonl("no/such/results.jsonl".as_ref()).unwrap_err();
    /// assert_eq!(err.path(), std::path::Path::new("no/such/results.jsonl"));
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The 1-based line that is wrong; `None` where the file as a whole could not be read.
    ///
    /// ```
    /// let err = bench_harness::report::read_jsonl("no/such/results.jsonl".as_ref()).unwrap_err();
    /// assert_eq!(err.line(), None);
    /// ```
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// What is wrong, without the file and line.
    ///
    /// ```
    /// let err = bench_harness::report::read_jsonl("no/such/results.jsonl".as_ref()).unwrap_err();
    /// assert!(!err.message().is_empty());
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }

    fn io(path: &Path, line: Option<usize>, e: io::Error) -> ReportError {
        ReportError {
            path: path.to_path_buf(),
            line,
            message: e.to_string(),
            source: Some(Box::new(e)),
        }
    }

    fn json(path: &Path, line: usize, e: serde_json::Error) -> ReportError {
        // serde_json appends " at line L column C" (relative to the one line it parsed); the
        // line is ours to give, the column is only worth keeping for syntax errors.
        let full = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let bare = full.strip_suffix(&suffix).unwrap_or(&full);
        let message = if e.is_syntax() || e.is_eof() {
            format!("{bare} (column {})", e.column())
        } else {
            bare.to_string()
        };
        ReportError {
            path: path.to_path_buf(),
            line: Some(line),
            message,
            source: Some(Box::new(e)),
        }
    }
}

impl fmt::Display for ReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.path.display(), self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

impl std::error::Error for ReportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Reads a JSON-lines results file (one [`Record`] per line, as
/// [`ResultSink::push`](super::ResultSink::push) writes them). Blank lines are skipped.
///
/// Stops at the first bad line; the error names the file and the 1-based line.
///
/// ```
/// use bench_harness::{report, Record};
/// let dir = std::env::temp_dir().join(format!("read-jsonl-doc-{}", std::process::id()));
/// let mut sink = report::ResultSink::create(&dir)?;
/// sink.push(&Record::example())?;
/// let back = report::read_jsonl(&dir.join("results.jsonl"))?;
/// assert_eq!(back, vec![Record::example()]);
/// std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read_jsonl(path: &Path) -> Result<Vec<Record>, ReportError> {
    let file = std::fs::File::open(path).map_err(|e| ReportError::io(path, None, e))?;
    let mut records = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let n = i + 1;
        let line = line.map_err(|e| ReportError::io(path, Some(n), e))?;
        if line.trim().is_empty() {
            continue;
        }
        records.push(parse_line(&line).map_err(|e| ReportError::json(path, n, e))?);
    }
    Ok(records)
}

/// One line as a [`Record`]. serde_json's `float_roundtrip` feature (enabled in the workspace)
/// reads every float back exactly as it was written.
fn parse_line(line: &str) -> Result<Record, serde_json::Error> {
    serde_json::from_str(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_come_back_exactly() {
        let mut r = Record::example();
        for v in [
            1.332_720_000_000_000_1,
            0.1 + 0.2,
            1e-300,
            123_456_789.123_456_79,
            5e-324,
        ] {
            r.median_s = v;
            let line = serde_json::to_string(&r).unwrap();
            assert_eq!(
                parse_line(&line).unwrap().median_s.to_bits(),
                v.to_bits(),
                "{line}"
            );
        }
    }
}
