//! A submitted request and the promise its response completes, whatever the task type: one task
//! ([`Single`]) or one chunk of `map` ([`Many`]).

use std::sync::Arc;
use std::time::Duration;

use executor_core::{NotStarted, Promise, Revoker, RunTimer, State, TaskError};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::registry::RemoteTask;
use crate::wire::{Items, WireError};

/// A request waiting in the pool's queue: its job and its payload (the chunk's tasks, encoded
/// once at submit time).
pub(crate) struct Queued {
    pub(crate) job: Box<dyn Pending>,
    pub(crate) payload: Arc<[u8]>,
}

/// The parent's side of one request.
pub(crate) trait Pending: Send {
    fn id(&self) -> u64;
    /// The registered name the worker runs it under.
    fn task(&self) -> &'static str;
    /// Lets `cancel()` ask the worker (rule L13); `false` if the future was cancelled meanwhile
    /// (then the request must not be sent).
    fn set_revoker(&self, revoker: Arc<dyn Revoker>) -> bool;
    /// The worker started it: PENDING → RUNNING. A revoke the worker refused may have made it
    /// RUNNING already, which is fine.
    fn start(&self);
    /// Completes the future from a response payload; the worker ran it for `ran`.
    fn finish(self: Box<Self>, payload: &[u8], pid: u32, ran: Duration);
    fn fail(self: Box<Self>, error: TaskError);
    /// Cancels a request that never started; if a refused revoke marked it running meanwhile,
    /// fails it with `error` instead, so that no future is left running for ever.
    fn cancel_or_fail(self: Box<Self>, error: TaskError);
}

/// One task.
pub(crate) struct Single<T: RemoteTask>
where
    T::Output: Serialize + DeserializeOwned,
{
    pub(crate) id: u64,
    pub(crate) promise: Promise<T::Output>,
}

/// A chunk of `map`: one request, one future, one outcome per item.
pub(crate) struct Many<T: RemoteTask>
where
    T::Output: Serialize + DeserializeOwned,
{
    pub(crate) id: u64,
    pub(crate) promise: Promise<Vec<Result<T::Output, TaskError>>>,
    /// Items in the chunk, sent or not.
    pub(crate) len: usize,
    /// Items that could not be serialized, by index (they fail in their own slot, rule H4).
    pub(crate) failed: Vec<(usize, TaskError)>,
    /// Told the worker's run time, for `map`'s automatic chunk size.
    pub(crate) timer: RunTimer,
}

/// A task's outcome as the parent sees it.
fn outcome<T: RemoteTask>(
    outcome: Result<T::Output, WireError>,
    pid: u32,
) -> Result<T::Output, TaskError>
where
    T::Output: Serialize + DeserializeOwned,
{
    outcome.map_err(|wire| {
        let error = if wire.panic {
            TaskError::panic(wire.message)
        } else {
            TaskError::msg(wire.message)
        };
        let error = error.with_task_name(T::NAME).with_worker_pid(pid);
        match wire.backtrace {
            Some(trace) => error.with_backtrace(trace),
            None => error,
        }
    })
}

/// The outcomes of a response payload, in item order: `skip` lists the items the parent could
/// not serialize (they were not sent and keep their own error); an item that cannot be decoded
/// fails, with every item after it (they cannot be found any more).
fn decode<T: RemoteTask>(
    payload: &[u8],
    len: usize,
    skip: Vec<(usize, TaskError)>,
    pid: u32,
) -> Result<Vec<Result<T::Output, TaskError>>, TaskError>
where
    T::Output: Serialize + DeserializeOwned,
{
    let cannot_decode = |e: postcard::Error| {
        TaskError::msg(format!(
            "the parent cannot decode the result of `{}`: {e}",
            T::NAME
        ))
        .with_worker_pid(pid)
    };
    let mut items = Items::new(payload).map_err(cannot_decode)?;
    let expected = len - skip.len();
    if items.count() != expected {
        return Err(TaskError::msg(format!(
            "the worker answered {} outcomes for a chunk of {expected}",
            items.count()
        ))
        .with_worker_pid(pid));
    }
    let mut skip = skip.into_iter().peekable();
    let mut lost: Option<TaskError> = None;
    let mut outcomes = Vec::with_capacity(len);
    for index in 0..len {
        if let Some((_, error)) = skip.next_if(|(at, _)| *at == index) {
            outcomes.push(Err(error));
            continue;
        }
        if let Some(error) = &lost {
            outcomes.push(Err(error.clone()));
            continue;
        }
        match items.next::<Result<T::Output, WireError>>() {
            Ok(item) => outcomes.push(outcome::<T>(item, pid)),
            Err(e) => {
                let error = cannot_decode(e);
                lost = Some(error.clone());
                outcomes.push(Err(error));
            }
        }
    }
    Ok(outcomes)
}

/// PENDING → RUNNING on the worker's `Started`.
fn start<O>(promise: &Promise<O>) {
    match promise.set_running_or_notify_cancel() {
        // A refused revoke made it RUNNING first.
        Ok(()) | Err(NotStarted::InvalidState(State::Running)) => {}
        // Cannot happen while the worker holds it (a cancel asks the worker first); the
        // response then finds a done future and is dropped.
        Err(_) => {}
    }
}

fn cancel_or_fail<O>(promise: Promise<O>, error: TaskError) {
    if !promise.cancel() {
        let _ = promise.set_error(error);
    }
}

impl<T: RemoteTask> Pending for Single<T>
where
    T::Output: Serialize + DeserializeOwned,
{
    fn id(&self) -> u64 {
        self.id
    }
    fn task(&self) -> &'static str {
        T::NAME
    }
    fn set_revoker(&self, revoker: Arc<dyn Revoker>) -> bool {
        self.promise.set_revoker(revoker)
    }
    fn start(&self) {
        start(&self.promise);
    }
    fn finish(self: Box<Self>, payload: &[u8], pid: u32, _ran: Duration) {
        let outcome = decode::<T>(payload, 1, Vec::new(), pid).and_then(|outcomes| {
            outcomes.into_iter().next().unwrap_or_else(|| {
                Err(TaskError::msg("the worker answered with no outcome").with_worker_pid(pid))
            })
        });
        let _ = self.promise.complete(outcome);
    }
    fn fail(self: Box<Self>, error: TaskError) {
        let _ = self.promise.set_error(error);
    }
    fn cancel_or_fail(self: Box<Self>, error: TaskError) {
        cancel_or_fail(self.promise, error);
    }
}

impl<T: RemoteTask> Pending for Many<T>
where
    T::Output: Serialize + DeserializeOwned,
{
    fn id(&self) -> u64 {
        self.id
    }
    fn task(&self) -> &'static str {
        T::NAME
    }
    fn set_revoker(&self, revoker: Arc<dyn Revoker>) -> bool {
        self.promise.set_revoker(revoker)
    }
    fn start(&self) {
        start(&self.promise);
    }
    fn finish(self: Box<Self>, payload: &[u8], pid: u32, ran: Duration) {
        // Before the completion, which publishes it to whoever waits on the future.
        self.timer.record(ran);
        let outcome = decode::<T>(payload, self.len, self.failed, pid);
        let _ = self.promise.complete(outcome);
    }
    fn fail(self: Box<Self>, error: TaskError) {
        let _ = self.promise.set_error(error);
    }
    fn cancel_or_fail(self: Box<Self>, error: TaskError) {
        cancel_or_fail(self.promise, error);
    }
}
