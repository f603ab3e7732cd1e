//! The result and source cache: a memory tier (moka, weighted by bytes), a disk tier (files laid
//! out by source), and single flights so concurrent misses for one key do the work once.
//!
//! Both tiers hold [`Entry`] values under blake3 [`Key`]s: renditions under
//! `key::variant(source, options, accept, profile)`, fetched originals under `key::original(source)`.
//! Originals go to the disk tier only when there is one: they are large (megabytes, against
//! tens of kilobytes for a rendition), read back from the kernel's page cache in a few
//! milliseconds, next to a render of tens, and the page cache gives their memory back under
//! pressure, where the memory tier would hold it in the process and push out hundreds of
//! renditions each. Without a disk tier they share the memory tier with the renditions. An
//! original is kept only from its second use ([`uses`], `cache.keep_sources_min_uses`); until
//! then its bytes are held in memory for a minute.
//! A disk failure is logged (at most once a minute per kind) and treated as a miss; it never
//! fails a request or `/ready`. While the disk tier cannot take writes (a full or read-only
//! volume, or free space below its watermark) it is reported as degraded in [`DiskHealth`],
//! originals it refused are kept in memory instead, and the state clears by itself with the
//! next write that succeeds. This module knows nothing of HTTP.

mod disk;
mod entry;
mod flight;
mod health;
pub mod key;
mod room;
pub mod store;
mod uses;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use self::disk::Sweep;
use self::disk::{Disk, Read, Write};
pub use self::entry::{now_secs, Entry};
pub use self::flight::{Flights, Role};
pub use self::health::DiskHealth;
use self::health::Health;
pub use self::key::Key;
use self::room::{out_of_space, MinFree};
use self::store::Store;
use self::uses::Uses;

/// Where a hit came from (for `X-Cache`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Memory,
    Disk,
    /// The shared store (`[store]`): another instance made it.
    Store,
}

impl Tier {
    pub fn name(self) -> &'static str {
        match self {
            Tier::Memory => "memory",
            Tier::Disk => "disk",
            Tier::Store => "store",
        }
    }
}

/// Cache settings (`[cache]` in config, validated).
#[derive(Debug, Clone)]
pub struct Settings {
    pub memory_bytes: u64,
    /// `None` disables the disk tier.
    pub dir: Option<PathBuf>,
    pub disk_bytes: u64,
    pub keep_sources: bool,
    /// An original is kept on the use that reaches this count (1: on its first fetch); until
    /// then it is counted and held in memory for a minute (see `uses`).
    pub keep_sources_min_uses: u32,
    pub ttl: Duration,
    /// Free space the disk tier leaves on its filesystem: the smaller of these bytes and this
    /// percentage of the filesystem (0 in either: not watched).
    pub min_free_bytes: u64,
    pub min_free_percent: u64,
    /// How often the disk tier is checked (cap, free space, a degraded state clearing); it is
    /// walked only when that finds work, or hourly.
    pub sweep_interval: Duration,
    /// The shared store tier; `None` when `store.url` is empty.
    pub store: Option<store::Settings>,
}

#[derive(Clone)]
struct Stored {
    source: Key,
    entry: Arc<Entry>,
}

pub struct Cache {
    memory: moka::future::Cache<Key, Stored>,
    disk: Option<Arc<Disk>>,
    store: Option<Arc<Store>>,
    health: Arc<Health>,
    settings: Settings,
    /// Purges per source key (absent = 0). Work that started under one generation stores
    /// nothing once the source has been purged since, so a purge is never undone by a render,
    /// fetch or disk-to-memory promotion that was in flight. Grows by one entry per purged
    /// source (an operator action), not with traffic.
    generations: Arc<Mutex<HashMap<Key, u64>>>,
    /// Originals used fewer than `keep_sources_min_uses` times; `None` when that is 1.
    uses: Option<Arc<Uses>>,
}

