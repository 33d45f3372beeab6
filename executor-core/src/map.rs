//! `map`: [`Batch`] (what one chunk became once submitted) and [`MapIter`] (ordered, per-item
//! results with a deadline, lazy bounded submission and cancel-on-drop).

use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::deadline::deadline_after;
use crate::error::SubmitError;
use crate::error::{MapError, RejectReason, ResultError, TaskError, TimeoutError, WaitError};
use crate::executor::{AUTO_CHUNK_MAX, AUTO_CHUNK_TARGET, Executor, MapOptions};
use crate::handle::FutureHandle;
use crate::task::Task;
use crate::task::{Chunk, RunTimer};

/// One chunk of `map`'s input after submission: either one future for the whole chunk (a
/// backend that batches) or one future per item. Backends build it in
/// [`Executor::submit_batch`].
///
/// ```
/// use executor_core::{Batch, Chunk, Promise};
///
/// let (promise, future) = Promise::for_task(&Chunk::new(vec![|| 1, || 2]));
/// promise.run(Chunk::new(vec![|| 1, || 2]));
/// let batch = Batch::chunk(future, 2);
/// assert_eq!(batch.len(), 2);
/// ```
pub struct Batch<O> {
    repr: Repr<O>,
}

enum Repr<O> {
    /// One future whose value holds every item's outcome, in order.
    Chunk {
        future: FutureHandle<Vec<Result<O, TaskError>>>,
        len: usize,
        /// How long the chunk ran, if whoever runs it says.
        timer: Option<RunTimer>,
    },
    /// One future whose value yields every item's outcome, in order, as it is read.
    Lazy {
        future: FutureHandle<LazyOutcomes<O>>,
        len: usize,
        timer: Option<RunTimer>,
    },
    /// One future per item; an item the executor refused holds the reason.
    Items(Vec<Result<FutureHandle<O>, RejectReason>>),
}

/// A chunk's outcomes, produced one at a time as `map` reads them: what a backend that receives
/// a chunk's results encoded (a process pool) completes a [`Batch::lazy_chunk`]'s future with,
/// so that each item is decoded by the reader, when it is read, instead of being unpacked into
/// a `Vec` first. Always yields exactly `len` outcomes: if the source ends early, the missing
/// items fail (nothing is silently lost, rule H6); extra ones are dropped.
///
/// ```
/// use executor_core::{LazyOutcomes, TaskError};
///
/// let outcomes = LazyOutcomes::new(3, vec![Ok(1u8), Ok(2)].into_iter());
/// let all: Vec<Result<u8, TaskError>> = outcomes.collect();
/// assert_eq!(all.len(), 3);
/// assert_eq!(all[1].as_ref().unwrap(), &2);
/// assert!(all[2].as_ref().unwrap_err().message().contains("2 of 3"));
/// ```
pub struct LazyOutcomes<O> {
    source: Box<dyn Iterator<Item = Result<O, TaskError>> + Send + Sync>,
    len: usize,
    given: usize,
}

impl<O> LazyOutcomes<O> {
    /// `len` outcomes from `source`.
    ///
    /// ```
    /// let o = executor_core::LazyOutcomes::new(1, std::iter::once(Ok::<_, executor_core::TaskError>(5)));
    /// assert_eq!(o.len(), 1);
    /// ```
    pub fn new<I>(len: usize, source: I) -> Self
    where
        I: Iterator<Item = Result<O, TaskError>> + Send + Sync + 'static,
    {
        LazyOutcomes {
            source: Box::new(source),
            len,
            given: 0,
        }
    }
}

impl<O> Iterator for LazyOutcomes<O> {
    type Item = Result<O, TaskError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.given == self.len {
            return None;
        }
        self.given += 1;
        Some(self.source.next().unwrap_or_else(|| {
            Err(TaskError::msg(format!(
                "the chunk's outcomes ended after {} of {} items",
                self.given - 1,
                self.len
            )))
        }))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.len - self.given;
        (left, Some(left))
    }
}

impl<O> ExactSizeIterator for LazyOutcomes<O> {}

impl<O> fmt::Debug for LazyOutcomes<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LazyOutcomes")
            .field("len", &self.len)
            .field("given", &self.given)
            .finish_non_exhaustive()
    }
}

