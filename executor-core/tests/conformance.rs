//! The conformance suite run against the core's reference executor, so the suite itself is
//! known to pass on a correct executor before any backend uses it.

mod support;

executor_core::conformance_suite!(support::ReferencePool::new);