impl Cache {
    /// Build the tiers. Must be called inside a tokio runtime when the disk tier is on: the
    /// first sweep starts in the background, so start-up never waits for a scan.
    pub fn new(settings: Settings) -> Self {
        let memory = moka::future::Cache::builder()
            .max_capacity(settings.memory_bytes)
            .weigher(|_: &Key, v: &Stored| v.entry.weight())
            .time_to_live(settings.ttl)
            .support_invalidation_closures()
            .build();
        let min_free = MinFree {
            bytes: settings.min_free_bytes,
            percent: settings.min_free_percent,
        };
        let disk = settings
            .dir
            .clone()
            .map(|dir| Arc::new(Disk::new(dir, settings.disk_bytes, settings.ttl, min_free)));
        let health = Arc::new(Health::default());
        if let Some(disk) = &disk {
            let disk = Arc::downgrade(disk);
            let health = health.clone();
            let every = settings.sweep_interval;
            tokio::spawn(async move {
                // Ends when the cache (the last strong reference) is dropped.
                while let Some(d) = disk.upgrade() {
                    check(d, health.clone()).await;
                    tokio::time::sleep(every).await;
                }
            });
        }
        let generations = Arc::new(Mutex::new(HashMap::new()));
        let min_uses = if settings.keep_sources {
            settings.keep_sources_min_uses
        } else {
            1
        };
        let uses = Uses::new(min_uses, settings.memory_bytes).map(Arc::new);
        let store = settings.store.clone().and_then(|s| {
            Store::open(s, settings.ttl)
                .map_err(|e| tracing::error!("store off: {e}"))
                .ok()
        });
        if let Some(store) = &store {
            let tiers = Tiers {
                memory: memory.clone(),
                disk: disk.clone(),
                generations: generations.clone(),
                uses: uses.clone(),
            };
            tokio::spawn(poll_purges(Arc::downgrade(store), tiers));
        }
        Cache {
            memory,
            disk,
            store,
            health,
            settings,
            generations,
            uses,
        }
    }

    /// The purge generation of `source`: take it before starting work whose result will be
    /// stored, and hand it to [`Cache::put`].
    pub fn generation(&self, source: &Key) -> u64 {
        let g = self.generations.lock().unwrap_or_else(|p| p.into_inner());
        g.get(source).copied().unwrap_or(0)
    }

    /// How the disk tier is doing, for `/metrics` (all zero without a disk tier).
    pub fn disk_health(&self) -> DiskHealth {
        let free = self.disk.as_ref().map_or(0, |d| d.free_bytes());
        self.health.snapshot(free)
    }