impl<O> Batch<O> {
    /// A chunk of `len` items submitted as one task (for example a [`Chunk`](crate::Chunk)).
    ///
    /// ```
    /// # use executor_core::{Batch, Promise, TaskError};
    /// let (_p, f) = Promise::<Vec<Result<u8, TaskError>>>::new();
    /// assert_eq!(Batch::chunk(f, 3).len(), 3);
    /// ```
    pub fn chunk(future: FutureHandle<Vec<Result<O, TaskError>>>, len: usize) -> Self {
        Batch {
            repr: Repr::Chunk {
                future,
                len,
                timer: None,
            },
        }
    }

    /// The same batch, whose run time `timer` will tell (set by whoever runs the chunk: a
    /// [`Chunk::timed`], a worker's report). `map` with
    /// [`auto_chunksize`](crate::MapOptions::auto_chunksize) reads it; a batch of single items
    /// keeps no timer.
    ///
    /// ```
    /// # use executor_core::{Batch, Promise, RunTimer, TaskError};
    /// let (_p, f) = Promise::<Vec<Result<u8, TaskError>>>::new();
    /// let batch = Batch::chunk(f, 3).timed(RunTimer::new());
    /// assert_eq!(batch.len(), 3);
    /// ```
    pub fn timed(self, timer: RunTimer) -> Self {
        match self.repr {
            Repr::Chunk { future, len, .. } => Batch {
                repr: Repr::Chunk {
                    future,
                    len,
                    timer: Some(timer),
                },
            },
            Repr::Lazy { future, len, .. } => Batch {
                repr: Repr::Lazy {
                    future,
                    len,
                    timer: Some(timer),
                },
            },
            items @ Repr::Items(_) => Batch { repr: items },
        }
    }

    /// How long the chunk ran, if known.
    fn run_time(&self) -> Option<Duration> {
        match &self.repr {
            Repr::Chunk { timer, .. } | Repr::Lazy { timer, .. } => {
                timer.as_ref().and_then(RunTimer::get)
            }
            Repr::Items(_) => None,
        }
    }

    /// A chunk of `len` items submitted as one unit whose future yields the outcomes lazily (see
    /// [`LazyOutcomes`]).
    ///
    /// ```
    /// # use executor_core::{Batch, LazyOutcomes, Promise};
    /// let (_p, f) = Promise::<LazyOutcomes<u8>>::new();
    /// assert_eq!(Batch::lazy_chunk(f, 4).len(), 4);
    /// ```
    pub fn lazy_chunk(future: FutureHandle<LazyOutcomes<O>>, len: usize) -> Self {
        Batch {
            repr: Repr::Lazy {
                future,
                len,
                timer: None,
            },
        }
    }

    /// Items submitted one by one; `Err` marks an item the executor refused.
    ///
    /// ```
    /// # use executor_core::{Batch, Promise};
    /// let (_p, f) = Promise::<u8>::new();
    /// assert_eq!(Batch::items(vec![Ok(f)]).len(), 1);
    /// ```
    pub fn items(items: Vec<Result<FutureHandle<O>, RejectReason>>) -> Self {
        Batch {
            repr: Repr::Items(items),
        }
    }

    /// Submits `tasks` to `executor` as one [`Chunk`](crate::Chunk): the one-line
    /// [`Executor::submit_batch`] of a backend that can run any task. A refused chunk hands the
    /// tasks back.
    ///
    /// ```
    /// # mod reference { include!("../doc/reference_pool.rs"); }
    /// # use reference::ReferencePool;
    /// use executor_core::Batch;
    /// let pool = ReferencePool::new(1);
    /// let batch = Batch::submit_chunk(&pool, vec![|| 1, || 2]).unwrap();
    /// assert_eq!(batch.len(), 2);
    /// ```
    pub fn submit_chunk<E, T>(executor: &E, tasks: Vec<T>) -> Result<Self, SubmitError<Vec<T>>>
    where
        E: Executor<Chunk<T>>,
        T: Task<Output = O>,
    {
        let len = tasks.len();
        let timer = RunTimer::new();
        match executor.submit(Chunk::new(tasks).timed(timer.clone())) {
            Ok(future) => Ok(Batch::chunk(future, len).timed(timer)),
            Err(e) => {
                let (reason, chunk) = e.into_parts();
                Err(SubmitError::new(reason, chunk.into_inner()))
            }
        }
    }

