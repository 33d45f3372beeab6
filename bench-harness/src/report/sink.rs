//! Results written as they arrive.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::Record;

/// The file names a [`ResultSink`] writes inside its directory.
const JSONL: &str = "results.jsonl";
const CSV: &str = "results.csv";
const MARKDOWN: &str = "results.md";

/// Writes results as they arrive, so that a run that fails halfway keeps what it measured.
///
/// [`create`](ResultSink::create) starts `results.jsonl` and `results.csv` (with its header) in
/// a directory; every [`push`](ResultSink::push) appends one line to each and flushes both to
/// the operating system before returning (a later panic or kill loses nothing already pushed;
/// the files are not `fsync`ed, so a power cut may). [`finish`](ResultSink::finish) adds the
/// Markdown report and the SVG charts. Dropping the sink without `finish` leaves the two
/// row files complete.
///
/// Both row files have one field (column) per [`Record`] field. An automatic chunk size is
/// `"chunksize": null` in the JSON and `auto` in the CSV's `chunksize` column; both also have
/// `chunksize_auto` and `chunksize_chosen`, then `skipped` (`true` for a
/// [skipped](Record::skipped) row), the CSV's last three columns: new columns go last, so
/// older columns keep their positions.
///
/// ```
/// use bench_harness::{report::ResultSink, Record};
/// let dir = std::env::temp_dir().join(format!("result-sink-doc-{}", std::process::id()));
/// let mut sink = ResultSink::create(&dir)?;
/// sink.push(&Record::example())?;
/// assert_eq!(sink.records().len(), 1);
/// let written = sink.finish()?;
/// assert!(written.paths().iter().any(|p| p.ends_with("results.md")));
/// std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct ResultSink {
    dir: PathBuf,
    jsonl: File,
    csv: csv::Writer<File>,
    records: Vec<Record>,
}

impl ResultSink {
    /// Creates `dir` (and its parents) and creates or truncates `results.jsonl` and
    /// `results.csv` in it; the CSV header is written and flushed at once.
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("sink-create-doc-{}", std::process::id()));
    /// let sink = bench_harness::report::ResultSink::create(&dir.join("a/b"))?;
    /// let header = std::fs::read_to_string(sink.dir().join("results.csv"))?;
    /// assert!(header.starts_with("scenario,workload,backend,"));
    /// std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create(dir: &Path) -> io::Result<ResultSink> {
        std::fs::create_dir_all(dir)?;
        let jsonl = File::create(dir.join(JSONL))?;
        let mut csv = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(File::create(dir.join(CSV))?);
        csv.write_record(&csv_header()?).map_err(csv_error)?;
        csv.flush()?;
        Ok(ResultSink {
            dir: dir.to_path_buf(),
            jsonl,
            csv,
            records: Vec::new(),
        })
    }

    /// Appends `record` as one JSON line and one CSV row, flushes both files, and keeps a copy.
    ///
    /// ```
    /// use bench_harness::{report::ResultSink, Record};
    /// let dir = std::env::temp_dir().join(format!("sink-push-doc-{}", std::process::id()));
    /// let mut sink = ResultSink::create(&dir)?;
    /// sink.push(&Record::example())?;
    /// let jsonl = std::fs::read_to_string(dir.join("results.jsonl"))?;
    /// assert_eq!(jsonl.lines().count(), 1);
    /// std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn push(&mut self, record: &Record) -> io::Result<()> {
        let mut line = serde_json::to_string(record)?;
        line.push('\n');
        // One write for the whole line: a crash leaves whole lines behind.
        self.jsonl.write_all(line.as_bytes())?;
        self.jsonl.flush()?;
        if record.chunksize_auto {
            self.csv
                .write_record(&auto_csv_row(record)?)
                .map_err(csv_error)?;
        } else {
            self.csv.serialize(record).map_err(csv_error)?;
        }
        self.csv.flush()?;
        self.records.push(record.clone());
        Ok(())
    }

    /// Every record pushed so far, in order.
    ///
    /// ```
    /// use bench_harness::{report::ResultSink, Record};
    /// let dir = std::env::temp_dir().join(format!("sink-records-doc-{}", std::process::id()));
    /// let mut sink = ResultSink::create(&dir)?;
    /// sink.push(&Record::example())?;
    /// assert_eq!(sink.records(), &[Record::example()]);
    /// std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// The directory the files go to.
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("sink-dir-doc-{}", std::process::id()));
    /// let sink = bench_harness::report::ResultSink::create(&dir)?;
    /// assert_eq!(sink.dir(), dir.as_path());
    /// std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `results.md` (the [`markdown`](super::markdown) report, with the charts shown
    /// under each scenario's heading) and the [`charts`](super::charts) into the directory, and
    /// lists every file written.
    ///
    /// ```
    /// use bench_harness::{report::ResultSink, Record};
    /// let dir = std::env::temp_dir().join(format!("sink-finish-doc-{}", std::process::id()));
    /// let mut sink = ResultSink::create(&dir)?;
    /// sink.push(&Record::example())?;
    /// let written = sink.finish()?;
    /// assert_eq!(written.charts, vec![dir.join("primes.svg")]);
    /// assert_eq!(written.paths().len(), 4); // jsonl, csv, md, one chart
    /// std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn finish(mut self) -> io::Result<Written> {
        self.jsonl.flush()?;
        self.csv.flush()?;
        let charts = super::charts(&self.records, &self.dir)?;
        let markdown = self.dir.join(MARKDOWN);
        let text = super::table::markdown_with_charts(&self.records, &self.dir, &charts);
        std::fs::write(&markdown, text)?;
        Ok(Written {
            jsonl: self.dir.join(JSONL),
            csv: self.dir.join(CSV),
            markdown,
            charts,
        })
    }
}

