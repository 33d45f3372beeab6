//! Tasks by stable name (rule L2): what a worker can run, collected at link time.

use std::panic::{AssertUnwindSafe, catch_unwind};

use executor_core::{Task, panic_message};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::wire::{self, EncodeError, Items, OutcomeWriter, WireError};
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
    /// Decodes a chunk payload (one postcard `Vec<T>`), runs each task, and writes one outcome
    /// per item into the buffer (see [`wire::OutcomeWriter`]).
    pub(crate) run: fn(&[u8], &mut Vec<u8>),
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

/// The answer to a request for a task this binary does not know: the same error per item.
pub(crate) fn unknown(name: &str, payload: &[u8], out: &mut Vec<u8>) {
    let count = Items::new(payload).map_or(0, |items| items.count());
    let error = WireError::msg(format!(
        "no task is registered as `{name}` in this binary (use `backend_process::register!`)"
    ));
    let mut outcomes = OutcomeWriter::new(out, count);
    for _ in 0..count {
        outcomes.error(&error);
    }
}

/// Runs each task of a chunk on its own: one item's failure (its panic, its error, a result that
/// cannot be serialized) never loses the others (rules H4, L5).
fn run_items<T: RemoteTask>(payload: &[u8], out: &mut Vec<u8>)
where
    T::Output: Serialize + DeserializeOwned,
{
    let cannot_decode = |e: postcard::Error| {
        WireError::msg(format!("the worker cannot decode a `{}`: {e}", T::NAME))
    };
    let mut items = match Items::new(payload) {
        Ok(items) => items,
        Err(_) => {
            // Not even the count: answer no outcome, which the parent reports for the chunk.
            OutcomeWriter::new(out, 0);
            return;
        }
    };
    let count = items.count();
    let mut outcomes = OutcomeWriter::new(out, count);
    for index in 0..count {
        let decoded = match wire::guard(|| items.next()) {
            Ok(Ok(task)) => Ok(task),
            Ok(Err(e)) => Err(cannot_decode(e)),
            Err(message) => Err(WireError {
                panic: true,
                message: format!("decoding a `{}` panicked in the worker: {message}", T::NAME),
                backtrace: worker::take_backtrace(),
            }),
        };
        let task: T = match decoded {
            Ok(task) => task,
            Err(error) => {
                // The items after an undecodable one cannot be found: they fail with it.
                for _ in index..count {
                    outcomes.error(&error);
                }
                return;
            }
        };
        match catch_unwind(AssertUnwindSafe(|| task.run())) {
            Ok(Ok(output)) => {
                if let Err(e) = outcomes.value(&output) {
                    let panic = matches!(e, EncodeError::Panicked(_));
                    outcomes.error(&WireError {
                        panic,
                        message: format!("the result of `{}` cannot be serialized: {e}", T::NAME),
                        backtrace: if panic {
                            worker::take_backtrace()
                        } else {
                            None
                        },
                    });
                }
            }
            Ok(Err(e)) => outcomes.error(&WireError::msg(e.message().to_owned())),
            Err(payload) => outcomes.error(&WireError {
                panic: true,
                message: panic_message(&*payload),
                backtrace: worker::take_backtrace(),
            }),
        }
    }
}