    /// Bytes and entries in memory and on disk, for `/metrics` (the memory tier's counts are
    /// brought up to date first).
    pub async fn levels(&self) -> (u64, u64, u64, u64) {
        self.memory.run_pending_tasks().await;
        let (disk_bytes, disk_entries) = self
            .disk
            .as_ref()
            .map_or((0, 0), |d| (d.usage(), d.entries()));
        (
            self.memory.weighted_size(),
            self.memory.entry_count(),
            disk_bytes,
            disk_entries,
        )
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Look a rendition up in memory, then on disk (a disk hit is copied into memory).
    pub async fn get(&self, source: &Key, key: &Key) -> Option<(Arc<Entry>, Tier)> {
        self.lookup(source, key, true).await
    }

    /// Look a rendition up in the shared store (after [`Cache::get`] missed, inside the
    /// variant's flight): a hit is copied into memory and onto disk. `None` without a store,
    /// on a miss, an error, a timeout or an open breaker: the store never fails a request.
    pub async fn get_shared(&self, source: &Key, key: &Key) -> Option<Arc<Entry>> {
        self.shared(source, key, false).await
    }

    /// [`Cache::get_shared`] for the original of `source` (with `store.keep_sources`), copied
    /// to the tier originals live in.
    pub async fn get_shared_original(&self, source: &Key) -> Option<Arc<Entry>> {
        if !self.store.as_ref()?.settings().keep_sources {
            return None;
        }
        self.shared(source, &key::original(source), true).await
    }

    async fn shared(&self, source: &Key, key: &Key, original: bool) -> Option<Arc<Entry>> {
        let store = self.store.clone()?;
        let generation = self.generation(source);
        let store::Read::Hit(entry) = store.read(source, key, original).await else {
            return None;
        };
        let entry = Arc::new(entry);
        let memory = !original || self.disk.is_none();
        self.store_local(source, key, entry.clone(), memory, generation)
            .await;
        (self.generation(source) == generation).then_some(entry)
    }

    /// Look the original of `source` up: in memory (where it is without a disk tier, or when
    /// the disk tier refused it), then on disk without copying it to memory, then among the
    /// originals not kept yet (`keep_sources_min_uses`), where this counts as a use and the
    /// use that reaches the count keeps it.
    pub async fn get_original(&self, source: &Key) -> Option<(Arc<Entry>, Tier)> {
        let key = key::original(source);
        if self.disk.is_some() {
            if let Some(hit) = self.memory_hit(&key).await {
                return Some(hit);
            }
        }
        let memory = self.disk.is_none();
        if let Some(hit) = self.lookup(source, &key, memory).await {
            return Some(hit);
        }
        let uses = self.uses.as_ref()?;
        let generation = self.generation(source);
        let entry = uses.held(source).await?;
        if uses.count(source).await {
            self.keep_original(source, entry.clone(), generation).await;
        }
        Some((entry, Tier::Memory))
    }

    /// Store a rendition in memory and on disk; the disk write has finished when this returns.
    /// Nothing is kept when `source` was purged since `generation` was taken.
    pub async fn put(&self, source: &Key, key: &Key, entry: Arc<Entry>, generation: u64) {
        self.store(source, key, entry, true, generation, false)
            .await
    }

    /// A fetched original of `source`: one use of it (`keep_sources_min_uses`). The use that
    /// reaches the count keeps it: on disk, or in memory when there is no disk tier or the disk
    /// tier cannot take it now. Earlier uses only hold it in memory for a minute. Nothing is
    /// kept or held when `source` was purged since `generation` was taken.
    pub async fn put_original(&self, source: &Key, entry: Arc<Entry>, generation: u64) {
        if let Some(uses) = &self.uses {
            if self.generation(source) != generation {
                return;
            }
            if !uses.count(source).await {
                uses.hold(source, entry).await;
                // A purge moves the generation before it forgets: one that ran since the
                // check above is either seen here or forgets after the hold.
                if self.generation(source) != generation {
                    uses.forget(source).await;
                }
                return;
            }
        }
        self.keep_original(source, entry, generation).await
    }

    async fn keep_original(&self, source: &Key, entry: Arc<Entry>, generation: u64) {
        let memory = self.disk.is_none();
        self.store(
            source,
            &key::original(source),
            entry,
            memory,
            generation,
            true,
        )
        .await
    }

    /// Wait for the shared store's upload queue to drain, at most `within` (shutdown, `imgcdn
    /// warm --offline`); true when nothing is left (or there is no store).
    pub async fn flush(&self, within: Duration) -> bool {
        match &self.store {
            Some(store) => store.flush(within).await,
            None => true,
        }
    }

    /// Wait while the shared store's upload queue is more than half full (`imgcdn warm
    /// --offline` fills the store and must not have its uploads dropped).
    pub async fn wait_for_store_room(&self) {
        let Some(store) = &self.store else {
            return;
        };
        let half = (store.settings().queue_entries / 2).max(1) as u64;
        while store.snapshot().queue_entries > half {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The shared store's counters, for `/metrics`; `None` without a store.
    pub fn store_snapshot(&self) -> Option<store::Snapshot> {
        self.store.as_ref().map(|s| s.snapshot())
    }

    async fn lookup(&self, source: &Key, key: &Key, memory: bool) -> Option<(Arc<Entry>, Tier)> {
        if !memory {
            return self.read_disk(source, key, false).await;
        }
        if let Some(hit) = self.memory_hit(key).await {
            return Some(hit);
        }
        self.read_disk(source, key, true).await
    }

    async fn memory_hit(&self, key: &Key) -> Option<(Arc<Entry>, Tier)> {
        let stored = self.memory.get(key).await?;
        if !stored.entry.expired(self.settings.ttl) {
            return Some((stored.entry, Tier::Memory));
        }
        self.memory.invalidate(key).await;
        None
    }

    /// Read `key` from the disk tier, copying a hit into memory when `promote`.
    async fn read_disk(
        &self,
        source: &Key,
        key: &Key,
        promote: bool,
    ) -> Option<(Arc<Entry>, Tier)> {
        let disk = self.disk.clone()?;
        let generation = self.generation(source);
        let (s, k) = (*source, *key);
        let read = tokio::task::spawn_blocking(move || disk.read(&s, &k)).await;
        match read {
            Ok(Ok(Read::Hit(_))) if self.generation(source) != generation => None,
            Ok(Ok(Read::Hit(entry))) => {
                let entry = Arc::new(entry);
                if promote {
                    self.memory
                        .insert(
                            *key,
                            Stored {
                                source: *source,
                                entry: entry.clone(),
                            },
                        )
                        .await;
                    // A purge that ran meanwhile must not be undone by this copy.
                    if self.generation(source) != generation {
                        self.memory.invalidate(key).await;
                        return None;
                    }
                }
                Some((entry, Tier::Disk))
            }
            Ok(Ok(Read::Expired)) => {
                tracing::debug!(key = %key, "dropped an expired disk cache entry");
                None
            }
            Ok(Ok(Read::Corrupt)) => {
                tracing::warn!(key = %key, "dropped a corrupt disk cache entry");
                None
            }
            Ok(Ok(Read::Miss)) => None,
            Ok(Err(e)) => {
                self.health.read_failed(&e);
                None
            }
            Err(_) => None,
        }
    }

    /// Keep `entry` in this instance's tiers, then queue it for the shared store (originals
    /// only with `store.keep_sources`), unless `source` was purged since `generation`.
    async fn store(
        &self,
        source: &Key,
        key: &Key,
        entry: Arc<Entry>,
        memory: bool,
        generation: u64,
        original: bool,
    ) {
        self.store_local(source, key, entry.clone(), memory, generation)
            .await;
        if let Some(store) = &self.store {
            if self.generation(source) == generation && (!original || store.settings().keep_sources)
            {
                store.write(source, key, &entry, original);
            }
        }
    }

    async fn store_local(
        &self,
        source: &Key,
        key: &Key,
        entry: Arc<Entry>,
        memory: bool,
        generation: u64,
    ) {
        if self.generation(source) != generation {
            return;
        }
        if memory {
            self.memory
                .insert(
                    *key,
                    Stored {
                        source: *source,
                        entry: entry.clone(),
                    },
                )
                .await;
        }
        let Some(disk) = self.disk.clone() else {
            return;
        };
        let stored = self.write_disk(&disk, source, key, entry.clone()).await;
        if !stored && !memory {
            // The disk tier refused an original: keep it in memory, as without a disk tier,
            // so other sizes of it do not each fetch the origin again.
            self.memory
                .insert(
                    *key,
                    Stored {
                        source: *source,
                        entry,
                    },
                )
                .await;
        }
        // A purge ran while this was being written: take it out again (the whole source, as
        // the purge did; a later request makes what it needs anew).
        if self.generation(source) != generation {
            self.memory.invalidate(key).await;
            let s = *source;
            let _ = tokio::task::spawn_blocking(move || disk.purge(&s)).await;
        }
    }

    /// Write to the disk tier, recording how it went; true when the entry is on disk.
    async fn write_disk(
        &self,
        disk: &Arc<Disk>,
        source: &Key,
        key: &Key,
        entry: Arc<Entry>,
    ) -> bool {
        let (s, k, d) = (*source, *key, disk.clone());
        let written = tokio::task::spawn_blocking(move || d.write(&s, &k, &entry)).await;
        match written {
            Ok(Ok(Write::Stored { over_cap })) => {
                self.health.write_ok();
                if over_cap {
                    tokio::spawn(sweep(disk.clone()));
                }
                true
            }
            Ok(Ok(Write::Skipped { free })) => {
                self.health.write_skipped(free);
                if disk.relief_due() {
                    tokio::spawn(sweep(disk.clone()));
                }
                false
            }
            Ok(Err(e)) => {
                self.health.write_failed(&e);
                if out_of_space(&e) && disk.relief_due() {
                    tokio::spawn(sweep(disk.clone()));
                }
                false
            }
            Err(_) => false,
        }
    }

    /// Remove every entry of `source` (variants and original) from every tier, the shared
    /// store included (where the purge is logged for the other instances, which apply it to
    /// their own tiers within `store.purge_poll_s`). The source's generation moves first, so
    /// work in flight stores nothing afterwards. `Err` when some entries could not be removed
    /// (they may still be served).
    pub async fn purge(&self, source: &Key) -> Result<(), String> {
        let tiers = Tiers {
            memory: self.memory.clone(),
            disk: self.disk.clone(),
            generations: self.generations.clone(),
            uses: self.uses.clone(),
        };
        let local = tiers.purge(source).await;
        let shared = match &self.store {
            Some(store) => store.purge(source).await,
            None => Ok(()),
        };
        local.and(shared)
    }

    /// Bytes held on disk (approximate between sweeps); 0 without a disk tier.
    pub fn disk_usage(&self) -> u64 {
        self.disk.as_ref().map_or(0, |d| d.usage())
    }

    /// Run a disk sweep now and wait for it (tests and tools).
    pub async fn sweep_now(&self) -> Option<Sweep> {
        let disk = self.disk.clone()?;
        loop {
            if disk.start_sweep() {
                let d = disk.clone();
                return tokio::task::spawn_blocking(move || d.sweep())
                    .await
                    .ok()?
                    .ok();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// This instance's tiers, as the purge-log poller holds them.
struct Tiers {
    memory: moka::future::Cache<Key, Stored>,
    disk: Option<Arc<Disk>>,
    generations: Arc<Mutex<HashMap<Key, u64>>>,
    uses: Option<Arc<Uses>>,
}

impl Tiers {
    /// Remove every entry of `source` from memory and disk. The generation moves first, so
    /// work in flight stores nothing afterwards; the disk goes before memory, so a concurrent
    /// miss cannot copy a disk entry back into memory.
    async fn purge(&self, source: &Key) -> Result<(), String> {
        {
            let mut g = self.generations.lock().unwrap_or_else(|p| p.into_inner());
            *g.entry(*source).or_insert(0) += 1;
        }
        let s = *source;
        let mut result = Ok(());
        if let Some(disk) = self.disk.clone() {
            match tokio::task::spawn_blocking(move || disk.purge(&s)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "disk purge failed");
                    result = Err(format!("disk purge failed: {e}"));
                }
                Err(_) => result = Err("disk purge failed".to_owned()),
            }
        }
        if let Err(e) = self.memory.invalidate_entries_if(move |_, v| v.source == s) {
            tracing::warn!(error = %e, "memory purge failed");
            result = Err(format!("memory purge failed: {e}"));
        }
        if let Some(uses) = &self.uses {
            uses.forget(source).await;
        }
        result
    }
}

/// Every `store.purge_poll_s`, apply the purges other instances logged in the shared store to
/// this instance's tiers. Ends when the store (the cache) is dropped.
async fn poll_purges(store: std::sync::Weak<Store>, tiers: Tiers) {
    let mut first = true;
    loop {
        let Some(every) = store.upgrade().map(|s| s.settings().purge_poll) else {
            return;
        };
        if !first {
            tokio::time::sleep(every).await;
        }
        first = false;
        let Some(s) = store.upgrade() else {
            return;
        };
        match s.poll_purges().await {
            Ok(sources) => {
                for source in sources {
                    if let Err(e) = tiers.purge(&source).await {
                        tracing::warn!(key = %source, "fleet purge incomplete: {e}");
                    } else {
                        tracing::info!(key = %source, "purged (from the fleet's purge log)");
                    }
                }
            }
            Err(e) => tracing::debug!("store purge log: {e}"),
        }
    }
}

/// The periodic check: clear a degraded state the requests have not cleared (nothing was
/// written since the disk came back), and sweep when [`Disk::sweep_due`] finds work.
async fn check(disk: Arc<Disk>, health: Arc<Health>) {
    let d = disk.clone();
    let due = tokio::task::spawn_blocking(move || {
        if health.degraded() && d.writable() {
            health.write_ok();
        }
        d.sweep_due()
    })
    .await;
    if due.unwrap_or(false) {
        sweep(disk).await;
    }
}

/// One background sweep, unless one is already running.
async fn sweep(disk: Arc<Disk>) {
    if !disk.start_sweep() {
        return;
    }
    match tokio::task::spawn_blocking(move || disk.sweep()).await {
        Ok(Ok(report)) if report.removed > 0 => {
            tracing::info!(
                bytes = report.bytes,
                removed = report.removed,
                "disk cache swept"
            );
        }
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "disk cache sweep failed"),
        Err(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Source;
    use bytes::Bytes;

    fn settings(dir: Option<PathBuf>) -> Settings {
        Settings {
            memory_bytes: 1 << 20,
            dir,
            disk_bytes: 1 << 20,
            keep_sources: true,
            keep_sources_min_uses: 1,
            ttl: Duration::from_secs(60),
            min_free_bytes: 0,
            min_free_percent: 0,
            sweep_interval: Duration::from_secs(60),
            store: None,
        }
    }

    fn source() -> Key {
        key::source(&Source::Local(PathBuf::from("a.jpg")))
    }

    #[tokio::test]
    async fn originals_skip_the_memory_tier_when_there_is_a_disk_tier() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(settings(Some(dir.path().to_path_buf())));
        let s = source();
        let original = Arc::new(Entry::new(Bytes::from_static(b"original"), "x/y", ""));
        cache.put_original(&s, original, 0).await;
        assert!(cache.memory.get(&key::original(&s)).await.is_none());
        let (hit, tier) = cache.get_original(&s).await.unwrap();
        assert_eq!((&hit.body[..], tier), (&b"original"[..], Tier::Disk));
        // Not copied to memory by the read either.
        assert!(cache.memory.get(&key::original(&s)).await.is_none());
    }

    #[tokio::test]
    async fn originals_live_in_memory_without_a_disk_tier() {
        let cache = Cache::new(settings(None));
        let s = source();
        let original = Arc::new(Entry::new(Bytes::from_static(b"original"), "x/y", ""));
        cache.put_original(&s, original, 0).await;
        let (hit, tier) = cache.get_original(&s).await.unwrap();
        assert_eq!((&hit.body[..], tier), (&b"original"[..], Tier::Memory));
    }

    #[tokio::test]
    async fn an_original_is_kept_on_its_second_use_and_held_until_then() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = settings(Some(dir.path().to_path_buf()));
        settings.keep_sources_min_uses = 2;
        let cache = Cache::new(settings);
        let s = source();
        let disk = cache.disk.clone().unwrap();
        let original = Arc::new(Entry::new(Bytes::from_static(b"original"), "x/y", ""));
        cache.put_original(&s, original, 0).await;
        assert_eq!(disk.usage(), 0, "first use: nothing written");
        assert!(cache.memory.get(&key::original(&s)).await.is_none());
        // The second use (another size) is made from the held bytes, and keeps them.
        let (hit, tier) = cache.get_original(&s).await.unwrap();
        assert_eq!((&hit.body[..], tier), (&b"original"[..], Tier::Memory));
        assert!(disk.usage() > 0, "second use: written to disk");
        let (_, tier) = cache.get_original(&s).await.unwrap();
        assert_eq!(tier, Tier::Disk);
    }

    #[tokio::test]
    async fn a_refetched_original_is_kept_on_its_second_fetch() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = settings(Some(dir.path().to_path_buf()));
        settings.keep_sources_min_uses = 2;
        let cache = Cache::new(settings);
        let s = source();
        let original = || Arc::new(Entry::new(Bytes::from_static(b"original"), "x/y", ""));
        cache.put_original(&s, original(), 0).await;
        // The held bytes are gone (evicted, expired): the next size fetches again.
        cache.uses.as_ref().unwrap().held.invalidate(&s).await;
        assert!(cache.get_original(&s).await.is_none());
        cache.put_original(&s, original(), 0).await;
        let (_, tier) = cache.get_original(&s).await.unwrap();
        assert_eq!(tier, Tier::Disk);
    }

    #[tokio::test]
    async fn a_purge_forgets_held_originals_and_their_count() {
        let mut settings = settings(None);
        settings.keep_sources_min_uses = 2;
        let cache = Cache::new(settings);
        let s = source();
        let original = Arc::new(Entry::new(Bytes::from_static(b"original"), "x/y", ""));
        cache.put_original(&s, original.clone(), 0).await;
        cache.purge(&s).await.unwrap();
        assert!(cache.get_original(&s).await.is_none());
        // Work that started before the purge holds nothing.
        cache.put_original(&s, original.clone(), 0).await;
        assert!(cache.get_original(&s).await.is_none());
        // Counting starts over: the first use after the purge is held, not kept.
        let generation = cache.generation(&s);
        cache.put_original(&s, original, generation).await;
        assert!(cache.memory.get(&key::original(&s)).await.is_none());
        let (_, tier) = cache.get_original(&s).await.unwrap();
        assert_eq!(tier, Tier::Memory);
        assert!(
            cache.memory.get(&key::original(&s)).await.is_some(),
            "kept now"
        );
    }
}
