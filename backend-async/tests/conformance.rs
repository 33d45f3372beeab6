//! The core conformance suite (SEMANTICS A–I through the executor contract) on tokio, for
//! blocking tasks on the executor's own runtime.

use backend_async::AsyncExecutor;

executor_core::conformance_suite!(|max_workers| AsyncExecutor::new(max_workers).unwrap());
