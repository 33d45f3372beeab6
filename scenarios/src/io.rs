//! Fetching blobs over HTTP: the work of the `io-fanout` scenario ("a web server loading N images
//! from blob storage").
//!
//! The thread pool and the process pool run [`FetchBlob`], a blocking task (ureq); the async
//! backend runs [`fetch_blob`] (reqwest). Both ask for the same URL ([`blob_url`]), hash the body
//! as it arrives, and fail the same way: with a [`TaskError`] whose message names the URL and
//! the HTTP status or the cause, so it reads the same after crossing a process boundary.
//!
//! The server is `bench_harness::server::BlobServer`; any server that answers
//! `GET {base}/blob/{index}?size={n}` with [`blob_bytes(index, n)`](crate::blob::blob_bytes)
//! will do.

use std::error::Error;
use std::io::Read;
use std::sync::OnceLock;
use std::time::Duration;

use backend_process::RemoteTask;
use executor_core::{Task, TaskError};
use serde::{Deserialize, Serialize};

use crate::blob::Digest;

/// How long one fetch may take in all (connecting, waiting, reading the body) before it fails:
/// generous, so that only a hang trips it.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Idle connections the blocking client keeps for reuse. ureq's default is 3 per host, which
/// would make a pool of more than 3 threads reconnect on most requests.
const MAX_IDLE_CONNECTIONS: usize = 1024;

/// The most bytes of an error response's body quoted in the error message.
const MAX_QUOTED_ERROR: u64 = 512;

/// The URL of blob `index` of `size` bytes under `base_url` (a trailing `/` on `base_url` is
/// ignored).
///
/// ```
/// use scenarios::io::blob_url;
///
/// assert_eq!(blob_url("http://127.0.0.1:8080", 3, 65536), "http://127.0.0.1:8080/blob/3?size=65536");
/// assert_eq!(blob_url("http://127.0.0.1:8080/", 3, 1), "http://127.0.0.1:8080/blob/3?size=1");
/// ```
pub fn blob_url(base_url: &str, index: u64, size: usize) -> String {
    format!(
        "{}/blob/{index}?size={size}",
        base_url.trim_end_matches('/')
    )
}

/// Downloads blob `index` of `size` bytes from `base_url` with a blocking HTTP GET and returns
/// the [`Digest`] of the body: the task the thread pool and the process pool run.
///
/// All fetches in a process share one HTTP client, so connections are kept alive and reused
/// (up to 1024 idle ones). A fetch fails, with a [`TaskError`] naming the URL, when the
/// server cannot be reached, answers other than `200`, sends a body of another length than
/// `size`, or takes more than 60 s in all. Proxy settings in the environment are ignored: the
/// blob server is local.
///
/// It is a [`RemoteTask`] registered as `"scenarios::fetch_blob"`, so a process pool's workers
/// find it in any binary that links this crate. The harness serves blobs with
/// `bench_harness::server::BlobServer`; here a one-shot server stands in for it.
///
/// ```
/// use executor_core::Task;
/// use scenarios::blob::{blob_bytes, expected_digest};
/// use scenarios::io::FetchBlob;
/// # use std::io::{BufRead, BufReader, Write};
/// # let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// # let base_url = format!("http://{}", listener.local_addr().unwrap());
/// # let server = std::thread::spawn(move || {
/// #     let (stream, _) = listener.accept().unwrap();
/// #     let mut reader = BufReader::new(stream);
/// #     let mut line = String::new();
/// #     while reader.read_line(&mut line).unwrap() > 2 { line.clear(); }
/// #     let body = blob_bytes(4, 10_000);
/// #     let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
/// #     let mut stream = reader.into_inner();
/// #     stream.write_all(head.as_bytes()).unwrap();
/// #     stream.write_all(&body).unwrap();
/// # });
///
/// // `base_url` is where a blob server listens, as `http://127.0.0.1:PORT`.
/// let task = FetchBlob { base_url, index: 4, size: 10_000 };
/// assert_eq!(task.url(), format!("{}/blob/4?size=10000", task.base_url));
/// assert_eq!(task.run().unwrap(), expected_digest(4, 10_000));
/// # server.join().unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchBlob {
    /// Where the blob server is, as `http://host:port` (no trailing path).
    pub base_url: String,
    /// Which blob.
    pub index: u64,
    /// Its size in bytes.
    pub size: usize,
}

impl FetchBlob {
    /// The URL this task fetches.
    ///
    /// ```
    /// let task = scenarios::io::FetchBlob { base_url: "http://127.0.0.1:9".into(), index: 1, size: 2 };
    /// assert_eq!(task.url(), "http://127.0.0.1:9/blob/1?size=2");
    /// ```
    pub fn url(&self) -> String {
        blob_url(&self.base_url, self.index, self.size)
    }
}

impl Task for FetchBlob {
    type Output = Digest;

    fn run(self) -> Result<Digest, TaskError> {
        let url = self.url();
        fetch_blocking(&url, self.size).map_err(|cause| fetch_error(&url, &cause))
    }

    fn name(&self) -> &'static str {
        <Self as RemoteTask>::NAME
    }
}

