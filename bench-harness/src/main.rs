//! The benchmark harness (issue #6); until it lands, see the `primes` example of `executor-core`.

fn main() {
    println!(
        "bench-harness: not built yet; run `cargo run --release -p executor-core --example primes`"
    );
}