/// The files [`ResultSink::finish`] wrote.
///
/// ```
/// use bench_harness::{report::ResultSink, Record};
/// let dir = std::env::temp_dir().join(format!("written-doc-{}", std::process::id()));
/// let written = ResultSink::create(&dir)?.finish()?;
/// assert_eq!(written.jsonl, dir.join("results.jsonl"));
/// assert!(written.charts.is_empty()); // nothing measured, nothing to draw
/// std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// `results.jsonl`: one JSON object per row.
    pub jsonl: PathBuf,
    /// `results.csv`: one CSV row per row, with a header.
    pub csv: PathBuf,
    /// `results.md`: the Markdown report.
    pub markdown: PathBuf,
    /// The SVG charts, in scenario order.
    pub charts: Vec<PathBuf>,
}

impl Written {
    /// Every file written: the JSON lines, the CSV, the Markdown, then the charts.
    ///
    /// ```
    /// use bench_harness::{report::ResultSink, Record};
    /// let dir = std::env::temp_dir().join(format!("written-files-doc-{}", std::process::id()));
    /// let written = ResultSink::create(&dir)?.finish()?;
    /// assert_eq!(written.paths(), vec![
    ///     dir.join("results.jsonl"),
    ///     dir.join("results.csv"),
    ///     dir.join("results.md"),
    /// ]);
    /// std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn paths(&self) -> Vec<PathBuf> {
        let mut files = vec![self.jsonl.clone(), self.csv.clone(), self.markdown.clone()];
        files.extend(self.charts.iter().cloned());
        files
    }
}

/// The CSV header, taken from `Record`'s serde field names (so it cannot drift from the rows).
fn csv_header() -> io::Result<csv::StringRecord> {
    let mut probe = csv::Writer::from_writer(Vec::new());
    probe.serialize(Record::example()).map_err(csv_error)?;
    let bytes = probe
        .into_inner()
        .map_err(|e| io::Error::other(e.to_string()))?;
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    Ok(reader.headers().map_err(csv_error)?.clone())
}

/// An automatic row as a CSV row, in the header's order: its serde fields, except that the
/// `chunksize` column reads `auto` (serde has `None` there, an empty cell).
fn auto_csv_row(record: &Record) -> io::Result<csv::StringRecord> {
    let mut probe = csv::WriterBuilder::new()
        .has_headers(true)
        .from_writer(Vec::new());
    probe.serialize(record).map_err(csv_error)?;
    let bytes = probe
        .into_inner()
        .map_err(|e| io::Error::other(e.to_string()))?;
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let header = reader.headers().map_err(csv_error)?.clone();
    let row = reader
        .records()
        .next()
        .ok_or_else(|| io::Error::other("a record serialized to no CSV row"))?
        .map_err(csv_error)?;
    Ok(header
        .iter()
        .zip(row.iter())
        .map(|(name, cell)| if name == "chunksize" { "auto" } else { cell })
        .collect())
}

fn csv_error(e: csv::Error) -> io::Error {
    if e.is_io_error() {
        match e.into_kind() {
            csv::ErrorKind::Io(e) => e,
            other => io::Error::other(format!("{other:?}")),
        }
    } else {
        io::Error::other(e)
    }
}
