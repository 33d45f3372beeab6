//! Waiting on many futures at once: the [`Waitable`] trait and [`wait`] (Python's
//! `concurrent.futures.wait`).

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::deadline::deadline_after;
use crate::handle::FutureHandle;
use crate::shared::Shared;
use crate::state::State;
use crate::task::{TaskId, TaskInfo};

mod sealed {
    pub trait Sealed {}
}

/// Anything [`wait`] and [`as_completed`](crate::as_completed) can watch: a [`FutureHandle`] of
/// any output type, a reference to one, or an `Arc`/`Box` of one, and `&dyn Waitable` to mix
/// futures of different output types (from different executors) in one call.
///
/// The trait is sealed: only this crate's handles implement it.
///
/// ```
/// use executor_core::{Promise, Waitable, State};
///
/// let (p, numbers) = Promise::<u64>::new();
/// let (_q, words) = Promise::<String>::new();
/// p.set_result(1).unwrap();
/// let mixed: [&dyn Waitable; 2] = [&numbers, &words];
/// assert_eq!(mixed[0].state(), State::Finished);
/// assert_eq!(mixed[1].state(), State::Pending);
/// ```
pub trait Waitable: sealed::Sealed {
    /// The shared state behind the handle (not part of the public contract).
    #[doc(hidden)]
    fn observed(&self) -> Observed<'_>;

    /// The future's id and task name.
    ///
    /// ```
    /// use executor_core::Waitable;
    /// let (_pf, f) = executor_core::Promise::<()>::named("x");
    /// assert_eq!(Waitable::info(&&f).name(), "x");
    /// ```
    fn info(&self) -> TaskInfo {
        self.observed().0.info()
    }

    /// The future's current state.
    ///
    /// ```
    /// use executor_core::Waitable;
    /// let (_pf, f) = executor_core::Promise::<()>::new();
    /// assert_eq!(Waitable::state(&&f), executor_core::State::Pending);
    /// ```
    fn state(&self) -> State {
        self.observed().0.state()
    }

    /// `true` when the future finished with an error (a cancellation is not an error).
    ///
    /// ```
    /// use executor_core::Waitable;
    /// let (p, f) = executor_core::Promise::<()>::new();
    /// p.set_error(executor_core::TaskError::msg("x")).unwrap();
    /// assert!(f.failed());
    /// ```
    fn failed(&self) -> bool {
        self.observed().0.failed()
    }
}

/// A borrowed view of a future's shared state, whatever its output type.
#[doc(hidden)]
pub struct Observed<'a>(pub(crate) &'a dyn Observe);

/// The output-type-free part of a future's shared state.
pub(crate) trait Observe {
    fn info(&self) -> TaskInfo;
    fn state(&self) -> State;
    fn failed(&self) -> bool;
    /// `false` if already done (nothing registered).
    fn subscribe(&self, notifier: &Arc<Notifier>) -> bool;
    fn unsubscribe(&self, notifier: &Arc<Notifier>);
}

impl<T> Observe for Shared<T> {
    fn info(&self) -> TaskInfo {
        Shared::info(self)
    }
    fn state(&self) -> State {
        Shared::state(self)
    }
    fn failed(&self) -> bool {
        Shared::failed(self)
    }
    fn subscribe(&self, notifier: &Arc<Notifier>) -> bool {
        Shared::subscribe(self, notifier)
    }
    fn unsubscribe(&self, notifier: &Arc<Notifier>) {
        Shared::unsubscribe(self, notifier)
    }
}

impl<T> sealed::Sealed for FutureHandle<T> {}
impl<T> Waitable for FutureHandle<T> {
    fn observed(&self) -> Observed<'_> {
        Observed(&**self.shared())
    }
}

impl<W: Waitable + ?Sized> sealed::Sealed for &W {}
impl<W: Waitable + ?Sized> Waitable for &W {
    fn observed(&self) -> Observed<'_> {
        (**self).observed()
    }
}

impl<W: Waitable + ?Sized> sealed::Sealed for Arc<W> {}
impl<W: Waitable + ?Sized> Waitable for Arc<W> {
    fn observed(&self) -> Observed<'_> {
        (**self).observed()
    }
}

impl<W: Waitable + ?Sized> sealed::Sealed for Box<W> {}
impl<W: Waitable + ?Sized> Waitable for Box<W> {
    fn observed(&self) -> Observed<'_> {
        (**self).observed()
    }
}

/// One `wait` or `as_completed` call's mailbox: futures post their id here when they finish or
/// are cancelled.
#[derive(Default)]
pub(crate) struct Notifier {
    posted: Mutex<Posted>,
    arrived: Condvar,
}

#[derive(Default)]
pub(crate) struct Posted {
    /// Ids in completion order, not yet taken.
    pub(crate) ids: VecDeque<TaskId>,
    /// How many have been posted in all.
    pub(crate) count: usize,
    /// Whether any of them finished with an error.
    pub(crate) failed: bool,
}

impl Notifier {
    pub(crate) fn notify(&self, id: TaskId, failed: bool) {
        {
            let mut posted = self.posted.lock();
            posted.ids.push_back(id);
            posted.count += 1;
            posted.failed |= failed;
        }
        self.arrived.notify_all();
    }