impl RemoteTask for FetchBlob {
    const NAME: &'static str = "scenarios::fetch_blob";
}

backend_process::register!(FetchBlob);

/// The blocking client shared by every [`FetchBlob`] in this process.
fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::Agent::config_builder()
            .timeout_global(Some(TIMEOUT))
            // Statuses are checked here, so that an error body can be quoted.
            .http_status_as_error(false)
            .proxy(None)
            .max_idle_connections(MAX_IDLE_CONNECTIONS)
            .max_idle_connections_per_host(MAX_IDLE_CONNECTIONS)
            .build()
            .into()
    })
}

/// The error message of a failed fetch: the URL, then the cause.
fn fetch_error(url: &str, cause: &str) -> TaskError {
    TaskError::msg(format!("GET {url}: {cause}"))
}

/// An error and its sources, joined by `: ` (reqwest, for one, keeps "connection refused" in a
/// source). The URL is already in the message, so reqwest's errors come here without it.
pub(crate) fn chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let more = e.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = e.source();
    }
    text
}

/// The message for a response that is not `200`: its status, and the start of its body (the
/// blob server says there why it refused).
fn status_error(status: &str, body: &[u8]) -> String {
    let reason = String::from_utf8_lossy(body);
    let reason = reason.trim();
    if reason.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {reason}")
    }
}

/// The message for a body of the wrong length.
fn length_error(received: u64, size: usize) -> String {
    if received < size as u64 {
        format!("short body: received {received} of {size} bytes")
    } else {
        format!("body longer than the {size} bytes asked for")
    }
}

/// Fetches `url` and hashes its body as it arrives; `Err` holds the cause.
fn fetch_blocking(url: &str, size: usize) -> Result<Digest, String> {
    let mut response = agent().get(url).call().map_err(|e| chain(&e))?;
    let status = response.status();
    if status != ureq::http::StatusCode::OK {
        let mut quoted = Vec::new();
        // The quote is best effort: the status is the error.
        let _ = response
            .body_mut()
            .as_reader()
            .take(MAX_QUOTED_ERROR)
            .read_to_end(&mut quoted);
        return Err(status_error(&status.to_string(), &quoted));
    }
    // One byte over the limit is how ureq detects a longer body; the limit keeps a wrong server
    // from feeding this loop forever.
    let mut reader = response
        .body_mut()
        .with_config()
        .limit(size as u64)
        .reader();
    let mut hasher = crc32fast::Hasher::new();
    let mut received = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(format!(
                    "reading the body after {received} of {size} bytes: {}",
                    chain(&e)
                ));
            }
        };
        hasher.update(&buf[..n]);
        received += n as u64;
    }
    if received != size as u64 {
        return Err(length_error(received, size));
    }
    Ok(Digest {
        len: received,
        checksum: hasher.finalize(),
    })
}

/// The async client [`fetch_blob`] is meant to share: proxy settings in the environment are
/// ignored (the blob server is local), and a request taking more than 60 s in all fails, so
/// nothing hangs. Connections are pooled and kept alive. It fails only if reqwest cannot set up
/// its connector.
///
/// ```
/// let client = scenarios::io::blob_client().unwrap();
/// let _another_handle_on_the_same_pool = client.clone();
/// ```
pub fn blob_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(TIMEOUT)
        .build()
}

/// Downloads blob `index` of `size` bytes from `base_url` with `client` and returns the
/// [`Digest`] of the body: [`FetchBlob`] for async code (the async backend), with the same URL
/// and the same errors.
///
/// Build the client once and share it (it pools connections): [`blob_client`] makes one that
/// ignores proxy settings and has a timeout, so that nothing hangs. The future must be awaited
/// on a tokio runtime (the async backend's); `bench_harness::server::BlobServer`'s
/// documentation fetches from a live server this way.
///
/// ```
/// use std::future::Future;
/// use std::task::{Context, Poll, Waker};
/// use scenarios::io::fetch_blob;
///
/// let client = scenarios::io::blob_client().unwrap();
/// // On the async backend: `let digest = fetch_blob(&client, &base_url, 9, 4096).await?;`
/// // A base URL that is not a URL fails on the first poll, and the error names it:
/// let mut fetch = std::pin::pin!(fetch_blob(&client, "not a url", 9, 4096));
/// let Poll::Ready(Err(error)) = fetch.as_mut().poll(&mut Context::from_waker(Waker::noop())) else {
///     panic!("an invalid URL should fail at once");
/// };
/// assert!(error.message().starts_with("GET not a url/blob/9?size=4096: "), "{error}");
/// ```
pub async fn fetch_blob(
    client: &reqwest::Client,
    base_url: &str,
    index: u64,
    size: usize,
) -> Result<Digest, TaskError> {
    let url = blob_url(base_url, index, size);
    fetch_async(client, &url, size)
        .await
        .map_err(|cause| fetch_error(&url, &cause))
}

