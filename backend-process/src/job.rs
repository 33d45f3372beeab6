//! A submitted request and the promise its response completes, whatever the task type: one task
//! ([`Single`]) or one chunk of `map` ([`Many`]).

use std::sync::Arc;
use std::time::Duration;

use executor_core::{LazyOutcomes, NotStarted, Promise, Revoker, RunTimer, State, TaskError};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::registry::RemoteTask;
use crate::wire::{self, Items, WireError};

/// A request waiting in the pool's queue: its job and its payload (the chunk's tasks, encoded
/// once at submit time).
pub(crate) struct Queued {
    pub(crate) job: Box<dyn Pending>,
    pub(crate) payload: Payload,
}

/// A request's encoded tasks, shared by its slot entry and the frame being written (outside the
/// slot's lock). The encoded `Vec` itself, not a copy: an `Arc<[u8]>` copied every chunk.
pub(crate) type Payload = Arc<Vec<u8>>;

/// The parent's side of one request.
pub(crate) trait Pending: Send {
    fn id(&self) -> u64;
    /// The registered name the worker runs it under.
    fn task(&self) -> &'static str;
    /// Lets `cancel()` ask the worker (rule L13); `false` if the future was cancelled meanwhile
    /// (then the request must not be sent).
    fn set_revoker(&self, revoker: Arc<dyn Revoker>) -> bool;
    /// Takes the revoker back, to send the request to another worker; `false` if a `cancel()`
    /// is asking it now (then the request is withdrawn for that cancel, never sent again).
    fn clear_revoker(&self) -> bool;
    /// Whether it may go quiet (no `Started` frame; see [`crate::page`]): a chunk of `map`, whose
    /// future nobody but `map` sees, so that RUNNING need not show.
    fn quiet(&self) -> bool;
    /// The worker started it: PENDING → RUNNING. A revoke the worker refused may have made it
    /// RUNNING already, which is fine.
    fn start(&self);
    /// Completes the future from a response payload; the worker ran it for `ran`. `spare` is
    /// the request's own payload buffer, done with: a chunk keeps its outcomes in it.
    fn finish(self: Box<Self>, payload: &[u8], spare: Payload, pid: u32, ran: Duration);
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
    pub(crate) promise: Promise<LazyOutcomes<T::Output>>,
    /// Items in the chunk, sent or not.
    pub(crate) len: usize,
    /// Items that could not be serialized, by index (they fail in their own slot, rule H4).
    pub(crate) failed: Vec<(usize, TaskError)>,
    /// Told the worker's run time, for `map`'s automatic chunk size.
    pub(crate) timer: RunTimer,
}

