//! The `io-fanout` work on every backend: `FetchBlob` on the process pool (found by name in the
//! workers, though it is registered in the `scenarios` library crate) and on the thread pool,
//! and `fetch_blob` on the async backend.

backend_process::test_worker!();

use std::time::Duration;

use backend_async::AsyncExecutor;
use backend_process::ProcessPoolExecutor;
use backend_threads::ThreadPoolExecutor;
use bench_harness::server::BlobServer;
use executor_core::{Executor, FutureHandle};
use scenarios::blob::{Digest, expected_digest};
use scenarios::io::{FetchBlob, blob_client, blob_url, fetch_blob};

/// How long a result may take before the test fails instead of hanging (only a hang trips it).
const HANG: Duration = Duration::from_secs(120);

const BLOBS: u64 = 32;
const SIZE: usize = 64 * 1024;

fn tasks(server: &BlobServer) -> impl Iterator<Item = FetchBlob> + '_ {
    (0..BLOBS).map(|index| FetchBlob {
        base_url: server.base_url(),
        index,
        size: SIZE,
    })
}

fn check(futures: Vec<FutureHandle<Digest>>) {
    for (index, future) in futures.into_iter().enumerate() {
        let digest = future.result(Some(HANG)).unwrap();
        assert_eq!(*digest, expected_digest(index as u64, SIZE), "blob {index}");
    }
}

#[test]
fn process_pool_workers_find_fetch_blob_by_name() {
    let server = BlobServer::start(Duration::from_millis(5)).unwrap();
    let pool = ProcessPoolExecutor::new(2).unwrap();
    let futures = tasks(&server)
        .map(|task| pool.submit(task).unwrap())
        .collect();
    check(futures);
    assert_eq!(server.requests(), BLOBS);

    // A failure crosses the process boundary as its message, which names the URL and status.
    let base_url = format!("{}/missing", server.base_url());
    let failing = FetchBlob {
        base_url: base_url.clone(),
        index: 3,
        size: SIZE,
    };
    let error = pool
        .submit(failing)
        .unwrap()
        .result(Some(HANG))
        .unwrap_err();
    let error = error.task_error().expect("the task's own error");
    assert!(error.worker_pid().is_some(), "{error}");
    assert!(
        error.message().contains(&blob_url(&base_url, 3, SIZE)),
        "{error}"
    );
    assert!(error.message().contains("HTTP 404 Not Found"), "{error}");
}

#[test]
fn thread_pool_runs_fetch_blob_concurrently() {
    let server = BlobServer::start(Duration::from_millis(20)).unwrap();
    let pool = ThreadPoolExecutor::new(8).unwrap();
    let futures = tasks(&server)
        .map(|task| pool.submit(task).unwrap())
        .collect();
    check(futures);
    assert_eq!(server.requests(), BLOBS);
    assert!(server.max_in_flight() > 1, "{server:?}");
    // Each worker thread reuses its connections through the shared agent's pool: at most one
    // connection per thread that was fetching at the same time.
    assert!(server.connections() <= 8, "{server:?}");
}

#[test]
fn async_executor_runs_fetch_blob() {
    let server = BlobServer::start(Duration::from_millis(20)).unwrap();
    let pool = AsyncExecutor::new(64).unwrap();
    let client = blob_client().unwrap();
    let futures: Vec<_> = (0..BLOBS)
        .map(|index| {
            let client = client.clone();
            let base_url = server.base_url();
            pool.submit_async(async move { fetch_blob(&client, &base_url, index, SIZE).await })
                .unwrap()
        })
        .collect();
    for (index, future) in futures.into_iter().enumerate() {
        let digest = future.result(Some(HANG)).unwrap().as_ref().unwrap();
        assert_eq!(*digest, expected_digest(index as u64, SIZE), "blob {index}");
    }
    assert_eq!(server.requests(), BLOBS);
    assert!(server.max_in_flight() > 1, "{server:?}");
}
