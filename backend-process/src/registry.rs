//! Tasks by stable name (rule L2): what a worker can run, collected at link time.

use std::panic::{AssertUnwindSafe, catch_unwind};

use executor_core::{Task, panic_message};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::wire::{Outcomes, WireError};
use crate::worker;

/// A task that can cross a process boundary: a serde [`Task`] with a stable name, whose output
/// is serde too. The compiler checks what may cross (rule L1); the worker finds the task by
/// [`NAME`](RemoteTask::NAME), never by a code address (rule L2), so the same definitions can
/// later run on other machines. Register each type once with [`register!`](crate::register).
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use executor_core::{Task, TaskError};
/// use backend_process::RemoteTask;
///
/// #[derive(Serialize, Deserialize)]
/// struct IsPrime(u64);
///
/// impl Task for IsPrime {
///     type Output = bool;
///     fn run(self) -> Result<bool, TaskError> {
///         Ok(self.0 >= 2 && (2..).take_while(|d| d * d <= self.0).all(|d| self.0 % d != 0))
///     }
/// }
///
/// impl RemoteTask for IsPrime {
///     const NAME: &'static str = "docs::is_prime";
/// }
///
/// backend_process::register!(IsPrime);
/// ```
pub trait RemoteTask: Task + Serialize + DeserializeOwned
where
    Self::Output: Serialize + DeserializeOwned,
{
    /// The stable name the worker looks the task up by.
    const NAME: &'static str;
}

/// How a worker runs the task registered under a name. Made by [`register!`](crate::register).
#[doc(hidden)]
pub struct Registration {
    pub(crate) name: &'static str,
    pub(crate) run: fn(Vec<Vec<u8>>) -> Outcomes,
}

impl Registration {
    /// The registration of `T`.
    #[doc(hidden)]
    pub const fn of<T: RemoteTask>() -> Self
    where
        T::Output: Serialize + DeserializeOwned,
    {
        Registration {
            name: T::NAME,
            run: run_items::<T>,
        }
    }
}

inventory::collect!(Registration);

/// The registration under `name`, if any.
pub(crate) fn lookup(name: &str) -> Option<&'static Registration> {
    inventory::iter::<Registration>
        .into_iter()
        .find(|r| r.name == name)
}

/// Names registered more than once (each must be unique).
pub(crate) fn duplicate_names() -> Vec<&'static str> {
    let mut names: Vec<_> = inventory::iter::<Registration>
        .into_iter()
        .map(|r| r.name)
        .collect();
    names.sort_unstable();
    let mut duplicates: Vec<_> = names
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| w[0])
        .collect();
    duplicates.dedup();
    duplicates
}

/// Runs each serialized task on its own: one item's failure never loses the others (rule H4).
fn run_items<T: RemoteTask>(items: Vec<Vec<u8>>) -> Outcomes
where
    T::Output: Serialize + DeserializeOwned,
{
    items
        .into_iter()
        .map(|bytes| {
            let task: T = postcard::from_bytes(&bytes).map_err(|e| WireError {
                panic: false,
                message: format!("the worker cannot decode a `{}`: {e}", T::NAME),
                backtrace: None,
            })?;
            let output = match catch_unwind(AssertUnwindSafe(|| task.run())) {
                Ok(Ok(output)) => output,
                Ok(Err(e)) => {
                    return Err(WireError {
                        panic: false,
                        message: e.message().to_owned(),
                        backtrace: None,
                    });
                }
                Err(payload) => {
                    return Err(WireError {
                        panic: true,
                        message: panic_message(&*payload),
                        backtrace: worker::take_backtrace(),
                    });
                }
            };
            postcard::to_allocvec(&output).map_err(|e| WireError {
                panic: false,
                message: format!("the result of `{}` cannot be serialized: {e}", T::NAME),
                backtrace: None,
            })
        })
        .collect()
}
