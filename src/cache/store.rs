//! The shared store: a third cache tier on S3-compatible object storage (or GCS, Azure Blob)
//! that every instance of a fleet reads and writes, so a new or restarted instance starts warm,
//! N instances render a variant once, and a purge reaches them all.
//!
//! Layout, under the configured prefix: `r1/<2 hex>/<source hex>/<key hex>` for renditions and
//! originals (so purging a source is one prefix listing and a bulk delete) and
//! `purges/<unix ms, 13 digits>-<source hex>` for the purge log. `r1` is the layout version.
//! Objects hold the disk tier's self-checking entry format ([`Entry::encode`]); a read is served
//! only after it decodes, is not past the TTL nor older than a purge of its source, and has a
//! content type imgcdn produces. A corrupt object is deleted and rewritten with an overwrite;
//! everything else is written create-only (`If-None-Match: *`), first writer wins.
//!
//! **The store never fails a request.** Reads have a budget (`read_timeout`, one retry inside
//! it), and a miss, an error, a timeout and an open breaker all mean "render". Writes happen
//! after the response, from a bounded queue (entries and bytes; a full queue drops the write and
//! counts it) drained by a few upload tasks, each under `write_timeout`. A circuit breaker
//! shared by reads and writes opens after `breaker_failures` consecutive failures (timeouts,
//! connection errors, 5xx, 403; never a 404 or an "already exists"): while open, reads are
//! instant misses and writes are dropped; after `breaker_open` one probe goes through, and the
//! open time doubles up to a minute while probes fail.
//!
//! Purges: [`Store::purge`] deletes the source's prefix, appends to the purge log, and deletes
//! the prefix again once every render that could have been in flight anywhere has finished
//! (`write_timeout` + `settle`). [`Store::poll_purges`] reads the log; the cache applies each new
//! entry to its own tiers. Recent purges are remembered, so uploads of work that started before
//! a purge are dropped and objects made before it are never served.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::path::Path;
use object_store::{
    Attribute, AttributeValue, Attributes, ObjectStore, ObjectStoreExt as _, PutMode, PutOptions,
    PutPayload,
};
use tokio::sync::{mpsc, Notify};
use tokio::time::{timeout, Instant};

#[cfg(test)]
use super::entry::now_secs;
use super::entry::Entry;
use super::key::Key;
use crate::bucket;
use crate::format::Format;

/// The object layout version (part of every object name).
const LAYOUT: &str = "r1";
/// How long purges are remembered (reader-side checks, dropping uploads) and how far back the
/// log is read, so clocks a little apart between instances lose no purge.
const PURGE_MEMORY: Duration = Duration::from_secs(600);
const PURGE_SKEW: Duration = Duration::from_secs(120);
/// Largest object read back (a rendition or an original plus the entry header).
const MAX_OBJECT: u64 = 256 * 1024 * 1024;
/// A store entry is served only with a content type imgcdn makes: an image format (encoded, or
/// passed through) or `/meta` JSON. Defence in depth: someone who can write to the bucket
/// still cannot serve HTML from the image domain.
fn servable(content_type: &str) -> bool {
    Format::from_mime(content_type).is_some() || content_type == "application/json"
}
const ORIGINAL_TYPE: &str = "application/octet-stream";
const OBJECT_TYPE: &str = "application/vnd.imgcdn.entry";

/// `[store]` settings, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `s3://bucket/prefix`, `gs://…` or `az://…`.
    pub url: String,
    pub endpoint: bucket::Endpoint,
    pub connect_timeout: Duration,
    /// Budget of a rendition read, one retry included.
    pub read_timeout: Duration,
    /// Budget of an original read (larger objects).
    pub original_read_timeout: Duration,
    /// Budget of one upload, in the background.
    pub write_timeout: Duration,
    pub queue_entries: usize,
    pub queue_bytes: u64,
    pub write_concurrency: usize,
    /// Also keep fetched originals in the store, so a srcset is one origin fetch per fleet.
    pub keep_sources: bool,
    pub breaker_failures: u32,
    pub breaker_open: Duration,
    pub purge_poll: Duration,
    /// How long after a purge work started before it may still finish (render deadline and
    /// fetch deadline): the second delete of a purged prefix waits this plus `write_timeout`
    /// and `purge_poll`.
    pub settle: Duration,
}

