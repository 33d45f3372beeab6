//! What crosses the pipes: length-prefixed frames, at most [`MAX_FRAME`] bytes each. A frame is
//! a postcard header, then (for requests and responses) a payload that is one postcard value
//! (postcard's wire format, written and read by [`crate::codec`]).
//!
//! ```text
//! parent → worker: Request  { id, task, quiet, hold } + payload: the chunk's tasks, one Vec<T>
//!                  Revoke   { id }             (withdraw a request the worker has not started)
//! worker → parent: Started  { id }             (the worker took the request from its queue;
//!                                               not for a quiet one: see `page`)
//!                  Response { id, nanos } + payload: one Vec<Result<Output, WireError>>, item by item
//!                  Revoked  { id, revoked }    (true: removed from the queue, it never runs)
//! ```
//!
//! A single task is a chunk of one. A worker first writes [`MAGIC`] on its protocol stream; the
//! parent skips anything before it (a test harness prints a line before it runs the worker).
//!
//! Payloads are encoded item by item into one buffer ([`OutcomeWriter`], [`Items`]), in exactly
//! postcard's encoding of a `Vec`, so that one item that fails to encode or decode fails only its
//! own slot (rule H4) while the chunk still costs one buffer each way.

use std::cell::RefCell;
use std::fmt;
use std::io::{self, Read, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};

use executor_core::panic_message;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::codec;

/// The largest frame either side accepts (a chunk of tasks or of results).
pub(crate) const MAX_FRAME: usize = 256 * 1024 * 1024;

/// The buffer on each end of each pipe: a pipe's own capacity, so that a frame of up to this size
/// (a chunk of a few thousand small tasks) leaves in one `write` and wakes the reader once. With
/// `std`'s 8 KiB default, such a frame went out as a few-byte header write and then the payload,
/// and the other side woke up for each.
pub(crate) const PIPE_BUFFER: usize = 64 * 1024;

/// Written by a worker before its first frame.
pub(crate) const MAGIC: &[u8] = b"\0backend-process/1\0";

/// A frame's header, parent → worker.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToWorker<'a> {
    /// Run the chunk in the payload with the task registered as `task`. A `quiet` request (a
    /// chunk of `map`) gets no `Started` frame (the worker records its start in its
    /// [start page](crate::page) only); with `hold`, its response may wait for the next ones to
    /// go out in one write (at most [`HOLD`](crate::worker::HOLD)).
    Request {
        id: u64,
        task: &'a str,
        quiet: bool,
        hold: bool,
    },
    /// Withdraw request `id` if it has not started.
    Revoke { id: u64 },
    /// Give back up to `count` chunks of `map` not started, the last ones queued: another
    /// worker has run out of work (see `Sched::steal_for`).
    Withdraw { count: u32 },
}

/// A frame's header, worker → parent.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToParent {
    /// Request `id` has left the worker's queue and runs now.
    Started { id: u64 },
    /// Request `id` is done, after running for `nanos` ns; the payload holds one outcome per
    /// item.
    Response { id: u64, nanos: u64 },
    /// The answer to a [`ToWorker::Revoke`].
    Revoked { id: u64, revoked: bool },
    /// The answer to a [`ToWorker::Withdraw`]: the requests given back, in the order they were
    /// sent (none, if the worker had started them all), and how many request frames it had
    /// read (requests written after the `Withdraw` were not there to give).
    Withdrawn { ids: Vec<u64>, read: u64 },
}

/// A task's failure, as it crosses back to the parent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct WireError {
    pub(crate) panic: bool,
    pub(crate) message: String,
    pub(crate) backtrace: Option<String>,
}

impl WireError {
    pub(crate) fn msg(message: String) -> Self {
        WireError {
            panic: false,
            message,
            backtrace: None,
        }
    }
}

pub(crate) fn too_large(len: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("frame of {len} bytes exceeds the {MAX_FRAME}-byte limit"),
    )
}

