//! The loopback blob server: the "blob storage" of the `io-fanout` scenario.
//!
//! A real HTTP/1.1 server (hyper) on `127.0.0.1`, on a port the OS chooses, running on a
//! single-threaded tokio runtime in a thread of its own, so that it takes as little as possible
//! from the cores the backends are measured on. It answers
//!
//! | request                         | answer                                                  |
//! |---------------------------------|---------------------------------------------------------|
//! | `GET /blob/{index}?size={n}`    | after the latency: `200`, [`blob_bytes(index, n)`](scenarios::blob::blob_bytes) |
//! | `GET /health`                   | at once: `200`, `ok`                                    |
//! | a bad index or size, `n` > 64 MiB | `400`, with the reason as plain text                  |
//! | another method on those paths   | `405`                                                   |
//! | any other path                  | `404`                                                   |
//!
//! The latency is a timer, not a busy wait: requests wait together, as they would on remote
//! storage, and [`BlobServer::max_in_flight`] shows how many did. Connections are kept alive.
//!
//! ```
//! use std::time::Duration;
//! use bench_harness::server::BlobServer;
//! use executor_core::Task;
//! use scenarios::blob::expected_digest;
//! use scenarios::io::FetchBlob;
//!
//! let server = BlobServer::start(Duration::from_millis(5)).unwrap();
//! let task = FetchBlob { base_url: server.base_url(), index: 1, size: 64 * 1024 };
//! assert_eq!(task.run().unwrap(), expected_digest(1, 64 * 1024));
//! assert_eq!(server.requests(), 1);
//! server.shutdown();
//! ```

use std::convert::Infallible;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::oneshot;

use scenarios::blob::blob_bytes;

/// The largest blob the server makes: 64 MiB. A larger `size` is answered `400`.
///
/// ```
/// assert_eq!(bench_harness::server::MAX_BLOB_SIZE, 64 * 1024 * 1024);
/// ```
pub const MAX_BLOB_SIZE: usize = 64 * 1024 * 1024;

/// Pending connections the kernel queues for the server: enough for hundreds of clients
/// connecting at once without a dropped SYN (which costs a client a second).
const BACKLOG: u32 = 1024;

/// How long the server pauses after a failed `accept` (out of file descriptors, say) before
/// trying again, instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// What the server counts.
#[derive(Default)]
struct Stats {
    /// Blobs served (`200` answers to `/blob/...`).
    requests: AtomicU64,
    /// Connections accepted.
    connections: AtomicU64,
    /// Requests being handled now.
    in_flight: AtomicUsize,
    /// The most requests handled at once.
    max_in_flight: AtomicUsize,
}

// Ordering for all the counters: each is a statistic read on its own, never used to publish
// other memory, so relaxed operations suffice. A client that has received a response reads a
// count that includes it: the count is updated before the response is written, and the write
// and the client's read of the socket order the two.

/// Counts a request as in flight while it lives (a request cut off by a closed connection or by
/// shutdown stops counting when its future is dropped).
struct InFlight<'a>(&'a Stats);

