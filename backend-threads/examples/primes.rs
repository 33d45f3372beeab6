//! The motivating blog post's prime check, run serially and on a pool, with the futures API.
//!
//! ```text
//! cargo run --release -p backend-threads --example primes
//! ```
//!
//! Until the benchmark harness lands this is the project's main demonstration.

use std::time::{Duration, Instant};

use backend_threads::ThreadPoolExecutor;
use executor_core::{
    Executor, Introspect, MapOptions, ReturnWhen, Shutdown, ShutdownOptions, as_completed, wait,
};

/// The blog's six numbers; all but the last are prime.
const PRIMES: [u64; 6] = [
    112272535095293,
    112582705942171,
    112272535095293,
    115280095190773,
    115797848077099,
    1099726899285419,
];

fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    if n % 2 == 0 {
        return n == 2;
    }
    let root = (n as f64).sqrt() as u64;
    (3..=root).step_by(2).all(|d| n % d != 0)
}

fn main() {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    println!("prime check of the blog's six numbers, {workers} worker threads\n");

    let start = Instant::now();
    let serial: Vec<bool> = PRIMES.iter().map(|&n| is_prime(n)).collect();
    let serial_time = start.elapsed();

    let pool = ThreadPoolExecutor::new(workers).expect("pool");
    let start = Instant::now();
    let tasks = PRIMES.map(|n| move || is_prime(n));
    let mapped: Vec<bool> = pool
        .map(tasks, MapOptions::new().timeout(Duration::from_secs(120)))
        .expect("map refused")
        .map(|r| r.expect("a prime check failed"))
        .collect();
    let pool_time = start.elapsed();
    assert_eq!(serial, mapped, "the pool disagrees with the serial loop");

    println!("{:>18}  prime", "number");
    for (n, p) in PRIMES.iter().zip(&mapped) {
        println!("{n:>18}  {p}");
    }
    println!(
        "\nserial loop  {:>9.1} ms\npool.map     {:>9.1} ms   speedup {:.2}x",
        serial_time.as_secs_f64() * 1e3,
        pool_time.as_secs_f64() * 1e3,
        serial_time.as_secs_f64() / pool_time.as_secs_f64()
    );

    // The same work as futures: submit, then take them as they complete.
    let futures: Vec<_> = PRIMES
        .iter()
        .map(|&n| {
            pool.submit(move || (n, is_prime(n)))
                .expect("submit refused")
        })
        .collect();
    let done = wait(&futures, None, ReturnWhen::AllCompleted);
    println!(
        "\nwait(ALL_COMPLETED): {} done, {} not done",
        done.done.len(),
        done.not_done.len()
    );
    let order: Vec<String> = as_completed(&futures, None)
        .map(|f| {
            f.expect("timed out")
                .result(None)
                .expect("failed")
                .0
                .to_string()
        })
        .collect();
    println!("as_completed order: {}", order.join(", "));
    let threads = pool.stats().workers;
    pool.shutdown(ShutdownOptions::wait());
    println!(
        "pool: {threads} threads ran {} queue entries (map sent one per item)",
        pool.stats().completed
    );
}
