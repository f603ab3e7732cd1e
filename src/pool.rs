//! The bounded worker pool for CPU-heavy image work.
//!
//! At most `workers` jobs run at once, each on a blocking thread (never on the async reactor);
//! at most `queue` more wait for a slot. A job that finds the queue full is refused at once with
//! [`PoolError::Overloaded`] (the server answers 503), so load beyond capacity costs nothing.
//! A job keeps its slot until it finishes, even if the request that asked for it has gone.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Semaphore;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("all workers are busy and the queue is full")]
    Overloaded,
    #[error("an image job panicked")]
    Panicked,
}

#[derive(Debug)]
pub struct Pool {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    queue: usize,
    workers: usize,
}

/// Decrements the waiting count when a queued job stops waiting, however it stops.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Pool {
    pub fn new(workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        Pool {
            slots: Arc::new(Semaphore::new(workers)),
            waiting: AtomicUsize::new(0),
            queue,
            workers,
        }
    }

    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Jobs currently waiting for a worker.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Run `job` on a worker, waiting in the queue if all are busy.
    pub async fn run<T, F>(&self, job: F) -> Result<T, PoolError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let slot = match self.slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.queue {
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                    return Err(PoolError::Overloaded);
                }
                let _waiting = Waiting(&self.waiting);
                // The semaphore is never closed, so this only fails if that invariant breaks.
                self.slots
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| PoolError::Overloaded)?
            }
        };
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            job()
        })
        .await
        .map_err(|_| PoolError::Panicked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[tokio::test]
    async fn pool_full_queue_refuses_at_once() {
        let pool = Arc::new(Pool::new(1, 1));
        let (release, gate) = mpsc::channel::<()>();
        let gate = Arc::new(std::sync::Mutex::new(gate));
        let g = gate.clone();
        let p = pool.clone();
        let running = tokio::spawn(async move {
            p.run(move || g.lock().map(|rx| rx.recv().is_ok()).unwrap_or(false))
                .await
        });
        // Wait until the first job holds the only worker.
        while pool.slots.available_permits() > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let p = pool.clone();
        let queued = tokio::spawn(async move { p.run(|| 2).await });
        while pool.waiting() == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(pool.run(|| 3).await, Err(PoolError::Overloaded));
        release.send(()).unwrap();
        assert_eq!(running.await.unwrap(), Ok(true));
        assert_eq!(queued.await.unwrap(), Ok(2));
        assert_eq!(pool.waiting(), 0);
        assert_eq!(pool.run(|| 4).await, Ok(4));
    }

    #[tokio::test]
    async fn pool_panicking_job_is_an_error_and_frees_the_worker() {
        let pool = Pool::new(1, 0);
        let r: Result<(), _> = pool.run(|| panic!("boom")).await;
        assert_eq!(r, Err(PoolError::Panicked));
        assert_eq!(pool.run(|| 1).await, Ok(1));
    }

    #[tokio::test]
    async fn pool_cancelled_waiter_leaves_the_queue() {
        let pool = Arc::new(Pool::new(1, 1));
        let (release, gate) = mpsc::channel::<()>();
        let p = pool.clone();
        let running = tokio::spawn(async move { p.run(move || gate.recv().is_ok()).await });
        while pool.slots.available_permits() > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let p = pool.clone();
        let queued = tokio::spawn(async move { p.run(|| ()).await });
        while pool.waiting() == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        queued.abort();
        let _ = queued.await;
        assert_eq!(pool.waiting(), 0);
        release.send(()).unwrap();
        assert_eq!(running.await.unwrap(), Ok(true));
    }
}