    /// What has been posted so far.
    pub(crate) fn posted(&self) -> parking_lot::MutexGuard<'_, Posted> {
        self.posted.lock()
    }

    /// Waits until `ready` holds for what was posted, or the deadline passes. Returns the lock
    /// so the caller can read or take what was posted.
    pub(crate) fn wait_for(
        &self,
        deadline: Option<Instant>,
        mut ready: impl FnMut(&Posted) -> bool,
    ) -> parking_lot::MutexGuard<'_, Posted> {
        let mut posted = self.posted.lock();
        while !ready(&posted) {
            match deadline {
                None => self.arrived.wait(&mut posted),
                Some(d) => {
                    if self.arrived.wait_until(&mut posted, d).timed_out() {
                        break;
                    }
                }
            }
        }
        posted
    }
}

/// When [`wait`] returns (Python's `FIRST_COMPLETED`, `FIRST_EXCEPTION`, `ALL_COMPLETED`).
///
/// ```
/// assert_eq!(executor_core::ReturnWhen::default(), executor_core::ReturnWhen::AllCompleted);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum ReturnWhen {
    /// As soon as any future is done (finished or cancelled).
    FirstCompleted,
    /// As soon as any future finishes with an error; if none does, when all are done.
    /// Cancellation is not an error.
    FirstException,
    /// When every future is done.
    #[default]
    AllCompleted,
}

/// What [`wait`] returns: the futures that were done and those that were not (Python's named
/// tuple `DoneAndNotDoneFutures`). Each distinct future appears once, in input order.
///
/// ```
/// let (p, a) = executor_core::Promise::<u8>::new();
/// let (_q, b) = executor_core::Promise::<u8>::new();
/// p.set_result(1).unwrap();
/// let r = executor_core::wait([&a, &b], Some(std::time::Duration::ZERO), Default::default());
/// assert_eq!(r.done.len(), 1);
/// assert_eq!(r.not_done[0].id(), b.id());
/// ```
#[derive(Debug)]
pub struct DoneAndNotDone<W> {
    /// Futures that were finished or cancelled.
    pub done: Vec<W>,
    /// The rest.
    pub not_done: Vec<W>,
}

/// Waits for futures, from any mix of executors, until `return_when` is satisfied or the
/// timeout passes, and returns which are done (rules D1–D3). It never fails: on timeout it
/// returns what is done so far. Duplicates collapse; an empty input returns at once; a condition
/// already met returns at once. A cancelled future counts as done the moment it is cancelled
/// (rule E1).
///
/// ```
/// use std::time::Duration;
/// use executor_core::{Promise, ReturnWhen, Waitable, wait};
///
/// let (p, bytes) = Promise::<Vec<u8>>::new();
/// let (_q, count) = Promise::<usize>::new();
/// std::thread::spawn(move || p.set_result(vec![0; 4]).unwrap());
///
/// let all: [&dyn Waitable; 2] = [&bytes, &count];
/// let r = wait(all, None, ReturnWhen::FirstCompleted);
/// assert_eq!(r.done.len(), 1);
/// assert_eq!(r.done[0].info().id(), bytes.id());
///
/// let r = wait(all, Some(Duration::from_millis(10)), ReturnWhen::AllCompleted);
/// assert_eq!(r.not_done.len(), 1); // timed out: no error, just what is done so far
/// ```
pub fn wait<W: Waitable>(
    futures: impl IntoIterator<Item = W>,
    timeout: Option<Duration>,
    return_when: ReturnWhen,
) -> DoneAndNotDone<W> {
    let deadline = deadline_after(timeout);
    let futures = distinct(futures);
    let total = futures.len();
    let satisfied = |done: usize, failed: bool| match return_when {
        ReturnWhen::FirstCompleted => done >= 1 || total == 0,
        ReturnWhen::FirstException => failed || done == total,
        ReturnWhen::AllCompleted => done == total,
    };
    let (done, failed) = tally(&futures);
    if !satisfied(done, failed) && timeout != Some(Duration::ZERO) {
        let notifier = Arc::new(Notifier::default());
        let mut already = 0;
        let mut already_failed = false;
        for f in &futures {
            let observed = f.observed();
            if !observed.0.subscribe(&notifier) {
                already += 1;
                already_failed |= observed.0.failed();
            }
        }
        // On a thread that must not block, this returns what is done now, as a timeout would.
        let _ = crate::blocking::block(|| {
            drop(notifier.wait_for(deadline, |posted| {
                satisfied(already + posted.count, already_failed || posted.failed)
            }));
        });
        for f in &futures {
            f.observed().0.unsubscribe(&notifier);
        }
    }
    let (done, not_done) = futures.into_iter().partition(|f| f.state().is_done());
    DoneAndNotDone { done, not_done }
}

/// The input without repeats (by future id), in input order.
pub(crate) fn distinct<W: Waitable>(futures: impl IntoIterator<Item = W>) -> Vec<W> {
    let mut seen = HashSet::new();
    futures
        .into_iter()
        .filter(|f| seen.insert(f.info().id()))
        .collect()
}

/// How many are done now, and whether any of those failed.
fn tally<W: Waitable>(futures: &[W]) -> (usize, bool) {
    futures.iter().fold((0, false), |(done, failed), f| {
        let state = f.state();
        (done + usize::from(state.is_done()), failed || f.failed())
    })
}
