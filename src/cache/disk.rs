//! The disk tier: one file per entry, laid out by source so a source's variants can be found
//! and purged together: `<dir>/<first 2 hex of source>/<source hex>/<key hex>`.
//!
//! Writes go to a temporary file in the same directory and are renamed into place, so a reader
//! sees a whole file or none; every read is checked by `Entry::decode`, so a torn or corrupt
//! file (e.g. after `kill -9` mid-write, or a power cut before the data reached the disk) is
//! deleted and treated as a miss, never served. A read touches the file's modification time,
//! which is the "last used" clock of the sweeper.
//!
//! The sweeper walks the tier, removes stale temporaries and expired entries, and deletes
//! least-recently-used files while the tier is over its cap, while free space on its filesystem
//! (`statvfs`) is below the low watermark (down to the high one), or after a write failed for
//! lack of space (ENOSPC, EDQUOT: a tenth of the tier). Writes are skipped while free space is
//! below the low watermark, so a full volume costs no failing writes and caching resumes by
//! itself once there is room. A walk costs a stat per file, so it runs only when one of those
//! holds or an hourly clean-up is due, never merely on a timer; nothing walks at start-up
//! before serving (the first, counting, sweep runs in the background).
//!
//! All functions are blocking; callers run them on tokio's blocking threads. Errors are returned
//! to the caller, which logs them: a disk failure never fails a request.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::entry::{now_secs, Entry};
use super::key::Key;
use super::room::{excess, out_of_space, space, MinFree, Room};

/// Temporary files carry this in their name; ones older than [`STALE_TEMP`] are leftovers.
const TEMP_MARK: &str = ".tmp.";
const STALE_TEMP: Duration = Duration::from_secs(3600);
/// A full walk (stale temporaries, expired entries, an exact count) runs at least this often.
const MAINTENANCE: Duration = Duration::from_secs(3600);
/// Sweeps asked for by skipped or failed writes (free space, ENOSPC) start at most this often:
/// when nothing of ours is left to evict, requests must not each start a walk.
const RELIEF_GAP: Duration = Duration::from_secs(5);
/// Paths remembered as undeletable (a read-only disk) before the memory is cleared.
const UNREMOVABLE_MAX: usize = 4096;

#[derive(Debug)]
pub struct Disk {
    dir: PathBuf,
    cap: u64,
    ttl: Duration,
    min_free: MinFree,
    /// Bytes on disk as last counted by a sweep plus what was written since.
    usage: AtomicU64,
    /// Files in the tier (approximate between sweeps, like `usage`).
    entries: AtomicU64,
    sweeping: AtomicBool,
    /// Free bytes on the filesystem at the last look (for `/metrics`).
    free: AtomicU64,
    /// A write failed for lack of space since the last sweep: the next one evicts.
    pressure: AtomicBool,
    /// When the last walk finished (seconds since the epoch; 0: never, so usage is unknown).
    swept_at: AtomicU64,
    /// When a skipped or failed write last asked for a sweep (seconds since the epoch).
    relief_at: AtomicU64,
    /// Files that failed their check but could not be deleted (a read-only disk): read as a
    /// quiet miss, so they are not read, logged and dropped again on every request.
    unremovable: Mutex<HashSet<PathBuf>>,
}

/// What a read found.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    Hit(Entry),
    Miss,
    /// The entry was older than the TTL and was deleted (or is remembered as undeletable).
    Expired,
    /// The file failed its check and was deleted (or is remembered as undeletable).
    Corrupt,
}

/// What a write did.
#[derive(Debug, PartialEq, Eq)]
pub enum Write {
    /// Written; `over_cap` when the tier is now over its cap and a sweep should run.
    Stored { over_cap: bool },
    /// Not attempted: free space is below the low watermark.
    Skipped { free: u64 },
}

impl Disk {
    pub fn new(dir: PathBuf, cap: u64, ttl: Duration, min_free: MinFree) -> Self {
        Disk {
            dir,
            cap,
            ttl,
            min_free,
            usage: AtomicU64::new(0),
            entries: AtomicU64::new(0),
            sweeping: AtomicBool::new(false),
            free: AtomicU64::new(0),
            pressure: AtomicBool::new(false),
            swept_at: AtomicU64::new(0),
            relief_at: AtomicU64::new(0),
            unremovable: Mutex::new(HashSet::new()),
        }
    }

