//! Single flight: concurrent requests for the same key share one computation.
//!
//! The first caller (the leader) spawns the work as its own task, so it finishes and fills the
//! cache even if every client that asked for it disconnects; everyone, leader included, awaits a
//! shared handle to it and gets a clone of the same result, success or error. The key is removed
//! from the map when the work ends, after the work itself has stored its result, so a caller
//! arriving later finds the cache filled rather than a second flight. Errors are not kept.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use futures_util::future::{BoxFuture, FutureExt, Shared};

type Flight<V> = Shared<BoxFuture<'static, Option<V>>>;

pub struct Flights<K, V> {
    running: Arc<Mutex<HashMap<K, Flight<V>>>>,
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

impl<K, V> Flights<K, V>
where
    K: Eq + Hash + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Run `work` for `key` unless it is already running; `None` only if the work panicked.
    pub async fn run<F>(&self, key: K, work: F) -> (Option<V>, Role)
    where
        F: Future<Output = V> + Send + 'static,
    {
        let (flight, role) = {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            match running.get(&key) {
                Some(flight) => (flight.clone(), Role::Follower),
                None => {
                    let map = self.running.clone();
                    let k = key.clone();
                    let panic_key = key.clone();
                    let task = tokio::spawn(async move {
                        let value = work.await;
                        map.lock().unwrap_or_else(|p| p.into_inner()).remove(&k);
                        value
                    });
                    let map = self.running.clone();
                    let flight = async move {
                        match task.await {
                            Ok(value) => Some(value),
                            Err(_) => {
                                // The work panicked before removing its key.
                                map.lock()
                                    .unwrap_or_else(|p| p.into_inner())
                                    .remove(&panic_key);
                                None
                            }
                        }
                    }
                    .boxed()
                    .shared();
                    running.insert(key, flight.clone());
                    (flight, Role::Leader)
                }
            }
        };
        (flight.await, role)
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
    async fn flight_work_finishes_when_the_leader_is_dropped() {
        let flights: Arc<Flights<u8, usize>> = Arc::new(Flights::default());
        let done = Arc::new(AtomicUsize::new(0));
        let d = done.clone();
        let f = flights.clone();
        let leader = tokio::spawn(async move {
            f.run(7, async move {
                tokio::time::sleep(Duration::from_millis(30)).await;
                d.fetch_add(1, Ordering::SeqCst)
            })
            .await
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        leader.abort();
        tokio::time::sleep(Duration::from_millis(60)).await;
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