/// Writes one frame (header, then payload) into `out`, without flushing.
pub(crate) fn write_frame<H: Serialize>(
    out: &mut impl Write,
    header: &H,
    payload: &[u8],
) -> io::Result<()> {
    thread_local! {
        /// Where each thread encodes its frames' length and header (a few bytes each).
        static START: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    START.with_borrow_mut(|start| {
        start.clear();
        start.extend_from_slice(&[0; LEN_PREFIX]);
        append(header, start).map_err(io::Error::other)?;
        let len = start.len() - LEN_PREFIX + payload.len();
        if len > MAX_FRAME {
            return Err(too_large(len));
        }
        start[..LEN_PREFIX].copy_from_slice(&(len as u32).to_le_bytes());
        out.write_all(start)
    })?;
    out.write_all(payload)
}

/// The bytes of a frame's length prefix.
pub(crate) const LEN_PREFIX: usize = 4;

/// The length of the frame that `bytes` begins with (after its prefix), once its length prefix
/// is there.
pub(crate) fn frame_len(bytes: &[u8]) -> Option<usize> {
    let prefix: [u8; LEN_PREFIX] = bytes.get(..LEN_PREFIX)?.try_into().ok()?;
    Some(u32::from_le_bytes(prefix) as usize)
}

/// Reads the next frame into `frame` (replacing its contents); `false` at a clean end of stream.
pub(crate) fn read_frame(input: &mut impl Read, frame: &mut Vec<u8>) -> io::Result<bool> {
    let mut prefix = [0u8; LEN_PREFIX];
    match input.read_exact(&mut prefix) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(e) => return Err(e),
    }
    let len = frame_len(&prefix).expect("a whole prefix");
    if len > MAX_FRAME {
        return Err(too_large(len));
    }
    frame.clear();
    frame.resize(len, 0);
    input.read_exact(frame)?;
    Ok(true)
}

/// Splits a frame into its header and payload.
pub(crate) fn split<'a, H: Deserialize<'a>>(frame: &'a [u8]) -> io::Result<(H, &'a [u8])> {
    codec::take_from_bytes(frame).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
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

pub(crate) use crate::codec::append;

/// Why a value could not be encoded: its `Serialize` failed or panicked.
#[derive(Debug)]
pub(crate) enum EncodeError {
    Failed(codec::Error),
    Panicked(String),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::Failed(e) => e.fmt(f),
            EncodeError::Panicked(message) => write!(f, "its `Serialize` panicked: {message}"),
        }
    }
}

/// Runs the user's serde code (a `Serialize` or `Deserialize` impl) with a panic caught: it fails
/// one value, never the thread that happens to run it (a pool's reader, a worker).
#[inline]
pub(crate) fn guard<R>(serde: impl FnOnce() -> R) -> Result<R, String> {
    catch_unwind(AssertUnwindSafe(serde)).map_err(|payload| panic_message(&*payload))
}

/// [`append`], with a panic in the value's `Serialize` caught (the user's code: it fails only
/// this value, and `out` is left as it was).
#[inline]
pub(crate) fn append_guarded<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let mark = out.len();
    match guard(|| append(value, out)) {
        Ok(done) => done.map_err(EncodeError::Failed),
        Err(message) => {
            out.truncate(mark);
            Err(EncodeError::Panicked(message))
        }
    }
}

/// What [`encode_items`] allocates before it knows an item's size: the count and a small item.
const FIRST_ITEM_ROOM: usize = 64;

/// The spare capacity the codec needs to store a varint (it writes a whole `u64` word, then
/// keeps the varint's bytes).
const VARINT_STORE: usize = 8;

