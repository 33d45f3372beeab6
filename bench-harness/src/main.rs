//! The benchmark harness (issue #6); until it lands, see the `primes` example of `backend-threads`.

fn main() {
    println!(
        "bench-harness: not built yet; run `cargo run --release -p backend-threads --example primes`"
    );
}
