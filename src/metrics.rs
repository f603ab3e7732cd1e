//! Prometheus metrics for `GET /metrics` (OpenMetrics text, through `prometheus-client`: an
//! explicit registry per server, no process-global state).
//!
//! Counted as things happen: requests by route and status, request latency by route, stage
//! latency (fetch, decode, resize, encode), cache lookups by tier and result, coalesced waits,
//! origin errors by class. Read when scraped: cache bytes and entries per tier, jobs queued,
//! workers busy, process resident memory, and the disk tier's health (degraded, failed and
//! skipped writes, free space).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::cache::store::Snapshot;
use crate::cache::DiskHealth;

/// Which handler answered.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Route {
    Img,
    Meta,
    Health,
    Ready,
    Metrics,
    Admin,
    /// A `[compat]` dialect's route.
    Compat,
    Other,
}

impl Route {
    /// The route of a request path.
    pub fn of(path: &str) -> Route {
        match path {
            "/health" => Route::Health,
            "/ready" => Route::Ready,
            "/metrics" => Route::Metrics,
            p if p.starts_with("/img/") => Route::Img,
            p if p.starts_with("/meta/") => Route::Meta,
            p if p.starts_with("/admin/") => Route::Admin,
            _ => Route::Other,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Route::Img => "img",
            Route::Meta => "meta",
            Route::Health => "health",
            Route::Ready => "ready",
            Route::Metrics => "metrics",
            Route::Admin => "admin",
            Route::Compat => "compat",
            Route::Other => "other",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

/// A stage of making a rendition.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Stage {
    Fetch,
    Decode,
    Resize,
    Encode,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::Fetch => "fetch",
            Stage::Decode => "decode",
            Stage::Resize => "resize",
            Stage::Encode => "encode",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: &'static str,
}

/// Where a cache lookup was answered.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Lookup {
    MemoryHit,
    DiskHit,
    /// Answered from the shared store after memory and disk missed (counted besides the miss).
    StoreHit,
    Miss,
}

impl Lookup {
    fn name(self) -> &'static str {
        match self {
            Lookup::MemoryHit => "memory_hit",
            Lookup::DiskHit => "disk_hit",
            Lookup::StoreHit => "store_hit",
            Lookup::Miss => "miss",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LookupLabels {
    result: &'static str,
}

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
enum Tier {
    Memory,
    Disk,
}

impl Tier {
    fn name(self) -> &'static str {
        match self {
            Tier::Memory => "memory",
            Tier::Disk => "disk",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TierLabels {
    tier: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabels {
    class: &'static str,
}

/// What the server reads for the gauges at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Levels {
    pub memory_bytes: u64,
    pub memory_entries: u64,
    pub disk_bytes: u64,
    pub disk_entries: u64,
    pub queued: usize,
    pub workers_busy: usize,
    pub disk: DiskHealth,
    /// The shared store's counters; `None` without a store.
    pub store: Option<Snapshot>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// The shared store's families: mirrors of the counters the store keeps.
struct StoreMetrics {
    reads: Family<ResultLabels, Counter>,
    read_seconds: Counter<f64, AtomicU64>,
    writes: Family<ResultLabels, Counter>,
    corrupt: Counter,
    purges: Counter,
    queue_entries: Gauge,
    queue_bytes: Gauge,
    breaker_open: Gauge,
}

impl StoreMetrics {
    fn register(registry: &mut Registry) -> StoreMetrics {
        let m = StoreMetrics {
            reads: Family::default(),
            read_seconds: Counter::default(),
            writes: Family::default(),
            corrupt: Counter::default(),
            purges: Counter::default(),
            queue_entries: Gauge::default(),
            queue_bytes: Gauge::default(),
            breaker_open: Gauge::default(),
        };
        registry.register(
            "store_reads",
            "Shared store reads by result (hit, miss, error; skipped: breaker open)",
            m.reads.clone(),
        );
        registry.register(
            "store_read_duration_seconds",
            "Time spent in shared store reads (divide by imgcdn_store_reads_total)",
            m.read_seconds.clone(),
        );
        registry.register(
            "store_writes",
            "Shared store uploads by result (ok, error; dropped: queue full, breaker open, purged)",
            m.writes.clone(),
        );
        registry.register(
            "store_corrupt",
            "Shared store objects that failed their check (deleted, made again)",
            m.corrupt.clone(),
        );
        registry.register(
            "store_purges",
            "Purges sent to the shared store",
            m.purges.clone(),
        );
        registry.register(
            "store_write_queue_entries",
            "Uploads queued or running",
            m.queue_entries.clone(),
        );
        registry.register(
            "store_write_queue_bytes",
            "Bytes of the uploads queued or running",
            m.queue_bytes.clone(),
        );
        registry.register(
            "store_breaker_open",
            "1 while the shared store's circuit breaker is open (reads miss, writes dropped)",
            m.breaker_open.clone(),
        );
        m
    }

    fn set(&self, s: Snapshot) {
        let read_errors = s.errors;
        for (result, v) in [
            ("hit", s.hits),
            ("miss", s.misses),
            ("error", read_errors),
            ("skipped", s.skipped),
        ] {
            self.reads
                .get_or_create(&ResultLabels { result })
                .inner()
                .store(v, Ordering::Relaxed);
        }
        self.read_seconds
            .inner()
            .store(s.read_seconds.to_bits(), Ordering::Relaxed);
        for (result, v) in [
            ("ok", s.writes),
            ("dropped", s.writes_dropped),
            ("error", s.write_errors),
        ] {
            self.writes
                .get_or_create(&ResultLabels { result })
                .inner()
                .store(v, Ordering::Relaxed);
        }
        self.corrupt.inner().store(s.corrupt, Ordering::Relaxed);
        self.purges.inner().store(s.purges, Ordering::Relaxed);
        self.queue_entries.set(gauge_value(s.queue_entries));
        self.queue_bytes.set(gauge_value(s.queue_bytes));
        self.breaker_open.set(i64::from(s.breaker_open));
    }
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<RouteLabels, Histogram>,
    stage_seconds: Family<StageLabels, Histogram>,
    lookups: Family<LookupLabels, Counter>,
    coalesced: Counter,
    origin_errors: Family<ClassLabels, Counter>,
    cache_bytes: Family<TierLabels, Gauge>,
    cache_entries: Family<TierLabels, Gauge>,
    queued: Gauge,
    workers_busy: Gauge,
    resident: Gauge,
    disk_degraded: Gauge,
    disk_write_failures: Counter,
    disk_writes_skipped: Counter,
    disk_free: Gauge,
    store: StoreMetrics,
}

fn seconds_histogram() -> Histogram {
    // 0.5 ms .. ~16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("imgcdn");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        let request_seconds =
            Family::<RouteLabels, Histogram>::new_with_constructor(seconds_histogram as fn() -> _);
        registry.register(
            "http_request_duration_seconds",
            "Time from request to response headers",
            request_seconds.clone(),
        );
        let stage_seconds =
            Family::<StageLabels, Histogram>::new_with_constructor(seconds_histogram as fn() -> _);
        registry.register(
            "stage_duration_seconds",
            "Time spent in each stage of making a rendition",
            stage_seconds.clone(),
        );
        let lookups = Family::<LookupLabels, Counter>::default();
        registry.register(
            "cache_lookups",
            "Rendition lookups by where they were answered",
            lookups.clone(),
        );
        let coalesced = Counter::default();
        registry.register(
            "coalesced_waits",
            "Requests that waited for a rendition or original another request was making",
            coalesced.clone(),
        );
        let origin_errors = Family::<ClassLabels, Counter>::default();
        registry.register(
            "origin_errors",
            "Failed origin fetches by class",
            origin_errors.clone(),
        );
        let cache_bytes = Family::<TierLabels, Gauge>::default();
        registry.register(
            "cache_bytes",
            "Bytes held per cache tier",
            cache_bytes.clone(),
        );
        let cache_entries = Family::<TierLabels, Gauge>::default();
        registry.register(
            "cache_entries",
            "Entries per cache tier (disk: approximate between sweeps)",
            cache_entries.clone(),
        );
        let queued = Gauge::default();
        registry.register(
            "queue_depth",
            "Image jobs waiting to be admitted",
            queued.clone(),
        );
        let workers_busy = Gauge::default();
        registry.register(
            "workers_busy",
            "Image jobs admitted (fetching or on a worker)",
            workers_busy.clone(),
        );
        let resident = Gauge::default();
        registry.register(
            "process_resident_memory_bytes",
            "Resident set size of the process",
            resident.clone(),
        );
        let disk_degraded = Gauge::default();
        registry.register(
            "disk_degraded",
            "1 while the disk cache tier cannot take writes (full, read-only, or free space \
             below cache.disk_min_free); requests are then served from memory",
            disk_degraded.clone(),
        );
        let disk_write_failures = Counter::default();
        registry.register(
            "disk_write_failures",
            "Disk cache writes that failed",
            disk_write_failures.clone(),
        );
        let disk_writes_skipped = Counter::default();
        registry.register(
            "disk_writes_skipped",
            "Disk cache writes skipped because free space was below the low watermark",
            disk_writes_skipped.clone(),
        );
        let disk_free = Gauge::default();
        registry.register(
            "disk_free_bytes",
            "Free bytes on the disk cache's filesystem at the last check (0: unknown)",
            disk_free.clone(),
        );
        let store = StoreMetrics::register(&mut registry);
        Metrics {
            store,
            registry,
            requests,
            request_seconds,
            stage_seconds,
            lookups,
            coalesced,
            origin_errors,
            cache_bytes,
            cache_entries,
            queued,
            workers_busy,
            resident,
            disk_degraded,
            disk_write_failures,
            disk_writes_skipped,
            disk_free,
        }
    }
}

fn gauge_value(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Metrics {
    pub fn request(&self, route: Route, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.name(),
                status,
            })
            .inc();
        self.request_seconds
            .get_or_create(&RouteLabels {
                route: route.name(),
            })
            .observe(took.as_secs_f64());
    }

    pub fn stage(&self, stage: Stage, took: Duration) {
        self.stage_seconds
            .get_or_create(&StageLabels {
                stage: stage.name(),
            })
            .observe(took.as_secs_f64());
    }

    pub fn lookup(&self, result: Lookup) {
        self.lookups
            .get_or_create(&LookupLabels {
                result: result.name(),
            })
            .inc();
    }

    pub fn coalesced(&self) {
        self.coalesced.inc();
    }

    /// `class` is the error's stable code (`origin-error`, `origin-timeout`, …).
    pub fn origin_error(&self, class: &'static str) {
        self.origin_errors
            .get_or_create(&ClassLabels { class })
            .inc();
    }

    /// The text exposition, with the gauges set from `levels` and the process's memory.
    pub fn render(&self, levels: Levels) -> String {
        for (tier, bytes, entries) in [
            (Tier::Memory, levels.memory_bytes, levels.memory_entries),
            (Tier::Disk, levels.disk_bytes, levels.disk_entries),
        ] {
            let labels = TierLabels { tier: tier.name() };
            self.cache_bytes
                .get_or_create(&labels)
                .set(gauge_value(bytes));
            self.cache_entries
                .get_or_create(&labels)
                .set(gauge_value(entries));
        }
        self.queued.set(gauge_value(levels.queued as u64));
        self.workers_busy
            .set(gauge_value(levels.workers_busy as u64));
        self.resident.set(gauge_value(resident_bytes()));
        let disk = levels.disk;
        self.disk_degraded.set(i64::from(disk.degraded));
        // The cache keeps these counts; the counters only mirror them.
        self.disk_write_failures
            .inner()
            .store(disk.write_failures, Ordering::Relaxed);
        self.disk_writes_skipped
            .inner()
            .store(disk.writes_skipped, Ordering::Relaxed);
        self.disk_free.set(gauge_value(disk.free_bytes));
        self.store.set(levels.store.unwrap_or_default());
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
            let _ = writeln!(out, "# metrics encoding failed");
        }
        out
    }
}

/// Resident set size from `/proc/self/statm` (0 where there is none).
fn resident_bytes() -> u64 {
    let Ok(statm) = std::fs::read_to_string("/proc/self/statm") else {
        return 0;
    };
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_has_every_family_with_values() {
        let m = Metrics::default();
        m.request(Route::Img, 200, Duration::from_millis(3));
        m.stage(Stage::Decode, Duration::from_millis(2));
        m.lookup(Lookup::MemoryHit);
        m.coalesced();
        m.origin_error("origin-timeout");
        let text = m.render(Levels {
            memory_bytes: 10,
            memory_entries: 1,
            disk_bytes: 20,
            disk_entries: 2,
            queued: 3,
            workers_busy: 1,
            disk: DiskHealth {
                degraded: true,
                write_failures: 4,
                writes_skipped: 5,
                free_bytes: 6,
            },
            store: Some(Snapshot {
                hits: 7,
                breaker_open: true,
                ..Snapshot::default()
            }),
        });
        for needle in [
            "imgcdn_http_requests_total{route=\"img\",status=\"200\"} 1",
            "imgcdn_http_request_duration_seconds_bucket{le=",
            "imgcdn_stage_duration_seconds_count{stage=\"decode\"} 1",
            "imgcdn_cache_lookups_total{result=\"memory_hit\"} 1",
            "imgcdn_coalesced_waits_total 1",
            "imgcdn_origin_errors_total{class=\"origin-timeout\"} 1",
            "imgcdn_cache_bytes{tier=\"disk\"} 20",
            "imgcdn_cache_entries{tier=\"memory\"} 1",
            "imgcdn_queue_depth 3",
            "imgcdn_workers_busy 1",
            "imgcdn_disk_degraded 1",
            "imgcdn_disk_write_failures_total 4",
            "imgcdn_disk_writes_skipped_total 5",
            "imgcdn_disk_free_bytes 6",
            "imgcdn_store_reads_total{result=\"hit\"} 7",
            "imgcdn_store_breaker_open 1",
            "imgcdn_process_resident_memory_bytes ",
            "# EOF",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        assert!(!text.contains("imgcdn_process_resident_memory_bytes 0\n"));
    }

    #[test]
    fn routes_of_paths() {
        assert_eq!(Route::of("/img/w_1/x.jpg"), Route::Img);
        assert_eq!(Route::of("/meta/_/x.jpg"), Route::Meta);
        assert_eq!(Route::of("/health"), Route::Health);
        assert_eq!(Route::of("/admin/purge"), Route::Admin);
        assert_eq!(Route::of("/favicon.ico"), Route::Other);
    }
}
