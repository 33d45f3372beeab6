//! `map` on the thread pool (rules H1, H2, H4, H5, H6, H7): `chunksize` really batches items
//! into one queue entry, results come back in input order with failures in their own slots,
//! `buffersize` bounds the chunks submitted ahead of the reader, and dropping the iterator cancels
//! the chunks that have not started.
//!
//! Queue entries are observed through `stats()`: `queued` while the worker is held, and
//! `completed`, which counts the queue entries the workers ran.

// Each test file is its own crate and uses only part of the shared helpers.
#[allow(dead_code)]
mod support;

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use backend_threads::ThreadPoolExecutor;
use executor_core::{Executor, Introspect, MapError, MapOptions, Shutdown, ShutdownOptions};
use support::{LIMIT, Latch};

/// Holds the single worker of `pool` until the returned latch opens.
fn hold_worker(pool: &ThreadPoolExecutor) -> (Arc<Latch>, executor_core::FutureHandle<()>) {
    let latch = Latch::new();
    let held = {
        let latch = Arc::clone(&latch);
        pool.submit(move || latch.hold()).unwrap()
    };
    latch.wait_started(1);
    (latch, held)
}

/// With `chunksize = k` over `n` items the pool runs `ceil(n / k)` queue entries, and the results
/// are the items' own, in input order.
#[test]
fn chunksize_makes_one_queue_entry_per_chunk() {
    for (n, k) in [
        (10, 3),
        (12, 4),
        (1, 5),
        (7, 1),
        (100, 7),
        (64, 64),
        (65, 64),
    ] {
        let pool = ThreadPoolExecutor::new(2).unwrap();
        let results: Vec<usize> = pool
            .map(
                (0..n).map(|i| move || i * 3),
                MapOptions::new().chunksize(k),
            )
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(
            results,
            (0..n).map(|i| i * 3).collect::<Vec<_>>(),
            "n {n}, k {k}"
        );
        pool.shutdown(ShutdownOptions::wait());
        assert_eq!(
            pool.stats().completed,
            n.div_ceil(k) as u64,
            "{n} items in chunks of {k} should be {} queue entries",
            n.div_ceil(k)
        );
    }
}

/// Without `buffersize`, `map()` consumes the whole input and queues every chunk before it
/// returns (H2): with the only worker held, the queue holds exactly `ceil(n / k)` entries.
#[test]
fn map_without_buffersize_queues_every_chunk_up_front() {
    let pool = ThreadPoolExecutor::new(1).unwrap();
    let (latch, held) = hold_worker(&pool);
    let _open = latch.opener();
    let ran = Arc::new(AtomicUsize::new(0));
    let tasks = (0..10u32).map(|i| {
        let ran = Arc::clone(&ran);
        move || {
            ran.fetch_add(1, Ordering::SeqCst);
            i
        }
    });
    let results = pool.map(tasks, MapOptions::new().chunksize(3)).unwrap();
    assert_eq!(pool.stats().queued, 4, "10 items in chunks of 3");
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    latch.open();
    held.result(Some(LIMIT)).unwrap();
    let values: Vec<u32> = results.map(|r| r.unwrap()).collect();
    assert_eq!(values, (0..10).collect::<Vec<_>>());
    assert_eq!(ran.load(Ordering::SeqCst), 10);
    pool.shutdown(ShutdownOptions::wait());
    assert_eq!(pool.stats().completed, 1 + 4);
}

/// `submit_batch` is one queue entry, whatever its length.
#[test]
fn submit_batch_is_one_queue_entry() {
    let pool = ThreadPoolExecutor::new(1).unwrap();
    let (latch, held) = hold_worker(&pool);
    let _open = latch.opener();
    let batch = pool
        .submit_batch((0..50u32).map(|i| move || i).collect())
        .unwrap();
    assert_eq!(batch.len(), 50);
    assert_eq!(pool.stats().queued, 1);
    latch.open();
    held.result(Some(LIMIT)).unwrap();
    pool.shutdown(ShutdownOptions::wait());
    assert_eq!(pool.stats().completed, 2);
}

