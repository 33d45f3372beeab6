//! The core conformance suite (SEMANTICS A–I through the executor contract) on worker processes.

use backend_process::ProcessPoolExecutor;

backend_process::test_worker!();

executor_core::conformance_suite!(|max_workers| ProcessPoolExecutor::new(max_workers).unwrap());
