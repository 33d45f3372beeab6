//! The start page: two words of memory that the parent and one worker share, in which the worker
//! records how far into its requests it has got: the sequence number (+ 1) of the last request it
//! started, counting every request frame it has read, in order; and when it started it (or that
//! it is idle), so that the parent can tell a worker held up in one request (see
//! `Sched::steal_for`).
//!
//! It lets a worker start requests without telling the parent through the pipe (every frame in
//! the pipe wakes the parent's reader thread): the requests of a `map` are "quiet", and only their
//! responses, several to one write, go back. The parent still learns exactly which requests the
//! worker had started when it dies (rule L6: they failed with it; the others never started and are
//! resent, failed or cancelled as the policy says) and whether a `cancel()` comes too late, by
//! reading this word; because a worker runs its requests in the order it reads them, "started" is
//! simply "sequence number below the word".
//!
//! The page is a `memfd` (an anonymous file, not in any directory: nothing another process could
//! open), mapped shared by both processes; the worker inherits its descriptor, named in its
//! environment. Both close the descriptor once they have mapped the page (the mapping keeps it
//! alive), so it costs no descriptor. Where the system cannot make one, the pool falls back to
//! telling everything through the pipe.

// The mapping needs `unsafe`.
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::io;
use std::os::fd::OwnedFd;
use std::process::Command;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::MemfdFlags;
use rustix::mm::{MapFlags, ProtFlags};

use crate::inherit;

/// Set in a worker's environment when it has a start page: the descriptor's number.
const PAGE_ENV: &str = "BACKEND_PROCESS_START_PAGE";

/// The size of the shared words (the mapping takes a page).
const SIZE: usize = std::mem::size_of::<[AtomicU64; 2]>();

/// What the second word says while the worker waits for requests.
const IDLE: u64 = u64::MAX;

/// One worker's start page, mapped in this process.
pub(crate) struct StartPage {
    words: NonNull<[AtomicU64; 2]>,
}

/// Now on `CLOCK_MONOTONIC`, in ns: the same clock in every process of the machine.
pub(crate) fn now_nanos() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    u64::try_from(now.tv_sec)
        .unwrap_or(0)
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::try_from(now.tv_nsec).unwrap_or(0))
}

// SAFETY: the mapping is only ever accessed through `&AtomicU64` (atomic loads and stores), which
// any thread may do at the same time; the pointer stays valid until `drop`, which needs the page
// owned.
unsafe impl Send for StartPage {}
// SAFETY: as above: shared access is atomic access.
unsafe impl Sync for StartPage {}

impl StartPage {
    /// A new page for a worker about to start (the parent's side), reading 0, and its
    /// descriptor, to pass to the worker with [`StartPage::pass_to`] and close once it started.
    pub(crate) fn create() -> io::Result<(StartPage, OwnedFd)> {
        let fd = rustix::fs::memfd_create("backend-process-start-page", MemfdFlags::CLOEXEC)?;
        rustix::fs::ftruncate(&fd, SIZE as u64)?;
        let page = StartPage::map(&fd)?;
        // Until the worker starts its first request, it waits for one.
        page.idle();
        Ok((page, fd))
    }

    fn map(fd: &OwnedFd) -> io::Result<StartPage> {
        // SAFETY: a new mapping (the kernel picks the address, so it aliases nothing in this
        // process) of `SIZE` bytes of a file at least that long, shared so that the other process
        // sees the stores; it is unmapped in `drop`, and nothing keeps a reference past that.
        let at = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                SIZE,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                fd,
                0,
            )?
        };
        let words = NonNull::new(at.cast::<[AtomicU64; 2]>())
            .ok_or_else(|| io::Error::other("mmap gave a null address"))?;
        Ok(StartPage { words })
    }

    /// Lets `command`'s process inherit the page `fd` made by [`StartPage::create`] (see
    /// [`inherit::pass_to`]). Keep `fd` open until `spawn` has returned.
    pub(crate) fn pass_to(fd: &OwnedFd, command: &mut Command) {
        inherit::pass_to(fd, PAGE_ENV, command);
    }

    /// The page the parent passed to this worker, if it passed one (the worker's side). Call it
    /// only in `worker_main`, before the worker starts any thread.
    pub(crate) fn inherited() -> Option<io::Result<StartPage>> {
        // Mapped, the page needs no descriptor: it is closed here (so no process a task starts
        // inherits it either).
        Some(inherit::inherited(PAGE_ENV)?.and_then(|fd| StartPage::map(&fd)))
    }

    fn words(&self) -> &[AtomicU64; 2] {
        // SAFETY: `words` points into the mapping made in `map` (page-aligned, so aligned for
        // u64s), `SIZE` bytes long, valid until `drop`; it is only accessed atomically, here and
        // in the other process.
        unsafe { self.words.as_ref() }
    }

    /// The sequence number + 1 of the last request the worker started (0: none yet).
    pub(crate) fn started(&self) -> u64 {
        self.words()[0].load(Ordering::Acquire)
    }

    /// How long (ns, by [`now_nanos`]) the worker has been in the request it started last;
    /// `None` while it waits for requests. A heuristic: the two words are not read as one.
    pub(crate) fn running_for(&self, now: u64) -> Option<u64> {
        let at = self.words()[1].load(Ordering::Acquire);
        (at != IDLE).then(|| now.saturating_sub(at))
    }

    /// The worker starts the request with sequence number `seq`, at `at` (by [`now_nanos`]).
    pub(crate) fn start(&self, seq: u64, at: u64) {
        self.words()[1].store(at, Ordering::Relaxed);
        self.words()[0].store(seq + 1, Ordering::Release);
    }

    /// The worker has run out of requests and waits for more.
    pub(crate) fn idle(&self) {
        self.words()[1].store(IDLE, Ordering::Release);
    }
}

impl Drop for StartPage {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, with its length; no reference into it outlives
        // `&self` (`words` hands out borrows of `self` only).
        let _ = unsafe { rustix::mm::munmap(self.words.as_ptr().cast::<c_void>(), SIZE) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_mapped_twice_shares_its_word() {
        let (page, fd) = StartPage::create().unwrap();
        let again = StartPage::map(&fd).unwrap();
        drop(fd);
        assert_eq!(again.started(), 0);
        assert_eq!(again.running_for(1_500), None, "a new page says idle");
        page.start(41, 1_000);
        assert_eq!(again.started(), 42);
        assert_eq!(again.running_for(1_500), Some(500));
        page.idle();
        assert_eq!(again.running_for(1_500), None);
    }
}
