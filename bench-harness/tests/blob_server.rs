//! The loopback blob server against both clients: the blocking `FetchBlob` task (ureq) and the
//! async `fetch_blob` (reqwest).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bench_harness::server::{BlobServer, MAX_BLOB_SIZE};
use executor_core::{Task, TaskError};
use scenarios::blob::{Digest, expected_digest};
use scenarios::io::{FetchBlob, blob_url, fetch_blob};

/// How long a test may wait for something that should take milliseconds before it fails
/// instead of hanging (not a performance bound: only a hang trips it).
const HANG: Duration = Duration::from_secs(60);

/// Runs `f` on a thread of its own and returns its result, or fails the test if it takes more
/// than [`HANG`].
fn within_hang_limit<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(HANG) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what} hung for {HANG:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what} panicked"),
    }
}

fn client() -> reqwest::Client {
    scenarios::io::blob_client().unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn fetch(server: &BlobServer, index: u64, size: usize) -> Result<Digest, TaskError> {
    FetchBlob {
        base_url: server.base_url(),
        index,
        size,
    }
    .run()
}

#[test]
fn fetch_blob_task_returns_the_expected_digest() {
    let server = BlobServer::start(Duration::ZERO).unwrap();
    let sizes = [0, 1, 7, 4096, 64 * 1024, 1024 * 1024 + 3];
    for (index, size) in sizes.into_iter().enumerate() {
        let index = index as u64 * 1000;
        assert_eq!(
            fetch(&server, index, size).unwrap(),
            expected_digest(index, size)
        );
    }
    assert_eq!(server.requests(), sizes.len() as u64);
    // One thread, one shared ureq agent: every request reused the first connection.
    assert_eq!(server.connections(), 1);
}

#[test]
fn async_fetch_blob_returns_the_expected_digest() {
    let server = BlobServer::start(Duration::ZERO).unwrap();
    let client = client();
    let base_url = server.base_url();
    runtime().block_on(async {
        for (index, size) in [(0, 0), (1, 1), (2, 64 * 1024), (3, 1024 * 1024 + 3)] {
            let digest = fetch_blob(&client, &base_url, index, size).await.unwrap();
            assert_eq!(digest, expected_digest(index, size));
        }
    });
    assert_eq!(server.requests(), 4);
    // No claim on `connections()`: hyper's client hands a finished connection back to its pool
    // from the connection's own task, so the next request sometimes misses it and connects
    // anew (seen: 1 to 3 connections for these 4 sequential requests).
}

#[test]
fn the_largest_blob_is_served() {
    let server = BlobServer::start(Duration::ZERO).unwrap();
    assert_eq!(
        fetch(&server, 5, MAX_BLOB_SIZE).unwrap(),
        expected_digest(5, MAX_BLOB_SIZE)
    );
}

#[test]
fn latency_is_a_lower_bound_on_every_request() {
    let latency = Duration::from_millis(50);
    let server = BlobServer::start(latency).unwrap();
    for index in 0..3 {
        let started = Instant::now();
        fetch(&server, index, 1024).unwrap();
        let took = started.elapsed();
        assert!(took >= latency, "blob {index} came after {took:?}");
    }
    let client = client();
    let base_url = server.base_url();
    runtime().block_on(async {
        let started = Instant::now();
        fetch_blob(&client, &base_url, 9, 1024).await.unwrap();
        let took = started.elapsed();
        assert!(took >= latency, "the async fetch came after {took:?}");
    });
}

#[test]
fn health_answers_without_latency() {
    // Not timed (that would be an upper bound): a `/health` answer is simply not a blob.
    let server = BlobServer::start(Duration::from_millis(10)).unwrap();
    let client = client();
    let url = format!("{}/health", server.base_url());
    let (status, body) = runtime().block_on(async {
        let response = client.get(&url).send().await.unwrap();
        (response.status(), response.text().await.unwrap())
    });
    assert_eq!(status, reqwest::StatusCode::OK);
    assert_eq!(body, "ok\n");
    assert_eq!(server.requests(), 0);
}

#[test]
fn concurrent_async_fetches_overlap_on_the_server() {
    let server = BlobServer::start(Duration::from_millis(100)).unwrap();
    let client = client();
    let base_url = server.base_url();
    let digests = runtime().block_on(async {
        let fetches: Vec<_> = (0..64u64)
            .map(|index| {
                let client = client.clone();
                let base_url = base_url.clone();
                tokio::spawn(async move { fetch_blob(&client, &base_url, index, 64 * 1024).await })
            })
            .collect();
        let mut digests = Vec::new();
        for fetch in fetches {
            digests.push(fetch.await.unwrap().unwrap());
        }
        digests
    });
    for (index, digest) in digests.into_iter().enumerate() {
        assert_eq!(digest, expected_digest(index as u64, 64 * 1024));
    }
    assert_eq!(server.requests(), 64);
    assert!(
        server.max_in_flight() > 1,
        "64 concurrent requests never overlapped: {server:?}"
    );
}

#[test]
fn a_missing_path_is_a_404_naming_the_url() {
    let server = BlobServer::start(Duration::ZERO).unwrap();
    let base_url = format!("{}/nowhere", server.base_url());
    let url = blob_url(&base_url, 1, 10);
    let task = FetchBlob {
        base_url: base_url.clone(),
        index: 1,
        size: 10,
    };
    let error = task.run().unwrap_err();
    let message = error.message();
    assert!(message.contains(&url), "{message}");
    assert!(message.contains("HTTP 404 Not Found"), "{message}");
    assert!(
        message.contains("no such path: /nowhere/blob/1"),
        "{message}"
    );

    let client = client();
    let error = runtime()
        .block_on(fetch_blob(&client, &base_url, 1, 10))
        .unwrap_err();
    let message = error.message();
    assert!(message.contains(&url), "{message}");
    assert!(message.contains("HTTP 404 Not Found"), "{message}");
    assert_eq!(server.requests(), 0);
}

#[test]
fn an_oversized_blob_is_a_400_naming_the_url_and_the_reason() {
    let server = BlobServer::start(Duration::ZERO).unwrap();
    let size = MAX_BLOB_SIZE + 1;
    let url = blob_url(&server.base_url(), 1, size);
    let error = fetch(&server, 1, size).unwrap_err();
    let message = error.message();
    assert!(message.contains(&url), "{message}");
    assert!(message.contains("HTTP 400 Bad Request"), "{message}");
    assert!(message.contains("above the limit"), "{message}");

    let client = client();
    let error = runtime()
        .block_on(fetch_blob(&client, &server.base_url(), 1, size))
        .unwrap_err();
    let message = error.message();
    assert!(message.contains(&url), "{message}");
    assert!(message.contains("HTTP 400 Bad Request"), "{message}");
    assert_eq!(server.requests(), 0);
}

#[test]
fn bad_requests_are_answered_with_a_reason() {
    let server = BlobServer::start(Duration::ZERO).unwrap();
    let client = client();
    let base = server.base_url();
    runtime().block_on(async {
        for (path, status, reason) in [
            ("/blob/abc?size=1", 400, "bad blob index `abc`"),
            ("/blob/1", 400, "missing query parameter `size`"),
            ("/blob/1?size=-5", 400, "bad blob size `-5`"),
            ("/", 404, "no such path: /"),
        ] {
            let response = client.get(format!("{base}{path}")).send().await.unwrap();
            assert_eq!(response.status().as_u16(), status, "{path}");
            let body = response.text().await.unwrap();
            assert!(body.contains(reason), "{path}: {body}");
        }
        let response = client
            .post(format!("{base}/blob/1?size=1"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()["allow"], "GET");
    });
    assert_eq!(server.requests(), 0);
}

#[test]
fn the_response_has_a_content_length_and_keeps_the_connection() {
    let server = BlobServer::start(Duration::ZERO).unwrap();
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream.set_read_timeout(Some(HANG)).unwrap();
    let request = format!(
        "GET /blob/3?size=100 HTTP/1.1\r\nHost: {}\r\n\r\n",
        server.addr()
    );
    for _ in 0..2 {
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = Vec::new();
        let mut buf = [0u8; 1024];
        // Read until the head and the 100-byte body are in.
        let body_start = loop {
            let n = stream.read(&mut buf).unwrap();
            assert_ne!(n, 0, "the server closed the connection");
            response.extend_from_slice(&buf[..n]);
            if let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n")
                && response.len() >= end + 4 + 100
            {
                break end + 4;
            }
        };
        let head = String::from_utf8_lossy(&response[..body_start]).to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
        assert!(head.contains("content-length: 100\r\n"), "{head}");
        assert!(!head.contains("connection: close"), "{head}");
        assert_eq!(response.len(), body_start + 100, "nothing after the body");
        assert_eq!(Digest::of(&response[body_start..]), expected_digest(3, 100));
    }
    assert_eq!(server.connections(), 1);
    assert_eq!(server.requests(), 2);
}

#[test]
fn shutdown_does_not_wait_for_kept_alive_or_pending_connections() {
    let server = BlobServer::start(Duration::from_secs(3600)).unwrap();
    let addr = server.addr();

    // A connection that has sent nothing.
    let mut idle = TcpStream::connect(addr).unwrap();
    // A connection kept alive after a complete exchange (`/health` has no latency).
    let mut kept = TcpStream::connect(addr).unwrap();
    kept.set_read_timeout(Some(HANG)).unwrap();
    kept.write_all(format!("GET /health HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .unwrap();
    let mut answer = Vec::new();
    while !answer.ends_with(b"\r\n\r\nok\n") {
        let mut buf = [0u8; 256];
        let n = kept.read(&mut buf).unwrap();
        assert_ne!(n, 0, "the server closed a kept-alive connection");
        answer.extend_from_slice(&buf[..n]);
    }
    // A connection whose request waits out an hour of latency.
    let mut waiting = TcpStream::connect(addr).unwrap();
    waiting
        .write_all(format!("GET /blob/1?size=10 HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .unwrap();
    // And a reqwest client holding a pooled connection.
    let client = client();
    let health = format!("{}/health", server.base_url());
    let runtime = runtime();
    runtime.block_on(async {
        assert!(
            client
                .get(&health)
                .send()
                .await
                .unwrap()
                .status()
                .is_success()
        );
    });
    // Wait (bounded) until the server holds the waiting request.
    let deadline = Instant::now() + HANG;
    while server.max_in_flight() == 0 {
        assert!(
            Instant::now() < deadline,
            "the request never reached the server"
        );
        std::thread::sleep(Duration::from_millis(5));
    }

    within_hang_limit("dropping the server", move || drop(server));

    // The server closed its side of each connection: they read end-of-stream (or a reset).
    for (what, stream) in [
        ("idle", &mut idle),
        ("kept-alive", &mut kept),
        ("waiting", &mut waiting),
    ] {
        stream.set_read_timeout(Some(HANG)).unwrap();
        let mut buf = [0u8; 64];
        match stream.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => panic!("the {what} connection got {n} bytes after shutdown"),
            Err(e) => assert!(
                !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "the {what} connection stayed open: {e}"
            ),
        }
    }
    drop(client);
    drop(runtime);
}

#[test]
fn fetching_from_a_stopped_server_fails_instead_of_hanging() {
    let server = BlobServer::start(Duration::ZERO).unwrap();
    let base_url = server.base_url();
    // Warm both clients' pools first, so a stale kept-alive connection is tried too.
    assert!(fetch(&server, 0, 10).is_ok());
    let client = client();
    let runtime = runtime();
    runtime
        .block_on(fetch_blob(&client, &base_url, 0, 10))
        .unwrap();
    server.shutdown();

    let url = blob_url(&base_url, 1, 10);
    let task = FetchBlob {
        base_url: base_url.clone(),
        index: 1,
        size: 10,
    };
    let error = within_hang_limit("a blocking fetch", move || task.run()).unwrap_err();
    assert!(
        error.message().starts_with(&format!("GET {url}: ")),
        "{error}"
    );

    let error = within_hang_limit("an async fetch", move || {
        runtime.block_on(fetch_blob(&client, &base_url, 1, 10))
    })
    .unwrap_err();
    assert!(
        error.message().starts_with(&format!("GET {url}: ")),
        "{error}"
    );
}