/// What a read found.
#[derive(Debug)]
pub enum Read {
    Hit(Entry),
    Miss,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    /// Reads that failed (timeouts, connection errors, 5xx, 403).
    pub errors: AtomicU64,
    /// Uploads that failed the same ways.
    pub write_errors: AtomicU64,
    /// Reads skipped because the breaker was open.
    pub skipped: AtomicU64,
    /// Objects that failed their check (deleted and rewritten).
    pub corrupt: AtomicU64,
    pub writes: AtomicU64,
    /// Writes dropped: queue full, breaker open, or their source purged meanwhile.
    pub writes_dropped: AtomicU64,
    pub read_seconds_micros: AtomicU64,
    pub reads: AtomicU64,
    pub purges: AtomicU64,
}

/// A snapshot of the store for `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    pub hits: u64,
    pub misses: u64,
    pub errors: u64,
    pub skipped: u64,
    pub corrupt: u64,
    pub writes: u64,
    pub writes_dropped: u64,
    pub write_errors: u64,
    pub reads: u64,
    pub read_seconds: f64,
    pub queue_entries: u64,
    pub queue_bytes: u64,
    pub breaker_open: bool,
    pub purges: u64,
}

struct Upload {
    path: Path,
    source: Key,
    body: Bytes,
    mode: PutMode,
    attributes: Attributes,
    /// When the work behind it started (unix ms): dropped if its source was purged since.
    started_ms: u64,
}