    /// How many input items the batch stands for.
    ///
    /// ```
    /// assert!(executor_core::Batch::<u8>::items(Vec::new()).is_empty());
    /// ```
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Chunk { len, .. } | Repr::Lazy { len, .. } => *len,
            Repr::Items(items) => items.len(),
        }
    }

    /// `true` if the batch stands for no item.
    ///
    /// ```
    /// assert_eq!(executor_core::Batch::<u8>::items(Vec::new()).len(), 0);
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Cancels whatever has not started.
    fn cancel(&self) {
        match &self.repr {
            Repr::Chunk { future, .. } => {
                future.cancel();
            }
            Repr::Lazy { future, .. } => {
                future.cancel();
            }
            Repr::Items(items) => {
                for future in items.iter().flatten() {
                    future.cancel();
                }
            }
        }
    }

    /// Blocks until every part is done (`Ok(true)`) or the deadline passes (`Ok(false)`); inside a
    /// task, with the same inline running and cycle check as `result` (rule K2).
    fn wait_until(&self, deadline: Option<Instant>) -> Result<bool, WaitError> {
        match &self.repr {
            Repr::Chunk { future, .. } => future.wait_until(deadline),
            Repr::Lazy { future, .. } => future.wait_until(deadline),
            Repr::Items(items) => {
                for future in items.iter().flatten() {
                    if !future.wait_until(deadline)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
        }
    }

    /// How many items are not done yet.
    fn unfinished(&self) -> usize {
        match &self.repr {
            Repr::Chunk { future, len, .. } => {
                if future.done() {
                    0
                } else {
                    *len
                }
            }
            Repr::Lazy { future, len, .. } => {
                if future.done() {
                    0
                } else {
                    *len
                }
            }
            Repr::Items(items) => items.iter().flatten().filter(|f| !f.done()).count(),
        }
    }

    /// The per-item outcomes of a done batch, in input order.
    fn into_outcomes(self) -> Outcomes<O> {
        match self.repr {
            Repr::Chunk { future, len, .. } => match future.into_result() {
                Ok(items) => Outcomes::Chunk(items.into_iter()),
                Err(e) => Outcomes::Same(e, len),
            },
            Repr::Lazy { future, len, .. } => match future.into_result() {
                Ok(items) => Outcomes::Lazy(items),
                Err(e) => Outcomes::Same(e, len),
            },
            Repr::Items(items) => Outcomes::Items(items.into_iter()),
        }
    }
}

impl<O> fmt::Debug for Batch<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Chunk { future, len, timer } => f
                .debug_struct("Batch::Chunk")
                .field("future", future)
                .field("len", len)
                .field("run_time", &timer.as_ref().and_then(RunTimer::get))
                .finish(),
            Repr::Lazy { future, len, timer } => f
                .debug_struct("Batch::Lazy")
                .field("future", future)
                .field("len", len)
                .field("run_time", &timer.as_ref().and_then(RunTimer::get))
                .finish(),
            Repr::Items(items) => f
                .debug_struct("Batch::Items")
                .field("items", items)
                .finish(),
        }
    }
}

/// The outcomes of one batch, converted to map items one at a time as they are read.
enum Outcomes<O> {
    Chunk(std::vec::IntoIter<Result<O, TaskError>>),
    Lazy(LazyOutcomes<O>),
    Items(std::vec::IntoIter<Result<FutureHandle<O>, RejectReason>>),
    /// The same error for every item (a refused or cancelled chunk, a deadlock).
    Same(ResultError, usize),
}

impl<O> Outcomes<O> {
    fn none() -> Self {
        Outcomes::Chunk(Vec::new().into_iter())
    }

    /// Item by item, through `next` (the slow variants).
    fn by_ref_items(mut self) -> impl Iterator<Item = Result<O, ResultError>> {
        std::iter::from_fn(move || self.next())
    }
}

impl<O> Iterator for Outcomes<O> {
    type Item = Result<O, ResultError>;

    fn fold<B, F>(self, init: B, mut f: F) -> B
    where
        F: FnMut(B, Self::Item) -> B,
    {
        match self {
            Outcomes::Chunk(items) => {
                items.fold(init, |acc, r| f(acc, r.map_err(ResultError::Failed)))
            }
            Outcomes::Lazy(items) => {
                items.fold(init, |acc, r| f(acc, r.map_err(ResultError::Failed)))
            }
            other => {
                let mut acc = init;
                for item in other.by_ref_items() {
                    acc = f(acc, item);
                }
                acc
            }
        }
    }

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Outcomes::Chunk(items) => items.next().map(|r| r.map_err(ResultError::Failed)),
            Outcomes::Lazy(items) => items.next().map(|r| r.map_err(ResultError::Failed)),
            Outcomes::Items(items) => items.next().map(|item| match item {
                Ok(future) => future.into_result(),
                Err(reason) => Err(ResultError::Rejected(reason)),
            }),
            Outcomes::Same(error, left) => {
                if *left == 0 {
                    return None;
                }
                *left -= 1;
                Some(Err(error.clone()))
            }
        }
    }
}

