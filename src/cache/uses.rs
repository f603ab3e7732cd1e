//! Originals are kept only once they are used again (`cache.keep_sources_min_uses`): nginx's
//! `proxy_cache_min_uses`, applied to fetched originals.
//!
//! Most sources are asked for in one size only, and writing their megabytes to the disk tier
//! (and to the shared store) costs a cold thumbnail job about as much CPU as its resize. So
//! the first uses of an original are only counted: its key for an hour (at most
//! [`MAX_COUNTED`] keys), and its bytes in memory for [`HELD_FOR`], within a quarter of the
//! memory tier's budget. The other sizes of a `srcset`, asked for together, are made from the
//! held bytes without a new fetch; the use that reaches the count writes the original to the
//! tiers as before. A source asked for again after its bytes were let go is fetched once more.
//! A purge forgets both ([`Uses::forget`]).

use std::sync::Arc;
use std::time::Duration;

use super::{Entry, Key};

/// Sources whose uses are counted at most (their keys, ~100 bytes each).
const MAX_COUNTED: u64 = 65_536;
/// How long a use is remembered.
const COUNTED_FOR: Duration = Duration::from_secs(3600);
/// How long the bytes of an original not kept yet stay in memory.
pub(super) const HELD_FOR: Duration = Duration::from_secs(60);

pub(super) struct Uses {
    min: u32,
    /// Uses so far per source key.
    counts: moka::future::Cache<Key, u32>,
    /// Originals not kept yet, per source key.
    pub(super) held: moka::future::Cache<Key, Arc<Entry>>,
}

impl Uses {
    /// `None` when every original is kept on its first use (`min_uses` ≤ 1).
    pub(super) fn new(min_uses: u32, memory_bytes: u64) -> Option<Self> {
        (min_uses > 1).then(|| Uses {
            min: min_uses,
            counts: moka::future::Cache::builder()
                .max_capacity(MAX_COUNTED)
                .time_to_live(COUNTED_FOR)
                .build(),
            held: moka::future::Cache::builder()
                .max_capacity(memory_bytes / 4)
                .weigher(|_: &Key, v: &Arc<Entry>| v.weight())
                .time_to_live(HELD_FOR)
                .build(),
        })
    }

    /// Count one use of `source`'s original; true when that use reaches the count, and the
    /// original is to be kept (it is then no longer counted or held here).
    pub(super) async fn count(&self, source: &Key) -> bool {
        let uses = self
            .counts
            .entry(*source)
            .and_upsert_with(
                |old| async move { old.map_or(1, |e| e.into_value().saturating_add(1)) },
            )
            .await
            .into_value();
        if uses >= self.min {
            self.forget(source).await;
            return true;
        }
        false
    }

    /// Hold the bytes of an original that is not kept yet.
    pub(super) async fn hold(&self, source: &Key, entry: Arc<Entry>) {
        self.held.insert(*source, entry).await;
    }

    /// The held bytes of `source`'s original.
    pub(super) async fn held(&self, source: &Key) -> Option<Arc<Entry>> {
        self.held.get(source).await
    }

    /// Forget `source`: its count and its held bytes (a purge, or the original is kept now).
    pub(super) async fn forget(&self, source: &Key) {
        self.counts.invalidate(source).await;
        self.held.invalidate(source).await;
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn key(n: u8) -> Key {
        Key([n; 32])
    }

    fn entry() -> Arc<Entry> {
        Arc::new(Entry::new(Bytes::from_static(b"original"), "x/y", ""))
    }

    #[test]
    fn one_use_keeps_everything_at_once() {
        assert!(Uses::new(1, 1 << 20).is_none());
        assert!(Uses::new(0, 1 << 20).is_none());
    }

    #[tokio::test]
    async fn the_use_that_reaches_the_count_keeps_and_forgets() {
        let uses = Uses::new(3, 1 << 20).unwrap();
        let (a, b) = (key(1), key(2));
        assert!(!uses.count(&a).await);
        uses.hold(&a, entry()).await;
        assert!(!uses.count(&b).await);
        assert!(!uses.count(&a).await);
        assert!(uses.held(&a).await.is_some());
        assert!(uses.count(&a).await, "third use of a");
        assert!(uses.held(&a).await.is_none(), "kept: no longer held");
        // Counting starts over for a source that was kept (and later evicted everywhere).
        assert!(!uses.count(&a).await);
        // b is counted on its own.
        assert!(!uses.count(&b).await);
        assert!(uses.count(&b).await);
    }

    #[tokio::test]
    async fn forget_drops_count_and_bytes() {
        let uses = Uses::new(2, 1 << 20).unwrap();
        let a = key(1);
        assert!(!uses.count(&a).await);
        uses.hold(&a, entry()).await;
        uses.forget(&a).await;
        assert!(uses.held(&a).await.is_none());
        assert!(!uses.count(&a).await, "counting starts over after a purge");
    }

    #[tokio::test]
    async fn held_bytes_stay_within_a_quarter_of_the_memory_tier() {
        // 4 KiB memory tier: 1 KiB of held originals.
        let uses = Uses::new(2, 4096).unwrap();
        let big = Arc::new(Entry::new(Bytes::from(vec![0u8; 2048]), "x/y", ""));
        uses.hold(&key(1), big).await;
        uses.held.run_pending_tasks().await;
        assert!(uses.held(&key(1)).await.is_none());
        assert!(uses.held.weighted_size() <= 1024);
    }
}