    #[cfg(test)]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory exists (or can be made), takes a write and has room: the sweeper asks
    /// this to clear a degraded state when no request has written since.
    pub fn writable(&self) -> bool {
        let probe = self.dir.join(".write-probe");
        !self.room().is_some_and(|r| r.short())
            && fs::create_dir_all(&self.dir).is_ok()
            && fs::write(&probe, b"ok").is_ok()
            && fs::remove_file(&probe).is_ok()
    }

    /// Files in the tier (approximate between sweeps).
    pub fn entries(&self) -> u64 {
        self.entries.load(Ordering::Relaxed)
    }

    /// Bytes in the tier (approximate between sweeps).
    pub fn usage(&self) -> u64 {
        self.usage.load(Ordering::Relaxed)
    }

    /// Free bytes on the tier's filesystem at the last look (0: not known yet).
    pub fn free_bytes(&self) -> u64 {
        self.free.load(Ordering::Relaxed)
    }

    /// Free space on the tier's filesystem now (one `statvfs`); `None` when it cannot be
    /// known (no directory yet, not a Unix).
    pub fn room(&self) -> Option<Room> {
        let (free, total) = space(&self.dir)?;
        self.free.store(free, Ordering::Relaxed);
        Some(Room::new(self.min_free, free, total))
    }

    fn source_dir(&self, source: &Key) -> PathBuf {
        let hex = source.hex();
        self.dir.join(&hex[..2]).join(hex)
    }

    pub fn path(&self, source: &Key, key: &Key) -> PathBuf {
        self.source_dir(source).join(key.hex())
    }