/// A chunk as it left the input: submitted, or refused with the number of items it held.
enum Unit<O> {
    Submitted(Batch<O>),
    Rejected(RejectReason, usize),
}

/// The lazily-submitting source of units: chunks the input and submits the chunks, one at a
/// time or a group at a time (see [`GROUP_ITEMS`]).
type Source<'a, O> = Box<dyn Iterator<Item = Vec<Unit<O>>> + 'a>;

/// When `map` submits eagerly (no `buffersize`), it hands the executor its chunks in groups
/// ([`Executor::submit_batches`]) of up to this many items (at least one chunk, at most
/// [`GROUP_CHUNKS`]), starting with one chunk and doubling, so that the first chunks start at
/// once. One by one, a process pool woke a worker per chunk while `map` was still encoding the
/// next, and at chunksize 256 its workers waited for chunks for the first millisecond or so.
const GROUP_ITEMS: usize = 8192;

/// The most chunks in one group (see [`GROUP_ITEMS`]).
const GROUP_CHUNKS: usize = 64;

/// The iterator returned by [`Executor::map`]: one `Result` per input item, in input order
/// (rules H1–H7).
///
/// - Without `buffersize`, `map` consumes the whole input and submits every chunk before it
///   returns, so the tasks run even if the results are never read.
/// - With `buffersize = n`, at most `n` submitted-but-unread chunks exist; each step tops the
///   buffer up by one chunk before waiting, and the input is consumed lazily (an endless input
///   works).
/// - `timeout` is a deadline from the call to `map`: when it passes, the iterator yields one
///   [`ResultError::Timeout`], cancels every chunk not yet started, and ends.
/// - A failed item is an error in its own slot; the other items still come back.
/// - Dropping the iterator cancels every chunk not yet started, whether or not it was advanced.
/// - With [`auto_chunksize`](MapOptions::auto_chunksize), `map` returns once the first probe
///   item is done (or the timeout passed); [`chunksize`](MapIter::chunksize) tells what it chose.
///
/// ```
/// # use executor_core::*;
/// # struct Inline;
/// # impl Shutdown for Inline { fn shutdown(&self, _: ShutdownOptions) {} }
/// # impl<T: Task> Executor<T> for Inline {
/// #     fn submit(&self, task: T) -> Result<FutureHandle<T::Output>, SubmitError<T>> {
/// #         let (p, f) = Promise::for_task(&task); p.run(task); Ok(f)
/// #     }
/// # }
/// # let pool = Inline;
/// // An endless input is fine with a buffer: only what is read gets submitted.
/// let evens = pool.map((0u64..).map(|n| move || n * 2), MapOptions::new().buffersize(4)).unwrap();
/// let first: Vec<u64> = evens.take(3).map(Result::unwrap).collect();
/// assert_eq!(first, [0, 2, 4]);
/// ```
pub struct MapIter<'a, O> {
    /// Where further chunks come from; `None` once the input is exhausted or refused.
    source: Option<Source<'a, O>>,
    /// Submitted, not yet read, oldest first.
    queue: VecDeque<Unit<O>>,
    /// Outcomes of the oldest batch, being handed out.
    current: Outcomes<O>,
    lazy: bool,
    deadline: Option<Instant>,
    timeout: Option<Duration>,
    submitted: usize,
    ended: bool,
    /// The chunk size of the chunks still to come (set once by the automatic choice).
    chunksize: Rc<Cell<usize>>,
}

