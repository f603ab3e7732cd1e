//! Free space on the disk tier's filesystem: the low and high watermarks set by
//! `cache.disk_min_free_mb` / `cache.disk_min_free_percent`, how much a sweep should evict,
//! and the one `statvfs` the disk tier reads free space with (through rustix: no unsafe code
//! of ours). Nothing here walks the tier or touches a cache file.

use std::io;
use std::path::Path;

/// A sweep over the cap deletes down to this fraction of it, so it does not run on every write.
const CAP_TARGET: f64 = 0.9;

/// How much free space the tier leaves on its filesystem (`cache.disk_min_free_mb`,
/// `cache.disk_min_free_percent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinFree {
    pub bytes: u64,
    pub percent: u64,
}

/// Free space on the tier's filesystem and its watermarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Room {
    pub free: u64,
    /// Below this, writes are skipped and the sweeper evicts.
    pub low: u64,
    /// The sweeper evicts until free space is back above this.
    pub high: u64,
}

impl Room {
    pub fn new(min: MinFree, free: u64, total: u64) -> Room {
        let (low, high) = watermarks(min, total);
        Room { free, low, high }
    }

    pub fn short(&self) -> bool {
        self.free < self.low
    }
}

/// The (low, high) free-space watermarks on a filesystem of `total` bytes: the low one is the
/// smaller of `min.bytes` and `min.percent` of the filesystem, so neither a small volume nor a
/// huge one is asked for an unreasonable share (0 in either turns the watermarks off); the high
/// one, where eviction stops, is a quarter above it, so one sweep makes room for many writes.
pub fn watermarks(min: MinFree, total: u64) -> (u64, u64) {
    let share = u128::from(total) * u128::from(min.percent.min(100)) / 100;
    let low = min.bytes.min(u64::try_from(share).unwrap_or(u64::MAX));
    (low, low.saturating_add(low / 4))
}

/// Bytes a sweep should evict from a tier holding `total` bytes under `cap`: enough to go
/// back under the cap's target, to bring free space up to the high watermark, and after a
/// write failed for lack of space (`pressure`) a tenth of the tier, whichever is most.
pub fn excess(total: u64, cap: u64, room: Option<Room>, pressure: bool) -> u64 {
    let mut need = 0;
    if total > cap {
        need = total - (cap as f64 * CAP_TARGET) as u64;
    }
    if let Some(room) = room.filter(Room::short) {
        need = need.max(room.high - room.free);
    }
    if pressure {
        need = need.max(total.div_ceil(10));
    }
    need.min(total)
}

/// The write failed because the filesystem or the user's quota is full.
pub fn out_of_space(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

/// (free bytes for unprivileged users, size in bytes) of the filesystem holding `dir`.
#[cfg(unix)]
pub fn space(dir: &Path) -> Option<(u64, u64)> {
    let s = rustix::fs::statvfs(dir).ok()?;
    Some((
        s.f_bavail.saturating_mul(s.f_frsize),
        s.f_blocks.saturating_mul(s.f_frsize),
    ))
}

#[cfg(not(unix))]
pub fn space(_dir: &Path) -> Option<(u64, u64)> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn watermarks_take_the_smaller_of_size_and_share() {
        let min = MinFree {
            bytes: 1024 * MIB,
            percent: 5,
        };
        // A large volume: 1 GiB is kept free, eviction stops at 1.25 GiB.
        assert_eq!(watermarks(min, 1000 * 1024 * MIB), (1024 * MIB, 1280 * MIB));
        // A 4 GiB volume: 5 % of it.
        let (low, high) = watermarks(min, 4096 * MIB);
        assert_eq!(low, 4096 * MIB / 20);
        assert_eq!(high, low + low / 4);
        // Zero in either turns the watermarks off.
        for off in [MinFree { bytes: 0, ..min }, MinFree { percent: 0, ..min }] {
            assert_eq!(watermarks(off, 4096 * MIB), (0, 0));
            assert!(!Room::new(off, 0, 4096 * MIB).short());
        }
        assert!(Room::new(min, low - 1, 4096 * MIB).short());
        assert!(!Room::new(min, low, 4096 * MIB).short());
    }

    #[test]
    fn excess_covers_the_cap_the_free_space_and_out_of_space_writes() {
        let room = |free| Room {
            free,
            low: 100,
            high: 125,
        };
        assert_eq!(excess(500, 1000, None, false), 0);
        assert_eq!(excess(500, 1000, Some(room(100)), false), 0, "at the mark");
        assert_eq!(
            excess(1100, 1000, None, false),
            200,
            "down to 90 % of the cap"
        );
        assert_eq!(
            excess(500, 1000, Some(room(40)), false),
            85,
            "up to the high mark"
        );
        assert_eq!(
            excess(50, 1000, Some(room(40)), false),
            50,
            "at most the tier"
        );
        assert_eq!(excess(500, 1000, None, true), 50, "a tenth after ENOSPC");
        assert_eq!(
            excess(1100, 1000, Some(room(40)), true),
            200,
            "the most of them"
        );
    }
}
