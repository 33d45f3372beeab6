//! Workloads and YAML scenarios for the benchmark harness.
//!
//! A scenario (one YAML file, schema in `scenarios/SCHEMA.md`) names a [`Workload`], the
//! backends and [`Matrix`] to run it on, and what its results must be ([`Expect`]). The
//! workloads' tasks ([`IsPrime`], [`NoOp`], [`Faulty`], [`FetchBlob`], [`FetchAzureBlob`]) are
//! written once, as serde types registered by a stable name, so the same values run serially, on
//! threads, on tokio and in worker processes.
//!
//! ```
//! let all = scenarios::builtin().unwrap();
//! assert!(all.iter().any(|s| s.name == "primes"));
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod azure;
pub mod blob;
pub mod io;
mod load;
mod run;
mod schema;
mod tasks;

pub use azure::FetchAzureBlob;
pub use blob::Digest;
pub use io::FetchBlob;
pub use load::{MAX_BLOB_KIB, MAX_IMAGES, ScenarioError};
pub use run::{
    Fault, Item, Output, Pool, RunEnv, RunError, RunOutput, Tally, run_async, run_on, run_serial,
};
pub use schema::{Backend, Chunking, Expect, Matrix, Point, Quick, Scenario, Workers, Workload};
pub use tasks::{Faulty, IsPrime, NoOp, is_prime};

/// The scenario files built into the harness: `(file name, contents)`, in run order.
pub const BUILTIN: &[(&str, &str)] = &[
    ("primes.yaml", include_str!("../primes.yaml")),
    ("io-fanout.yaml", include_str!("../io-fanout.yaml")),
    (
        "chunksize-sweep.yaml",
        include_str!("../chunksize-sweep.yaml"),
    ),
    ("overhead.yaml", include_str!("../overhead.yaml")),
    ("faults.yaml", include_str!("../faults.yaml")),
    ("azure-blobs.yaml", include_str!("../azure-blobs.yaml")),
];

/// Parses every built-in scenario.
///
/// ```
/// let names: Vec<String> = scenarios::builtin().unwrap().into_iter().map(|s| s.name).collect();
/// assert_eq!(names, ["primes", "io-fanout", "chunksize-sweep", "overhead", "faults", "azure-blobs"]);
/// ```
pub fn builtin() -> Result<Vec<Scenario>, ScenarioError> {
    BUILTIN
        .iter()
        .map(|(file, text)| Scenario::parse(&format!("scenarios/{file}"), text))
        .collect()
}