impl<'a, O> MapIter<'a, O> {
    /// Validates the options, then submits the first `buffersize` chunks (or all of them).
    pub(crate) fn new<E, T>(
        executor: &'a E,
        mut tasks: impl Iterator<Item = T> + 'a,
        options: MapOptions,
    ) -> Result<Self, MapError>
    where
        E: Executor<T>,
        T: Task<Output = O>,
    {
        options.validate()?;
        let deadline = deadline_after(options.get_timeout());
        let known_len = tasks.size_hint().0;
        let chunksize = Rc::new(Cell::new(options.get_chunksize()));
        let size = Rc::clone(&chunksize);
        // Once the executor refuses a chunk (shut down, broken), every later chunk would be
        // refused too: the rest of the input is still read, so that each item gets its error
        // (nothing is silently dropped, rule H6), but not submitted.
        let mut refused: Option<RejectReason> = None;
        let auto = options.is_auto_chunksize();
        // Chunks go in groups once `map` submits eagerly and (with an automatic size) has
        // chosen the size; the probes and a buffered `map` submit one chunk at a time.
        let grouping = Rc::new(Cell::new(options.get_buffersize().is_none() && !auto));
        let grouped = Rc::clone(&grouping);
        let mut group = 1usize;
        let workers = executor
            .parallelism()
            .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
            .unwrap_or(1)
            .max(1);
        let source = std::iter::from_fn(move || {
            let count = if grouped.get() { group } else { 1 };
            let mut chunks = Vec::with_capacity(count);
            for _ in 0..count {
                let take = if auto {
                    tail_chunksize(size.get(), tasks.size_hint().0, workers)
                } else {
                    size.get()
                };
                let chunk: Vec<T> = tasks.by_ref().take(take).collect();
                if chunk.is_empty() {
                    break;
                }
                chunks.push(chunk);
            }
            if chunks.is_empty() {
                return None;
            }
            if grouped.get() {
                let most = (GROUP_ITEMS / size.get().max(1)).clamp(1, GROUP_CHUNKS);
                group = (group * 2).min(most);
            }
            let lens: Vec<usize> = chunks.iter().map(Vec::len).collect();
            if let Some(reason) = &refused {
                return Some(
                    lens.into_iter()
                        .map(|len| Unit::Rejected(reason.clone(), len))
                        .collect(),
                );
            }
            let submitted = if chunks.len() == 1 {
                vec![executor.submit_batch(chunks.pop().expect("one chunk"))]
            } else {
                executor.submit_batches(chunks)
            };
            let units = submitted
                .into_iter()
                .zip(lens)
                .map(|(submitted, len)| match submitted {
                    Ok(batch) => Unit::Submitted(batch),
                    Err(e) => {
                        let reason = e.into_parts().0;
                        refused = Some(reason.clone());
                        Unit::Rejected(reason, len)
                    }
                })
                .collect();
            Some(units)
        });
        let mut iter = MapIter {
            source: Some(Box::new(source)),
            queue: VecDeque::new(),
            current: Outcomes::none(),
            lazy: options.get_buffersize().is_some(),
            deadline,
            timeout: options.get_timeout(),
            submitted: 0,
            ended: false,
            chunksize,
        };
        let first = options.get_buffersize().unwrap_or(usize::MAX);
        let mut pulled = 0;
        if options.is_auto_chunksize() {
            iter.chunksize.set(1);
        }
        let sent = Instant::now();
        // An executor that refuses the first chunk refuses the map.
        if iter.pull() {
            pulled += 1;
            if let Some(Unit::Rejected(reason, _)) = iter.queue.front() {
                return Err(MapError::Rejected(reason.clone()));
            }
        }
        if auto {
            while pulled < workers.min(first) && iter.pull() {
                pulled += 1;
            }
            if let Some(per_item) = iter.probe(sent) {
                let remaining = known_len.saturating_sub(pulled);
                iter.chunksize
                    .set(auto_chunksize(per_item, remaining, workers));
            }
            grouping.set(options.get_buffersize().is_none());
        }
        for _ in pulled..first {
            if !iter.pull() {
                break;
            }
        }
        Ok(iter)
    }

    /// Submits the next chunk from the input, or the next group of chunks; `false` when there
    /// is nothing more to submit.
    fn pull(&mut self) -> bool {
        let Some(units) = self.source.as_mut().and_then(Iterator::next) else {
            self.source = None;
            return false;
        };
        for unit in units {
            if let Unit::Submitted(batch) = &unit {
                self.submitted += batch.len();
            }
            self.queue.push_back(unit);
        }
        true
    }

    /// The chunk size of the chunks `map` submits now: the fixed `chunksize`, or what
    /// [`auto_chunksize`](MapOptions::auto_chunksize) chose.
    ///
    /// ```
    /// # use executor_core::*;
    /// # struct Inline;
    /// # impl Shutdown for Inline { fn shutdown(&self, _: ShutdownOptions) {} }
    /// # impl<T: Task> Executor<T> for Inline {
    /// #     fn submit(&self, task: T) -> Result<FutureHandle<T::Output>, SubmitError<T>> {
    /// #         let (p, f) = Promise::for_task(&task); p.run(task); Ok(f)
    /// #     }
    /// # }
    /// # let pool = Inline;
    /// let results = pool.map([|| 1, || 2], MapOptions::new().chunksize(2)).unwrap();
    /// assert_eq!(results.chunksize(), 2);
    /// ```
    pub fn chunksize(&self) -> usize {
        self.chunksize.get()
    }

