//! Descriptors a worker inherits besides its stdin and stdout (its start page, its doorbell): the
//! parent names each in the worker's environment and keeps it open across `exec` in that child
//! only; the worker takes it back out of its environment, so that the processes its tasks start
//! see neither the variable nor the descriptor.

// Keeping a descriptor open across `exec` (in the child, before `exec`) and owning one by number
// need `unsafe`.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use rustix::io::FdFlags;

/// Lets `command`'s process inherit `fd` under the environment variable `var`: the descriptor
/// stays open across `exec` in the child only (it is close-on-exec here). Keep `fd` open until
/// `spawn` has returned.
pub(crate) fn pass_to(fd: &OwnedFd, var: &str, command: &mut Command) {
    let raw: RawFd = fd.as_raw_fd();
    command.env(var, raw.to_string());
    // SAFETY: the closure runs in the forked child, before `exec`, where only async-signal-safe
    // calls are allowed: it makes one `fcntl` system call and allocates nothing (its error is a
    // plain errno). The descriptor is open in the child, inherited from this process, where the
    // caller keeps `fd` open at least until `spawn` returns.
    unsafe {
        command.pre_exec(move || {
            // SAFETY: see above: `raw` is open in this (child) process.
            let fd = BorrowedFd::borrow_raw(raw);
            rustix::io::fcntl_setfd(fd, FdFlags::empty())?;
            Ok(())
        });
    }
}

/// The descriptor the parent passed under `var` with [`pass_to`], if it passed one (the worker's
/// side), close-on-exec again; the variable is removed.
///
/// Call it only in `worker_main`, before the worker starts any thread.
pub(crate) fn inherited(var: &str) -> Option<std::io::Result<OwnedFd>> {
    let raw: RawFd = std::env::var(var).ok()?.parse().ok()?;
    // The variable is not for this worker's own children.
    // SAFETY: no other thread of this process reads or writes the environment meanwhile:
    // `worker_main` calls this before it starts any thread, and it runs first thing in `main` (in
    // a test binary, the worker entry test runs alone, `--test-threads=1`, while the harness's
    // main thread only waits for it).
    unsafe { std::env::remove_var(var) };
    // SAFETY: the parent passed this descriptor open (see `pass_to`), and nothing else in this
    // process knows of it, so this is its only owner.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    Some(
        rustix::io::fcntl_setfd(&fd, FdFlags::CLOEXEC)
            .map(|()| fd)
            .map_err(std::io::Error::from),
    )
}
