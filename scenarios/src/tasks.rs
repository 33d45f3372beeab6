//! The CPU tasks, written once and registered for the process backend.
//!
//! Each is a serde type with a stable name, so the same value runs in this process (threads,
//! tokio's blocking pool, the serial loop) or in a worker process.

use executor_core::{Task, TaskError};
use serde::{Deserialize, Serialize};

/// Whether `n` is prime, by trial division over 6k ± 1 (the blog post's `is_prime`, a little
/// faster).
///
/// ```
/// use scenarios::is_prime;
/// assert!(is_prime(112272535095293));
/// assert!(!is_prime(1099726899285419));
/// assert!(!is_prime(1) && is_prime(2) && is_prime(3) && !is_prime(9));
/// ```
pub fn is_prime(n: u64) -> bool {
    if n < 4 {
        return n >= 2;
    }
    if n.is_multiple_of(2) || n.is_multiple_of(3) {
        return false;
    }
    let mut i = 5u64;
    while i.saturating_mul(i) <= n {
        if n.is_multiple_of(i) || n.is_multiple_of(i + 2) {
            return false;
        }
        i += 6;
    }
    true
}

/// The task: is this number prime?
///
/// ```
/// use executor_core::Task;
/// assert_eq!(scenarios::IsPrime(7).run().unwrap(), true);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsPrime(pub u64);

impl Task for IsPrime {
    type Output = bool;
    fn run(self) -> Result<bool, TaskError> {
        Ok(is_prime(self.0))
    }
}

impl backend_process::RemoteTask for IsPrime {
    const NAME: &'static str = "scenarios::is_prime";
}
backend_process::register!(IsPrime);

/// A task that does nothing but hand its argument back: what the executor itself costs.
///
/// ```
/// use executor_core::Task;
/// assert_eq!(scenarios::NoOp(3).run().unwrap(), 3);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoOp(pub u64);

impl Task for NoOp {
    type Output = u64;
    fn run(self) -> Result<u64, TaskError> {
        Ok(self.0)
    }
}

impl backend_process::RemoteTask for NoOp {
    const NAME: &'static str = "scenarios::noop";
}
backend_process::register!(NoOp);

/// A small CPU task that panics, fails or succeeds by its 1-based index: every
/// `panic_every`-th panics, every `error_every`-th (not also a panicking one) returns an error.
/// Otherwise it checks whether `1_000_003 + index` is prime and returns the index.
///
/// Its panic unwinds without calling the panic hook (`resume_unwind`), so a fault scenario does
/// not flood the terminal; executors still see an ordinary panic.
///
/// ```
/// use executor_core::Task;
/// use scenarios::Faulty;
/// assert_eq!(Faulty { index: 1, panic_every: 3, error_every: 2 }.run().unwrap(), 1);
/// assert!(Faulty { index: 2, panic_every: 3, error_every: 2 }.run().unwrap_err().is_error());
/// let panicked = std::panic::catch_unwind(|| Faulty { index: 3, panic_every: 3, error_every: 0 }.run());
/// assert!(panicked.is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Faulty {
    /// 1-based position in the workload.
    pub index: u64,
    /// Every n-th task panics (0: none).
    pub panic_every: u64,
    /// Every n-th task fails (0: none).
    pub error_every: u64,
}

impl Faulty {
    /// What this task will do: `Ok(())` to succeed, `Err(true)` to panic, `Err(false)` to fail.
    ///
    /// ```
    /// let t = scenarios::Faulty { index: 6, panic_every: 3, error_every: 2 };
    /// assert_eq!(t.fate(), Err(true)); // both apply: panic wins
    /// ```
    pub fn fate(&self) -> Result<(), bool> {
        let every = |n: u64| n != 0 && self.index.is_multiple_of(n);
        if every(self.panic_every) {
            Err(true)
        } else if every(self.error_every) {
            Err(false)
        } else {
            Ok(())
        }
    }
}

impl Task for Faulty {
    type Output = u64;
    fn run(self) -> Result<u64, TaskError> {
        let prime = is_prime(1_000_003 + self.index);
        match self.fate() {
            Err(true) => std::panic::resume_unwind(Box::new(format!(
                "task {} panicked on purpose (every {}th panics)",
                self.index, self.panic_every
            ))),
            Err(false) => Err(TaskError::msg(format!(
                "task {} failed on purpose (every {}th fails)",
                self.index, self.error_every
            ))),
            Ok(()) => {
                std::hint::black_box(prime);
                Ok(self.index)
            }
        }
    }
}

impl backend_process::RemoteTask for Faulty {
    const NAME: &'static str = "scenarios::faulty";
}
backend_process::register!(Faulty);