    /// How long one item of the oldest unit ran: its own report, or (for a backend that does
    /// not time its chunks) the time since `sent`. `None` if it did not finish in time.
    /// Of the probes done by then, the cheapest counts: a worker's very first item also pays
    /// for its cold start (page faults, lazy statics), which would make chunks too small.
    fn probe(&self, sent: Instant) -> Option<Duration> {
        let Some(Unit::Submitted(first)) = self.queue.front() else {
            return None;
        };
        match first.wait_until(self.deadline) {
            Ok(true) => {}
            // Timed out, or cannot wait here (a cycle, a thread that must not block).
            Ok(false) | Err(_) => return None,
        }
        let per_item = |batch: &Batch<O>| {
            let ran = batch.run_time().unwrap_or_else(|| sent.elapsed());
            ran / u32::try_from(batch.len().max(1)).unwrap_or(u32::MAX)
        };
        self.queue
            .iter()
            .filter_map(|unit| match unit {
                Unit::Submitted(batch) if batch.unfinished() == 0 => Some(per_item(batch)),
                _ => None,
            })
            .min()
    }

    /// Cancels every chunk not yet started and stops submitting.
    fn cancel_rest(&mut self) {
        self.source = None;
        for unit in &self.queue {
            if let Unit::Submitted(batch) = unit {
                batch.cancel();
            }
        }
    }
}

/// What [`MapIter::advance`] did once the current batch's outcomes were used up.
enum Step<O> {
    /// The next batch's outcomes are in `current`.
    Loaded,
    /// A final item (the timeout error); the iterator has ended.
    Last(Result<O, ResultError>),
    /// Nothing more.
    End,
}

impl<O> MapIter<'_, O> {
    /// Tops the buffer up, waits for the oldest batch and loads its outcomes into `current`.
    fn advance(&mut self) -> Step<O> {
        if self.ended {
            return Step::End;
        }
        if self.lazy {
            self.pull();
        }
        let Some(unit) = self.queue.pop_front() else {
            self.ended = true;
            return Step::End;
        };
        let batch = match unit {
            Unit::Submitted(batch) => batch,
            Unit::Rejected(reason, len) => {
                self.current = Outcomes::Same(ResultError::Rejected(reason), len);
                return Step::Loaded;
            }
        };
        let done = match batch.wait_until(self.deadline) {
            Ok(done) => done,
            Err(e) => {
                // A wait cycle through this map, or a thread that must not block: the batch's
                // items cannot be read here.
                batch.cancel();
                self.current = Outcomes::Same(e.into(), batch.len());
                return Step::Loaded;
            }
        };
        if !done {
            let unread: usize = batch.unfinished()
                + self
                    .queue
                    .iter()
                    .map(|u| match u {
                        Unit::Submitted(b) => b.unfinished(),
                        Unit::Rejected(_, _) => 0,
                    })
                    .sum::<usize>();
            batch.cancel();
            self.cancel_rest();
            self.queue.clear();
            self.ended = true;
            let waited = self.timeout.unwrap_or(Duration::MAX);
            return Step::Last(Err(ResultError::Timeout(TimeoutError::with_unfinished(
                waited,
                unread,
                self.submitted,
            ))));
        }
        self.current = batch.into_outcomes();
        Step::Loaded
    }
}

impl<O> Iterator for MapIter<'_, O> {
    type Item = Result<O, ResultError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(outcome) = self.current.next() {
                return Some(outcome);
            }
            match self.advance() {
                Step::Loaded => continue,
                Step::Last(item) => return Some(item),
                Step::End => return None,
            }
        }
    }

    /// A batch at a time, so that `collect`, `sum` and `for_each` run a tight loop over each
    /// chunk's outcomes.
    fn fold<B, F>(mut self, init: B, mut f: F) -> B
    where
        F: FnMut(B, Self::Item) -> B,
    {
        let mut acc = init;
        loop {
            acc = std::mem::replace(&mut self.current, Outcomes::none()).fold(acc, &mut f);
            match self.advance() {
                Step::Loaded => continue,
                Step::Last(item) => return f(acc, item),
                Step::End => return acc,
            }
        }
    }
}

impl<O> Drop for MapIter<'_, O> {
    fn drop(&mut self) {
        self.cancel_rest();
    }
}

impl<O> fmt::Debug for MapIter<'_, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapIter")
            .field("queued_units", &self.queue.len())
            .field("lazy", &self.lazy)
            .field("submitted", &self.submitted)
            .field("ended", &self.ended)
            .field("chunksize", &self.chunksize.get())
            .finish()
    }
}

