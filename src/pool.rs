//! The bounded worker pool for CPU-heavy image work, with memory-aware admission.
//!
//! A job passes three gates. First [`Pool::admit`]: at most `workers + fetch_ahead` jobs are
//! *admitted* at once (the original is fetched before admission, under the fetcher's own caps
//! `source.max_concurrent_fetches` and `max_per_host`, so a slow origin never holds a place
//! here); at most `queue` more wait to be admitted
//! (first come, first served, holding nothing but the request), and a job that finds the queue
//! full is refused at once with [`PoolError::Overloaded`] (the server answers 503), so load
//! beyond capacity costs nothing. Then [`Admission::run`] waits for memory: each job says how
//! many bytes it will need at its peak (the pipeline estimates it from the header) and holds
//! that many MiB of the budget while it runs; a job larger than the whole budget is refused at
//! once ([`PoolError::TooLarge`], 413: it would otherwise have to run alone, with every other
//! job queued behind it), and a small job does not overtake a big one waiting for memory, so
//! big jobs are never starved. Last it waits for one of `workers` blocking threads (never the
//! async reactor). A job whose every waiter has gone is cancelled by its flight before it
//! starts; once running, it keeps what it holds until it finishes or passes
//! `limits.job_timeout_ms` (checked between stages).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("all workers are busy and the queue is full")]
    Overloaded,
    #[error("an image job panicked")]
    Panicked,
    #[error("this job needs about {needed_mib} MiB, more than the whole memory budget of {budget_mib} MiB")]
    TooLarge { needed_mib: u64, budget_mib: u32 },
}

#[derive(Debug)]
pub struct Pool {
    /// One permit per admitted job (`workers + fetch_ahead`).
    admitted: Arc<Semaphore>,
    slots: Arc<Semaphore>,
    /// One permit per MiB of the memory budget.
    memory: Arc<Semaphore>,
    memory_mib: u32,
    waiting: AtomicUsize,
    queue: usize,
    workers: usize,
}

/// A job's place among the admitted ones: taken before its original is fetched, given back
/// when its render has finished (or when it is dropped unused).
#[derive(Debug)]
pub struct Admission<'a> {
    pool: &'a Pool,
    permit: OwnedSemaphorePermit,
}

const MIB: u64 = 1 << 20;

/// Decrements the waiting count when a queued job stops waiting, however it stops.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Pool {
    /// A pool of `workers` threads whose jobs together hold at most `memory_bytes` (rounded
    /// up to whole MiB; at least 1 MiB), admitting `fetch_ahead` jobs beyond the running ones
    /// to fetch their originals while they wait.
    pub fn new(workers: usize, fetch_ahead: usize, queue: usize, memory_bytes: u64) -> Self {
        let workers = workers.max(1);
        let memory_mib = u32::try_from(memory_bytes.div_ceil(MIB))
            .unwrap_or(u32::MAX)
            .clamp(1, Semaphore::MAX_PERMITS as u32);
        let admitted = workers
            .saturating_add(fetch_ahead)
            .min(Semaphore::MAX_PERMITS);
        Pool {
            admitted: Arc::new(Semaphore::new(admitted)),
            slots: Arc::new(Semaphore::new(workers)),
            memory: Arc::new(Semaphore::new(memory_mib as usize)),
            memory_mib,
            waiting: AtomicUsize::new(0),
            queue,
            workers,
        }
    }

    /// Budget MiB a job of `bytes` claims: rounded up, at least 1; refused when it is more
    /// than the whole budget.
    fn claim(&self, bytes: u64) -> Result<u32, PoolError> {
        let needed_mib = bytes.div_ceil(MIB);
        match u32::try_from(needed_mib) {
            Ok(mib) if mib <= self.memory_mib => Ok(mib.max(1)),
            _ => Err(PoolError::TooLarge {
                needed_mib,
                budget_mib: self.memory_mib,
            }),
        }
    }

    /// MiB of the memory budget not held by running jobs.
    pub fn memory_free_mib(&self) -> usize {
        self.memory.available_permits()
    }

    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Jobs running on a worker thread now.
    pub fn busy(&self) -> usize {
        self.workers.saturating_sub(self.slots.available_permits())
    }

    /// Jobs currently waiting to be admitted.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Wait in the queue for a place among the admitted jobs; refused at once when the queue
    /// is full.
    pub async fn admit(&self) -> Result<Admission<'_>, PoolError> {
        let permit = match self.admitted.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.queue {
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                    return Err(PoolError::Overloaded);
                }
                let _waiting = Waiting(&self.waiting);
                // The semaphores are never closed, so this only fails if that invariant breaks.
                (self.admitted.clone().acquire_owned().await).map_err(|_| PoolError::Overloaded)?
            }
        };
        Ok(Admission { pool: self, permit })
    }

    /// Admit and run `job` (see [`Admission::run`]).
    pub async fn run<T, F>(&self, bytes: u64, job: F) -> Result<T, PoolError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.admit().await?.run(bytes, job).await
    }
}

