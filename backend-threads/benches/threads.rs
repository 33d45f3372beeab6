//! The thread backend against its peers, measured in the same run (issue #3):
//!
//! - `round_trip`: submit one no-op task and wait for its result;
//! - `submit_100k`: submit 100,000 no-op tasks, then collect every result;
//! - `map_1m`: map over 1,000,000 no-op items at chunksize 1, 64 and 4096, against rayon's
//!   `par_iter` on the same work;
//! - `map_primes_200k`: the same on real work, `is_prime` over 200,000 integers.
//!
//! Peers: tokio's `spawn_blocking`, rayon's `spawn` with a channel, and the `threadpool` crate's
//! `execute`, with a channel to collect results and fire-and-forget (then `join`). Every pool has
//! as many threads as the machine has cores and is built outside the timed code.
//!
//! ```text
//! cargo bench -p backend-threads --bench threads
//! ```

#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::hint::black_box;
use std::sync::mpsc;
use std::time::Duration;

use backend_threads::ThreadPoolExecutor;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use executor_core::{Executor, MapOptions};
use rayon::prelude::*;

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

fn ours() -> ThreadPoolExecutor {
    ThreadPoolExecutor::new(cores()).expect("pool")
}

fn rayon_pool() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(cores())
        .build()
        .expect("rayon pool")
}

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores())
        .max_blocking_threads(cores())
        .build()
        .expect("tokio runtime")
}

fn round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("round_trip");
    group.throughput(Throughput::Elements(1));

    let pool = ours();
    group.bench_function("backend-threads submit+result", |b| {
        b.iter(|| {
            *pool
                .submit(|| black_box(1u64))
                .unwrap()
                .result(None)
                .unwrap()
        })
    });

    let rt = tokio_runtime();
    group.bench_function("tokio spawn_blocking", |b| {
        b.iter(|| rt.block_on(rt.spawn_blocking(|| black_box(1u64))).unwrap())
    });

    let rayon = rayon_pool();
    group.bench_function("rayon spawn+channel", |b| {
        b.iter(|| {
            let (tx, rx) = mpsc::sync_channel(1);
            rayon.spawn(move || tx.send(black_box(1u64)).unwrap());
            rx.recv().unwrap()
        })
    });

    let tp = threadpool::ThreadPool::new(cores());
    group.bench_function("threadpool execute+channel", |b| {
        b.iter(|| {
            let (tx, rx) = mpsc::sync_channel(1);
            tp.execute(move || tx.send(black_box(1u64)).unwrap());
            rx.recv().unwrap()
        })
    });
    group.finish();
}

const BATCH: u64 = 100_000;

fn submit_100k(c: &mut Criterion) {
    let mut group = c.benchmark_group("submit_100k");
    group.throughput(Throughput::Elements(BATCH));
    group.sample_size(20);

    let pool = ours();
    group.bench_function("backend-threads", |b| {
        b.iter(|| {
            let futures: Vec<_> = (0..BATCH)
                .map(|i| pool.submit(move || black_box(i)).unwrap())
                .collect();
            futures
                .into_iter()
                .map(|f| f.into_result().unwrap())
                .sum::<u64>()
        })
    });

    let rt = tokio_runtime();
    group.bench_function("tokio spawn_blocking", |b| {
        b.iter(|| {
            let handles: Vec<_> = (0..BATCH)
                .map(|i| rt.spawn_blocking(move || black_box(i)))
                .collect();
            rt.block_on(async {
                let mut sum = 0;
                for h in handles {
                    sum += h.await.unwrap();
                }
                sum
            })
        })
    });

    let rayon = rayon_pool();
    group.bench_function("rayon spawn+channel", |b| {
        b.iter(|| {
            let (tx, rx) = mpsc::channel();
            for i in 0..BATCH {
                let tx = tx.clone();
                rayon.spawn(move || tx.send(black_box(i)).unwrap());
            }
            drop(tx);
            rx.iter().sum::<u64>()
        })
    });

    let tp = threadpool::ThreadPool::new(cores());
    group.bench_function("threadpool execute+channel", |b| {
        b.iter(|| {
            let (tx, rx) = mpsc::channel();
            for i in 0..BATCH {
                let tx = tx.clone();
                tp.execute(move || tx.send(black_box(i)).unwrap());
            }
            drop(tx);
            rx.iter().sum::<u64>()
        })
    });
    group.bench_function("threadpool execute fire-and-forget+join", |b| {
        b.iter(|| {
            for i in 0..BATCH {
                tp.execute(move || {
                    black_box(i);
                });
            }
            tp.join();
        })
    });
    group.finish();
}

const ITEMS: u64 = 1_000_000;

fn map_1m(c: &mut Criterion) {
    let mut group = c.benchmark_group("map_1m");
    group.throughput(Throughput::Elements(ITEMS));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));

    let pool = ours();
    for chunksize in [1usize, 64, 4096] {
        group.bench_with_input(
            BenchmarkId::new("backend-threads map", chunksize),
            &chunksize,
            |b, &chunksize| {
                b.iter(|| {
                    let results: Vec<u64> = pool
                        .map(
                            (0..ITEMS).map(|i| move || black_box(i)),
                            MapOptions::new().chunksize(chunksize),
                        )
                        .unwrap()
                        .map(Result::unwrap)
                        .collect();
                    results
                })
            },
        );
    }

    let rayon = rayon_pool();
    group.bench_function("rayon par_iter", |b| {
        b.iter(|| {
            rayon.install(|| {
                (0..ITEMS)
                    .into_par_iter()
                    .map(black_box)
                    .collect::<Vec<u64>>()
            })
        })
    });
    group.finish();
}

fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    if n % 2 == 0 {
        return n == 2;
    }
    let mut d = 3;
    while d * d <= n {
        if n % d == 0 {
            return false;
        }
        d += 2;
    }
    true
}

/// The same map on real (if small) work: `is_prime` over the 200,000 integers from 1,000,000.
fn map_primes(c: &mut Criterion) {
    const FROM: u64 = 1_000_000;
    const COUNT: u64 = 200_000;
    let mut group = c.benchmark_group("map_primes_200k");
    group.throughput(Throughput::Elements(COUNT));
    group.sample_size(10);

    let pool = ours();
    for chunksize in [1usize, 64, 4096] {
        group.bench_with_input(
            BenchmarkId::new("backend-threads map", chunksize),
            &chunksize,
            |b, &chunksize| {
                b.iter(|| {
                    pool.map(
                        (FROM..FROM + COUNT).map(|n| move || is_prime(n)),
                        MapOptions::new().chunksize(chunksize),
                    )
                    .unwrap()
                    .filter(|r| *r.as_ref().unwrap())
                    .count()
                })
            },
        );
    }

    let rayon = rayon_pool();
    group.bench_function("rayon par_iter", |b| {
        b.iter(|| {
            rayon.install(|| {
                (FROM..FROM + COUNT)
                    .into_par_iter()
                    .filter(|&n| is_prime(n))
                    .count()
            })
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = round_trip, submit_100k, map_1m, map_primes
}
criterion_main!(benches);