    pub fn read(&self, source: &Key, key: &Key) -> io::Result<Read> {
        let path = self.path(source, key);
        if self.is_unremovable(&path) {
            return Ok(Read::Miss);
        }
        let data = match fs::read(&path) {
            Ok(data) => data,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Read::Miss),
            Err(e) => return Err(e),
        };
        let len = data.len() as u64;
        match Entry::decode(Bytes::from(data)) {
            Ok(entry) if !entry.expired(self.ttl) => {
                // Mark as recently used for the sweeper; failing to is harmless.
                if let Ok(file) = fs::File::options().write(true).open(&path) {
                    let _ = file.set_modified(SystemTime::now());
                }
                Ok(Read::Hit(entry))
            }
            Ok(_) => {
                self.drop_file(path, len);
                Ok(Read::Expired)
            }
            Err(_) => {
                self.drop_file(path, len);
                Ok(Read::Corrupt)
            }
        }
    }

    /// Delete a file that must not be served; remember it when it cannot be deleted.
    fn drop_file(&self, path: PathBuf, len: u64) {
        match fs::remove_file(&path) {
            Ok(()) => {
                let _ = self
                    .usage
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                        Some(n.saturating_sub(len))
                    });
                let _ = self
                    .entries
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                        Some(n.saturating_sub(1))
                    });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(_) => {
                let mut set = self.unremovable.lock().unwrap_or_else(|p| p.into_inner());
                if set.len() >= UNREMOVABLE_MAX {
                    set.clear();
                }
                set.insert(path);
            }
        }
    }

    fn is_unremovable(&self, path: &Path) -> bool {
        let set = self.unremovable.lock().unwrap_or_else(|p| p.into_inner());
        !set.is_empty() && set.contains(path)
    }

    /// Write atomically (temporary file + rename), unless free space is below the low
    /// watermark. A failure for lack of space (ENOSPC, EDQUOT) makes the next sweep evict.
    pub fn write(&self, source: &Key, key: &Key, entry: &Entry) -> io::Result<Write> {
        if let Some(room) = self.room().filter(Room::short) {
            return Ok(Write::Skipped { free: room.free });
        }
        let path = self.path(source, key);
        let len = match write_file(&path, entry) {
            Ok(len) => len,
            Err(e) => {
                if out_of_space(&e) {
                    self.pressure.store(true, Ordering::Relaxed);
                }
                return Err(e);
            }
        };
        {
            let mut set = self.unremovable.lock().unwrap_or_else(|p| p.into_inner());
            if !set.is_empty() {
                set.remove(&path);
            }
        }
        let usage = self.usage.fetch_add(len, Ordering::Relaxed) + len;
        self.entries.fetch_add(1, Ordering::Relaxed);
        Ok(Write::Stored {
            over_cap: usage > self.cap,
        })
    }

    /// Remove every entry of `source`.
    pub fn purge(&self, source: &Key) -> io::Result<()> {
        match fs::remove_dir_all(self.source_dir(source)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Whether the periodic check should walk the tier now: it was never counted, it is over
    /// its cap, the hourly clean-up is due, or it holds something and a write ran out of space
    /// or free space is below the low watermark. Costs one `statvfs`, no walk.
    pub fn sweep_due(&self) -> bool {
        let last = self.swept_at.load(Ordering::Relaxed);
        if last == 0 || now_secs().saturating_sub(last) >= MAINTENANCE.as_secs() {
            return true;
        }
        if self.usage() > self.cap {
            return true;
        }
        // Checked even with nothing to evict, to keep the free-space gauge current.
        let short = self.room().is_some_and(|r| r.short());
        self.usage() > 0 && (short || self.pressure.load(Ordering::Relaxed))
    }

    /// After a write was skipped or failed for lack of space: whether to start a sweep now
    /// (there is something to evict and none was asked for in the last [`RELIEF_GAP`]).
    pub fn relief_due(&self) -> bool {
        if self.usage() == 0 {
            return false;
        }
        let now = now_secs();
        let last = self.relief_at.load(Ordering::Relaxed);
        now.saturating_sub(last) >= RELIEF_GAP.as_secs()
            && self
                .relief_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// Claim the right to sweep; false when a sweep is already running.
    pub fn start_sweep(&self) -> bool {
        !self.sweeping.swap(true, Ordering::AcqRel)
    }

    /// Count the tier, remove stale temporaries and expired entries, and delete
    /// least-recently-used files while over the cap, short of free space, or after a write ran
    /// out of space (see [`excess`]). Call after [`Disk::start_sweep`].
    pub fn sweep(&self) -> io::Result<Sweep> {
        let result = self.sweep_with(|| self.room());
        self.sweeping.store(false, Ordering::Release);
        result
    }

    /// [`Disk::sweep`] with the free-space probe given (tests fake a filesystem with it).
    fn sweep_with(&self, room: impl Fn() -> Option<Room>) -> io::Result<Sweep> {
        let now = SystemTime::now();
        let pressure = self.pressure.swap(false, Ordering::Relaxed);
        let mut files = Vec::new();
        let mut report = Sweep::default();
        let shards = match fs::read_dir(&self.dir) {
            Ok(shards) => shards,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.count(0, 0);
                return Ok(report);
            }
            Err(e) => return Err(e),
        };
        for shard in shards.flatten() {
            for source in read_dir_or_empty(&shard.path()) {
                let source = source.path();
                for file in read_dir_or_empty(&source) {
                    let Ok(meta) = file.metadata() else { continue };
                    if !meta.is_file() {
                        continue;
                    }
                    let path = file.path();
                    let used = meta.modified().unwrap_or(now);
                    let idle = now.duration_since(used).unwrap_or_default();
                    let is_temp = file.file_name().to_string_lossy().contains(TEMP_MARK);
                    if (is_temp && idle > STALE_TEMP) || (!is_temp && idle > self.ttl) {
                        // Entries idle longer than the TTL are expired whatever their content.
                        if fs::remove_file(&path).is_ok() {
                            report.removed += 1;
                        }
                        continue;
                    }
                    // A fresh temporary is a write in progress: not ours to evict.
                    if !is_temp {
                        files.push((used, meta.len(), path));
                    }
                }
                // Drop the source directory once it is empty (fails harmlessly otherwise).
                let _ = fs::remove_dir(&source);
            }
        }
        let mut total: u64 = files.iter().map(|(_, len, _)| len).sum();
        let mut kept = files.len() as u64;
        let mut need = excess(total, self.cap, room(), pressure);
        if need > 0 {
            files.sort_by_key(|(used, _, _)| *used);
            let mut freed = 0;
            let mut lru = files.iter();
            loop {
                while freed < need {
                    let Some((_, len, path)) = lru.next() else {
                        break;
                    };
                    if fs::remove_file(path).is_ok() {
                        freed += len;
                        total -= len;
                        kept -= 1;
                        report.removed += 1;
                    }
                }
                if freed < need {
                    break; // The tier is empty (or what is left cannot be deleted).
                }
                // File lengths undercount the blocks they held: look at the filesystem again.
                match room().filter(Room::short) {
                    Some(r) => need = freed + (r.high - r.free),
                    None => break,
                }
            }
        }
        report.bytes = total;
        self.count(total, kept);
        Ok(report)
    }

    fn count(&self, bytes: u64, entries: u64) {
        self.usage.store(bytes, Ordering::Relaxed);
        self.entries.store(entries, Ordering::Relaxed);
        self.swept_at.store(now_secs().max(1), Ordering::Relaxed);
    }
}

/// Write `entry` to `path` through a temporary file in the same directory; returns the
/// file's length.
fn write_file(path: &Path, entry: &Entry) -> io::Result<u64> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::other("disk cache path without a parent"));
    };
    fs::create_dir_all(dir)?;
    let header = entry.header();
    let temp = dir.join(format!("{}{TEMP_MARK}{}", name.to_string_lossy(), unique()));
    let result = fs::File::create(&temp)
        .and_then(|mut f| {
            f.write_all(&header)?;
            f.write_all(&entry.body)
        })
        .and_then(|()| fs::rename(&temp, path));
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result?;
    Ok((header.len() + entry.body.len()) as u64)
}

