//! The core conformance suite (SEMANTICS A–I through the executor contract) on tokio, for
//! blocking tasks on the executor's own runtime.

use backend_async::AsyncExecutor;

executor_core::conformance_suite!(|max_workers| AsyncExecutor::new(max_workers).unwrap());

/// Rule K2 on this backend: a blocking task that waits on a task of the same executor still
/// waiting for a place runs it itself, lending its own place, so a one-place executor returns.
#[test]
fn blocking_task_waiting_on_its_own_executor_returns() {
    use std::sync::Arc;
    use std::time::Duration;

    use executor_core::Executor;

    let pool = Arc::new(AsyncExecutor::new(1).unwrap());
    let same = Arc::clone(&pool);
    let outer = pool
        .submit(move || {
            let inner = same.submit(|| 5u32.pow(2)).expect("submit from a task");
            *inner
                .result(Some(Duration::from_secs(30)))
                .expect("inner result")
        })
        .unwrap();
    assert_eq!(*outer.result(Some(Duration::from_secs(30))).unwrap(), 25);
}
