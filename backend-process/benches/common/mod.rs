//! What the process benchmarks share: the `is_prime` work, as a plain function (rayon's side)
//! and as a registered task (the pool's side).

use backend_process::RemoteTask;
use executor_core::{Task, TaskError};
use serde::{Deserialize, Serialize};

/// Trial division: about 80 ns for a number near 1,000,000.
pub fn is_prime(n: u64) -> bool {
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

/// [`is_prime`] of the number, in a worker.
#[derive(Serialize, Deserialize)]
pub struct IsPrime(pub u64);

impl Task for IsPrime {
    type Output = bool;
    fn run(self) -> Result<bool, TaskError> {
        Ok(is_prime(self.0))
    }
}

impl RemoteTask for IsPrime {
    const NAME: &'static str = "bench::is_prime";
}

backend_process::register!(IsPrime);