/// Encodes a chunk of values as one postcard `Vec<T>`, item by item: the values that fail to
/// serialize (an error or a panic) are left out and reported by index, so that they fail only
/// their own slot. Returns the payload and how many values it holds.
pub(crate) fn encode_items<T: Serialize>(
    items: &[T],
) -> (Vec<u8>, usize, Vec<(usize, EncodeError)>) {
    // Written for the common case, where every item serializes: the count first, then the
    // items, in one buffer sized from the first item; rewritten only if some item fails.
    let mut payload = Vec::with_capacity(FIRST_ITEM_ROOM);
    // Cannot fail: a u64 always serializes.
    let _ = append(&(items.len() as u64), &mut payload);
    let header = payload.len();
    let mut failed = Vec::new();
    for (index, item) in items.iter().enumerate() {
        if let Err(e) = append_guarded(item, &mut payload) {
            failed.push((index, e));
        }
        if index == 0 {
            // Room for the others at the first one's size, and for the codec's one-word varint
            // store at the very end: without it the last item of a chunk of same-sized items
            // made the buffer double (and copy itself).
            let first = payload.len() - header;
            let rest = first.saturating_mul(items.len() - 1);
            payload.reserve(rest.saturating_add(VARINT_STORE).min(MAX_FRAME));
        }
    }
    let count = items.len() - failed.len();
    if !failed.is_empty() {
        let mut exact = Vec::with_capacity(payload.len());
        let _ = append(&(count as u64), &mut exact);
        exact.extend_from_slice(&payload[header..]);
        payload = exact;
    }
    (payload, count, failed)
}

/// postcard's variant indices of `Result` (one-byte varints).
const OK: u8 = 0;
const ERR: u8 = 1;

/// Writes a payload of outcomes, item by item, into a buffer: postcard's encoding of a
/// `Vec<Result<O, WireError>>`, with an item whose value cannot be serialized replaced by its
/// error.
pub(crate) struct OutcomeWriter<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> OutcomeWriter<'a> {
    /// Starts a payload of `count` outcomes in `out` (cleared first).
    pub(crate) fn new(out: &'a mut Vec<u8>, count: usize) -> Self {
        out.clear();
        let _ = append(&(count as u64), out);
        OutcomeWriter { out }
    }

    /// Appends a value; if its `Serialize` fails, nothing is appended and the error comes back.
    /// A panic in it is the caller's to catch (then [`truncate`](OutcomeWriter::truncate) to
    /// the [`len`](OutcomeWriter::len) from before the call).
    #[inline]
    pub(crate) fn value<O: Serialize>(&mut self, value: &O) -> codec::Result<()> {
        // postcard's `Ok(value)`: the variant index (a one-byte varint), then the value; written
        // by hand because serde's generic `Result` impl does not inline.
        let mark = self.out.len();
        self.out.push(OK);
        append(value, self.out).inspect_err(|_| self.out.truncate(mark))
    }

    /// The bytes written so far.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.out.len()
    }

    /// Drops what was written after the first `len` bytes (an item whose outcome panicked
    /// while it was written).
    pub(crate) fn truncate(&mut self, len: usize) {
        self.out.truncate(len);
    }

    /// Appends a failure.
    pub(crate) fn error(&mut self, error: &WireError) {
        // Cannot fail: a `WireError` always serializes.
        let _ = append(&Err::<(), &WireError>(error), self.out);
    }
}

/// Reads a payload written as a postcard `Vec<T>` item by item. An item that fails to decode
/// ends the reading (the items after it cannot be found); the caller fails the rest.
pub(crate) struct Items<'a> {
    rest: &'a [u8],
    count: usize,
}

impl<'a> Items<'a> {
    /// The payload's item count, and a reader for the items.
    pub(crate) fn new(payload: &'a [u8]) -> codec::Result<Self> {
        let (count, rest) = codec::take_from_bytes::<u64>(payload)?;
        // Every item takes at least... nothing (a unit struct): bound the count by the frame
        // limit so that a corrupt count cannot make us loop for ever.
        if count > MAX_FRAME as u64 {
            return Err(codec::ErrorKind::BadVarint.into());
        }
        Ok(Items {
            rest,
            count: count as usize,
        })
    }

    /// Reads on from `rest`, which holds `count` more items.
    #[inline]
    pub(crate) fn resume(rest: &'a [u8], count: usize) -> Self {
        Items { rest, count }
    }

    /// What is left to read.
    #[inline]
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// How many items the payload says it holds.
    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// The next item.
    #[inline]
    pub(crate) fn next<T: DeserializeOwned>(&mut self) -> codec::Result<T> {
        let (item, rest) = codec::take_from_bytes::<T>(self.rest)?;
        self.rest = rest;
        Ok(item)
    }