/// Results come back in input order even when every later chunk finishes before the first one:
/// the first item waits (on the pool's other worker) until all the other items have run.
#[test]
fn results_in_input_order_when_later_chunks_finish_first() {
    const N: usize = 20;
    const K: usize = 4;
    let pool = ThreadPoolExecutor::new(2).unwrap();
    let others = Arc::new((Mutex::new(0usize), Condvar::new()));
    let tasks: Vec<Box<dyn FnOnce() -> (usize, usize) + Send>> = (0..N)
        .map(|i| {
            let others = Arc::clone(&others);
            let task: Box<dyn FnOnce() -> (usize, usize) + Send> = if i == 0 {
                Box::new(move || {
                    let (count, changed) = &*others;
                    let deadline = Instant::now() + LIMIT;
                    let mut n = count.lock().unwrap();
                    while *n < N - K {
                        let left = deadline.saturating_duration_since(Instant::now());
                        assert!(!left.is_zero(), "the later chunks never ran");
                        n = changed.wait_timeout(n, left).unwrap().0;
                    }
                    (i, *n)
                })
            } else {
                Box::new(move || {
                    let (count, changed) = &*others;
                    let mut n = count.lock().unwrap();
                    if i >= K {
                        *n += 1;
                        changed.notify_all();
                    }
                    (i, *n)
                })
            };
            task
        })
        .collect();
    let results: Vec<(usize, usize)> = pool
        .map(tasks, MapOptions::new().chunksize(K))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    let order: Vec<usize> = results.iter().map(|r| r.0).collect();
    assert_eq!(order, (0..N).collect::<Vec<_>>());
    assert_eq!(
        results[0].1,
        N - K,
        "the first item should have finished after all later chunks"
    );
}

/// A failing item (panic or own error) is an error in its own slot; the rest of its chunk and
/// the other chunks still come back (H4).
#[test]
fn failures_stay_in_their_slots() {
    const N: usize = 23;
    for k in [1, 4, 5, N] {
        let pool = ThreadPoolExecutor::new(2).unwrap();
        let tasks = (0..N).map(|i| {
            executor_core::fallible(move || {
                if i % 5 == 2 {
                    panic!("item {i} panicked");
                }
                if i % 7 == 3 {
                    return Err(std::io::Error::other(format!("item {i} failed")));
                }
                Ok(i)
            })
        });
        let results: Vec<_> = pool
            .map(tasks, MapOptions::new().chunksize(k))
            .unwrap()
            .collect();
        assert_eq!(results.len(), N, "chunksize {k}");
        for (i, r) in results.iter().enumerate() {
            if i % 5 == 2 {
                let e = r.as_ref().unwrap_err().task_error().unwrap();
                assert!(e.is_panic(), "chunksize {k}, item {i}: {e:?}");
                assert!(e.message().contains(&format!("item {i} panicked")), "{e:?}");
            } else if i % 7 == 3 {
                let e = r.as_ref().unwrap_err().task_error().unwrap();
                assert!(e.is_error(), "chunksize {k}, item {i}: {e:?}");
                assert_eq!(e.message(), format!("item {i} failed"));
            } else {
                assert_eq!(r.as_ref().unwrap(), &i, "chunksize {k}, item {i}");
            }
        }
        pool.shutdown(ShutdownOptions::wait());
        assert_eq!(pool.stats().completed, N.div_ceil(k) as u64);
    }
}

/// `chunksize` and `buffersize` of 0 are errors at the call naming the field (H5, H7), and
/// nothing is submitted.
#[test]
fn zero_chunksize_or_buffersize_is_an_error_naming_the_field() {
    let pool = ThreadPoolExecutor::new(1).unwrap();
    let pulled = Cell::new(0);
    for (options, field) in [
        (MapOptions::new().chunksize(0), "chunksize"),
        (MapOptions::new().buffersize(0), "buffersize"),
        (MapOptions::new().chunksize(0).buffersize(3), "chunksize"),
    ] {
        let input = (0..3u8).map(|i| {
            pulled.set(pulled.get() + 1);
            move || i
        });
        match pool.map(input, options) {
            Err(e @ MapError::InvalidOption { .. }) => {
                let MapError::InvalidOption { field: f, .. } = &e else {
                    unreachable!()
                };
                assert_eq!(*f, field);
                assert!(e.to_string().contains(field), "{e}");
            }
            other => panic!("expected an error naming {field}, got {other:?}"),
        }
    }
    assert_eq!(pulled.get(), 0, "an invalid map consumed its input");
    pool.shutdown(ShutdownOptions::wait());
    assert_eq!(pool.stats().completed, 0);
}