/// A copy of a chunk's response `payload` for `map` to decode later, in the request's own
/// buffer `spare` where that fits. That buffer was made by `map`'s thread, which reads the
/// outcomes and frees it: a buffer made on the reader thread and freed on `map`'s cost glibc's
/// allocator its slow path on both threads, 782 times a `map` at chunksize 256 (in turns, ~0.15 ms
/// less of the parent's CPU a `map`; `backend-process/PERFORMANCE.md`). Not a buffer much larger
/// than the payload: the outcomes may wait long for `map` to read them, and large inputs with
/// small results must not keep their inputs' memory meanwhile.
fn keep(payload: &[u8], spare: Payload) -> Vec<u8> {
    match Arc::try_unwrap(spare) {
        Ok(mut buffer) if buffer.capacity() <= payload.len().saturating_mul(2) + 4096 => {
            buffer.clear();
            buffer.extend_from_slice(payload);
            buffer
        }
        _ => payload.to_vec(),
    }
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

/// The outcomes of a response payload, in item order, decoded one at a time as they are read
/// (by `map`'s reader, not by the pool's reader thread): `skip` lists the items the parent could
/// not serialize (they were not sent and keep their own error); an item that cannot be decoded
/// fails, with every item after it (they cannot be found any more).
pub(crate) struct Decoder<T, P> {
    payload: P,
    /// Where the next outcome starts in `payload`.
    at: usize,
    index: usize,
    len: usize,
    /// Items before this index are simply decoded: no skipped item and nothing lost comes
    /// before it (the per-item path `map`'s reader takes 200,000 times in a big `map`).
    plain_until: usize,
    /// The next skipped item and its error, then the rest, in index order.
    next_skip: Option<(usize, TaskError)>,
    skip: std::vec::IntoIter<(usize, TaskError)>,
    lost: Option<TaskError>,
    pid: u32,
    task: std::marker::PhantomData<fn() -> T>,
}

impl<T: RemoteTask, P: AsRef<[u8]>> Decoder<T, P>
where
    T::Output: Serialize + DeserializeOwned,
{
    /// Checks the payload's count against the chunk (a mismatch fails the whole chunk).
    pub(crate) fn new(
        payload: P,
        len: usize,
        skip: Vec<(usize, TaskError)>,
        pid: u32,
    ) -> Result<Self, TaskError> {
        let bytes = payload.as_ref();
        let items = Items::new(bytes).map_err(|e| cannot_decode::<T>(e, pid))?;
        let expected = len - skip.len();
        if items.count() != expected {
            return Err(TaskError::msg(format!(
                "the worker answered {} outcomes for a chunk of {expected}",
                items.count()
            ))
            .with_worker_pid(pid));
        }
        let at = bytes.len() - items.rest().len();
        let mut skip = skip.into_iter();
        let next_skip = skip.next();
        Ok(Decoder {
            payload,
            at,
            index: 0,
            len,
            plain_until: next_skip.as_ref().map_or(len, |(at, _)| *at),
            next_skip,
            skip,
            lost: None,
            pid,
            task: std::marker::PhantomData,
        })
    }

    /// Item `index`, if it is not simply decoded: a skipped item's own error, or the error that
    /// lost the rest of the payload.
    #[cold]
    fn not_plain(&mut self, index: usize) -> Option<Result<T::Output, TaskError>> {
        if self.next_skip.as_ref().is_some_and(|(at, _)| *at == index) {
            let (_, error) = self.next_skip.take().expect("checked above");
            self.next_skip = self.skip.next();
            if self.lost.is_none() {
                self.plain_until = self.next_skip.as_ref().map_or(self.len, |(at, _)| *at);
            }
            return Some(Err(error));
        }
        self.lost.clone().map(Err)
    }

    /// Decodes the next outcome in the payload.
    #[inline]
    fn decode(&mut self) -> Result<T::Output, TaskError> {
        let bytes = &self.payload.as_ref()[self.at..];
        let mut items = Items::resume(bytes, 1);
        let item = wire::guard(|| items.next_outcome::<T::Output>());
        self.at += bytes.len() - items.rest().len();
        let error = match item {
            Ok(Ok(item)) => return outcome::<T>(item, self.pid),
            Ok(Err(e)) => cannot_decode::<T>(e, self.pid),
            // Where that item ended is unknown: the items after it are lost with it.
            Err(message) => TaskError::panic(format!(
                "decoding the result of `{}` panicked: {message}",
                T::NAME
            ))
            .with_task_name(T::NAME)
            .with_worker_pid(self.pid),
        };
        self.lost = Some(error.clone());
        self.plain_until = 0;
        Err(error)
    }
}

fn cannot_decode<T: RemoteTask>(e: crate::codec::Error, pid: u32) -> TaskError
where
    T::Output: Serialize + DeserializeOwned,
{
    TaskError::msg(format!(
        "the parent cannot decode the result of `{}`: {e}",
        T::NAME
    ))
    .with_worker_pid(pid)
}

impl<T: RemoteTask, P: AsRef<[u8]>> Iterator for Decoder<T, P>
where
    T::Output: Serialize + DeserializeOwned,
{
    type Item = Result<T::Output, TaskError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.index == self.len {
            return None;
        }
        let index = self.index;
        self.index += 1;
        if index >= self.plain_until {
            if let Some(item) = self.not_plain(index) {
                return Some(item);
            }
        }
        Some(self.decode())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.len - self.index;
        (left, Some(left))
    }
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
    fn clear_revoker(&self) -> bool {
        self.promise.clear_revoker()
    }
    fn quiet(&self) -> bool {
        false
    }
    fn start(&self) {
        start(&self.promise);
    }
    fn finish(self: Box<Self>, payload: &[u8], _spare: Payload, pid: u32, _ran: Duration) {
        let outcome = Decoder::<T, _>::new(payload, 1, Vec::new(), pid).and_then(|mut outcomes| {
            outcomes.next().unwrap_or_else(|| {
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
    fn clear_revoker(&self) -> bool {
        self.promise.clear_revoker()
    }
    fn quiet(&self) -> bool {
        true
    }
    fn start(&self) {
        start(&self.promise);
    }
    fn finish(self: Box<Self>, payload: &[u8], spare: Payload, pid: u32, ran: Duration) {
        // Before the completion, which publishes it to whoever waits on the future.
        self.timer.record(ran);
        let outcome = Decoder::<T, _>::new(keep(payload, spare), self.len, self.failed, pid)
            .map(|decoder| LazyOutcomes::new(self.len, decoder));
        let _ = self.promise.complete(outcome);
    }
    fn fail(self: Box<Self>, error: TaskError) {
        let _ = self.promise.set_error(error);
    }
    fn cancel_or_fail(self: Box<Self>, error: TaskError) {
        cancel_or_fail(self.promise, error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{OutcomeWriter, WireError};
    use serde::Deserialize;

    #[derive(Serialize, Deserialize)]
    struct Double(u32);

    impl executor_core::Task for Double {
        type Output = u32;
        fn run(self) -> Result<u32, TaskError> {
            Ok(self.0 * 2)
        }
    }

    impl RemoteTask for Double {
        const NAME: &'static str = "backend_process::job::tests::double";
    }

    /// A chunk's response goes into its request's buffer when that is not much larger and no
    /// longer shared; otherwise into a new one.
    #[test]
    fn a_response_is_kept_in_its_request_buffer_unless_that_is_much_larger() {
        let response = vec![7u8; 600];
        let request = Arc::new(Vec::with_capacity(800));
        let at = request.as_ptr();
        let kept = keep(&response, request);
        assert_eq!(kept, response);
        assert_eq!(kept.as_ptr(), at, "the request's buffer was not reused");

        let large = Arc::new(vec![0u8; 1 << 20]);
        let kept = keep(&response, large);
        assert_eq!(kept, response);
        assert!(
            kept.capacity() < 4096,
            "a 1 MiB request buffer kept for 600 bytes"
        );

        // Still shared (a frame being written): copied.
        let shared = Arc::new(Vec::with_capacity(800));
        let other = Arc::clone(&shared);
        assert_eq!(keep(&response, shared), response);
        assert_eq!(other.capacity(), 800);
    }

    /// Items the parent could not send keep their own error in their own slot, before and after
    /// an outcome that cannot be decoded; that one, and every item still in the payload after
    /// it, fail with the decoding error; the task's own error keeps its message.
    #[test]
    fn each_item_gets_its_outcome_or_the_reason_it_has_none() {
        let mut payload = Vec::new();
        let mut out = OutcomeWriter::new(&mut payload, 5);
        out.value(&10u32).unwrap();
        out.error(&WireError::msg("it failed".into()));
        out.value(&20u32).unwrap();
        // An ok tag, then a varint too long for a u32.
        payload.extend_from_slice(&[0, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        // Never reached: its place is unknown once the item before it is lost.
        let _ = crate::wire::append(&0u8, &mut payload);
        let skip = |n: usize| (n, TaskError::msg(format!("item {n} was not sent")));
        let decoder = Decoder::<Double, _>::new(payload, 8, vec![skip(0), skip(4), skip(7)], 1)
            .expect("5 outcomes for 8 items, 3 skipped");
        let outcomes: Vec<Result<u32, String>> = decoder
            .map(|r| r.map_err(|e| e.message().to_owned()))
            .collect();
        assert_eq!(outcomes.len(), 8);
        assert_eq!(outcomes[0], Err("item 0 was not sent".into()));
        assert_eq!(outcomes[1], Ok(10));
        assert_eq!(outcomes[2], Err("it failed".into()));
        assert_eq!(outcomes[3], Ok(20));
        assert_eq!(outcomes[4], Err("item 4 was not sent".into()));
        let lost = outcomes[5].as_ref().unwrap_err();
        assert!(lost.contains("cannot decode"), "{lost}");
        assert_eq!(outcomes[6].as_ref().unwrap_err(), lost);
        assert_eq!(outcomes[7], Err("item 7 was not sent".into()));
    }
}
