//! [`TaskRevoker`]: how `cancel()` asks a worker to withdraw a request sent ahead (rule L13).

use std::sync::{Arc, Weak};

use executor_core::Revoker;
use parking_lot::{Condvar, Mutex};

use super::{Progress, READER, Slot};
use crate::job::Pending;

/// How a `cancel()` (or `shutdown(cancel_futures)`) asks a worker to withdraw one request sent
/// ahead to it. Given to the request's future with [`Promise::set_revoker`](executor_core::Promise::set_revoker).
///
/// It answers at once when it can (the request was never written, or has started or finished);
/// otherwise it writes a `Revoke` frame and waits for the worker's answer, which the slot's
/// reader delivers. The answer never hangs: if the worker dies first, the reader answers when it
/// deals with the worker's end ("revoked" if the request never started).
///
/// One corner: on a reader thread of a process pool (a done callback that cancels another
/// future), waiting could deadlock (the answer may be the very frame this thread must read, or
/// another reader may be waiting on this one), so there `revoke` answers `false` at once: such a
/// request sent ahead stays, and runs.
pub(crate) struct TaskRevoker {
    slot: Weak<Slot>,
    id: u64,
    state: Mutex<Ask>,
    answered: Condvar,
}

#[derive(Default)]
struct Ask {
    asked: bool,
    answer: Option<bool>,
    /// A revoked request's job, kept until the revoker is dropped (after the future is
    /// cancelled: a promise dropped while pending would fail its future as abandoned).
    parked: Option<Box<dyn Pending>>,
}

impl TaskRevoker {
    pub(super) fn new(slot: Weak<Slot>, id: u64) -> Self {
        TaskRevoker {
            slot,
            id,
            state: Mutex::new(Ask::default()),
            answered: Condvar::new(),
        }
    }

    /// Asks (once); the answer if it is known already, `None` if it must be waited for.
    fn begin(&self) -> Option<bool> {
        if READER.get() {
            return Some(false);
        }
        {
            let mut ask = self.state.lock();
            if let Some(answer) = ask.answer {
                return Some(answer);
            }
            if ask.asked {
                return None;
            }
            ask.asked = true;
        }
        let answer = match self.slot.upgrade() {
            Some(slot) => slot.request_revoke(self.id),
            None => Some(false),
        };
        if let Some(answer) = answer {
            self.answer(answer, None);
        }
        answer
    }

    fn wait(&self) -> bool {
        let mut ask = self.state.lock();
        loop {
            if let Some(answer) = ask.answer {
                return answer;
            }
            self.answered.wait(&mut ask);
        }
    }

    /// Records the answer (the first one counts) and wakes whoever waits for it.
    pub(super) fn answer(&self, revoked: bool, job: Option<Box<dyn Pending>>) {
        let mut ask = self.state.lock();
        ask.answer.get_or_insert(revoked);
        if job.is_some() {
            ask.parked = job;
        }
        drop(ask);
        self.answered.notify_all();
    }

    fn take_parked(&self) -> Option<Box<dyn Pending>> {
        self.state.lock().parked.take()
    }
}

impl Revoker for TaskRevoker {
    fn revoke(&self) -> bool {
        match self.begin() {
            Some(answer) => answer,
            None => self.wait(),
        }
    }
}

/// `shutdown(cancel_futures)`'s second half: withdraws every request the workers hold and have
/// not started (all the revokes are written first, then the answers awaited), and cancels those
/// withdrawn.
pub(crate) fn revoke_not_started(slots: &[Arc<Slot>]) {
    let revokers: Vec<Arc<TaskRevoker>> = slots
        .iter()
        .flat_map(|slot| {
            slot.state
                .lock()
                .entries
                .iter()
                .filter(|e| e.progress != Progress::Started)
                .map(|e| Arc::clone(&e.revoker))
                .collect::<Vec<_>>()
        })
        .collect();
    let asked: Vec<_> = revokers.iter().map(|r| r.begin()).collect();
    for (revoker, answer) in revokers.iter().zip(asked) {
        if answer.unwrap_or_else(|| revoker.wait()) {
            if let Some(job) = revoker.take_parked() {
                job.cancel_or_fail(crate::pool::stopped_error());
            }
        }
    }
}