/// What a sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sweep {
    pub bytes: u64,
    pub removed: u64,
}

fn read_dir_or_empty(path: &Path) -> impl Iterator<Item = fs::DirEntry> {
    fs::read_dir(path).into_iter().flatten().flatten()
}

/// A name part no other writer in this or another process uses at the same time.
fn unique() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}.{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> Key {
        Key([n; 32])
    }

    fn entry(len: usize) -> Entry {
        Entry::new(Bytes::from(vec![7u8; len]), "image/png", "\"e\"")
    }

    /// Free space is not watched (the tests' own filesystem may be nearly full).
    const UNWATCHED: MinFree = MinFree {
        bytes: 0,
        percent: 0,
    };

    fn disk(cap: u64) -> (tempfile::TempDir, Disk) {
        let dir = tempfile::tempdir().expect("tempdir");
        let disk = Disk::new(
            dir.path().join("cache"),
            cap,
            Duration::from_secs(3600),
            UNWATCHED,
        );
        (dir, disk)
    }

    /// Write `n` entries of `len` body bytes under one source, the first the least recently
    /// used.
    fn fill(d: &Disk, n: u8, len: usize) {
        for i in 0..n {
            d.write(&key(1), &key(100 + i), &entry(len)).expect("write");
            let f = fs::File::options()
                .write(true)
                .open(d.path(&key(1), &key(100 + i)))
                .expect("open");
            f.set_modified(SystemTime::now() - Duration::from_secs(1000 - u64::from(i)))
                .expect("mtime");
        }
    }

    fn bytes_on_disk(d: &Disk) -> u64 {
        let mut total = 0;
        let mut stack = vec![d.dir().to_path_buf()];
        while let Some(dir) = stack.pop() {
            for e in read_dir_or_empty(&dir) {
                match e.metadata() {
                    Ok(m) if m.is_dir() => stack.push(e.path()),
                    Ok(m) => total += m.len(),
                    Err(_) => {}
                }
            }
        }
        total
    }

    #[test]
    fn disk_write_then_read_hits() {
        let (_t, d) = disk(1 << 20);
        let e = entry(100);
        d.write(&key(1), &key(2), &e).expect("write");
        assert_eq!(d.read(&key(1), &key(2)).expect("read"), Read::Hit(e));
        assert_eq!(d.read(&key(1), &key(3)).expect("read"), Read::Miss);
        let path = d.path(&key(1), &key(2));
        let rel = path.strip_prefix(d.dir()).expect("inside");
        let parts: Vec<_> = rel
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            parts,
            vec![key(1).hex()[..2].to_string(), key(1).hex(), key(2).hex()]
        );
    }

    #[test]
    fn disk_truncated_and_flipped_files_are_dropped() {
        let (_t, d) = disk(1 << 20);
        d.write(&key(1), &key(2), &entry(1000)).expect("write");
        let path = d.path(&key(1), &key(2));
        let data = fs::read(&path).expect("read");
        fs::write(&path, &data[..data.len() - 10]).expect("truncate");
        assert_eq!(d.read(&key(1), &key(2)).expect("read"), Read::Corrupt);
        assert!(!path.exists(), "a corrupt file is deleted");

        d.write(&key(1), &key(2), &entry(1000)).expect("write");
        let mut data = fs::read(&path).expect("read");
        let last = data.len() - 1;
        data[last] ^= 0x10;
        fs::write(&path, &data).expect("flip");
        assert_eq!(d.read(&key(1), &key(2)).expect("read"), Read::Corrupt);
    }

    #[test]
    fn disk_expired_entry_is_dropped() {
        let (_t, d) = disk(1 << 20);
        let mut e = entry(10);
        e.created -= 7200;
        d.write(&key(1), &key(2), &e).expect("write");
        assert_eq!(d.read(&key(1), &key(2)).expect("read"), Read::Expired);
        assert_eq!(d.read(&key(1), &key(2)).expect("read"), Read::Miss);
    }

    #[test]
    fn disk_undeletable_files_read_as_quiet_misses_until_rewritten() {
        // A read-only disk: the file that failed its check stays, and is remembered.
        let (_t, d) = disk(1 << 20);
        d.write(&key(1), &key(2), &entry(10)).expect("write");
        let path = d.path(&key(1), &key(2));
        d.unremovable.lock().expect("lock").insert(path.clone());
        assert_eq!(d.read(&key(1), &key(2)).expect("read"), Read::Miss);
        d.write(&key(1), &key(2), &entry(10)).expect("write");
        assert!(matches!(
            d.read(&key(1), &key(2)).expect("read"),
            Read::Hit(_)
        ));
    }

    /// A fake 200 KB filesystem of which `others` bytes are not ours.
    fn fake_room(d: &Disk, others: u64) -> Option<Room> {
        let total = 200_000;
        let free = total - others.min(total) - bytes_on_disk(d).min(total - others.min(total));
        Some(Room::new(
            MinFree {
                bytes: 20_000,
                percent: 100,
            },
            free,
            total,
        ))
    }

    #[test]
    fn disk_sweep_evicts_lru_until_free_space_is_above_the_high_mark() {
        let (_t, d) = disk(1 << 30);
        fill(&d, 40, 3000);
        // About 120 KB ours, 70 KB others: ~10 KB free, under the 20 KB low mark.
        assert!(fake_room(&d, 70_000).is_some_and(|r| r.short()));
        let report = d.sweep_with(|| fake_room(&d, 70_000)).expect("sweep");
        let room = fake_room(&d, 70_000).expect("room");
        assert!(room.free >= room.high, "{room:?} {report:?}");
        assert!(
            room.free < room.high + 3100,
            "evicted no more than needed: {room:?}"
        );
        assert_eq!(d.usage(), bytes_on_disk(&d));
        // The most recently used survive, the least recently used are gone.
        assert!(d.path(&key(1), &key(139)).exists());
        assert!(!d.path(&key(1), &key(100)).exists());
        assert_eq!(d.entries(), 40 - report.removed);
    }

    #[test]
    fn disk_sweep_empties_the_tier_when_others_fill_the_disk() {
        let (_t, d) = disk(1 << 30);
        fill(&d, 10, 3000);
        let report = d.sweep_with(|| fake_room(&d, 195_000)).expect("sweep");
        assert_eq!((report.removed, report.bytes), (10, 0));
        assert_eq!((d.usage(), d.entries()), (0, 0));
        // Nothing left to evict: a skipped write asks for no sweep.
        assert!(!d.relief_due());
    }

    #[test]
    fn disk_sweep_after_an_out_of_space_write_evicts_a_tenth() {
        let (_t, d) = disk(1 << 30);
        fill(&d, 20, 1000);
        d.pressure.store(true, Ordering::Relaxed);
        let report = d.sweep_with(|| None).expect("sweep");
        assert_eq!(report.removed, 2);
        assert!(!d.path(&key(1), &key(101)).exists());
        assert!(d.path(&key(1), &key(102)).exists());
        // The flag is consumed: the next sweep evicts nothing.
        assert_eq!(d.sweep_with(|| None).expect("sweep").removed, 0);
    }

    #[test]
    fn disk_sweep_is_due_only_when_there_is_work() {
        let (_t, d) = disk(10_000);
        assert!(d.sweep_due(), "never counted");
        fill(&d, 2, 1000);
        assert!(d.start_sweep());
        d.sweep().expect("sweep");
        assert!(!d.sweep_due(), "under the cap, free space unwatched");
        d.pressure.store(true, Ordering::Relaxed);
        assert!(d.sweep_due(), "a write ran out of space");
        d.pressure.store(false, Ordering::Relaxed);
        fill(&d, 12, 1000);
        assert!(d.sweep_due(), "over the cap");
        assert!(d.relief_due());
        assert!(!d.relief_due(), "at most one relief sweep per gap");
    }

    #[test]
    fn disk_sweep_keeps_usage_under_the_cap_evicting_lru() {
        let (_t, d) = disk(10_000);
        for n in 0..30u8 {
            d.write(&key(n % 3), &key(100 + n), &entry(1000))
                .expect("write");
            // Distinct, increasing "last used" times.
            let f = fs::File::options()
                .write(true)
                .open(d.path(&key(n % 3), &key(100 + n)))
                .expect("open");
            f.set_modified(SystemTime::now() - Duration::from_secs(1000 - u64::from(n)))
                .expect("mtime");
        }
        assert!(d.start_sweep());
        let report = d.sweep().expect("sweep");
        assert!(report.bytes <= 9_000, "{report:?}");
        assert_eq!(d.usage(), report.bytes);
        // The newest survive, the oldest are gone.
        assert!(d.path(&key(29 % 3), &key(129)).exists());
        assert!(!d.path(&key(0), &key(100)).exists());
    }

    #[test]
    fn disk_sweep_removes_stale_temporaries() {
        let (_t, d) = disk(1 << 20);
        d.write(&key(1), &key(2), &entry(10)).expect("write");
        let temp = d
            .path(&key(1), &key(3))
            .with_file_name(format!("{}{TEMP_MARK}1.1", key(3).hex()));
        fs::write(&temp, b"half").expect("temp");
        let f = fs::File::options().write(true).open(&temp).expect("open");
        f.set_modified(SystemTime::now() - STALE_TEMP * 2)
            .expect("mtime");
        assert!(d.start_sweep());
        d.sweep().expect("sweep");
        assert!(!temp.exists());
        assert!(d.path(&key(1), &key(2)).exists());
    }

    #[test]
    fn disk_purge_removes_every_variant_of_a_source() {
        let (_t, d) = disk(1 << 20);
        d.write(&key(1), &key(2), &entry(10)).expect("write");
        d.write(&key(1), &key(3), &entry(10)).expect("write");
        d.write(&key(9), &key(4), &entry(10)).expect("write");
        d.purge(&key(1)).expect("purge");
        assert_eq!(d.read(&key(1), &key(2)).expect("read"), Read::Miss);
        assert_eq!(d.read(&key(1), &key(3)).expect("read"), Read::Miss);
        assert!(matches!(
            d.read(&key(9), &key(4)).expect("read"),
            Read::Hit(_)
        ));
        d.purge(&key(5)).expect("purging an absent source is fine");
    }
}
