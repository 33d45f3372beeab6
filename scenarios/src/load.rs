//! Parsing and validating scenario files, with errors that name the file, line and field.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde_saphyr::{Location, Spanned};

use crate::azure::MAX_IMAGE_SIDE;
use crate::schema::{Backend, Expect, Matrix, Quick, Scenario, Workload};

/// A scenario file that could not be read or is wrong, with where and what.
///
/// ```
/// let e = scenarios::Scenario::parse("bad.yaml", "name: bad\nworkload: {noop: {tasks: 1}}\nexpect: {ok: 1}\nrepeat: 3\n")
///     .unwrap_err();
/// assert_eq!(e.file(), "bad.yaml");
/// assert_eq!(e.line(), Some(4));
/// assert_eq!(e.field(), "repeat");
/// assert!(e.to_string().starts_with("bad.yaml:4:1: repeat: unknown field `repeat`"), "{e}");
/// ```
#[derive(Debug, Clone)]
pub struct ScenarioError {
    file: String,
    location: Option<(u64, u64)>,
    field: String,
    message: String,
    snippet: Option<String>,
}

impl ScenarioError {
    fn new(file: &str, location: Location, field: impl Into<String>, message: String) -> Self {
        let location =
            (location != Location::UNKNOWN).then(|| (location.line(), location.column()));
        ScenarioError {
            file: file.to_string(),
            location,
            field: field.into(),
            message,
            snippet: None,
        }
    }

    /// The file (or the name given to [`Scenario::parse`]).
    ///
    /// ```
    /// let e = scenarios::Scenario::parse("x.yaml", "{").unwrap_err();
    /// assert_eq!(e.file(), "x.yaml");
    /// ```
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The 1-based line, where known.
    ///
    /// ```
    /// let e = scenarios::Scenario::parse("x.yaml", "name: x\nbogus: 1\n").unwrap_err();
    /// assert_eq!(e.line(), Some(2));
    /// ```
    pub fn line(&self) -> Option<u64> {
        self.location.map(|(line, _)| line)
    }

    /// The 1-based column, where known.
    ///
    /// ```
    /// let e = scenarios::Scenario::parse("x.yaml", "name: x\nbogus: 1\n").unwrap_err();
    /// assert_eq!(e.column(), Some(1));
    /// ```
    pub fn column(&self) -> Option<u64> {
        self.location.map(|(_, column)| column)
    }

    /// The field, as a path from the top of the file (`matrix.chunksize[1]`); `.` for the file
    /// as a whole.
    ///
    /// ```
    /// let e = scenarios::Scenario::parse("x.yaml", "
    /// name: x
    /// workload: {noop: {tasks: 1}}
    /// matrix: {chunksize: [1, 0]}
    /// expect: {ok: 1}
    /// ").unwrap_err();
    /// assert_eq!(e.field(), "matrix.chunksize[1]");
    /// ```
    pub fn field(&self) -> &str {
        &self.field
    }

