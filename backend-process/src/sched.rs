//! A scheduling hint for the pool's own threads (the parent's readers and writers, a worker's
//! reader): they wake up for a few microseconds at a time to move frames, while the workers'
//! tasks keep both cores busy. Linux's scheduler (EEVDF, 6.6+) lets a running task finish its time
//! slice (about 1.5 ms on two cores) before a task it woke may run, unless the woken task asks for
//! a shorter slice (6.12+). Without the request, a parent reader woken by a worker's batch of
//! responses often waited that long, and the worker it should refill ran out of requests
//! (measured: a few times per `map`; with the request, almost never; `backend-process/PERFORMANCE.md`).
//! On kernels without custom slices the request is ignored or refused, and nothing changes.

// `sched_setattr` has no safe wrapper in `std` or `rustix`.
#![allow(unsafe_code)]

/// The slice the pool's threads ask for (the least Linux grants is 100 µs).
const SLICE_NANOS: u64 = 100_000;

/// The kernel's `struct sched_attr` (its first version, `SCHED_ATTR_SIZE_VER0`, 48 bytes).
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
}

/// Asks for a short time slice for the calling thread, keeping its policy (`SCHED_OTHER`) and its
/// niceness. Best effort: a refusal changes nothing.
pub(crate) fn prefer_short_slices() {
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy: libc::SCHED_OTHER as u32,
        // `sched_setattr` sets the niceness too: keep the thread's own.
        nice: rustix::process::getpriority_process(None).unwrap_or(0),
        runtime: SLICE_NANOS,
        ..SchedAttr::default()
    };
    // SAFETY: `sched_setattr(0, &attr, 0)` reads `attr.size` (48) bytes from `attr`, a live
    // `#[repr(C)]` value laid out as the kernel's `struct sched_attr` version 0, and changes only
    // the calling thread's scheduling; it writes no memory of this process.
    let _ = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &raw const attr, 0) };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The calling thread's `sched_attr`, as the kernel reports it.
    fn current() -> SchedAttr {
        let mut attr = SchedAttr::default();
        let size = std::mem::size_of::<SchedAttr>() as u32;
        // SAFETY: `sched_getattr(0, &mut attr, size, 0)` writes at most `size` bytes into
        // `attr`, a live `#[repr(C)]` value of that size laid out as `struct sched_attr` v0.
        let done = unsafe { libc::syscall(libc::SYS_sched_getattr, 0, &raw mut attr, size, 0) };
        assert_eq!(
            done,
            0,
            "sched_getattr: {}",
            std::io::Error::last_os_error()
        );
        attr
    }

    /// Whether this kernel keeps a custom slice for a fair task (6.12 and later).
    fn custom_slices() -> bool {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        let mut numbers = release
            .split(|c: char| !c.is_ascii_digit())
            .map(|n| n.parse::<u32>());
        matches!((numbers.next(), numbers.next()), (Some(Ok(major)), Some(Ok(minor))) if (major, minor) >= (6, 12))
    }

    #[test]
    fn the_slice_is_asked_for_and_policy_and_niceness_stay() {
        std::thread::spawn(|| {
            rustix::process::setpriority_process(None, 3).unwrap();
            prefer_short_slices();
            let attr = current();
            assert_eq!(attr.policy, libc::SCHED_OTHER as u32);
            assert_eq!(attr.nice, 3, "the thread's niceness is kept");
            assert_eq!(rustix::process::getpriority_process(None).unwrap(), 3);
            if custom_slices() {
                assert_eq!(attr.runtime, SLICE_NANOS);
            }
        })
        .join()
        .unwrap();
    }
}
