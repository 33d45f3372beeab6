// A deliberately simple reference executor for the core's own tests: a fixed set of threads
// around a `Mutex<VecDeque>` + `Condvar`, built only on the public executor-author API
// (`Promise`). The real thread backend lives in `backend-threads`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::thread::JoinHandle;

use executor_core::{
    Batch, Executor, FutureHandle, InlineJob, PoolId, Promise, RejectReason, Shutdown,
    ShutdownOptions, SubmitError, Task,
};
use parking_lot::{Condvar, Mutex};

/// A queued task: the worker runs it, a waiting worker may run it inline (rule K2), or
/// shutdown cancels it. Whoever takes it first wins.
trait Job: InlineJob {
    fn cancel(&self);
}

struct Queued<T: Task>(Mutex<Option<(Promise<T::Output>, T)>>);

impl<T: Task> InlineJob for Queued<T> {
    fn run_inline(&self) {
        let taken = self.0.lock().take();
        if let Some((promise, task)) = taken {
            promise.run(task);
        }
    }
}

impl<T: Task> Job for Queued<T> {
    fn cancel(&self) {
        let taken = self.0.lock().take();
        if let Some((promise, _task)) = taken {
            promise.cancel();
        }
    }
}

struct Queue {
    jobs: VecDeque<Arc<dyn Job>>,
    shut: bool,
}

struct Inner {
    id: PoolId,
    queue: Mutex<Queue>,
    ready: Condvar,
}

/// A fixed-size FIFO thread pool on the executor-author API, for docs and tests.
pub struct ReferencePool {
    inner: Arc<Inner>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl ReferencePool {
    /// A pool of `max_workers` threads, all started now.
    pub fn new(max_workers: usize) -> Self {
        let inner = Arc::new(Inner {
            id: PoolId::new(),
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                shut: false,
            }),
            ready: Condvar::new(),
        });
        let workers = (0..max_workers)
            .map(|_| {
                let inner = Arc::clone(&inner);
                std::thread::spawn(move || {
                    let _worker = executor_core::enter_worker(inner.id);
                    loop {
                        let job = {
                            let mut q = inner.queue.lock();
                            loop {
                                if let Some(job) = q.jobs.pop_front() {
                                    break job;
                                }
                                if q.shut {
                                    return;
                                }
                                inner.ready.wait(&mut q);
                            }
                        };
                        job.run_inline();
                    }
                })
            })
            .collect();
        ReferencePool {
            inner,
            workers: Mutex::new(workers),
        }
    }
}

impl Shutdown for ReferencePool {
    fn shutdown(&self, options: ShutdownOptions) {
        let cancelled = {
            let mut q = self.inner.queue.lock();
            q.shut = true;
            if options.cancel_futures {
                std::mem::take(&mut q.jobs)
            } else {
                VecDeque::new()
            }
        };
        for job in cancelled {
            job.cancel();
        }
        self.inner.ready.notify_all();
        if options.wait {
            for worker in std::mem::take(&mut *self.workers.lock()) {
                worker.join().expect("a reference worker panicked");
            }
        }
    }
}

impl Drop for ReferencePool {
    fn drop(&mut self) {
        self.shutdown(ShutdownOptions::wait());
    }
}

impl<T: Task> Executor<T> for ReferencePool {
    fn submit(&self, task: T) -> Result<FutureHandle<T::Output>, SubmitError<T>> {
        let mut q = self.inner.queue.lock();
        if q.shut {
            return Err(SubmitError::new(RejectReason::Shutdown, task));
        }
        let (promise, future) = Promise::for_task(&task);
        let queued = Arc::new(Queued::<T>(Mutex::new(None)));
        let as_inline: Arc<dyn InlineJob> = queued.clone();
        promise.allow_inline(self.inner.id, Arc::downgrade(&as_inline));
        *queued.0.lock() = Some((promise, task));
        q.jobs.push_back(queued);
        drop(q);
        self.inner.ready.notify_one();
        Ok(future)
    }

    // Chunks of `map` run as one timed task, as every backend's do: `auto_chunksize` then
    // measures how long the tasks ran, not how long the probe took to come back (which, on a
    // loaded machine, once exceeded the 2 ms target and chose chunks of one).
    fn submit_batch(&self, tasks: Vec<T>) -> Result<Batch<T::Output>, SubmitError<Vec<T>>> {
        Batch::submit_chunk(self, tasks)
    }
}