    /// What is wrong.
    ///
    /// ```
    /// let e = scenarios::Scenario::parse("x.yaml", "name: x\nworkload: {noop: {tasks: 1}}\n").unwrap_err();
    /// assert_eq!(e.message(), "missing field `expect`");
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn io(file: &str, error: &std::io::Error) -> Self {
        ScenarioError {
            file: file.to_string(),
            location: None,
            field: ".".into(),
            message: format!("cannot read: {error}"),
            snippet: None,
        }
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            Some((line, column)) => write!(f, "{}:{line}:{column}: ", self.file)?,
            None => write!(f, "{}: ", self.file)?,
        }
        write!(f, "{}: {}", self.field, self.message)?;
        if let Some(snippet) = &self.snippet {
            write!(f, "\n{snippet}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioError {}

// The shape of the file as written; `Scenario` is what is left once it has been checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    workload: Spanned<Workload>,
    #[serde(default)]
    backends: Option<Spanned<Vec<Backend>>>,
    #[serde(default)]
    matrix: Option<Spanned<Matrix>>,
    #[serde(default)]
    repeats: Option<Spanned<usize>>,
    #[serde(default)]
    warmup: Option<usize>,
    #[serde(default)]
    timeout_s: Option<Spanned<f64>>,
    expect: Spanned<Expect>,
    #[serde(default)]
    quick: Option<RawQuick>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuick {
    #[serde(default)]
    workload: Option<Spanned<Workload>>,
    #[serde(default)]
    expect: Option<Spanned<Expect>>,
    #[serde(default)]
    matrix: Option<Spanned<Matrix>>,
}

const DEFAULT_REPEATS: usize = 3;
const DEFAULT_WARMUP: usize = 1;
const DEFAULT_TIMEOUT_S: f64 = 300.0;
/// The largest blob an `io-fanout` scenario may ask for (the server's limit too).
pub const MAX_BLOB_KIB: usize = 64 * 1024;
/// The most images an `azure-blobs` scenario may ask for.
pub const MAX_IMAGES: usize = 100_000;

impl Scenario {
    /// Parses and validates one scenario; `file` names it in errors.
    ///
    /// ```
    /// let e = scenarios::Scenario::parse("p.yaml", "
    /// name: p
    /// workload: {primes: {numbers: [7, 8]}}
    /// expect: {outputs: [true]}
    /// ").unwrap_err();
    /// assert_eq!(e.field(), "expect.outputs");
    /// assert_eq!(e.line(), Some(4));
    /// assert!(e.message().contains("1 outputs for 2 numbers"), "{e}");
    /// ```
    pub fn parse(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
        let raw: RawScenario = match serde_saphyr::from_str(text) {
            Ok(raw) => raw,
            Err(e) => return Err(yaml_error(file, text, &e)),
        };
        let err = |at: Location, field: &str, message: String| {
            ScenarioError::new(file, at, field, message)
        };
        let name = raw.name.value;
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(err(
                raw.name.referenced,
                "name",
                format!("`{name}` must be lowercase letters, digits and `-` (it names files)"),
            ));
        }
        check_workload(file, "workload", &raw.workload)?;
        let backends = match raw.backends {
            None => Backend::all(),
            Some(b) => {
                if b.value.is_empty() {
                    return Err(err(
                        b.referenced,
                        "backends",
                        "must name at least one".into(),
                    ));
                }
                let mut seen = HashSet::new();
                if let Some(dup) = b.value.iter().find(|x| !seen.insert(**x)) {
                    return Err(err(
                        b.referenced,
                        "backends",
                        format!("`{dup}` is listed twice"),
                    ));
                }
                b.value
            }
        };
        let matrix = match raw.matrix {
            None => Matrix::default(),
            Some(m) => check_matrix(file, "matrix", m)?,
        };
        let repeats = match raw.repeats {
            None => DEFAULT_REPEATS,
            Some(r) if r.value == 0 => {
                return Err(err(r.referenced, "repeats", "must be at least 1".into()));
            }
            Some(r) => r.value,
        };
        let timeout_s = match raw.timeout_s {
            None => DEFAULT_TIMEOUT_S,
            Some(t) if !(t.value.is_finite() && t.value > 0.0) => {
                return Err(err(
                    t.referenced,
                    "timeout_s",
                    format!("{} must be a positive number of seconds", t.value),
                ));
            }
            Some(t) => t.value,
        };
        check_expect(file, "expect", &raw.expect, &raw.workload.value)?;
        let quick = match raw.quick {
            None => None,
            Some(q) => {
                let workload = match q.workload {
                    None => None,
                    Some(w) => {
                        if w.value.kind() != raw.workload.value.kind() {
                            return Err(err(
                                w.referenced,
                                "quick.workload",
                                format!(
                                    "is `{}` but the scenario's workload is `{}`: quick mode shrinks the same workload",
                                    w.value.kind(),
                                    raw.workload.value.kind()
                                ),
                            ));
                        }
                        check_workload(file, "quick.workload", &w)?;
                        if q.expect.is_none() {
                            return Err(err(
                                w.referenced,
                                "quick.expect",
                                "a quick workload needs its own expectations".into(),
                            ));
                        }
                        Some(w)
                    }
                };
                let expect = match q.expect {
                    None => None,
                    Some(e) => {
                        let target = workload.as_ref().unwrap_or(&raw.workload);
                        check_expect(file, "quick.expect", &e, &target.value)?;
                        Some(e.value)
                    }
                };
                let matrix = match q.matrix {
                    None => None,
                    Some(m) => Some(check_matrix(file, "quick.matrix", m)?),
                };
                Some(Quick {
                    workload: workload.map(|w| w.value),
                    expect,
                    matrix,
                })
            }
        };
        Ok(Scenario {
            name,
            description: raw.description,
            workload: raw.workload.value,
            backends,
            matrix,
            repeats,
            warmup: raw.warmup.unwrap_or(DEFAULT_WARMUP),
            timeout_s,
            expect: raw.expect.value,
            quick,
        })
    }

    /// Reads and parses a scenario file.
    ///
    /// ```
    /// let e = scenarios::Scenario::load(std::path::Path::new("/nonexistent.yaml")).unwrap_err();
    /// assert!(e.to_string().starts_with("/nonexistent.yaml: .: cannot read"), "{e}");
    /// ```
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError::io(&file, &e))?;
        Scenario::parse(&file, &text)
    }