pub struct Store {
    client: Arc<dyn ObjectStore>,
    prefix: Path,
    settings: Settings,
    ttl: Duration,
    breaker: Breaker,
    queue: mpsc::Sender<Upload>,
    queued_bytes: AtomicU64,
    /// Uploads queued or running.
    pending: AtomicU64,
    drained: Notify,
    /// Recent purges by source: unix ms of the latest.
    purged: Mutex<HashMap<Key, u64>>,
    /// Objects found corrupt or expired: the next write of them overwrites.
    repair: Mutex<HashSet<Key>>,
    /// Purge-log names already applied, and the newest time read.
    seen: Mutex<(HashSet<String>, u64)>,
    /// The purge log has been read once since start-up: before that, an object may be one a
    /// purge elsewhere has already condemned, so reads wait for it (within their budget).
    polled: AtomicBool,
    first_poll: Notify,
    pub stats: Stats,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.settings.url)
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Store {
    /// Open the store (no I/O) and start its upload tasks; needs a tokio runtime.
    pub fn open(settings: Settings, ttl: Duration) -> Result<Arc<Store>, String> {
        let budget = bucket::Budget {
            connect: settings.connect_timeout,
            request: settings.write_timeout.max(settings.original_read_timeout),
            retries: 1,
        };
        let (client, prefix) = bucket::open(&settings.url, &settings.endpoint, budget)?;
        Ok(Store::with_client(client, prefix, settings, ttl))
    }

    /// A store over any object-store client (tests use `object_store`'s in-memory one).
    pub fn with_client(
        client: Arc<dyn ObjectStore>,
        prefix: Path,
        settings: Settings,
        ttl: Duration,
    ) -> Arc<Store> {
        let (tx, rx) = mpsc::channel(settings.queue_entries.max(1));
        let store = Arc::new(Store {
            client,
            prefix,
            breaker: Breaker::new(settings.breaker_failures, settings.breaker_open),
            ttl,
            queue: tx,
            queued_bytes: AtomicU64::new(0),
            pending: AtomicU64::new(0),
            drained: Notify::new(),
            purged: Mutex::new(HashMap::new()),
            repair: Mutex::new(HashSet::new()),
            seen: Mutex::new((
                HashSet::new(),
                now_ms().saturating_sub(PURGE_MEMORY.as_millis() as u64),
            )),
            stats: Stats::default(),
            polled: AtomicBool::new(false),
            first_poll: Notify::new(),
            settings,
        });
        tokio::spawn(uploads(Arc::downgrade(&store), rx));
        store
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn source_dir(&self, source: &Key) -> Path {
        let hex = source.hex();
        self.prefix
            .clone()
            .join(LAYOUT)
            .join(&hex[..2])
            .join(hex.as_str())
    }

    fn path(&self, source: &Key, key: &Key) -> Path {
        self.source_dir(source).join(key.hex().as_str())
    }

    fn purge_log(&self) -> Path {
        self.prefix.clone().join("purges")
    }

    /// Read `key` of `source` within the read budget (`original`: the original's budget).
    pub async fn read(&self, source: &Key, key: &Key, original: bool) -> Read {
        if !self.breaker.allow() {
            self.stats.skipped.fetch_add(1, Ordering::Relaxed);
            return Read::Miss;
        }
        let budget = if original {
            self.settings.original_read_timeout
        } else {
            self.settings.read_timeout
        };
        let path = self.path(source, key);
        let started = Instant::now();
        let got = timeout(budget, async {
            self.first_poll_done().await;
            let got = self.client.get(&path).await?;
            if got.meta.size > MAX_OBJECT {
                return Ok(None);
            }
            got.bytes().await.map(Some)
        })
        .await;
        self.stats.reads.fetch_add(1, Ordering::Relaxed);
        self.stats
            .read_seconds_micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        let bytes = match got {
            Ok(Ok(Some(bytes))) => {
                self.breaker.success();
                bytes
            }
            Ok(Ok(None)) => {
                self.breaker.success();
                return self.corrupt(source, key, "object too large");
            }
            Ok(Err(object_store::Error::NotFound { .. })) => {
                self.breaker.success();
                self.stats.misses.fetch_add(1, Ordering::Relaxed);
                return Read::Miss;
            }
            Ok(Err(e)) => {
                self.failure(&format!("read: {e}"));
                return Read::Miss;
            }
            Err(_) => {
                self.failure(&format!("read: no answer within {budget:?}"));
                return Read::Miss;
            }
        };
        let entry = match Entry::decode(bytes) {
            Ok(entry) => entry,
            Err(e) => return self.corrupt(source, key, &e.to_string()),
        };
        let servable = if original {
            entry.content_type == ORIGINAL_TYPE || entry.etag.is_empty()
        } else {
            servable(&entry.content_type)
        };
        if !servable {
            return self.corrupt(source, key, "unexpected content type");
        }
        let purged = self.purged_at(source);
        if entry.expired(self.ttl) || purged.is_some_and(|ms| entry.created * 1000 <= ms) {
            // Older than the TTL or than a purge of its source: made again, and overwritten.
            self.mark_repair(key);
            self.stats.misses.fetch_add(1, Ordering::Relaxed);
            return Read::Miss;
        }
        self.stats.hits.fetch_add(1, Ordering::Relaxed);
        Read::Hit(entry)
    }

    async fn first_poll_done(&self) {
        loop {
            let done = self.first_poll.notified();
            if self.polled.load(Ordering::Acquire) {
                return;
            }
            done.await;
        }
    }

    fn corrupt(&self, source: &Key, key: &Key, why: &str) -> Read {
        tracing::warn!(key = %key, "corrupt store object dropped: {why}");
        self.stats.corrupt.fetch_add(1, Ordering::Relaxed);
        self.stats.misses.fetch_add(1, Ordering::Relaxed);
        self.mark_repair(key);
        let (client, path) = (self.client.clone(), self.path(source, key));
        let budget = self.settings.write_timeout;
        tokio::spawn(async move {
            let _ = timeout(budget, client.delete(&path)).await;
        });
        Read::Miss
    }

    fn mark_repair(&self, key: &Key) {
        let mut r = self.repair.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: a flood of bad objects costs at most this much memory.
        if r.len() < 65_536 {
            r.insert(*key);
        }
    }

    fn failure(&self, what: &str) {
        let counter = if what.starts_with("write") {
            &self.stats.write_errors
        } else {
            &self.stats.errors
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if self.breaker.failure() {
            tracing::error!(
                store = %self.settings.url,
                "shared store unavailable, reads are misses and writes are dropped for now: {what}"
            );
        } else {
            tracing::debug!(store = %self.settings.url, "store {what}");
        }
    }

    /// When `source` was last purged (unix ms), if within [`PURGE_MEMORY`].
    fn purged_at(&self, source: &Key) -> Option<u64> {
        let p = self.purged.lock().unwrap_or_else(|p| p.into_inner());
        p.get(source).copied()
    }

    fn note_purge(&self, source: Key, at_ms: u64) {
        let mut p = self.purged.lock().unwrap_or_else(|p| p.into_inner());
        let cutoff = now_ms().saturating_sub(PURGE_MEMORY.as_millis() as u64);
        p.retain(|_, at| *at >= cutoff);
        let at = p.entry(source).or_insert(0);
        *at = (*at).max(at_ms);
    }

    /// Queue `entry` for upload, after the response. Dropped (and counted) when the queue is
    /// full or the breaker is open, and at upload time when its source was purged after the
    /// entry's data was obtained (`entry.created`).
    pub fn write(&self, source: &Key, key: &Key, entry: &Entry, original: bool) {
        let started_ms = entry.created * 1000;
        if self.breaker.is_open() {
            self.stats.writes_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let body = Bytes::from(entry.encode());
        let len = body.len() as u64;
        let queued = self.queued_bytes.fetch_add(len, Ordering::AcqRel);
        if queued + len > self.settings.queue_bytes {
            self.queued_bytes.fetch_sub(len, Ordering::AcqRel);
            self.stats.writes_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let repair = {
            let mut r = self.repair.lock().unwrap_or_else(|p| p.into_inner());
            r.remove(key)
        };
        let mut attributes = Attributes::with_capacity(5);
        attributes.insert(Attribute::ContentType, AttributeValue::from(OBJECT_TYPE));
        let meta = [
            ("imgcdn-layout", LAYOUT.to_owned()),
            ("imgcdn-source", source.hex()),
            ("imgcdn-created", entry.created.to_string()),
            (
                "imgcdn-type",
                if original {
                    ORIGINAL_TYPE.to_owned()
                } else {
                    entry.content_type.clone()
                },
            ),
        ];
        for (k, v) in meta {
            attributes.insert(Attribute::Metadata(k.into()), AttributeValue::from(v));
        }
        let upload = Upload {
            path: self.path(source, key),
            source: *source,
            body,
            mode: if repair {
                PutMode::Overwrite
            } else {
                PutMode::Create
            },
            attributes,
            started_ms,
        };
        self.pending.fetch_add(1, Ordering::AcqRel);
        if self.queue.try_send(upload).is_err() {
            self.queued_bytes.fetch_sub(len, Ordering::AcqRel);
            self.done();
            self.stats.writes_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn done(&self) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.drained.notify_waiters();
        }
    }

    async fn upload(&self, up: Upload) {
        let len = up.body.len() as u64;
        let purged = self
            .purged_at(&up.source)
            .is_some_and(|ms| ms >= up.started_ms);
        if purged || !self.breaker.allow() {
            self.stats.writes_dropped.fetch_add(1, Ordering::Relaxed);
        } else {
            let opts = PutOptions {
                mode: up.mode,
                attributes: up.attributes,
                ..PutOptions::default()
            };
            let put = timeout(
                self.settings.write_timeout,
                self.client
                    .put_opts(&up.path, PutPayload::from_bytes(up.body), opts),
            )
            .await;
            match put {
                Ok(Ok(_)) | Ok(Err(object_store::Error::AlreadyExists { .. })) => {
                    self.breaker.success();
                    self.stats.writes.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Err(object_store::Error::Precondition { .. })) => self.breaker.success(),
                Ok(Err(e)) => self.failure(&format!("write: {e}")),
                Err(_) => self.failure(&format!(
                    "write: no answer within {:?}",
                    self.settings.write_timeout
                )),
            }
        }
        self.queued_bytes.fetch_sub(len, Ordering::AcqRel);
        self.done();
    }

    /// Wait until every queued upload has finished, at most `within` (graceful shutdown,
    /// `imgcdn warm --offline`). True when the queue is empty.
    pub async fn flush(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            let drained = self.drained.notified();
            if self.pending.load(Ordering::Acquire) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, drained).await.is_err() {
                return self.pending.load(Ordering::Acquire) == 0;
            }
        }
    }

    /// Purge `source` from the store: delete its objects, log the purge for the other
    /// instances, and delete again once work in flight anywhere has settled. `Err` when the
    /// first delete or the log write failed (the caller reports it; the store may still serve
    /// the objects until the second delete or their TTL).
    pub async fn purge(self: &Arc<Self>, source: &Key) -> Result<(), String> {
        let at = now_ms();
        self.note_purge(*source, at);
        self.stats.purges.fetch_add(1, Ordering::Relaxed);
        let deleted = self.delete_source(source).await;
        let name = format!("{at:013}-{}", source.hex());
        let logged = timeout(
            self.settings.write_timeout,
            self.client
                .put(&self.purge_log().join(name.as_str()), PutPayload::new()),
        )
        .await;
        {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            seen.0.insert(name);
        }
        let store = self.clone();
        let source = *source;
        let wait = self.settings.write_timeout + self.settings.settle + self.settings.purge_poll;
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            if let Err(e) = store.delete_source(&source).await {
                tracing::warn!(key = %source, "second store purge failed: {e}");
            }
        });
        deleted?;
        match logged {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("store purge log: {e}")),
            Err(_) => Err("store purge log: timed out".to_owned()),
        }
    }

    /// Delete every object of `source` (one listing, bulk deletes).
    pub async fn delete_source(&self, source: &Key) -> Result<(), String> {
        let prefix = self.source_dir(source);
        let client = self.client.clone();
        let work = async move {
            let locations = client
                .list(Some(&prefix))
                .map(|m| m.map(|m| m.location))
                .boxed();
            let mut results = client.delete_stream(locations);
            while let Some(r) = results.next().await {
                match r {
                    Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(format!("store delete: {e}")),
                }
            }
            Ok(())
        };
        timeout(self.settings.write_timeout * 3, work)
            .await
            .map_err(|_| "store delete: timed out".to_owned())?
    }

    /// Read the purge log for entries not yet applied: the sources purged on any instance
    /// since the last call (or, at start-up, within the last [`PURGE_MEMORY`]).
    pub async fn poll_purges(&self) -> Result<Vec<Key>, String> {
        let since = {
            let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            seen.1
        };
        let from = since.saturating_sub(PURGE_SKEW.as_millis() as u64);
        let offset = self.purge_log().join(format!("{from:013}").as_str());
        let log = self.purge_log();
        let listed = timeout(self.settings.write_timeout, async {
            let mut names = Vec::new();
            let mut list = self.client.list_with_offset(Some(&log), &offset);
            while let Some(meta) = list.next().await {
                let meta = meta.map_err(|e| format!("purge log: {e}"))?;
                if let Some(name) = meta.location.filename() {
                    names.push(name.to_owned());
                }
                if names.len() > 100_000 {
                    break;
                }
            }
            Ok::<_, String>(names)
        })
        .await
        .map_err(|_| "purge log: timed out".to_owned())??;
        let mut new = Vec::new();
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let cutoff = now_ms().saturating_sub(PURGE_MEMORY.as_millis() as u64);
        for name in listed {
            let Some((at, hex)) = parse_log_name(&name) else {
                continue;
            };
            if at > seen.1 {
                seen.1 = at;
            }
            if at < cutoff || !seen.0.insert(name) {
                continue;
            }
            self.note_purge(hex, at);
            new.push(hex);
        }
        seen.0
            .retain(|n| parse_log_name(n).is_some_and(|(at, _)| at >= cutoff));
        drop(seen);
        if !self.polled.swap(true, Ordering::AcqRel) {
            self.first_poll.notify_waiters();
        }
        Ok(new)
    }

    pub fn snapshot(&self) -> Snapshot {
        let s = &self.stats;
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Snapshot {
            hits: l(&s.hits),
            misses: l(&s.misses),
            errors: l(&s.errors),
            skipped: l(&s.skipped),
            corrupt: l(&s.corrupt),
            writes: l(&s.writes),
            writes_dropped: l(&s.writes_dropped),
            write_errors: l(&s.write_errors),
            reads: l(&s.reads),
            read_seconds: l(&s.read_seconds_micros) as f64 / 1e6,
            queue_entries: self.pending.load(Ordering::Relaxed),
            queue_bytes: self.queued_bytes.load(Ordering::Relaxed),
            breaker_open: self.breaker.is_open(),
            purges: l(&s.purges),
        }
    }
}