impl Admission<'_> {
    /// Run `job`, which needs about `bytes` of memory at its peak, on a worker, once the
    /// budget can hold it and a worker is free. The waits here are bounded by the number of
    /// admitted jobs, so they are not counted against the queue.
    pub async fn run<T, F>(self, bytes: u64, job: F) -> Result<T, PoolError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool;
        let claim = pool.claim(bytes)?;
        // Memory first, then a worker: a worker is never held idle waiting for memory.
        let memory = (pool.memory.clone().acquire_many_owned(claim).await)
            .map_err(|_| PoolError::Overloaded)?;
        let slot = (pool.slots.clone().acquire_owned().await).map_err(|_| PoolError::Overloaded)?;
        let admitted = self.permit;
        tokio::task::spawn_blocking(move || {
            let _held = (slot, memory, admitted);
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
        let pool = Arc::new(Pool::new(1, 0, 1, 64 * MIB));
        let (release, gate) = mpsc::channel::<()>();
        let gate = Arc::new(std::sync::Mutex::new(gate));
        let g = gate.clone();
        let p = pool.clone();
        let running = tokio::spawn(async move {
            p.run(0, move || {
                g.lock().map(|rx| rx.recv().is_ok()).unwrap_or(false)
            })
            .await
        });
        // Wait until the first job holds the only worker.
        while pool.slots.available_permits() > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let p = pool.clone();
        let queued = tokio::spawn(async move { p.run(0, || 2).await });
        while pool.waiting() == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(pool.run(0, || 3).await, Err(PoolError::Overloaded));
        release.send(()).unwrap();
        assert_eq!(running.await.unwrap(), Ok(true));
        assert_eq!(queued.await.unwrap(), Ok(2));
        assert_eq!(pool.waiting(), 0);
        assert_eq!(pool.run(0, || 4).await, Ok(4));
    }

    #[tokio::test]
    async fn pool_panicking_job_is_an_error_and_frees_the_worker() {
        let pool = Pool::new(1, 0, 0, 64 * MIB);
        let r: Result<(), _> = pool.run(0, || panic!("boom")).await;
        assert_eq!(r, Err(PoolError::Panicked));
        assert_eq!(pool.run(0, || 1).await, Ok(1));
    }

    #[tokio::test]
    async fn pool_cancelled_waiter_leaves_the_queue() {
        let pool = Arc::new(Pool::new(1, 0, 1, 64 * MIB));
        let (release, gate) = mpsc::channel::<()>();
        let p = pool.clone();
        let running = tokio::spawn(async move { p.run(0, move || gate.recv().is_ok()).await });
        while pool.slots.available_permits() > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let p = pool.clone();
        let queued = tokio::spawn(async move { p.run(0, || ()).await });
        while pool.waiting() == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        queued.abort();
        let _ = queued.await;
        assert_eq!(pool.waiting(), 0);
        release.send(()).unwrap();
        assert_eq!(running.await.unwrap(), Ok(true));
    }

    #[tokio::test]
    async fn pool_jobs_wait_for_memory_even_with_idle_workers() {
        let pool = Arc::new(Pool::new(4, 0, 4, 100 * MIB));
        let (release, gate) = mpsc::channel::<()>();
        let p = pool.clone();
        // 70 MiB of 100 held: a second 70 MiB job must wait although 3 workers are idle.
        let big = tokio::spawn(async move { p.run(70 * MIB, move || gate.recv().is_ok()).await });
        while pool.memory_free_mib() > 30 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let p = pool.clone();
        let second = tokio::spawn(async move { p.run(70 * MIB, || 2).await });
        while pool.admitted.available_permits() > 2 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!second.is_finished(), "started without memory");
        release.send(()).unwrap();
        assert_eq!(big.await.unwrap(), Ok(true));
        assert_eq!(second.await.unwrap(), Ok(2));
        assert_eq!(pool.memory_free_mib(), 100);
    }

    #[tokio::test]
    async fn pool_admits_workers_plus_fetch_ahead_then_queues_then_refuses() {
        let pool = Arc::new(Pool::new(1, 1, 1, 64 * MIB));
        let first = pool.admit().await.unwrap();
        let second = pool.admit().await.unwrap();
        let p = pool.clone();
        let third = tokio::spawn(async move { p.admit().await.map(|_| ()) });
        while pool.waiting() == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(pool.admit().await.map(|_| ()), Err(PoolError::Overloaded));
        // An admission given back unused (the fetch failed) lets the next one in.
        drop(first);
        assert_eq!(third.await.unwrap(), Ok(()));
        assert_eq!(second.run(0, || 7).await, Ok(7));
        assert_eq!(pool.waiting(), 0);
        assert_eq!(pool.admitted.available_permits(), 2);
    }

    #[tokio::test]
    async fn pool_job_larger_than_the_budget_is_refused_at_once() {
        let pool = Pool::new(2, 0, 0, 10 * MIB);
        assert!(matches!(
            pool.claim(u64::MAX),
            Err(PoolError::TooLarge { .. })
        ));
        assert_eq!(pool.claim(0), Ok(1));
        assert_eq!(pool.claim(10 * MIB), Ok(10));
        assert_eq!(
            pool.run(11 * MIB, || 5).await,
            Err(PoolError::TooLarge {
                needed_mib: 11,
                budget_mib: 10
            })
        );
        assert_eq!(pool.memory_free_mib(), 10);
        assert_eq!(pool.run(10 * MIB, || 6).await, Ok(6));
    }
}
