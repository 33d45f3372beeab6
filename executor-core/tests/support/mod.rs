//! A deliberately simple reference executor for the core's own tests: a fixed set of threads
//! around a `Mutex<VecDeque>` + `Condvar`, built only on the public executor-author API
//! (`Promise`). The real thread backend lives in `backend-threads`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::thread::JoinHandle;

use executor_core::{
    Executor, FutureHandle, Promise, RejectReason, Shutdown, ShutdownOptions, SubmitError, Task,
};
use parking_lot::{Condvar, Mutex};

/// A queued task: run it, or cancel its future.
type Job = Box<dyn FnOnce(bool) + Send>;

struct Queue {
    jobs: VecDeque<Job>,
    shut: bool,
}

struct Inner {
    queue: Mutex<Queue>,
    ready: Condvar,
}

pub struct ReferencePool {
    inner: Arc<Inner>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl ReferencePool {
    pub fn new(max_workers: usize) -> Self {
        let inner = Arc::new(Inner {
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
                        job(true);
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
            job(false);
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

impl<T: Task> Executor<T> for ReferencePool
where
    T::Output: Sync,
{
    fn submit(&self, task: T) -> Result<FutureHandle<T::Output>, SubmitError<T>> {
        let mut q = self.inner.queue.lock();
        if q.shut {
            return Err(SubmitError::new(RejectReason::Shutdown, task));
        }
        let (promise, future) = Promise::for_task(&task);
        q.jobs.push_back(Box::new(move |run| {
            if run {
                promise.run(task);
            } else {
                promise.cancel();
            }
        }));
        drop(q);
        self.inner.ready.notify_one();
        Ok(future)
    }
}
