//! Single flight: concurrent requests for the same key share one computation.
//!
//! The first caller (the leader) spawns the work as its own task; everyone, leader included,
//! awaits a shared handle to it and gets a clone of the same result, success or error. The
//! flight counts its waiters: when the last one goes away (its client disconnected, its
//! HTTP/2 stream was reset) the work is cancelled, so abandoned requests give back their
//! place in the queue and their fetch. Work that must finish without a client (background
//! AVIF, warming) keeps a waiter of its own: it runs in a spawned task that awaits the flight.
//! The key is removed from the map when the work ends, after the work itself has stored its
//! result, so a caller arriving later finds the cache filled rather than a second flight.
//! Errors are not kept.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use futures_util::future::{BoxFuture, FutureExt, Shared};
use tokio::task::AbortHandle;

struct Flight<V> {
    result: Shared<BoxFuture<'static, Option<V>>>,
    /// Callers awaiting `result`; changed only under the map's lock.
    waiters: Arc<Mutex<usize>>,
    abort: AbortHandle,
}

type Running<K, V> = Arc<Mutex<HashMap<K, Flight<V>>>>;

pub struct Flights<K, V> {
    running: Running<K, V>,
}

impl<K, V> Default for Flights<K, V> {
    fn default() -> Self {
        Flights {
            running: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}

/// Whether this caller started the work or joined one already running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower,
}

/// One caller's share of a flight: dropping the last one cancels the work.
struct Waiter<K: Eq + Hash, V> {
    running: Running<K, V>,
    key: K,
    waiters: Arc<Mutex<usize>>,
}

impl<K: Eq + Hash, V> Drop for Waiter<K, V> {
    fn drop(&mut self) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let mut n = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        *n = n.saturating_sub(1);
        if *n > 0 {
            return;
        }
        // Only this flight's entry: the key may already belong to a newer one.
        let ours = running
            .get(&self.key)
            .is_some_and(|f| Arc::ptr_eq(&f.waiters, &self.waiters));
        if ours {
            if let Some(flight) = running.remove(&self.key) {
                flight.abort.abort();
            }
        }
    }
}

impl<K, V> Flights<K, V>
where
    K: Eq + Hash + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Run `work` for `key` unless it is already running; `None` only if the work panicked
    /// (or was cancelled, which needs every waiter gone, so no caller sees it).
    pub async fn run<F>(&self, key: K, work: F) -> (Option<V>, Role)
    where
        F: Future<Output = V> + Send + 'static,
    {
        let (result, waiter, role) = {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            let role = if running.contains_key(&key) {
                Role::Follower
            } else {
                let map = self.running.clone();
                let k = key.clone();
                let waiters = Arc::new(Mutex::new(0));
                let w = waiters.clone();
                let task = tokio::spawn(async move {
                    let value = work.await;
                    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
                    if map.get(&k).is_some_and(|f| Arc::ptr_eq(&f.waiters, &w)) {
                        map.remove(&k);
                    }
                    value
                });
                let abort = task.abort_handle();
                let map = self.running.clone();
                let (k, w) = (key.clone(), waiters.clone());
                let result = async move {
                    match task.await {
                        Ok(value) => Some(value),
                        Err(_) => {
                            // The work panicked (or was cancelled) before removing its key.
                            let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
                            if map.get(&k).is_some_and(|f| Arc::ptr_eq(&f.waiters, &w)) {
                                map.remove(&k);
                            }
                            None
                        }
                    }
                }
                .boxed()
                .shared();
                running.insert(
                    key.clone(),
                    Flight {
                        result,
                        waiters,
                        abort,
                    },
                );
                Role::Leader
            };
            let Some(flight) = running.get(&key) else {
                return (None, role);
            };
            *flight.waiters.lock().unwrap_or_else(|p| p.into_inner()) += 1;
            let waiter = Waiter {
                running: self.running.clone(),
                key,
                waiters: flight.waiters.clone(),
            };
            (flight.result.clone(), waiter, role)
        };
        let value = result.await;
        drop(waiter);
        (value, role)
    }

    /// Flights in progress.
    pub fn len(&self) -> usize {
        self.running.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn flight_concurrent_callers_share_one_run() {
        let flights: Arc<Flights<u8, usize>> = Arc::new(Flights::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (f, runs) = (flights.clone(), runs.clone());
            tasks.push(tokio::spawn(async move {
                f.run(1, async move {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    runs.fetch_add(1, Ordering::SeqCst) + 100
                })
                .await
            }));
        }
        let mut leaders = 0;
        for t in tasks {
            let (value, role) = t.await.expect("task");
            assert_eq!(value, Some(100));
            leaders += usize::from(role == Role::Leader);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(leaders, 1);
        assert!(flights.is_empty());
    }

    #[tokio::test]
    async fn flight_is_cancelled_when_every_waiter_is_gone() {
        let flights: Arc<Flights<u8, usize>> = Arc::new(Flights::default());
        let done = Arc::new(AtomicUsize::new(0));
        let mut callers = Vec::new();
        for _ in 0..3 {
            let (d, f) = (done.clone(), flights.clone());
            callers.push(tokio::spawn(async move {
                f.run(7, async move {
                    tokio::time::sleep(Duration::from_millis(40)).await;
                    d.fetch_add(1, Ordering::SeqCst)
                })
                .await
            }));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(flights.len(), 1);
        for c in &callers {
            c.abort();
        }
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(
            done.load(Ordering::SeqCst),
            0,
            "cancelled work ran to the end"
        );
        assert!(flights.is_empty());
        // The key is free for a new flight.
        let (value, role) = flights.run(7, async { 9 }).await;
        assert_eq!((value, role), (Some(9), Role::Leader));
    }

    #[tokio::test]
    async fn flight_work_finishes_while_one_waiter_stays() {
        let flights: Arc<Flights<u8, usize>> = Arc::new(Flights::default());
        let done = Arc::new(AtomicUsize::new(0));
        let (d, f) = (done.clone(), flights.clone());
        let leader = tokio::spawn(async move {
            f.run(7, async move {
                tokio::time::sleep(Duration::from_millis(30)).await;
                d.fetch_add(1, Ordering::SeqCst)
            })
            .await
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        let f = flights.clone();
        let stays = tokio::spawn(async move { f.run(7, async { 100 }).await });
        tokio::time::sleep(Duration::from_millis(5)).await;
        leader.abort();
        let (value, role) = stays.await.expect("task");
        assert_eq!((value, role), (Some(0), Role::Follower));
        assert_eq!(done.load(Ordering::SeqCst), 1);
        assert!(flights.is_empty());
    }

    #[tokio::test]
    async fn flight_panic_is_none_and_clears_the_key() {
        let flights: Flights<u8, usize> = Flights::default();
        let (value, _) = flights.run(3, async { panic!("boom") }).await;
        assert_eq!(value, None);
        assert!(flights.is_empty());
        let (value, role) = flights.run(3, async { 5 }).await;
        assert_eq!((value, role), (Some(5), Role::Leader));
    }
}
