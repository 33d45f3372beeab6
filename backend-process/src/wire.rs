//! What crosses the pipes: length-prefixed postcard frames, at most [`MAX_FRAME`] bytes each.
//!
//! ```text
//! parent → worker: Request  { id, task name, items: [serialized task] }
//! worker → parent: Response { id, outcomes: [Ok(serialized output) | Err(WireError)] }
//! ```
//!
//! A worker first writes [`MAGIC`] on its protocol stream; the parent skips anything before it
//! (a test harness prints a line before it runs the worker).

use std::io::{self, Read, Write};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The largest frame either side accepts (a chunk of tasks or of results).
pub(crate) const MAX_FRAME: usize = 256 * 1024 * 1024;

/// Written by a worker before its first frame.
pub(crate) const MAGIC: &[u8] = b"\0backend-process/1\0";

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Request {
    pub(crate) id: u64,
    pub(crate) task: String,
    pub(crate) items: Vec<Vec<u8>>,
}

/// One serialized outcome per item of a request.
pub(crate) type Outcomes = Vec<Result<Vec<u8>, WireError>>;

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Response {
    pub(crate) id: u64,
    pub(crate) outcomes: Outcomes,
}

/// A task's failure, as it crosses back to the parent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct WireError {
    pub(crate) panic: bool,
    pub(crate) message: String,
    pub(crate) backtrace: Option<String>,
}

pub(crate) fn write_frame<T: Serialize>(out: &mut impl Write, value: &T) -> io::Result<()> {
    let bytes = postcard::to_allocvec(value).map_err(io::Error::other)?;
    if bytes.len() > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "frame of {} bytes exceeds the {MAX_FRAME}-byte limit",
                bytes.len()
            ),
        ));
    }
    out.write_all(&(bytes.len() as u32).to_le_bytes())?;
    out.write_all(&bytes)?;
    out.flush()
}

/// The next frame, or `None` at a clean end of stream.
pub(crate) fn read_frame<T: DeserializeOwned>(input: &mut impl Read) -> io::Result<Option<T>> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds the {MAX_FRAME}-byte limit"),
        ));
    }
    let mut bytes = vec![0u8; len];
    input.read_exact(&mut bytes)?;
    postcard::from_bytes(&bytes)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Reads and drops bytes until [`MAGIC`] has gone by; `false` if the stream ended first.
pub(crate) fn skip_to_magic(input: &mut impl Read) -> io::Result<bool> {
    let mut matched = 0;
    let mut byte = [0u8; 1];
    while matched < MAGIC.len() {
        if input.read(&mut byte)? == 0 {
            return Ok(false);
        }
        matched = if byte[0] == MAGIC[matched] {
            matched + 1
        } else if byte[0] == MAGIC[0] {
            1
        } else {
            0
        };
    }
    Ok(true)
}
