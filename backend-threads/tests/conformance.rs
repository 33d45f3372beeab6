//! The core conformance suite (SEMANTICS A–I through the executor contract) on the thread pool.

use backend_threads::ThreadPoolExecutor;

executor_core::conformance_suite!(|max_workers| ThreadPoolExecutor::new(max_workers).unwrap());