    /// The scenario as quick mode runs it: the `quick:` workload, expectations and matrix where
    /// given, one timed run and no warm-up.
    ///
    /// ```
    /// let s = scenarios::builtin().unwrap().into_iter().find(|s| s.name == "chunksize-sweep").unwrap();
    /// let q = s.quick_mode();
    /// assert_eq!(q.repeats, 1);
    /// assert!(q.workload.tasks() < s.workload.tasks());
    /// ```
    pub fn quick_mode(&self) -> Scenario {
        let mut s = self.clone();
        if let Some(q) = self.quick.clone() {
            if let Some(w) = q.workload {
                s.workload = w;
            }
            if let Some(e) = q.expect {
                s.expect = e;
            }
            if let Some(m) = q.matrix {
                s.matrix = m;
            }
        }
        s.quick = None;
        s.repeats = 1;
        s.warmup = 0;
        s
    }
}

fn yaml_error(file: &str, text: &str, e: &serde_saphyr::Error) -> ScenarioError {
    let location = e.location().unwrap_or(Location::UNKNOWN);
    // Run it again through serde_path_to_error for the field path (only on the error path).
    let mut field = String::from(".");
    let _ = serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize::<_, RawScenario>(de)
            .map(drop)
            .map_err(|e| {
                // `Spanned` adds a `value` level that is not in the file.
                let path = e.path().to_string();
                field = path.replace(".value[", "[").replace(".value.", ".");
                if let Some(stripped) = field.strip_suffix(".value") {
                    field = stripped.to_string();
                }
                e.into_inner()
            })
    });
    let plain = e.without_snippet().to_string();
    let message = strip_location(&plain).to_string();
    let options = serde_saphyr::render_options! { source_name: Some(file) };
    let rendered = e.render_with_options(options);
    let snippet = rendered
        .split_once('\n')
        .map(|(_, rest)| rest.trim_end().to_string())
        .filter(|s| !s.is_empty());
    ScenarioError {
        snippet,
        ..ScenarioError::new(file, location, field, message)
    }
}

// "error: line 5 column 5: unknown field ... at line 5, column 5" → "unknown field ..."
fn strip_location(message: &str) -> &str {
    let first = message.lines().next().unwrap_or(message);
    let mut rest = first.strip_prefix("error: ").unwrap_or(first);
    if let Some(after) = rest.strip_prefix("line ")
        && let Some((_, msg)) = after.split_once(": ")
    {
        rest = msg;
    }
    if let Some((msg, tail)) = rest.rsplit_once(" at line ")
        && tail.contains(", column ")
    {
        rest = msg;
    }
    rest
}