    /// The next item of a payload of outcomes: postcard's `Result<O, WireError>`, read by hand
    /// (serde's generic `Result` impl does not inline, and this runs once per item).
    #[inline]
    pub(crate) fn next_outcome<O: DeserializeOwned>(
        &mut self,
    ) -> codec::Result<Result<O, WireError>> {
        match self.rest.split_first() {
            Some((&OK, rest)) => {
                self.rest = rest;
                self.next().map(Ok)
            }
            Some((&ERR, rest)) => {
                self.rest = rest;
                self.next().map(Err)
            }
            _ => Err(codec::ErrorKind::BadEnum.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_of_same_sized_items_is_encoded_without_growing_its_buffer_again() {
        // 256 three-byte varints: the room reserved after the first item holds the rest,
        // including the codec's one-word store of the last one (it used to double the buffer).
        let items: Vec<u64> = (1_000_000..1_000_256).collect();
        let (payload, count, _) = encode_items(&items);
        assert_eq!((count, payload.len()), (256, 2 + 256 * 3));
        assert!(
            payload.capacity() <= payload.len() + VARINT_STORE,
            "capacity {} for {} bytes",
            payload.capacity(),
            payload.len()
        );
        assert_eq!(postcard::from_bytes::<Vec<u64>>(&payload).unwrap(), items);
    }

    #[test]
    fn a_chunk_is_one_postcard_vec_each_way() {
        let (payload, count, failed) = encode_items(&[1u32, 300, 7]);
        assert_eq!((count, failed.len()), (3, 0));
        assert_eq!(
            postcard::from_bytes::<Vec<u32>>(&payload).unwrap(),
            [1, 300, 7]
        );

        let mut buf = Vec::new();
        let mut w = OutcomeWriter::new(&mut buf, 2);
        w.value(&"a").unwrap();
        w.error(&WireError::msg("no".into()));
        let back: Vec<Result<String, WireError>> = postcard::from_bytes(&buf).unwrap();
        assert_eq!(back[0].as_deref().unwrap(), "a");
        assert_eq!(back[1].as_ref().unwrap_err().message, "no");
        let mut outcomes = Items::new(&buf).unwrap();
        assert_eq!(outcomes.next_outcome::<String>().unwrap().unwrap(), "a");
        assert_eq!(
            outcomes
                .next_outcome::<String>()
                .unwrap()
                .unwrap_err()
                .message,
            "no"
        );
        assert!(
            outcomes.next_outcome::<String>().is_err(),
            "read past the end"
        );

        let mut items = Items::new(&payload).unwrap();
        assert_eq!(items.count(), 3);
        assert_eq!(items.next::<u32>().unwrap(), 1);
        assert_eq!(items.next::<u32>().unwrap(), 300);
    }

    #[test]
    fn frames_round_trip_with_their_payload() {
        let mut pipe = Vec::new();
        write_frame(
            &mut pipe,
            &ToWorker::Request {
                id: 9,
                task: "t",
                quiet: true,
                hold: false,
            },
            b"xyz",
        )
        .unwrap();
        write_frame(&mut pipe, &ToWorker::Revoke { id: 9 }, &[]).unwrap();
        let mut input = &pipe[..];
        let mut frame = Vec::new();
        assert!(read_frame(&mut input, &mut frame).unwrap());
        let (header, payload) = split::<ToWorker<'_>>(&frame).unwrap();
        assert!(matches!(
            header,
            ToWorker::Request {
                id: 9,
                task: "t",
                quiet: true,
                hold: false
            }
        ));
        assert_eq!(payload, b"xyz");
        assert!(read_frame(&mut input, &mut frame).unwrap());
        assert!(matches!(
            split::<ToWorker<'_>>(&frame).unwrap().0,
            ToWorker::Revoke { id: 9 }
        ));
        assert!(!read_frame(&mut input, &mut frame).unwrap());
    }
}
