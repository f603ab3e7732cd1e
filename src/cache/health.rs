//! How the disk tier is doing, for `/metrics` and the logs: whether it is degraded (its last
//! write failed or was skipped for lack of free space), how many writes failed or were skipped,
//! and warnings limited to one a minute, each saying how many were suppressed since the last.
//!
//! A degraded disk tier never fails a request or `/ready`: the memory tier goes on serving,
//! and the state clears by itself with the next write that succeeds. This module does no I/O.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most one warning of a kind per this long.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// A snapshot for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskHealth {
    /// The disk tier's last write failed or was skipped (full, read-only, below its
    /// free-space watermark).
    pub degraded: bool,
    pub write_failures: u64,
    /// Writes not attempted because free space was below the low watermark.
    pub writes_skipped: u64,
    /// Free bytes on the cache filesystem at the last check (0: unknown or no disk tier).
    pub free_bytes: u64,
}

#[derive(Debug, Default)]
pub struct Health {
    degraded: AtomicBool,
    write_failures: AtomicU64,
    writes_skipped: AtomicU64,
    write_warnings: Throttle,
    read_warnings: Throttle,
}

impl Health {
    pub fn degraded(&self) -> bool {
        self.degraded.load(Ordering::Relaxed)
    }

    pub fn snapshot(&self, free_bytes: u64) -> DiskHealth {
        DiskHealth {
            degraded: self.degraded(),
            write_failures: self.write_failures.load(Ordering::Relaxed),
            writes_skipped: self.writes_skipped.load(Ordering::Relaxed),
            free_bytes,
        }
    }

    /// A write (or the sweeper's probe write) went through: the tier is healthy again.
    pub fn write_ok(&self) {
        if self.degraded.swap(false, Ordering::Relaxed) {
            tracing::info!("disk cache writable again");
        }
    }

    pub fn write_failed(&self, error: &std::io::Error) {
        self.degraded.store(true, Ordering::Relaxed);
        self.write_failures.fetch_add(1, Ordering::Relaxed);
        if let Some(suppressed) = self.write_warnings.allow(Instant::now()) {
            tracing::warn!(
                %error,
                suppressed,
                "disk cache write failed; serving from memory until writes succeed again"
            );
        }
    }

    pub fn write_skipped(&self, free_bytes: u64) {
        self.degraded.store(true, Ordering::Relaxed);
        self.writes_skipped.fetch_add(1, Ordering::Relaxed);
        if let Some(suppressed) = self.write_warnings.allow(Instant::now()) {
            tracing::warn!(
                free_bytes,
                suppressed,
                "disk cache write skipped: free space below cache.disk_min_free; evicting"
            );
        }
    }

    pub fn read_failed(&self, error: &std::io::Error) {
        if let Some(suppressed) = self.read_warnings.allow(Instant::now()) {
            tracing::warn!(%error, suppressed, "disk cache read failed");
        }
    }
}

/// Lets one message through per [`WARN_EVERY`] and counts the rest.
#[derive(Debug, Default)]
struct Throttle {
    last: Mutex<Option<Instant>>,
    suppressed: AtomicU64,
}

impl Throttle {
    /// `Some(messages suppressed since the last one let through)` when one may be logged now.
    fn allow(&self, now: Instant) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        match *last {
            Some(at) if now.saturating_duration_since(at) < WARN_EVERY => {
                self.suppressed.fetch_add(1, Ordering::Relaxed);
                None
            }
            _ => {
                *last = Some(now);
                Some(self.suppressed.swap(0, Ordering::Relaxed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_lets_one_through_a_minute_and_counts_the_rest() {
        let t = Throttle::default();
        let start = Instant::now();
        assert_eq!(t.allow(start), Some(0));
        assert_eq!(t.allow(start + Duration::from_secs(1)), None);
        assert_eq!(t.allow(start + Duration::from_secs(59)), None);
        assert_eq!(t.allow(start + Duration::from_secs(60)), Some(2));
        assert_eq!(t.allow(start + Duration::from_secs(61)), None);
    }

    #[test]
    fn degraded_until_a_write_succeeds() {
        let h = Health::default();
        assert!(!h.degraded());
        h.write_failed(&std::io::Error::other("read-only"));
        h.write_skipped(10);
        assert_eq!(
            h.snapshot(10),
            DiskHealth {
                degraded: true,
                write_failures: 1,
                writes_skipped: 1,
                free_bytes: 10,
            }
        );
        h.write_ok();
        assert!(!h.degraded());
        assert_eq!(h.snapshot(0).write_failures, 1, "counters only grow");
    }
}
