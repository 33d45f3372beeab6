//! The process backend against its peers, measured in the same run (issue #4):
//!
//! - `round_trip`: submit one no-op task to a worker process and wait for its result, against
//!   `procspawn`'s pool;
//! - `map_primes_200k`: `is_prime` over the 200,000 integers from 1,000,000 at chunksize 1, 16,
//!   256 and 4096, and with the automatic chunk size, against rayon's `par_iter` on the same work
//!   (threads: the floor a process pool can approach).
//!
//! Every pool has as many workers as the machine has cores and is built (and warmed) outside the
//! timed code.
//!
//! ```text
//! cargo bench -p backend-process --bench process
//! ```

#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::hint::black_box;
use std::time::Duration;

use backend_process::{ProcessPoolExecutor, RemoteTask};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use executor_core::{Executor, MapOptions, Task, TaskError};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

mod common;
use common::{IsPrime, is_prime};

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Rayon's pool, the peer, with as many threads as the process pool has workers.
fn rayon_pool() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(cores())
        .build()
        .expect("rayon pool")
}

#[derive(Serialize, Deserialize)]
struct Noop(u64);

impl Task for Noop {
    type Output = u64;
    fn run(self) -> Result<u64, TaskError> {
        Ok(self.0)
    }
}

impl RemoteTask for Noop {
    const NAME: &'static str = "bench::noop";
}

backend_process::register!(Noop);

/// Busy for 20 µs, except one item near the end of the `map` (a straggler: 20 ms).
#[derive(Serialize, Deserialize)]
struct Uneven(u64);

/// The straggler's index among [`UNEVEN_ITEMS`].
const STRAGGLER: u64 = 3_600;
const UNEVEN_ITEMS: u64 = 4_000;

fn uneven(n: u64) -> bool {
    let micros = if n == STRAGGLER { 20_000 } else { 20 };
    let until = std::time::Instant::now() + Duration::from_micros(micros);
    while std::time::Instant::now() < until {
        std::hint::spin_loop();
    }
    true
}

impl Task for Uneven {
    type Output = bool;
    fn run(self) -> Result<bool, TaskError> {
        Ok(uneven(self.0))
    }
}

impl RemoteTask for Uneven {
    const NAME: &'static str = "bench::uneven";
}

backend_process::register!(Uneven);

fn round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("round_trip");
    group.throughput(Throughput::Elements(1));

    let pool = ProcessPoolExecutor::new(cores()).expect("pool");
    pool.submit(Noop(0)).unwrap().into_result().unwrap();
    group.bench_function("backend-process submit+result", |b| {
        b.iter(|| {
            pool.submit(Noop(black_box(1)))
                .unwrap()
                .into_result()
                .unwrap()
        })
    });

    let peer = procspawn::Pool::new(cores()).expect("procspawn pool");
    peer.spawn((), |()| 0u64).join().unwrap();
    group.bench_function("procspawn pool spawn+join", |b| {
        b.iter(|| peer.spawn(black_box(1u64), |n| n).join().unwrap())
    });
    group.finish();
}

fn map_primes(c: &mut Criterion) {
    const FROM: u64 = 1_000_000;
    const COUNT: u64 = 200_000;
    let mut group = c.benchmark_group("map_primes_200k");
    group.throughput(Throughput::Elements(COUNT));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));

    let pool = ProcessPoolExecutor::new(cores()).expect("pool");
    for chunksize in [1usize, 16, 256, 4096] {
        group.bench_with_input(
            BenchmarkId::new("backend-process map", chunksize),
            &chunksize,
            |b, &chunksize| {
                b.iter(|| {
                    pool.map(
                        (FROM..FROM + COUNT).map(IsPrime),
                        MapOptions::new().chunksize(chunksize),
                    )
                    .unwrap()
                    .filter(|r| *r.as_ref().unwrap())
                    .count()
                })
            },
        );
    }

    group.bench_function("backend-process map/auto", |b| {
        b.iter(|| {
            pool.map(
                (FROM..FROM + COUNT).map(IsPrime),
                MapOptions::new().auto_chunksize(),
            )
            .unwrap()
            .filter(|r| *r.as_ref().unwrap())
            .count()
        })
    });

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

/// A `map` whose chunks are sent ahead by how long the last ones ran, with one 20 ms item near
/// its end: the chunks queued behind it go to the worker that ran out (work stealing) instead of
/// waiting. Ideal on two cores: (3,999 × 20 µs + 20 ms) / 2 = 50 ms.
fn map_straggler(c: &mut Criterion) {
    let mut group = c.benchmark_group("map_straggler_4k");
    group.throughput(Throughput::Elements(UNEVEN_ITEMS));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));

    let pool = ProcessPoolExecutor::new(cores()).expect("pool");
    group.bench_function("backend-process map/64", |b| {
        b.iter(|| {
            pool.map(
                (0..UNEVEN_ITEMS).map(Uneven),
                MapOptions::new().chunksize(64),
            )
            .unwrap()
            .filter(|r| *r.as_ref().unwrap())
            .count()
        })
    });

    let rayon = rayon_pool();
    group.bench_function("rayon par_iter", |b| {
        b.iter(|| {
            rayon.install(|| {
                (0..UNEVEN_ITEMS)
                    .into_par_iter()
                    .filter(|&n| uneven(n))
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
    targets = round_trip, map_primes, map_straggler
}

fn main() {
    // Both pools re-execute this binary as their workers.
    backend_process::worker_main();
    procspawn::init();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
