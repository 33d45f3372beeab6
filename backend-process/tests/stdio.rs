//! A task's standard streams are its own, not the protocol's: what it prints goes to the worker's
//! stderr, and its stdin is empty (`/dev/null`). A task that reads stdin, or starts a program that
//! inherits it, gets the end of input at once; it can neither block on the pipe the parent writes
//! requests into nor take bytes out of it (which would lose requests and hang the pool). And
//! none of the worker's own descriptors reaches a program a task starts.

mod support;

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use backend_process::{ProcessPoolExecutor, RemoteTask};
use executor_core::{Executor, MapOptions, Task, TaskError};
use serde::{Deserialize, Serialize};

backend_process::test_worker!();

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Io {
    /// Returns the number.
    Echo(u64),
    /// Prints this many lines to stdout (and flushes), then returns the number of bytes printed.
    Print(u64),
    /// Reads its stdin to the end; returns how many bytes it read.
    ReadStdin,
    /// Starts `sh -c 'wc -c'` with the worker's stdin inherited; returns the count it prints.
    ChildReadsStdin,
}

impl Task for Io {
    type Output = u64;

    fn run(self) -> Result<u64, TaskError> {
        match self {
            Io::Echo(n) => Ok(n),
            Io::Print(lines) => {
                let mut out = std::io::stdout().lock();
                let mut printed = 0;
                for line in 0..lines {
                    let text = format!("a task's own output, line {line}\n");
                    out.write_all(text.as_bytes())
                        .map_err(|e| TaskError::msg(e.to_string()))?;
                    printed += text.len() as u64;
                }
                out.flush().map_err(|e| TaskError::msg(e.to_string()))?;
                Ok(printed)
            }
            Io::ReadStdin => {
                let mut read = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut read)
                    .map_err(|e| TaskError::msg(e.to_string()))?;
                Ok(read.len() as u64)
            }
            Io::ChildReadsStdin => {
                let out = Command::new("sh")
                    .args(["-c", "wc -c"])
                    .stdin(Stdio::inherit())
                    .stderr(Stdio::inherit())
                    .output()
                    .map_err(|e| TaskError::msg(e.to_string()))?;
                let text = String::from_utf8_lossy(&out.stdout);
                text.trim()
                    .parse()
                    .map_err(|e| TaskError::msg(format!("`wc -c` printed {text:?}: {e}")))
            }
        }
    }
}

impl RemoteTask for Io {
    const NAME: &'static str = "backend_process::tests::stdio::io";
}

backend_process::register!(Io);

/// Starts `ls /proc/self/fd` and returns the descriptors it lists: those it inherited, and its
/// own directory's (the lowest free one).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ChildDescriptors;

impl Task for ChildDescriptors {
    type Output = Vec<u64>;

    fn run(self) -> Result<Vec<u64>, TaskError> {
        child_descriptors().map_err(TaskError::msg)
    }
}

impl RemoteTask for ChildDescriptors {
    const NAME: &'static str = "backend_process::tests::stdio::child_descriptors";
}

backend_process::register!(ChildDescriptors);

fn child_descriptors() -> Result<Vec<u64>, String> {
    let out = Command::new("ls")
        .arg("/proc/self/fd")
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut fds = text
        .split_whitespace()
        .map(|fd| fd.parse::<u64>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("`ls /proc/self/fd` printed {text:?}: {e}"))?;
    fds.sort_unstable();
    Ok(fds)
}

/// Submits `task` between two `map`s of echo tasks on a one-worker pool (so that requests are
/// queued in the worker's pipe while the task runs) and checks every result.
fn alongside_others(task: Io) -> u64 {
    support::within(
        "a task using its standard streams among others",
        move || {
            let pool = ProcessPoolExecutor::new(1).unwrap();
            let before = pool
                .map((0..200).map(Io::Echo), MapOptions::new().chunksize(4))
                .unwrap();
            let it = pool.submit(task).unwrap();
            let after = pool
                .map((200..400).map(Io::Echo), MapOptions::new().chunksize(4))
                .unwrap();
            let echoed: Vec<u64> = before.chain(after).map(Result::unwrap).collect();
            assert_eq!(echoed, (0..400).collect::<Vec<_>>());
            it.into_result().unwrap()
        },
    )
}

#[test]
fn a_task_that_reads_stdin_gets_the_end_of_input_at_once() {
    assert_eq!(alongside_others(Io::ReadStdin), 0);
}

#[test]
fn a_program_a_task_starts_cannot_read_the_requests() {
    assert_eq!(alongside_others(Io::ChildReadsStdin), 0);
}

#[test]
fn what_a_task_prints_does_not_disturb_the_protocol() {
    let printed = alongside_others(Io::Print(200));
    assert_eq!(
        printed,
        (0..200u64)
            .map(|line| format!("a task's own output, line {line}\n").len() as u64)
            .sum::<u64>()
    );
}

/// The worker's own descriptors (the protocol's pipes, the doorbell, its timers) are
/// close-on-exec: a program a task starts inherits the same descriptors as one this process starts
/// (its standard streams, and whatever this process itself was given to pass on), and no other.
#[test]
fn a_program_a_task_starts_inherits_no_descriptor_of_the_worker() {
    let here = child_descriptors().unwrap();
    let in_a_task = support::within("a task listing its child's descriptors", || {
        let pool = ProcessPoolExecutor::new(1).unwrap();
        // A map first, so that the worker has read requests and holds its pipes' buffers.
        let echoed = pool
            .map((0..100).map(Io::Echo), MapOptions::new().chunksize(4))
            .unwrap()
            .count();
        assert_eq!(echoed, 100);
        pool.submit(ChildDescriptors)
            .unwrap()
            .into_result()
            .unwrap()
    });
    assert_eq!(in_a_task, here, "descriptors a task's program inherits");
}