/// With `buffersize = b` and `chunksize = k`, `map()` submits exactly `b` chunks (the worker is
/// held, so they are all still queued), the input is consumed lazily (it is endless here), and
/// at every step at most `b` chunks beyond the one being read have been pulled from the input.
#[test]
fn buffersize_bounds_outstanding_chunks() {
    const B: usize = 2;
    const K: usize = 3;
    let pool = ThreadPoolExecutor::new(1).unwrap();
    let (latch, held) = hold_worker(&pool);
    let _open = latch.opener();
    let pulled = Cell::new(0usize);
    let input = (0usize..).map(|i| {
        pulled.set(pulled.get() + 1);
        move || i
    });
    let mut results = pool
        .map(input, MapOptions::new().chunksize(K).buffersize(B))
        .unwrap();
    assert_eq!(pulled.get(), B * K, "map() should submit exactly B chunks");
    assert_eq!(pool.stats().queued, B, "B chunks should be queued");
    latch.open();
    held.result(Some(LIMIT)).unwrap();

    for read in 0..30 {
        let value = results.next().unwrap().unwrap();
        assert_eq!(value, read);
        let chunks_read = read / K + 1;
        assert!(
            pulled.get() <= (chunks_read + B) * K,
            "after {} items, {} were pulled (bound {})",
            read + 1,
            pulled.get(),
            (chunks_read + B) * K
        );
        assert!(pulled.get() > read);
    }
    drop(results);
    pool.shutdown(ShutdownOptions::wait());
    // Never more than B + 1 chunks beyond the 10 read were ever submitted.
    let submitted_chunks = pulled.get() / K;
    assert!(submitted_chunks <= 10 + B, "{submitted_chunks} chunks");
}

/// Dropping the iterator without advancing it cancels every chunk not yet started (H6): none of
/// their items runs.
#[test]
fn dropping_the_iterator_cancels_unstarted_chunks() {
    let pool = ThreadPoolExecutor::new(1).unwrap();
    let (latch, held) = hold_worker(&pool);
    let _open = latch.opener();
    let ran = Arc::new(AtomicUsize::new(0));
    let tasks = (0..12u32).map(|i| {
        let ran = Arc::clone(&ran);
        move || {
            ran.fetch_add(1, Ordering::SeqCst);
            i
        }
    });
    let results = pool.map(tasks, MapOptions::new().chunksize(3)).unwrap();
    assert_eq!(pool.stats().queued, 4);
    drop(results);
    latch.open();
    held.result(Some(LIMIT)).unwrap();
    pool.shutdown(ShutdownOptions::wait());
    assert_eq!(ran.load(Ordering::SeqCst), 0, "a cancelled chunk ran");
}

/// Dropping an advanced iterator cancels only what has not started: the chunk already read and
/// the chunk running keep their items; the queued chunks never run; a buffered map stops pulling.
#[test]
fn dropping_an_advanced_iterator_cancels_only_unstarted_chunks() {
    for buffered in [false, true] {
        let pool = ThreadPoolExecutor::new(1).unwrap();
        let latch = Latch::new();
        let _open = latch.opener();
        let ran = Arc::new(Mutex::new(Vec::new()));
        let pulled = Cell::new(0usize);
        let tasks = (0..12usize).map(|i| {
            pulled.set(pulled.get() + 1);
            let ran = Arc::clone(&ran);
            let latch = Arc::clone(&latch);
            move || {
                // The first item of the second chunk holds the worker.
                if i == 3 {
                    latch.hold();
                }
                ran.lock().unwrap().push(i);
                i
            }
        });
        let options = if buffered {
            MapOptions::new().chunksize(3).buffersize(3)
        } else {
            MapOptions::new().chunksize(3)
        };
        let mut results = pool.map(tasks, options).unwrap();
        assert_eq!(results.next().unwrap().unwrap(), 0);
        latch.wait_started(1);
        let pulled_before_drop = pulled.get();
        drop(results);
        assert_eq!(pulled.get(), pulled_before_drop, "drop pulled more input");
        latch.open();
        pool.shutdown(ShutdownOptions::wait());
        let mut ran = ran.lock().unwrap().clone();
        ran.sort_unstable();
        assert_eq!(
            ran,
            (0..6).collect::<Vec<_>>(),
            "buffered {buffered}: only chunks 0 and 1 (running at the drop) should have run"
        );
    }
}
