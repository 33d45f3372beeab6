//! Timeouts as deadlines (rule C2): a timeout is turned into an instant once, at the call, and
//! every later wait aims at that instant.

use std::time::{Duration, Instant};

/// The instant `timeout` from now; `None` (wait forever) for no timeout or one too large to add.
pub(crate) fn deadline_after(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
}

/// `true` once the deadline (if any) has passed.
pub(crate) fn passed(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}
