//! Tasks by stable name (rule L2): what a worker can run, collected at link time.

use std::panic::{AssertUnwindSafe, catch_unwind};

use executor_core::{Task, panic_message};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::wire::{EncodeError, Items, OutcomeWriter, WireError};
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

/// Where [`run_items`] was in an item when it panicked.
#[derive(Clone, Copy)]
enum Stage {
    /// Decoding the task (the user's `Deserialize`).
    Decode,
    /// Running it.
    Run,
    /// Writing its outcome (the result's `Serialize`, then dropping the result), which began at
    /// this length of the buffer.
    Encode(usize),
}

/// Why [`run_items`] stopped short of the end of a chunk without a panic.
enum Stop {
    Done,
    Undecodable(crate::codec::Error),
}

/// Runs each task of a chunk on its own: one item's failure (its panic, its error, a result that
/// cannot be serialized) never loses the others (rules H4, L5).
///
/// The items run under one `catch_unwind` per chunk, not one per item and stage: after a panic
/// the loop resumes at the next item, and `stage` says what the panic failed. With a guard around
/// each item's decoding, run and encoding, a chunk of 256 no-op tasks cost 6.6 ns an item in the
/// worker; with one guard, 3.3 to 3.6 ns.
fn run_items<T: RemoteTask>(payload: &[u8], out: &mut Vec<u8>)
where
    T::Output: Serialize + DeserializeOwned,
{
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
    let mut index = 0;
    let mut stage = Stage::Decode;
    loop {
        let run = catch_unwind(AssertUnwindSafe(|| {
            while index < count {
                stage = Stage::Decode;
                let task: T = match items.next() {
                    Ok(task) => task,
                    Err(e) => return Stop::Undecodable(e),
                };
                stage = Stage::Run;
                let ran = task.run();
                // From here to the next item, a panic (the result's `Serialize`, or a `Drop` of
                // what the task returned) takes back whatever this item wrote: one outcome per
                // item, always.
                stage = Stage::Encode(outcomes.len());
                match ran {
                    Ok(output) => {
                        if let Err(e) = outcomes.value(&output) {
                            outcomes.error(&cannot_serialize::<T>(EncodeError::Failed(e)));
                        }
                    }
                    Err(e) => outcomes.error(&WireError::msg(e.message().to_owned())),
                }
                index += 1;
            }
            Stop::Done
        }));
        let error = match run {
            Ok(Stop::Done) => return,
            Ok(Stop::Undecodable(e)) => {
                WireError::msg(format!("the worker cannot decode a `{}`: {e}", T::NAME))
            }
            Err(panic) => {
                let message = panic_message(&*panic);
                match stage {
                    Stage::Decode => WireError {
                        panic: true,
                        message: format!(
                            "decoding a `{}` panicked in the worker: {message}",
                            T::NAME
                        ),
                        backtrace: worker::take_backtrace(),
                    },
                    Stage::Run => {
                        outcomes.error(&WireError {
                            panic: true,
                            message,
                            backtrace: worker::take_backtrace(),
                        });
                        index += 1;
                        continue;
                    }
                    Stage::Encode(mark) => {
                        // What the item wrote before the panic goes; the item gets its error.
                        outcomes.truncate(mark);
                        outcomes.error(&cannot_serialize::<T>(EncodeError::Panicked(message)));
                        index += 1;
                        continue;
                    }
                }
            }
        };
        // The items after an undecodable one cannot be found: they fail with it.
        for _ in index..count {
            outcomes.error(&error);
        }
        return;
    }
}