/// Fetches `url` with `client` and hashes its body as it arrives; `Err` holds the cause.
async fn fetch_async(client: &reqwest::Client, url: &str, size: usize) -> Result<Digest, String> {
    let mut response = client
        .get(url)
        .send()
        .await
        .map_err(|e| chain(&e.without_url()))?;
    let status = response.status();
    if status != reqwest::StatusCode::OK {
        let mut quoted = Vec::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            quoted.extend_from_slice(&chunk);
            if quoted.len() as u64 >= MAX_QUOTED_ERROR {
                quoted.truncate(MAX_QUOTED_ERROR as usize);
                break;
            }
        }
        return Err(status_error(&status.to_string(), &quoted));
    }
    let mut hasher = crc32fast::Hasher::new();
    let mut received = 0u64;
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(e) => {
                return Err(format!(
                    "reading the body after {received} of {size} bytes: {}",
                    chain(&e.without_url())
                ));
            }
        };
        received += chunk.len() as u64;
        if received > size as u64 {
            return Err(length_error(received, size));
        }
        hasher.update(&chunk);
    }
    if received != size as u64 {
        return Err(length_error(received, size));
    }
    Ok(Digest {
        len: received,
        checksum: hasher.finalize(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_url_and_the_cause() {
        let e = fetch_error(
            "http://h/blob/1?size=2",
            &status_error("404 Not Found", b"no\n"),
        );
        assert_eq!(
            e.message(),
            "GET http://h/blob/1?size=2: HTTP 404 Not Found: no"
        );
        assert_eq!(
            status_error("500 Internal Server Error", b""),
            "HTTP 500 Internal Server Error"
        );
        assert_eq!(length_error(3, 10), "short body: received 3 of 10 bytes");
        assert_eq!(
            length_error(11, 10),
            "body longer than the 10 bytes asked for"
        );
    }

    /// Serves one connection with `response` (raw bytes, then close) after reading a request
    /// head; returns the base URL.
    fn serve_once(response: Vec<u8>) -> (String, std::thread::JoinHandle<()>) {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap() > 2 {
                line.clear();
            }
            let mut stream = reader.into_inner();
            // The client may hang up first (a body longer than asked for).
            let _ = stream.write_all(&response);
        });
        (base_url, server)
    }

    fn response(head: &str, body: &[u8]) -> Vec<u8> {
        let mut bytes = format!("{head}\r\nConnection: close\r\n\r\n").into_bytes();
        bytes.extend_from_slice(body);
        bytes
    }

    fn fetch(base_url: String, size: usize) -> Result<Digest, TaskError> {
        FetchBlob {
            base_url,
            index: 2,
            size,
        }
        .run()
    }

    #[test]
    fn a_good_body_gives_its_digest() {
        let body = crate::blob::blob_bytes(2, 1000);
        let (url, server) = serve_once(response("HTTP/1.1 200 OK\r\nContent-Length: 1000", &body));
        assert_eq!(
            fetch(url, 1000).unwrap(),
            crate::blob::expected_digest(2, 1000)
        );
        server.join().unwrap();
    }

    #[test]
    fn a_short_body_fails() {
        let (url, server) = serve_once(response("HTTP/1.1 200 OK\r\nContent-Length: 10", &[7; 10]));
        let e = fetch(url.clone(), 1000).unwrap_err();
        let expected = format!("GET {url}/blob/2?size=1000: short body: received 10 of 1000 bytes");
        assert_eq!(e.message(), expected);
        server.join().unwrap();
    }

    #[test]
    fn a_body_cut_off_fails() {
        let (url, server) = serve_once(response(
            "HTTP/1.1 200 OK\r\nContent-Length: 1000",
            &[7; 10],
        ));
        let e = fetch(url.clone(), 1000).unwrap_err();
        assert!(
            e.message()
                .starts_with(&format!("GET {url}/blob/2?size=1000: ")),
            "{e}"
        );
        server.join().unwrap();
    }

    #[test]
    fn a_long_body_fails() {
        let (url, server) = serve_once(response("HTTP/1.1 200 OK\r\nContent-Length: 20", &[7; 20]));
        let e = fetch(url.clone(), 10).unwrap_err();
        assert!(
            e.message()
                .starts_with(&format!("GET {url}/blob/2?size=10: ")),
            "{e}"
        );
        server.join().unwrap();
    }

    #[test]
    fn an_error_status_is_quoted() {
        let (url, server) = serve_once(response(
            "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 9",
            b"overload\n",
        ));
        let e = fetch(url.clone(), 10).unwrap_err();
        let expected = format!("GET {url}/blob/2?size=10: HTTP 503 Service Unavailable: overload");
        assert_eq!(e.message(), expected);
        server.join().unwrap();
    }

    #[test]
    fn an_unreachable_server_fails_with_the_url() {
        // A port that was just free: nothing listens there now, so the connection is refused.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let e = fetch(base_url.clone(), 8).unwrap_err();
        assert!(
            e.message()
                .starts_with(&format!("GET {base_url}/blob/2?size=8: ")),
            "{e}"
        );
    }

    #[test]
    fn the_task_is_named_for_the_process_pool() {
        assert_eq!(FetchBlob::NAME, "scenarios::fetch_blob");
        let task = FetchBlob {
            base_url: String::new(),
            index: 0,
            size: 0,
        };
        assert_eq!(task.name(), "scenarios::fetch_blob");
    }
}
