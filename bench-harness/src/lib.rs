//! The benchmark harness: runs the YAML scenarios of the `scenarios` crate on every backend and
//! reports (terminal table, JSON lines, CSV, Markdown, SVG charts).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod azurite;
mod cpython;
mod record;
pub mod report;
mod runner;
pub mod server;

pub use cpython::{PYTHON_ENV, Python, PythonExecutor, PythonRun};
pub use record::Record;
pub use runner::{HarnessError, RunOptions, cores, effective, rows, run};
