//! The worker side: the user's own binary, re-executed by the pool (rule L4).

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, BufReader, BufWriter};

use crate::registry;
use crate::wire::{self, MAGIC, Request, Response, WireError};

/// Set in a worker's environment; its value is the parent's pid.
pub(crate) const WORKER_ENV: &str = "BACKEND_PROCESS_WORKER";

/// The name of the test that [`test_worker!`](crate::test_worker) defines, which the pool asks a
/// test binary to run when it re-executes it as a worker.
pub const TEST_ENTRY: &str = "__backend_process_worker_entry";

thread_local! {
    static BACKTRACE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The backtrace captured by the worker's panic hook for the last panic on this thread.
pub(crate) fn take_backtrace() -> Option<String> {
    BACKTRACE.with(|b| b.borrow_mut().take())
}

/// Turns this process into a worker if the pool started it as one, and never returns then;
/// otherwise returns at once. Call it first thing in `main` (the one line this backend asks of a
/// binary that uses it), before parsing arguments or starting anything.
///
/// ```
/// fn main() {
///     backend_process::worker_main();
///     // ... the program, which may now make a ProcessPoolExecutor ...
/// }
/// # main();
/// ```
pub fn worker_main() {
    if std::env::var_os(WORKER_ENV).is_none() {
        return;
    }
    let code = match serve() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("backend-process worker {}: {e}", std::process::id());
            1
        }
    };
    std::process::exit(code);
}

/// Reads requests from stdin and answers on the protocol stream until the parent closes stdin.
fn serve() -> io::Result<()> {
    // If the parent dies, so does the worker (rule L10).
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(io::Error::from)?;
    if let Some(names) = Some(registry::duplicate_names()).filter(|d| !d.is_empty()) {
        return Err(io::Error::other(format!(
            "tasks registered twice under the same name: {}",
            names.join(", ")
        )));
    }
    // The protocol gets the original stdout; the task's own prints go to stderr.
    let protocol = rustix::io::dup(io::stdout()).map_err(io::Error::from)?;
    rustix::stdio::dup2_stdout(io::stderr()).map_err(io::Error::from)?;
    let mut out = BufWriter::new(File::from(protocol));
    std::panic::set_hook(Box::new(|info| {
        let trace = std::backtrace::Backtrace::force_capture().to_string();
        BACKTRACE.with(|b| *b.borrow_mut() = Some(format!("{info}\n{trace}")));
    }));
    io::Write::write_all(&mut out, MAGIC)?;
    io::Write::flush(&mut out)?;
    let mut input = BufReader::new(io::stdin().lock());
    while let Some(request) = wire::read_frame::<Request>(&mut input)? {
        let outcomes = match registry::lookup(&request.task) {
            Some(registration) => (registration.run)(request.items),
            None => {
                let error = WireError {
                    panic: false,
                    message: format!(
                        "no task is registered as `{}` in this binary (use `backend_process::register!`)",
                        request.task
                    ),
                    backtrace: None,
                };
                vec![Err(error); request.items.len()]
            }
        };
        wire::write_frame(
            &mut out,
            &Response {
                id: request.id,
                outcomes,
            },
        )?;
    }
    Ok(())
}
