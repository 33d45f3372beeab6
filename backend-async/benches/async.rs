//! The async backend against its peers, measured in the same run (issue #5):
//!
//! - `overhead`: submit one no-op task and await its result, from a task running on the same
//!   multi-thread runtime: ours (`submit_async`, and the blocking `submit`) against
//!   `tokio::spawn` with its `JoinHandle` and against `tokio::task::spawn_blocking`;
//! - `fanout_256x64KiB`: 256 downloads of 64 KiB from a loopback HTTP/1.1 server that answers
//!   each GET after 20 ms, at concurrency 8, 32, 64 and 256: ours (an `AsyncExecutor` with
//!   `max_workers` = concurrency, one `submit_async` per download) against a hand-written
//!   `JoinSet` plus `Semaphore`, both through the same `reqwest::Client` (one connection pool).
//!
//! Every runtime, executor, client and the server are built outside the timed code. The server
//! runs on a runtime of its own (one worker thread), so that it does not share the measured
//! runtime's workers.
//!
//! ```text
//! cargo bench -p backend-async --bench async
//! ```

#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use backend_async::AsyncExecutor;
use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use executor_core::Executor;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// The measured runtime: one worker per core, a blocking pool as large.
fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores())
        .max_blocking_threads(cores())
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn ours(rt: &Runtime, max_workers: usize) -> AsyncExecutor {
    AsyncExecutor::builder()
        .max_workers(max_workers)
        .handle(rt.handle().clone())
        .build()
        .expect("executor")
}

/// Runs `round` `iters` times inside a task on `rt`'s workers (not on the bench thread, which
/// `block_on` would make the waiter), and times the loop there.
fn time_on_runtime<F, Fut>(rt: &Runtime, iters: u64, round: F) -> Duration
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = u64> + Send,
{
    rt.block_on(rt.spawn(async move {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(round().await);
        }
        start.elapsed()
    }))
    .expect("timing task")
}

fn overhead(c: &mut Criterion) {
    let mut group = c.benchmark_group("overhead");
    group.throughput(Throughput::Elements(1));

    let rt = runtime();
    let pool = Arc::new(ours(&rt, 64));

    let p = Arc::clone(&pool);
    group.bench_function("backend-async submit_async+await", |b| {
        b.iter_custom(|iters| {
            let p = Arc::clone(&p);
            time_on_runtime(&rt, iters, move || {
                let f = p.submit_async(async { black_box(1u64) }).unwrap();
                async move { f.await.unwrap() }
            })
        })
    });

    group.bench_function("tokio spawn+JoinHandle", |b| {
        b.iter_custom(|iters| {
            time_on_runtime(&rt, iters, || {
                let h = tokio::spawn(async { black_box(1u64) });
                async move { h.await.unwrap() }
            })
        })
    });

    let p = Arc::clone(&pool);
    group.bench_function("backend-async submit (blocking task)+await", |b| {
        b.iter_custom(|iters| {
            let p = Arc::clone(&p);
            time_on_runtime(&rt, iters, move || {
                let f = p.submit(|| black_box(1u64)).unwrap();
                async move { f.await.unwrap() }
            })
        })
    });

    group.bench_function("tokio spawn_blocking+JoinHandle", |b| {
        b.iter_custom(|iters| {
            time_on_runtime(&rt, iters, || {
                let h = tokio::task::spawn_blocking(|| black_box(1u64));
                async move { h.await.unwrap() }
            })
        })
    });
    group.finish();
}

const DOWNLOADS: usize = 256;
const BODY: usize = 64 * 1024;
const DELAY: Duration = Duration::from_millis(20);

/// A minimal HTTP/1.1 server on 127.0.0.1: keep-alive, and every request (its head read up to
/// the blank line; GETs have no body) is answered after [`DELAY`] with [`BODY`] bytes and a
/// `Content-Length`. Runs on `rt` until the process ends.
fn start_server(rt: &Runtime) -> SocketAddr {
    let listener = rt
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let mut response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {BODY}\r\n\r\n"
    )
    .into_bytes();
    response.resize(response.len() + BODY, b'x');
    let response: Arc<[u8]> = response.into();
    rt.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let response = Arc::clone(&response);
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut read = BufReader::new(read);
                let mut line = String::new();
                loop {
                    // The request head: lines up to an empty one.
                    loop {
                        line.clear();
                        match read.read_line(&mut line).await {
                            Ok(0) | Err(_) => return, // the client closed the connection
                            Ok(_) if line == "\r\n" || line == "\n" => break,
                            Ok(_) => {}
                        }
                    }
                    tokio::time::sleep(DELAY).await;
                    if write.write_all(&response).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

async fn download(client: &reqwest::Client, url: &str) -> usize {
    let response = client.get(url).send().await.expect("GET");
    assert!(
        response.status().is_success(),
        "status {}",
        response.status()
    );
    response.bytes().await.expect("body").len()
}

fn fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout_256x64KiB");
    group.throughput(Throughput::Bytes((DOWNLOADS * BODY) as u64));
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));

    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("server runtime");
    let url: Arc<str> = format!("http://{}/blob", start_server(&server_rt)).into();
    let rt = runtime();
    // One client, one connection pool, for both sides: after the warm-up, every side finds its
    // connections already open.
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");

    for concurrency in [8usize, 32, 64, 256] {
        // At concurrency 8 one run is 32 rounds of about 22 ms: give its 10 samples the time.
        group.measurement_time(Duration::from_secs(if concurrency == 8 { 8 } else { 3 }));
        let pool = ours(&rt, concurrency);
        group.bench_with_input(
            BenchmarkId::new("backend-async submit_async", concurrency),
            &concurrency,
            |b, _| {
                b.iter(|| {
                    rt.block_on(async {
                        let futures: Vec<_> = (0..DOWNLOADS)
                            .map(|_| {
                                let client = client.clone();
                                let url = Arc::clone(&url);
                                pool.submit_async(async move { download(&client, &url).await })
                                    .unwrap()
                            })
                            .collect();
                        let mut total = 0;
                        for f in futures {
                            total += f.await.unwrap();
                        }
                        assert_eq!(total, DOWNLOADS * BODY);
                        total
                    })
                })
            },
        );

        group.bench_with_input(
            BenchmarkId::new("tokio JoinSet+Semaphore", concurrency),
            &concurrency,
            |b, &concurrency| {
                b.iter(|| {
                    rt.block_on(async {
                        let permits = Arc::new(Semaphore::new(concurrency));
                        let mut set = JoinSet::new();
                        for _ in 0..DOWNLOADS {
                            let permit = Arc::clone(&permits).acquire_owned().await.unwrap();
                            let client = client.clone();
                            let url = Arc::clone(&url);
                            set.spawn(async move {
                                let _permit = permit;
                                download(&client, &url).await
                            });
                        }
                        let mut total = 0;
                        while let Some(n) = set.join_next().await {
                            total += n.unwrap();
                        }
                        assert_eq!(total, DOWNLOADS * BODY);
                        total
                    })
                })
            },
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = overhead, fanout
}
criterion_main!(benches);