/// The size of the next automatic chunk when `remaining` items are left (0: unknown): the
/// `chosen` size, but smaller towards the end of the input, down to an eighth of it, so that the
/// last chunks (already sent ahead to workers) leave the workers unevenly loaded by little.
fn tail_chunksize(chosen: usize, remaining: usize, workers: usize) -> usize {
    if remaining == 0 {
        return chosen;
    }
    let share = remaining.div_ceil(workers.saturating_mul(4));
    chosen.min(share.max(chosen / 8)).max(1)
}

/// The automatic chunk size (rule H5): enough items to run [`AUTO_CHUNK_TARGET`], at most a
/// quarter of each worker's even share of the `remaining` items (0: unknown), within
/// `1..=AUTO_CHUNK_MAX`.
fn auto_chunksize(per_item: Duration, remaining: usize, workers: usize) -> usize {
    let by_cost = AUTO_CHUNK_TARGET.as_nanos() / per_item.as_nanos().max(1);
    let by_cost = usize::try_from(by_cost).unwrap_or(usize::MAX);
    let by_spread = match remaining {
        0 => usize::MAX,
        n => n.div_ceil(workers.saturating_mul(4)),
    };
    by_cost.min(by_spread).clamp(1, AUTO_CHUNK_MAX)
}

#[cfg(test)]
mod tests {
    use super::auto_chunksize;
    use crate::{
        Executor, FutureHandle, MapError, MapOptions, Promise, RejectReason, ResultError, Shutdown,
        ShutdownOptions, SubmitError, Task,
    };
    use std::cell::Cell;
    use std::time::Duration;

    /// Runs the first `left` tasks inline, then refuses every task as shut down.
    struct Refusing {
        left: Cell<usize>,
    }

    impl Shutdown for Refusing {
        fn shutdown(&self, _: ShutdownOptions) {}
    }

    impl<T: Task> Executor<T> for Refusing {
        fn submit(&self, task: T) -> Result<FutureHandle<T::Output>, SubmitError<T>> {
            if self.left.get() == 0 {
                return Err(SubmitError::new(RejectReason::Shutdown, task));
            }
            self.left.set(self.left.get() - 1);
            let (promise, future) = Promise::for_task(&task);
            promise.run(task);
            Ok(future)
        }
    }

    /// H6: an executor that starts refusing while `map` submits still gives one result per input
    /// item (the refused ones as `Rejected`), eagerly and lazily; refusing the first chunk
    /// refuses the map.
    #[test]
    fn a_refusal_mid_map_loses_no_item() {
        for options in [
            MapOptions::new().chunksize(2),
            MapOptions::new().chunksize(2).buffersize(1),
            MapOptions::new().auto_chunksize(),
        ] {
            let pool = Refusing { left: Cell::new(3) };
            let results: Vec<_> = pool
                .map((0..10u32).map(|n| move || n), options)
                .unwrap()
                .collect();
            assert_eq!(results.len(), 10, "{options:?}");
            let ok: Vec<u32> = results
                .iter()
                .filter_map(|r| r.as_ref().ok())
                .copied()
                .collect();
            assert_eq!(ok, [0, 1, 2], "{options:?}");
            assert!(
                results[3..]
                    .iter()
                    .all(|r| matches!(r, Err(ResultError::Rejected(RejectReason::Shutdown)))),
                "{options:?}: {results:?}"
            );
        }
        let pool = Refusing { left: Cell::new(0) };
        let e = pool
            .map((0..10u32).map(|n| move || n), MapOptions::new())
            .unwrap_err();
        assert!(
            matches!(e, MapError::Rejected(RejectReason::Shutdown)),
            "{e}"
        );
    }

    /// Runs tasks inline and records how `map` handed its chunks over: the size of each group
    /// (a lone `submit_batch` is a group of one).
    #[derive(Default)]
    struct Recording {
        groups: std::cell::RefCell<Vec<usize>>,
    }

    impl Shutdown for Recording {
        fn shutdown(&self, _: ShutdownOptions) {}
    }

    impl<T: Task> Executor<T> for Recording {
        fn submit(&self, task: T) -> Result<FutureHandle<T::Output>, SubmitError<T>> {
            let (promise, future) = Promise::for_task(&task);
            promise.run(task);
            Ok(future)
        }

        fn submit_batch(
            &self,
            tasks: Vec<T>,
        ) -> Result<crate::Batch<T::Output>, SubmitError<Vec<T>>> {
            self.groups.borrow_mut().push(1);
            self.submit_batches_inner(tasks)
        }

