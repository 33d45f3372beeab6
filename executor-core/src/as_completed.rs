//! [`as_completed`]: futures in the order they finish (Python's `concurrent.futures.as_completed`).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::deadline::deadline_after;
use crate::error::TimeoutError;
use crate::task::TaskId;
use crate::wait::{Notifier, Waitable, distinct};

/// Yields each distinct future once as it completes: those already done first (in input order),
/// then the others in completion order (rule F1).
///
/// The deadline is measured from this call, not from the first `next()` (rule F2). When it
/// passes, the iterator yields one [`TimeoutError`] that says how many of how many futures are
/// unfinished, then ends. It does not keep yielded futures (they are moved out to you), and
/// dropping it detaches it from every unfinished future (rule F3).
///
/// ```
/// use executor_core::{Promise, as_completed};
///
/// let (p1, slow) = Promise::<&str>::named("slow");
/// let (p2, fast) = Promise::<&str>::named("fast");
/// p2.set_result("fast").unwrap();
/// let completed = as_completed([slow, fast], None); // "fast" is done, "slow" is not
/// std::thread::spawn(move || p1.set_result("slow").unwrap());
///
/// let order: Vec<&str> = completed.map(|f| f.unwrap().into_result().unwrap()).collect();
/// assert_eq!(order, ["fast", "slow"]);
/// ```
pub fn as_completed<W: Waitable>(
    futures: impl IntoIterator<Item = W>,
    timeout: Option<Duration>,
) -> AsCompleted<W> {
    let deadline = deadline_after(timeout);
    let notifier = Arc::new(Notifier::default());
    let mut ready = VecDeque::new();
    let mut pending = HashMap::new();
    for f in distinct(futures) {
        if f.observed().0.subscribe(&notifier) {
            pending.insert(f.info().id(), f);
        } else {
            ready.push_back(f);
        }
    }
    AsCompleted {
        total: ready.len() + pending.len(),
        ready,
        pending,
        notifier,
        deadline,
        timeout,
        ended: false,
    }
}

/// The iterator returned by [`as_completed`].
///
/// ```
/// let (p, f) = executor_core::Promise::<u8>::new();
/// p.set_result(1).unwrap();
/// let mut it: executor_core::AsCompleted<_> = executor_core::as_completed([f], None);
/// assert_eq!(it.unfinished(), 0);
/// assert!(it.next().unwrap().is_ok());
/// assert!(it.next().is_none());
/// ```
pub struct AsCompleted<W: Waitable> {
    total: usize,
    /// Done, not yet yielded.
    ready: VecDeque<W>,
    /// Not done when last looked at; each is subscribed to `notifier`.
    pending: HashMap<TaskId, W>,
    notifier: Arc<Notifier>,
    deadline: Option<Instant>,
    timeout: Option<Duration>,
    ended: bool,
}

impl<W: Waitable> AsCompleted<W> {
    /// How many futures have not completed yet (not counting completed ones not yet yielded);
    /// 0 once the iterator has ended.
    ///
    /// ```
    /// let (_p, f) = executor_core::Promise::<u8>::new();
    /// assert_eq!(executor_core::as_completed([&f], None).unfinished(), 1);
    /// ```
    pub fn unfinished(&self) -> usize {
        if self.ended {
            return 0;
        }
        // Every posted id belongs to a pending future, so this never goes below zero; saturate
        // anyway rather than trust that across future edits.
        self.pending
            .len()
            .saturating_sub(self.notifier.posted().ids.len())
    }

    fn detach(&mut self) {
        for f in self.pending.values() {
            f.observed().0.unsubscribe(&self.notifier);
        }
    }
}

impl<W: Waitable> Iterator for AsCompleted<W> {
    type Item = Result<W, TimeoutError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ended {
            return None;
        }
        if let Some(f) = self.ready.pop_front() {
            return Some(Ok(f));
        }
        if self.pending.is_empty() {
            self.ended = true;
            return None;
        }
        // On a thread that must not block, this ends as a timeout would.
        let id = crate::blocking::block(|| {
            let mut posted = self
                .notifier
                .wait_for(self.deadline, |posted| !posted.ids.is_empty());
            posted.ids.pop_front()
        })
        .unwrap_or_else(|_| self.notifier.posted().ids.pop_front());
        if let Some(f) = id.and_then(|id| self.pending.remove(&id)) {
            return Some(Ok(f));
        }
        self.ended = true;
        self.detach();
        let unfinished = self.pending.len();
        self.pending.clear();
        let waited = self.timeout.unwrap_or(Duration::MAX);
        Some(Err(TimeoutError::with_unfinished(
            waited, unfinished, self.total,
        )))
    }
}

impl<W: Waitable> Drop for AsCompleted<W> {
    fn drop(&mut self) {
        self.detach();
    }
}

impl<W: Waitable> fmt::Debug for AsCompleted<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompleted")
            .field("total", &self.total)
            .field("ready", &self.ready.len())
            .field("pending", &self.pending.len())
            .field("ended", &self.ended)
            .finish()
    }
}