/// `<13-digit ms>-<64 hex>` → (ms, source key).
fn parse_log_name(name: &str) -> Option<(u64, Key)> {
    let (at, hex) = name.split_once('-')?;
    if at.len() != 13 || hex.len() != 64 {
        return None;
    }
    let at = at.parse().ok()?;
    let mut key = [0u8; 32];
    for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        key[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some((at, Key(key)))
}

/// The upload dispatcher: takes queued uploads and runs at most `write_concurrency` at once.
/// Ends when the store is dropped.
async fn uploads(store: std::sync::Weak<Store>, mut rx: mpsc::Receiver<Upload>) {
    let Some(limit) = store.upgrade().map(|s| s.settings.write_concurrency.max(1)) else {
        return;
    };
    let permits = Arc::new(tokio::sync::Semaphore::new(limit));
    while let Some(up) = rx.recv().await {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let Some(store) = store.upgrade() else {
            return;
        };
        tokio::spawn(async move {
            store.upload(up).await;
            drop(permit);
        });
    }
}

/// A circuit breaker: closed → open after `threshold` consecutive failures; open → half-open
/// (one probe) after the open time, which doubles (to a minute) while probes fail.
#[derive(Debug)]
struct Breaker {
    threshold: u32,
    base: Duration,
    state: Mutex<BreakerState>,
}

#[derive(Debug, Clone, Copy)]
enum BreakerState {
    Closed { failures: u32 },
    Open { until: Instant, wait: Duration },
    HalfOpen { wait: Duration },
}

const MAX_OPEN: Duration = Duration::from_secs(60);

impl Breaker {
    fn new(threshold: u32, base: Duration) -> Breaker {
        Breaker {
            threshold: threshold.max(1),
            base,
            state: Mutex::new(BreakerState::Closed { failures: 0 }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BreakerState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// May a request go to the store now? An open breaker whose time is up lets one probe
    /// through (half-open) and refuses the rest until it is answered.
    fn allow(&self) -> bool {
        let mut s = self.lock();
        match *s {
            BreakerState::Closed { .. } => true,
            BreakerState::Open { until, wait } if Instant::now() >= until => {
                *s = BreakerState::HalfOpen { wait };
                true
            }
            BreakerState::Open { .. } | BreakerState::HalfOpen { .. } => false,
        }
    }

    fn is_open(&self) -> bool {
        !matches!(*self.lock(), BreakerState::Closed { .. })
    }

    fn success(&self) {
        *self.lock() = BreakerState::Closed { failures: 0 };
    }

    /// Count a failure; true when this one opened the breaker.
    fn failure(&self) -> bool {
        let mut s = self.lock();
        let (open, wait) = match *s {
            BreakerState::Closed { failures } if failures + 1 >= self.threshold => {
                (true, self.base)
            }
            BreakerState::Closed { failures } => {
                *s = BreakerState::Closed {
                    failures: failures + 1,
                };
                (false, self.base)
            }
            BreakerState::HalfOpen { wait } => (false, (wait * 2).min(MAX_OPEN)),
            BreakerState::Open { until, wait } => {
                // A request that started before the breaker opened: keep the state.
                *s = BreakerState::Open { until, wait };
                return false;
            }
        };
        if open || matches!(*s, BreakerState::HalfOpen { .. }) {
            *s = BreakerState::Open {
                until: Instant::now() + wait,
                wait,
            };
        }
        open
    }
}

/// The store's settings in tests.
#[cfg(test)]
pub fn test_settings() -> Settings {
    Settings {
        url: "memory:///".into(),
        endpoint: bucket::Endpoint::default(),
        connect_timeout: Duration::from_secs(1),
        read_timeout: Duration::from_millis(300),
        original_read_timeout: Duration::from_secs(2),
        write_timeout: Duration::from_secs(5),
        queue_entries: 16,
        queue_bytes: 1 << 20,
        write_concurrency: 2,
        keep_sources: false,
        breaker_failures: 3,
        breaker_open: Duration::from_secs(10),
        purge_poll: Duration::from_secs(1),
        settle: Duration::from_secs(1),
    }
}

#[cfg(test)]
mod tests;