        fn submit_batches(
            &self,
            chunks: Vec<Vec<T>>,
        ) -> Vec<Result<crate::Batch<T::Output>, SubmitError<Vec<T>>>> {
            self.groups.borrow_mut().push(chunks.len());
            chunks
                .into_iter()
                .map(|c| self.submit_batches_inner(c))
                .collect()
        }
    }

    impl Recording {
        fn submit_batches_inner<T: Task>(
            &self,
            tasks: Vec<T>,
        ) -> Result<crate::Batch<T::Output>, SubmitError<Vec<T>>> {
            let futures = tasks
                .into_iter()
                .map(|task| {
                    let (promise, future) = Promise::for_task(&task);
                    promise.run(task);
                    Ok(future)
                })
                .collect();
            Ok(crate::Batch::items(futures))
        }
    }

    /// An eager `map` hands its chunks over in groups that start at one chunk and double, up to
    /// `GROUP_ITEMS` items (and `GROUP_CHUNKS` chunks); a buffered one, and the probes of the
    /// automatic size, one chunk at a time. Either way every item comes back, in order.
    #[test]
    fn eager_chunks_go_in_doubling_groups() {
        let run = |options: MapOptions, n: u32| {
            let pool = Recording::default();
            let out: Vec<u32> = pool
                .map((0..n).map(|i| move || i), options)
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert_eq!(out, (0..n).collect::<Vec<_>>(), "{options:?}");
            pool.groups.into_inner()
        };
        // 300 chunks of 256: groups of at most 8192 / 256 = 32 chunks.
        let groups = run(MapOptions::new().chunksize(256), 300 * 256);
        assert_eq!(groups[..7], [1, 2, 4, 8, 16, 32, 32], "{groups:?}");
        assert_eq!(groups.iter().sum::<usize>(), 300);
        // Single items: at most 64 chunks a group.
        let groups = run(MapOptions::new(), 1000);
        assert_eq!(groups[..8], [1, 2, 4, 8, 16, 32, 64, 64], "{groups:?}");
        assert_eq!(groups.iter().sum::<usize>(), 1000);
        // Chunks larger than a group's items: one at a time.
        let groups = run(MapOptions::new().chunksize(10_000), 50_000);
        assert_eq!(groups, [1; 5]);
        // Buffered: one at a time.
        let groups = run(MapOptions::new().chunksize(4).buffersize(3), 100);
        assert!(groups.iter().all(|&g| g == 1), "{groups:?}");
        assert_eq!(groups.len(), 25);
        // Automatic: the probes alone (one chunk of one per worker), then groups.
        let groups = run(MapOptions::new().auto_chunksize(), 100_000);
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert!(groups[..workers].iter().all(|&g| g == 1), "{groups:?}");
        assert!(groups.iter().any(|&g| g > 1), "{groups:?}");
    }

    #[test]
    fn auto_chunksize_aims_at_the_target_within_the_spread() {
        let us = Duration::from_micros;
        // 1 µs per item: 2,000 items make 2 ms, if the input is long enough.
        assert_eq!(auto_chunksize(us(1), 1_000_000, 2), 2000);
        // ... but each of 2 workers still gets four chunks of a 10,000-item input.
        assert_eq!(auto_chunksize(us(1), 10_000, 2), 1250);
        // Slow items stay alone; tiny ones stop at the cap; an unknown length has no spread cap.
        assert_eq!(auto_chunksize(us(5_000), 1_000_000, 2), 1);
        assert_eq!(auto_chunksize(Duration::ZERO, 1_000_000, 2), 4096);
        assert_eq!(auto_chunksize(us(1), 0, 2), 2000);
        assert_eq!(auto_chunksize(us(1), 3, 16), 1);
    }

    #[test]
    fn automatic_chunks_shrink_towards_the_end() {
        use super::tail_chunksize;
        assert_eq!(tail_chunksize(4096, 200_000, 2), 4096);
        assert_eq!(tail_chunksize(4096, 16_000, 2), 2000);
        assert_eq!(tail_chunksize(4096, 1_000, 2), 512);
        assert_eq!(tail_chunksize(4096, 0, 2), 4096, "unknown length");
        assert_eq!(tail_chunksize(1, 10, 2), 1);
    }

    /// Map items are moved through several layers per item: keep them small.
    #[test]
    fn map_items_stay_small() {
        assert!(std::mem::size_of::<crate::ResultError>() <= 16);
        assert!(std::mem::size_of::<Result<u64, crate::ResultError>>() <= 24);
    }
}
