//! Reports made from [`Record`](crate::Record)s: files written as results arrive
//! ([`ResultSink`]: JSON lines and CSV, then Markdown and SVG charts), a terminal [`table`], a
//! [`markdown`] report, [`charts`], reading results back ([`read_jsonl`]) and comparing two runs
//! ([`compare`]).
//!
//! ```
//! use bench_harness::{report, Record};
//! let dir = std::env::temp_dir().join(format!("report-doc-{}", std::process::id()));
//! let mut sink = report::ResultSink::create(&dir)?;
//! sink.push(&Record::example())?;
//! println!("{}", report::table(sink.records()));
//! let written = sink.finish()?;
//! let back = report::read_jsonl(&written.jsonl)?;
//! assert_eq!(report::compare(&back, &back, 0.10).regressions(), 0);
//! std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod chart;
mod compare;
mod format;
mod jsonl;
mod sink;
mod table;

pub use chart::charts;
pub use compare::{Change, Comparison, Verdict, compare};
pub use format::human_duration;
pub use jsonl::{ReportError, read_jsonl};
pub use sink::{ResultSink, Written};
pub use table::{markdown, table};
