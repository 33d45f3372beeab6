//! `map` of `is_prime` over the 200,000 integers from 1,000,000 on the process pool against
//! rayon's `par_iter` on the same work, *interleaved*: each round runs 40 maps on the pool, then
//! 20 on rayon, and compares the two medians. Criterion measures one benchmark after the other,
//! a few seconds each, so a spell of the machine's noise (this project's VM has spells in which
//! the pool's overhead grows by half while rayon does not notice: see `PERFORMANCE.md`) can fall
//! on one side only; here both sides of each ratio are measured within the same second, and the
//! distribution of the ratios over the rounds shows how often such spells come.
//!
//! ```text
//! cargo bench -p backend-process --bench interleaved            # 60 rounds at chunksize 256
//! cargo bench -p backend-process --bench interleaved -- 20 4096 # 20 rounds at chunksize 4096
//! ```

mod common;

use std::time::{Duration, Instant};

use backend_process::ProcessPoolExecutor;
use common::{IsPrime, is_prime};
use executor_core::{Executor, MapOptions};
use rayon::prelude::*;

const FROM: u64 = 1_000_000;
const COUNT: u64 = 200_000;
const POOL_MAPS: usize = 40;
const RAYON_MAPS: usize = 20;

/// The median of `times` (sorted here).
fn median(times: &mut [Duration]) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

/// The value at quantile `q` of `sorted`.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let at = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[at]
}

/// Runs `maps` times and returns each run's time, checking the count of primes each time.
fn timed(maps: usize, primes: usize, mut run: impl FnMut() -> usize) -> Vec<Duration> {
    (0..maps)
        .map(|_| {
            let start = Instant::now();
            assert_eq!(run(), primes, "a run counted the wrong number of primes");
            start.elapsed()
        })
        .collect()
}

fn main() {
    // The pool re-executes this binary as its workers.
    backend_process::worker_main();
    // `cargo bench` passes `--bench`; the numbers are ours.
    let mut numbers = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .map(|arg| {
            arg.parse::<usize>()
                .unwrap_or_else(|_| panic!("expected `[ROUNDS [CHUNKSIZE]]`, got {arg:?}"))
        });
    let rounds = numbers.next().unwrap_or(60).max(1);
    let chunksize = numbers.next().unwrap_or(256).max(1);

    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let pool = ProcessPoolExecutor::new(workers).expect("pool");
    let rayon = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .build()
        .expect("rayon pool");
    let primes = (FROM..FROM + COUNT).filter(|&n| is_prime(n)).count();
    let on_pool = || {
        pool.map(
            (FROM..FROM + COUNT).map(IsPrime),
            MapOptions::new().chunksize(chunksize),
        )
        .expect("map")
        .filter(|r| *r.as_ref().expect("an item failed"))
        .count()
    };
    let on_rayon = || {
        rayon.install(|| {
            (FROM..FROM + COUNT)
                .into_par_iter()
                .filter(|&n| is_prime(n))
                .count()
        })
    };
    // Warm both: the workers start, the pages are touched.
    timed(5, primes, on_pool);
    timed(5, primes, on_rayon);

    println!(
        "{workers} workers, chunksize {chunksize}, {rounds} rounds of {POOL_MAPS} maps on the \
         pool then {RAYON_MAPS} on rayon (medians, ms):"
    );
    let mut ratios = Vec::with_capacity(rounds);
    for round in 1..=rounds {
        let ours = median(&mut timed(POOL_MAPS, primes, on_pool));
        let theirs = median(&mut timed(RAYON_MAPS, primes, on_rayon));
        let ratio = ours.as_secs_f64() / theirs.as_secs_f64();
        println!(
            "round {round:>3}: pool {:>7.3}  rayon {:>7.3}  ratio {ratio:.3}",
            ours.as_secs_f64() * 1e3,
            theirs.as_secs_f64() * 1e3
        );
        ratios.push(ratio);
    }
    ratios.sort_by(f64::total_cmp);
    let over = ratios.iter().filter(|&&r| r > 1.3).count();
    println!(
        "ratio over {rounds} rounds: min {:.3}  median {:.3}  p90 {:.3}  max {:.3}  \
         (above 1.3: {over})",
        ratios[0],
        quantile(&ratios, 0.5),
        quantile(&ratios, 0.9),
        ratios[rounds - 1]
    );
}
