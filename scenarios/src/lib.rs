//! Workloads and YAML scenarios for the benchmark harness.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod blob;
pub mod io;