impl<'a> InFlight<'a> {
    fn enter(stats: &'a Stats) -> Self {
        let now = stats.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        stats.max_in_flight.fetch_max(now, Ordering::Relaxed);
        InFlight(stats)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A loopback HTTP/1.1 server that serves deterministic blobs after a fixed latency (see the
/// [module](self) for what it answers). Dropping it, or [`shutdown`](BlobServer::shutdown),
/// stops it and joins its thread, at once, even while clients keep connections open.
///
/// ```
/// use std::time::Duration;
/// use bench_harness::server::BlobServer;
///
/// let server = BlobServer::start(Duration::from_millis(20)).unwrap();
/// assert!(server.base_url().starts_with("http://127.0.0.1:"));
/// assert_eq!(server.addr().port(), server.base_url().rsplit(':').next().unwrap().parse::<u16>().unwrap());
/// drop(server); // stops it
/// ```
///
/// From async code, with the async variant of the fetch, many blobs at once:
///
/// ```
/// use std::time::Duration;
/// use bench_harness::server::BlobServer;
/// use scenarios::blob::expected_digest;
/// use scenarios::io::fetch_blob;
///
/// let server = BlobServer::start(Duration::from_millis(20)).unwrap();
/// let client = scenarios::io::blob_client().unwrap();
/// let runtime = tokio::runtime::Runtime::new().unwrap();
/// runtime.block_on(async {
///     let fetches: Vec<_> = (0..8)
///         .map(|index| {
///             let (client, base_url) = (client.clone(), server.base_url());
///             tokio::spawn(async move { fetch_blob(&client, &base_url, index, 4096).await })
///         })
///         .collect();
///     for (index, fetch) in (0..).zip(fetches) {
///         assert_eq!(fetch.await.unwrap().unwrap(), expected_digest(index, 4096));
///     }
/// });
/// assert_eq!(server.requests(), 8);
/// ```
pub struct BlobServer {
    addr: SocketAddr,
    latency: Duration,
    stats: Arc<Stats>,
    /// Sending (or dropping) it stops the accept loop.
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl BlobServer {
    /// Starts a server on `127.0.0.1` on a free port, whose blob answers come `latency` after
    /// the request. Returns once it is listening: a client may connect at once.
    ///
    /// Fails if the runtime, the socket or the thread cannot be made.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use bench_harness::server::BlobServer;
    /// use executor_core::Task;
    /// use scenarios::io::FetchBlob;
    ///
    /// let server = BlobServer::start(Duration::from_millis(30)).unwrap();
    /// let started = Instant::now();
    /// FetchBlob { base_url: server.base_url(), index: 0, size: 10 }.run().unwrap();
    /// assert!(started.elapsed() >= Duration::from_millis(30));
    /// ```
    pub fn start(latency: Duration) -> io::Result<BlobServer> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let listener = {
            // The socket registers with this runtime's reactor.
            let _context = runtime.enter();
            let socket = TcpSocket::new_v4()?;
            socket.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
            socket.listen(BACKLOG)?
        };
        let addr = listener.local_addr()?;
        let stats = Arc::new(Stats::default());
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(format!("blob-server-{}", addr.port()))
            .spawn({
                let stats = Arc::clone(&stats);
                move || {
                    runtime.block_on(accept_loop(listener, stopped, latency, stats));
                    // Dropping the runtime drops every connection task: connections that
                    // clients keep alive are closed here, not waited for.
                    drop(runtime);
                }
            })?;
        Ok(BlobServer {
            addr,
            latency,
            stats,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The URL to fetch from, `http://127.0.0.1:PORT`, without a trailing `/` (the `base_url` of
    /// [`FetchBlob`](scenarios::io::FetchBlob) and [`fetch_blob`](scenarios::io::fetch_blob)).
    ///
    /// ```
    /// let server = bench_harness::server::BlobServer::start(std::time::Duration::ZERO).unwrap();
    /// assert_eq!(server.base_url(), format!("http://{}", server.addr()));
    /// ```
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address the server listens on (`127.0.0.1` and the port the OS chose).
    ///
    /// ```
    /// let server = bench_harness::server::BlobServer::start(std::time::Duration::ZERO).unwrap();
    /// assert!(server.addr().ip().is_loopback());
    /// assert_ne!(server.addr().port(), 0);
    /// ```
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How long each blob answer waits.
    ///
    /// ```
    /// use std::time::Duration;
    /// let server = bench_harness::server::BlobServer::start(Duration::from_millis(20)).unwrap();
    /// assert_eq!(server.latency(), Duration::from_millis(20));
    /// ```
    pub fn latency(&self) -> Duration {
        self.latency
    }

    /// How many blobs the server has served (`200` answers to `/blob/...`; `/health` and errors
    /// are not counted). A fetch that has returned is counted.
    ///
    /// ```
    /// use bench_harness::server::BlobServer;
    /// use executor_core::Task;
    /// use scenarios::io::FetchBlob;
    ///
    /// let server = BlobServer::start(std::time::Duration::ZERO).unwrap();
    /// assert_eq!(server.requests(), 0);
    /// for index in 0..3 {
    ///     FetchBlob { base_url: server.base_url(), index, size: 100 }.run().unwrap();
    /// }
    /// assert_eq!(server.requests(), 3);
    /// ```
    pub fn requests(&self) -> u64 {
        self.stats.requests.load(Ordering::Relaxed)
    }

    /// How many connections the server has accepted: fewer than [`requests`](Self::requests)
    /// when clients keep connections alive and reuse them.
    ///
    /// ```
    /// use bench_harness::server::BlobServer;
    /// use executor_core::Task;
    /// use scenarios::io::FetchBlob;
    ///
    /// let server = BlobServer::start(std::time::Duration::ZERO).unwrap();
    /// for index in 0..3 {
    ///     FetchBlob { base_url: server.base_url(), index, size: 100 }.run().unwrap();
    /// }
    /// // One thread, one client: the connection is reused.
    /// assert_eq!(server.connections(), 1);
    /// ```
    pub fn connections(&self) -> u64 {
        self.stats.connections.load(Ordering::Relaxed)
    }

    /// The most requests the server has had in hand at once (received, not yet answered): more
    /// than 1 proves that requests overlapped, waiting out their latency together.
    ///
    /// ```
    /// use std::time::Duration;
    /// use bench_harness::server::BlobServer;
    /// use executor_core::Task;
    /// use scenarios::io::FetchBlob;
    ///
    /// let server = BlobServer::start(Duration::from_millis(1)).unwrap();
    /// assert_eq!(server.max_in_flight(), 0);
    /// FetchBlob { base_url: server.base_url(), index: 0, size: 1 }.run().unwrap();
    /// assert_eq!(server.max_in_flight(), 1); // one client, one request at a time
    /// ```
    pub fn max_in_flight(&self) -> usize {
        self.stats.max_in_flight.load(Ordering::Relaxed)
    }

    /// Stops the server and joins its thread (what dropping it does; this names the moment).
    /// Requests in progress are cut off and kept-alive connections closed: it does not wait for
    /// clients.
    ///
    /// ```
    /// use bench_harness::server::BlobServer;
    /// use executor_core::Task;
    /// use scenarios::io::FetchBlob;
    ///
    /// let server = BlobServer::start(std::time::Duration::ZERO).unwrap();
    /// let base_url = server.base_url();
    /// server.shutdown();
    /// let error = FetchBlob { base_url, index: 0, size: 1 }.run().unwrap_err();
    /// assert!(error.message().starts_with("GET http://127.0.0.1:"), "{error}");
    /// ```
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            // An error means the loop has ended already.
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            // The thread only runs the accept loop, whose tasks' panics tokio catches; a join
            // error would be a bug there, and a destructor must not panic over it.
            let _ = thread.join();
        }
    }
}

impl Drop for BlobServer {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

impl fmt::Debug for BlobServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobServer")
            .field("addr", &self.addr)
            .field("latency", &self.latency)
            .field("requests", &self.requests())
            .field("connections", &self.connections())
            .field("max_in_flight", &self.max_in_flight())
            .finish()
    }
}

/// Accepts connections until `stopped` fires (or its sender is dropped), serving each on a task
/// of its own.
async fn accept_loop(
    listener: TcpListener,
    mut stopped: oneshot::Receiver<()>,
    latency: Duration,
    stats: Arc<Stats>,
) {
    loop {
        let stream = tokio::select! {
            biased;
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    // Out of descriptors or a connection reset before it was accepted: the
                    // client sees its own error; the server goes on.
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        stats.connections.fetch_add(1, Ordering::Relaxed);
        // Small answers (errors, /health) should not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let stats = Arc::clone(&stats);
        tokio::spawn(async move {
            let service = service_fn(|request| {
                let stats = Arc::clone(&stats);
                async move { Ok::<_, Infallible>(answer(request, latency, &stats).await) }
            });
            // A connection error (the client hung up) ends only this connection.
            let _ = http1::Builder::new()
                .keep_alive(true)
                // No timer is set, so no header-read timeout: an idle kept-alive connection
                // stays open until the client closes it or the server stops.
                .header_read_timeout(None)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The answer to one request.
async fn answer(
    request: Request<Incoming>,
    latency: Duration,
    stats: &Stats,
) -> Response<Full<Bytes>> {
    let _in_flight = InFlight::enter(stats);
    let path = request.uri().path();
    if path == "/health" {
        if request.method() != Method::GET {
            return method_not_allowed();
        }
        return text(StatusCode::OK, "ok\n".to_owned());
    }
    let Some(index) = path.strip_prefix("/blob/") else {
        return text(StatusCode::NOT_FOUND, format!("no such path: {path}\n"));
    };
    if request.method() != Method::GET {
        return method_not_allowed();
    }
    let (index, size) = match parse_blob(index, request.uri().query()) {
        Ok(blob) => blob,
        Err(reason) => return text(StatusCode::BAD_REQUEST, format!("{reason}\n")),
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let body = Bytes::from(blob_bytes(index, size));
    stats.requests.fetch_add(1, Ordering::Relaxed);
    let mut response = Response::new(Full::new(body));
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(CONTENT_LENGTH, HeaderValue::from(size));
    response
}

/// The blob's index and size from the path after `/blob/` and the query; `Err` is the reason
/// for a `400`.
fn parse_blob(index: &str, query: Option<&str>) -> Result<(u64, usize), String> {
    let index = index.parse::<u64>().map_err(|_| {
        format!(
            "bad blob index `{index}`: expected a number from 0 to {}",
            u64::MAX
        )
    })?;
    let size = query
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("size="))
        .ok_or("missing query parameter `size` (the blob's length in bytes)")?;
    let size = size
        .parse::<u64>()
        .map_err(|_| format!("bad blob size `{size}`: expected a number of bytes"))?;
    match usize::try_from(size) {
        Ok(size) if size <= MAX_BLOB_SIZE => Ok((index, size)),
        _ => Err(format!(
            "blob size {size} is above the limit of {MAX_BLOB_SIZE} bytes (64 MiB)"
        )),
    }
}

/// A plain-text answer.
fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The answer to a method other than `GET`.
fn method_not_allowed() -> Response<Full<Bytes>> {
    let mut response = text(
        StatusCode::METHOD_NOT_ALLOWED,
        "only GET is allowed\n".to_owned(),
    );
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static("GET"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_requests_are_parsed() {
        assert_eq!(parse_blob("7", Some("size=65536")), Ok((7, 65536)));
        assert_eq!(parse_blob("0", Some("x=1&size=0")), Ok((0, 0)));
        assert_eq!(
            parse_blob("1", Some(&format!("size={MAX_BLOB_SIZE}"))),
            Ok((1, MAX_BLOB_SIZE))
        );
    }

    #[test]
    fn bad_blob_requests_say_why() {
        assert!(
            parse_blob("x", Some("size=1"))
                .unwrap_err()
                .contains("bad blob index `x`")
        );
        assert!(
            parse_blob("-1", Some("size=1"))
                .unwrap_err()
                .contains("bad blob index")
        );
        assert!(
            parse_blob("1", None)
                .unwrap_err()
                .contains("missing query parameter `size`")
        );
        assert!(
            parse_blob("1", Some("sizes=1"))
                .unwrap_err()
                .contains("missing")
        );
        assert!(
            parse_blob("1", Some("size=big"))
                .unwrap_err()
                .contains("bad blob size `big`")
        );
        let over = parse_blob("1", Some(&format!("size={}", MAX_BLOB_SIZE + 1))).unwrap_err();
        assert!(over.contains("above the limit"), "{over}");
        let huge = parse_blob("1", Some("size=18446744073709551615")).unwrap_err();
        assert!(huge.contains("above the limit"), "{huge}");
    }

    #[test]
    fn in_flight_is_counted_while_held() {
        let stats = Stats::default();
        {
            let _a = InFlight::enter(&stats);
            let _b = InFlight::enter(&stats);
            assert_eq!(stats.in_flight.load(Ordering::Relaxed), 2);
        }
        let _c = InFlight::enter(&stats);
        assert_eq!(stats.in_flight.load(Ordering::Relaxed), 1);
        assert_eq!(stats.max_in_flight.load(Ordering::Relaxed), 2);
    }
}