fn check_workload(file: &str, field: &str, w: &Spanned<Workload>) -> Result<(), ScenarioError> {
    let fail = |what: &str, message: String| {
        Err(ScenarioError::new(
            file,
            w.referenced,
            format!("{field}.{}.{what}", w.value.kind()),
            message,
        ))
    };
    match &w.value {
        Workload::Primes { numbers } if numbers.is_empty() => {
            fail("numbers", "must list at least one number".into())
        }
        Workload::PrimeRange { count: 0, .. } => fail("count", "must be at least 1".into()),
        Workload::PrimeRange { start, count } if start.checked_add(*count).is_none() => {
            fail("count", format!("{start} + {count} overflows u64"))
        }
        Workload::Noop { tasks: 0 } | Workload::Faults { tasks: 0, .. } => {
            fail("tasks", "must be at least 1".into())
        }
        Workload::IoFanout { blobs: 0, .. } => fail("blobs", "must be at least 1".into()),
        Workload::IoFanout { size_kib, .. } if *size_kib == 0 || *size_kib > MAX_BLOB_KIB => fail(
            "size_kib",
            format!("{size_kib} must be between 1 and {MAX_BLOB_KIB} (64 MiB)"),
        ),
        Workload::AzureBlobs { images: 0, .. } => fail("images", "must be at least 1".into()),
        Workload::AzureBlobs { images, .. } if *images > MAX_IMAGES => fail(
            "images",
            format!("{images} is more than {MAX_IMAGES} (the set-up uploads every one)"),
        ),
        Workload::AzureBlobs { width, .. } if !(1..=MAX_IMAGE_SIDE).contains(width) => fail(
            "width",
            format!("{width} must be between 1 and {MAX_IMAGE_SIDE} pixels"),
        ),
        Workload::AzureBlobs { height, .. } if !(1..=MAX_IMAGE_SIDE).contains(height) => fail(
            "height",
            format!("{height} must be between 1 and {MAX_IMAGE_SIDE} pixels"),
        ),
        _ => Ok(()),
    }
}

fn check_matrix(file: &str, field: &str, m: Spanned<Matrix>) -> Result<Matrix, ScenarioError> {
    let empty = [
        ("max_workers", m.value.max_workers.is_empty()),
        ("chunksize", m.value.chunksize.is_empty()),
        ("buffersize", m.value.buffersize.is_empty()),
    ];
    if let Some((axis, _)) = empty.iter().find(|(_, e)| *e) {
        return Err(ScenarioError::new(
            file,
            m.referenced,
            format!("{field}.{axis}"),
            "an axis needs at least one value (leave it out for the default)".into(),
        ));
    }
    Ok(m.value)
}

fn check_expect(
    file: &str,
    field: &str,
    e: &Spanned<Expect>,
    workload: &Workload,
) -> Result<(), ScenarioError> {
    let fail = |what: &str, message: String| {
        Err(ScenarioError::new(
            file,
            e.referenced,
            format!("{field}{what}"),
            message,
        ))
    };
    let x = &e.value;
    if *x == Expect::default() {
        return fail(
            "",
            "must give at least one of ok, failed, panicked, primes, outputs, verified_bytes"
                .into(),
        );
    }
    if let Some(outputs) = &x.outputs {
        match workload {
            Workload::Primes { numbers } if numbers.len() != outputs.len() => {
                return fail(
                    ".outputs",
                    format!("{} outputs for {} numbers", outputs.len(), numbers.len()),
                );
            }
            Workload::Primes { .. } => {}
            other => {
                return fail(
                    ".outputs",
                    format!(
                        "only a `primes` workload has outputs, not `{}`",
                        other.kind()
                    ),
                );
            }
        }
    }
    if x.primes.is_some()
        && !matches!(
            workload,
            Workload::Primes { .. } | Workload::PrimeRange { .. }
        )
    {
        return fail(
            ".primes",
            format!("`{}` does not find primes", workload.kind()),
        );
    }
    if x.verified_bytes.is_some() && !workload.is_io() {
        return fail(
            ".verified_bytes",
            format!("`{}` downloads nothing", workload.kind()),
        );
    }
    let tasks = workload.tasks();
    let counted = x.ok.unwrap_or(0) + x.failed.unwrap_or(0) + x.panicked.unwrap_or(0);
    if x.ok.is_some() && x.failed.is_some() && x.panicked.is_some() && counted != tasks {
        return fail(
            "",
            format!("ok + failed + panicked = {counted}, but the workload has {tasks} tasks"),
        );
    }
    if counted > tasks {
        return fail(
            "",
            format!("expects {counted} task outcomes, but the workload has {tasks} tasks"),
        );
    }
    Ok(())
}
