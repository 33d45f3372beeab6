//! The core's reference executor for its own tests (shared with the crate docs).

include!("../../doc/reference_pool.rs");