/// The error for a result of `T` that cannot be serialized.
fn cannot_serialize<T: RemoteTask>(e: EncodeError) -> WireError
where
    T::Output: Serialize + DeserializeOwned,
{
    let panic = matches!(e, EncodeError::Panicked(_));
    WireError {
        panic,
        message: format!("the result of `{}` cannot be serialized: {e}", T::NAME),
        backtrace: if panic {
            worker::take_backtrace()
        } else {
            None
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use executor_core::TaskError;
    use serde::{Deserialize, Deserializer, Serializer};

    /// A task whose decoding, run, or result encoding fails as its number says.
    #[derive(Serialize)]
    struct Probe(u64);

    impl<'de> Deserialize<'de> for Probe {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            match u64::deserialize(d)? {
                13 => panic!("decode panic"),
                14 => Err(serde::de::Error::custom("decode refuses")),
                n => Ok(Probe(n)),
            }
        }
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Out(u64);

    impl Serialize for Out {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            match self.0 {
                777 => panic!("serialize panic"),
                778 => Err(serde::ser::Error::custom("serialize refuses")),
                n => s.serialize_u64(n),
            }
        }
    }

    impl Drop for Out {
        fn drop(&mut self) {
            if self.0 == 779 && !std::thread::panicking() {
                panic!("drop panic");
            }
        }
    }

    impl Task for Probe {
        type Output = Out;
        fn run(self) -> Result<Out, TaskError> {
            match self.0 {
                1 => panic!("run panic"),
                2 => Err(TaskError::msg("run fails")),
                3 => Ok(Out(777)),
                4 => Ok(Out(778)),
                15 => Ok(Out(779)),
                n => Ok(Out(n * 10)),
            }
        }
    }

    impl RemoteTask for Probe {
        const NAME: &'static str = "backend_process::registry::tests::probe";
    }

    /// What the worker answers for each item of a chunk of these numbers.
    fn answers(numbers: &[u64]) -> Vec<Result<u64, WireError>> {
        let tasks: Vec<Probe> = numbers.iter().map(|&n| Probe(n)).collect();
        let (payload, count, failed) = crate::wire::encode_items(&tasks);
        assert_eq!((count, failed.len()), (numbers.len(), 0));
        let mut out = Vec::new();
        run_items::<Probe>(&payload, &mut out);
        let mut outcomes = Items::new(&out).unwrap();
        assert_eq!(outcomes.count(), numbers.len(), "one outcome per item");
        (0..numbers.len())
            .map(|_| outcomes.next_outcome::<Out>().unwrap().map(|o| o.0))
            .collect()
    }

    fn error(answer: &Result<u64, WireError>) -> &WireError {
        answer.as_ref().expect_err("a failed item")
    }

    #[test]
    fn every_item_gets_its_own_outcome_whatever_fails_before_it() {
        let got = answers(&[5, 1, 6, 3, 7, 4, 8, 2, 9, 13, 10, 11]);
        assert_eq!(got[0].as_ref().ok(), Some(&50));
        assert!(error(&got[1]).panic && error(&got[1]).message == "run panic");
        assert_eq!(got[2].as_ref().ok(), Some(&60));
        let e = error(&got[3]);
        assert!(e.panic, "{e:?}");
        assert!(
            e.message.contains("cannot be serialized") && e.message.contains("serialize panic"),
            "{e:?}"
        );
        assert_eq!(
            got[4].as_ref().ok(),
            Some(&70),
            "nothing of the panic is left"
        );
        let e = error(&got[5]);
        assert!(
            !e.panic
                && e.message.contains("cannot be serialized")
                && e.message.contains("serialize refuses"),
            "the error's own text is kept: {e:?}"
        );
        assert_eq!(got[6].as_ref().ok(), Some(&80));
        assert!(!error(&got[7]).panic && error(&got[7]).message == "run fails");
        assert_eq!(got[8].as_ref().ok(), Some(&90));
        // A panic while decoding loses the place in the payload: that item and the rest fail.
        let e = error(&got[9]);
        assert!(e.panic && e.message.contains("decode panic"), "{e:?}");
        assert!(e.message.contains("decoding a `"), "{e:?}");
        for lost in &got[10..] {
            assert_eq!(error(lost).message, e.message);
        }
    }

    #[test]
    fn a_result_that_panics_when_dropped_after_encoding_leaves_one_outcome() {
        let got = answers(&[15, 9, 5]);
        let e = error(&got[0]);
        assert!(e.panic && e.message.contains("drop panic"), "{e:?}");
        assert_eq!(got[1].as_ref().ok(), Some(&90), "the next item is its own");
        assert_eq!(got[2].as_ref().ok(), Some(&50));
    }

    #[test]
    fn an_undecodable_item_fails_with_the_rest_of_its_chunk() {
        let got = answers(&[5, 14, 6, 7]);
        assert_eq!(got[0].as_ref().ok(), Some(&50));
        for lost in &got[1..] {
            let e = error(lost);
            assert!(!e.panic, "{e:?}");
            assert!(e.message.contains("cannot decode a `"), "{e:?}");
        }
    }
}
