//! The disk tier: one file per entry, laid out by source so a source's variants can be found
//! and purged together: `<dir>/<first 2 hex of source>/<source hex>/<key hex>`.
//!
//! Writes go to a temporary file in the same directory and are renamed into place, so a reader
//! sees a whole file or none; every read is checked by `Entry::decode`, so a torn or corrupt
//! file (e.g. after `kill -9` mid-write, or a power cut before the data reached the disk) is
//! deleted and treated as a miss, never served.
//!
//! An in-memory [`Index`] (about 70 bytes an entry) holds every entry's size and last use in
//! least-recently-used order, so the tier's usage is known exactly and housekeeping costs what
//! it removes, not what the tier holds: nothing walks the tier after start-up. A read moves
//! the entry to the front of the index, and touches the file's modification time (at most once
//! a minute an entry), which is where the order comes from again after a restart.
//!
//! The first sweep, started in the background at start-up (serving does not wait), is the one
//! walk: it removes stale temporaries and entries unused for longer than the TTL, and indexes
//! the rest by modification time. Meanwhile reads and writes work as usual (a read of an entry
//! not indexed yet indexes it) and eviction waits for the walk. After it, a sweep removes
//! entries unused for longer than the TTL and deletes least-recently-used entries while the
//! tier is over its cap, while free space on its filesystem (`statvfs`) is below the low
//! watermark (down to the high one), or after a write failed for lack of space (ENOSPC,
//! EDQUOT: a tenth of the tier), each from the end of the index. Writes are skipped while free
//! space is below the low watermark, so a full volume costs no failing writes and caching
//! resumes by itself once there is room.
//!
//! The directory belongs to one process: files that others add to it are indexed at the next
//! start, and files that are not ours by name (not a key, not a temporary) are left alone.
//! Our own changes to the files (rename into place, unlink, purge) happen under the index's
//! lock, so the two agree.
//!
//! All functions are blocking; callers run them on tokio's blocking threads. Errors are returned
//! to the caller, which logs them: a disk failure never fails a request.

mod index;

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use self::index::Index;
use super::entry::{now_secs, Entry};
use super::key::Key;
use super::room::{excess, out_of_space, space, MinFree, Room};

/// Temporary files carry this in their name; ones older than [`STALE_TEMP`] are leftovers.
const TEMP_MARK: &str = ".tmp.";
const STALE_TEMP: Duration = Duration::from_secs(3600);
/// Sweeps asked for by skipped or failed writes (free space, ENOSPC) start at most this often:
/// when nothing of ours is left to evict, requests must not each start a sweep.
const RELIEF_GAP: Duration = Duration::from_secs(5);
/// Paths remembered as undeletable (a read-only disk) before the memory is cleared.
const UNREMOVABLE_MAX: usize = 4096;
/// A read touches the file's modification time only when its last use is older than this: the
/// order survives a restart to the minute, and a hot entry costs no write per read.
const TOUCH_GAP: u32 = 60;
/// Entries deleted per hold of the index's lock, so reads wait at most one batch.
const BATCH: usize = 64;
/// A sweep gives up after this many files it could not delete (a read-only disk), rather than
/// trying every entry of the tier.
const UNDELETABLE_MAX: u32 = 64;

#[derive(Debug)]
pub struct Disk {
    dir: PathBuf,
    cap: u64,
    ttl: Duration,
    min_free: MinFree,
    /// Every entry known, in order of last use. Files are renamed into place, unlinked and
    /// purged under this lock, so the index and the directory agree.
    index: Mutex<Index>,
    /// The start-up walk has indexed what was on disk; eviction waits for it.
    indexed: AtomicBool,
    /// Bytes in the tier, as indexed (a copy readable without the lock).
    usage: AtomicU64,
    /// Entries in the tier, as indexed.
    entries: AtomicU64,
    sweeping: AtomicBool,
    /// Free bytes on the filesystem at the last look (for `/metrics`).
    free: AtomicU64,
    /// A write failed for lack of space since the last sweep: the next one evicts.
    pressure: AtomicBool,
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

/// Seconds since the epoch as the index keeps them (good until 2106).
fn secs(t: SystemTime) -> u32 {
    let s = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    u32::try_from(s).unwrap_or(u32::MAX)
}

impl Disk {
    pub fn new(dir: PathBuf, cap: u64, ttl: Duration, min_free: MinFree) -> Self {
        Disk {
            dir,
            cap,
            ttl,
            min_free,
            index: Mutex::new(Index::default()),
            indexed: AtomicBool::new(false),
            usage: AtomicU64::new(0),
            entries: AtomicU64::new(0),
            sweeping: AtomicBool::new(false),
            free: AtomicU64::new(0),
            pressure: AtomicBool::new(false),
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

    /// Entries in the tier (those indexed so far until the start-up walk is done).
    pub fn entries(&self) -> u64 {
        self.entries.load(Ordering::Relaxed)
    }

    /// Bytes in the tier (those indexed so far until the start-up walk is done).
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

    /// The index, locked (a panic elsewhere while holding it leaves nothing half-done that
    /// matters more than serving: the counts are re-read from it after every change).
    fn lock(&self) -> MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Copy the index's counts where readers without the lock find them.
    fn publish(&self, index: &Index) {
        self.usage.store(index.bytes(), Ordering::Relaxed);
        self.entries.store(index.count(), Ordering::Relaxed);
    }

    pub fn read(&self, source: &Key, key: &Key) -> io::Result<Read> {
        let path = self.path(source, key);
        if self.is_unremovable(&path) {
            return Ok(Read::Miss);
        }
        let data = match fs::read(&path) {
            Ok(data) => data,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Deleted behind our back: forget it.
                let mut index = self.lock();
                if index.remove(&key.0).is_some() {
                    self.publish(&index);
                }
                return Ok(Read::Miss);
            }
            Err(e) => return Err(e),
        };
        let len = data.len() as u64;
        match Entry::decode(Bytes::from(data)) {
            Ok(entry) if !entry.expired(self.ttl) => {
                let now = secs(SystemTime::now());
                let touch_file = {
                    let mut index = self.lock();
                    match index.touch(&key.0, now) {
                        Some(before) => now.saturating_sub(before) >= TOUCH_GAP,
                        // Not found by the start-up walk yet (once it is done, a file
                        // missing from the index was evicted or purged while being read).
                        None if !self.indexed.load(Ordering::Acquire) => {
                            index.put(&source.0, &key.0, len, now);
                            self.publish(&index);
                            true
                        }
                        None => false,
                    }
                };
                // The order after a restart; failing to is harmless.
                if touch_file {
                    if let Ok(file) = fs::File::options().write(true).open(&path) {
                        let _ = file.set_modified(SystemTime::now());
                    }
                }
                Ok(Read::Hit(entry))
            }
            Ok(_) => {
                self.drop_file(path, key);
                Ok(Read::Expired)
            }
            Err(_) => {
                self.drop_file(path, key);
                Ok(Read::Corrupt)
            }
        }
    }

    /// Delete a file that must not be served; remember it when it cannot be deleted.
    fn drop_file(&self, path: PathBuf, key: &Key) {
        let mut index = self.lock();
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                drop(index);
                let mut set = self.unremovable.lock().unwrap_or_else(|p| p.into_inner());
                if set.len() >= UNREMOVABLE_MAX {
                    set.clear();
                }
                set.insert(path);
            }
            _ => {
                if index.remove(&key.0).is_some() {
                    self.publish(&index);
                }
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
        let written = write_temp(&path, entry).and_then(|(temp, len)| {
            let mut index = self.lock();
            let renamed = fs::rename(&temp, &path);
            if renamed.is_ok() {
                index.put(&source.0, &key.0, len, secs(SystemTime::now()));
                self.publish(&index);
            }
            drop(index);
            if renamed.is_err() {
                let _ = fs::remove_file(&temp);
            }
            renamed
        });
        if let Err(e) = written {
            if out_of_space(&e) {
                self.pressure.store(true, Ordering::Relaxed);
            }
            return Err(e);
        }
        {
            let mut set = self.unremovable.lock().unwrap_or_else(|p| p.into_inner());
            if !set.is_empty() {
                set.remove(&path);
            }
        }
        Ok(Write::Stored {
            over_cap: self.usage() > self.cap,
        })
    }

    /// Remove every entry of `source` (its directory, and its records from the index).
    pub fn purge(&self, source: &Key) -> io::Result<()> {
        let dir = self.source_dir(source);
        let mut index = self.lock();
        for name in names(&dir) {
            if let Some(key) = name.to_str().and_then(parse_hex) {
                index.remove(&key);
            }
        }
        self.publish(&index);
        match fs::remove_dir_all(dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Whether the periodic check should sweep now: the start-up walk has not run, the tier is
    /// over its cap, its least recently used entry has outlived the TTL, or it holds something
    /// and a write ran out of space or free space is below the low watermark. Costs one
    /// `statvfs` and a look at the index, no walk.
    pub fn sweep_due(&self) -> bool {
        if !self.indexed.load(Ordering::Acquire) || self.usage() > self.cap {
            return true;
        }
        let now = secs(SystemTime::now());
        if self
            .lock()
            .oldest()
            .is_some_and(|o| self.outlived(o.used, now))
        {
            return true;
        }
        // Checked even with nothing to evict, to keep the free-space gauge current.
        let short = self.room().is_some_and(|r| r.short());
        self.usage() > 0 && (short || self.pressure.load(Ordering::Relaxed))
    }

    /// Unused for longer than the TTL at `now` (entries idle that long are expired whatever
    /// their content).
    fn outlived(&self, used: u32, now: u32) -> bool {
        u64::from(now.saturating_sub(used)) > self.ttl.as_secs()
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

    /// The first time, walk the tier to index it (see the module doc). Then remove entries
    /// unused for longer than the TTL and delete least-recently-used entries while over the
    /// cap, short of free space, or after a write ran out of space (see [`excess`]), all from
    /// the index. Call after [`Disk::start_sweep`].
    pub fn sweep(&self) -> io::Result<Sweep> {
        let result = self.sweep_with(|| self.room());
        self.sweeping.store(false, Ordering::Release);
        result
    }

    /// [`Disk::sweep`] with the free-space probe given (tests fake a filesystem with it).
    fn sweep_with(&self, room: impl Fn() -> Option<Room>) -> io::Result<Sweep> {
        let mut report = Sweep::default();
        if !self.indexed.load(Ordering::Acquire) {
            report.removed += self.walk()?;
        }
        let pressure = self.pressure.swap(false, Ordering::Relaxed);
        let now = secs(SystemTime::now());
        report.removed += self.evict(|oldest, _| self.outlived(oldest, now)).removed;
        let mut need = excess(self.usage(), self.cap, room(), pressure);
        if need > 0 {
            let mut freed = 0;
            loop {
                let done = self.evict(|_, evicted| freed + evicted < need);
                freed += done.bytes;
                report.removed += done.removed;
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
        report.bytes = self.usage();
        Ok(report)
    }

    /// Delete least-recently-used entries while `more(last use of the oldest, bytes evicted
    /// so far)`; what was deleted (`removed`) and how many bytes left the tier (`bytes`: also
    /// those of files already gone).
    fn evict(&self, mut more: impl FnMut(u32, u64) -> bool) -> Sweep {
        let mut done = Sweep::default();
        let mut undeletable = 0;
        loop {
            let mut index = self.lock();
            for _ in 0..BATCH {
                let Some(oldest) = index.oldest() else {
                    self.publish(&index);
                    return done;
                };
                if !more(oldest.used, done.bytes) {
                    self.publish(&index);
                    return done;
                }
                let _ = index.pop_oldest();
                let (source, key) = (Key(oldest.source), Key(oldest.key));
                match fs::remove_file(self.path(&source, &key)) {
                    Ok(()) => {
                        done.bytes += oldest.size;
                        done.removed += 1;
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => done.bytes += oldest.size,
                    Err(_) => {
                        // Kept (and counted) at the other end, so the next oldest is tried.
                        index.put(&oldest.source, &oldest.key, oldest.size, oldest.used);
                        undeletable += 1;
                        if undeletable >= UNDELETABLE_MAX {
                            self.publish(&index);
                            return done;
                        }
                    }
                }
            }
            self.publish(&index);
        }
    }

    /// The start-up walk: remove stale temporaries and entries unused for longer than the TTL,
    /// index the others by modification time, and drop empty source directories. Returns the
    /// files removed. Reads and writes go on meanwhile; the index's lock is held for one
    /// source directory at a time.
    fn walk(&self) -> io::Result<u64> {
        let (found, removed) = self.walk_dirs()?;
        let mut index = self.lock();
        index.sort_by_use();
        self.publish(&index);
        self.indexed.store(true, Ordering::Release);
        tracing::info!(
            found,
            removed,
            entries = index.count(),
            bytes = index.bytes(),
            index_bytes = index.heap_bytes(),
            "disk cache indexed"
        );
        Ok(removed)
    }

    /// [`Disk::walk`] but for the sort: (files indexed, files removed).
    fn walk_dirs(&self) -> io::Result<(u64, u64)> {
        let now = SystemTime::now();
        let (mut found, mut removed) = (0, 0);
        let shards = match fs::read_dir(&self.dir) {
            Ok(shards) => shards,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((0, 0)),
            Err(e) => return Err(e),
        };
        for shard in shards.flatten() {
            for source in read_dir_or_empty(&shard.path()) {
                let Some(source_key) = source.file_name().to_str().and_then(parse_hex) else {
                    continue; // Not ours.
                };
                let source = source.path();
                let files = names(&source);
                let mut index = self.lock();
                for name in files {
                    let path = source.join(&name);
                    let Ok(meta) = fs::symlink_metadata(&path) else {
                        continue;
                    };
                    if !meta.is_file() {
                        continue;
                    }
                    let used = meta.modified().unwrap_or(now);
                    let idle = now.duration_since(used).unwrap_or_default();
                    let name = name.to_string_lossy();
                    if name.contains(TEMP_MARK) {
                        // A fresh one is a write in progress.
                        if idle > STALE_TEMP && fs::remove_file(&path).is_ok() {
                            removed += 1;
                        }
                        continue;
                    }
                    let Some(key) = parse_hex(&name) else {
                        continue; // Not ours.
                    };
                    if idle > self.ttl {
                        if fs::remove_file(&path).is_ok() {
                            removed += 1;
                        }
                        continue;
                    }
                    if index.add_found(&source_key, &key, meta.len(), secs(used)) {
                        found += 1;
                    }
                }
                self.publish(&index);
                drop(index);
                // Drop the source directory once it is empty (fails harmlessly otherwise).
                let _ = fs::remove_dir(&source);
            }
        }
        Ok((found, removed))
    }
}

/// Write `entry` to a temporary file next to `path`; returns its path and length. The caller
/// renames it into place.
fn write_temp(path: &Path, entry: &Entry) -> io::Result<(PathBuf, u64)> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::other("disk cache path without a parent"));
    };
    fs::create_dir_all(dir)?;
    let header = entry.header();
    let temp = dir.join(format!("{}{TEMP_MARK}{}", name.to_string_lossy(), unique()));
    let result = fs::File::create(&temp).and_then(|mut f| {
        f.write_all(&header)?;
        f.write_all(&entry.body)
    });
    if let Err(e) = result {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    Ok((temp, (header.len() + entry.body.len()) as u64))
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

/// The names in directory `path` (none when it cannot be read).
fn names(path: &Path) -> Vec<OsString> {
    read_dir_or_empty(path).map(|e| e.file_name()).collect()
}

/// A key from the 64 lowercase hex digits of a file or directory name.
fn parse_hex(name: &str) -> Option<[u8; 32]> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let hex = name.as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut key = [0u8; 32];
    for (byte, pair) in key.iter_mut().zip(hex.chunks_exact(2)) {
        *byte = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(key)
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

    /// Set the modification time of a file written before, `ago` seconds back.
    fn age(d: &Disk, s: u8, k: u8, ago: u64) {
        let f = fs::File::options()
            .write(true)
            .open(d.path(&key(s), &key(k)))
            .expect("open");
        f.set_modified(SystemTime::now() - Duration::from_secs(ago))
            .expect("mtime");
    }

    #[test]
    fn disk_restart_indexes_a_populated_dir_in_the_background() {
        let (t, before) = disk(1 << 30);
        for n in 0..10u8 {
            before
                .write(&key(1 + n % 2), &key(100 + n), &entry(1000))
                .expect("write");
            age(&before, 1 + n % 2, 100 + n, 1000 - u64::from(n));
        }
        drop(before);
        let d = Disk::new(
            t.path().join("cache"),
            1 << 30,
            Duration::from_secs(3600),
            UNWATCHED,
        );
        assert_eq!((d.usage(), d.entries()), (0, 0), "nothing walked yet");
        assert!(d.sweep_due(), "the start-up walk is due");
        // Served before the walk (and indexed by the read).
        assert!(matches!(
            d.read(&key(1), &key(100)).expect("read"),
            Read::Hit(_)
        ));
        assert_eq!(d.entries(), 1);
        // The walk in the background while requests are served.
        std::thread::scope(|s| {
            assert!(d.start_sweep());
            let walk = s.spawn(|| d.sweep().expect("sweep"));
            for n in 0..10u8 {
                assert!(matches!(
                    d.read(&key(1 + n % 2), &key(100 + n)).expect("read"),
                    Read::Hit(_)
                ));
            }
            assert_eq!(walk.join().expect("walk").removed, 0);
        });
        assert_eq!(d.entries(), 10);
        assert_eq!(d.usage(), bytes_on_disk(&d));
        assert!(!d.sweep_due(), "nothing left to do");
    }

    #[test]
    fn disk_restart_keeps_the_order_of_last_use() {
        let (t, before) = disk(1 << 30);
        for n in 0..10u8 {
            before
                .write(&key(1 + n % 2), &key(100 + n), &entry(1000))
                .expect("write");
            // Written in one order, last used in the reverse one.
            age(&before, 1 + n % 2, 100 + n, 100 + u64::from(n));
        }
        drop(before);
        let d = Disk::new(
            t.path().join("cache"),
            1 << 30,
            Duration::from_secs(3600),
            UNWATCHED,
        );
        assert!(d.start_sweep());
        d.sweep().expect("walk");
        d.pressure.store(true, Ordering::Relaxed);
        assert_eq!(d.sweep_with(|| None).expect("sweep").removed, 1);
        assert!(
            !d.path(&key(2), &key(109)).exists(),
            "the least recently used"
        );
        assert!(d.path(&key(1), &key(108)).exists());
    }

    #[test]
    fn disk_eviction_takes_the_least_recently_used_and_a_read_refreshes() {
        let size = entry(1000).encode().len() as u64;
        let (_t, d) = disk(size * 11 / 2);
        for n in 0..5u8 {
            d.write(&key(1), &key(100 + n), &entry(1000))
                .expect("write");
        }
        assert!(d.start_sweep());
        assert_eq!(d.sweep().expect("walk").removed, 0);
        assert!(matches!(
            d.read(&key(1), &key(100)).expect("read"),
            Read::Hit(_)
        ));
        let w = d.write(&key(1), &key(105), &entry(1000)).expect("write");
        assert_eq!(w, Write::Stored { over_cap: true });
        // Six entries over a cap of five and a half: down to 90 % of it, two go.
        assert!(d.start_sweep());
        assert_eq!(d.sweep().expect("sweep").removed, 2);
        let kept: Vec<u8> = (100..106)
            .filter(|&n| d.path(&key(1), &key(n)).exists())
            .collect();
        assert_eq!(kept, vec![100, 103, 104, 105]);
        assert_eq!((d.entries(), d.usage()), (4, 4 * size));
    }

    #[test]
    fn disk_sweep_over_the_cap_does_not_walk_the_tier() {
        let (_t, d) = disk(10_000);
        fill(&d, 5, 1000);
        assert!(d.start_sweep());
        d.sweep().expect("walk");
        // What a walk would remove: a stale temporary and a file unused for longer than the
        // TTL, both unknown to the index.
        let hidden = d.path(&key(7), &key(8));
        fs::create_dir_all(hidden.parent().expect("dir")).expect("mkdir");
        fs::write(&hidden, entry(10).encode()).expect("write");
        let temp = hidden.with_file_name(format!("{}{TEMP_MARK}1.1", key(9).hex()));
        fs::write(&temp, b"half").expect("temp");
        for path in [&hidden, &temp] {
            let f = fs::File::options().write(true).open(path).expect("open");
            f.set_modified(SystemTime::now() - Duration::from_secs(7200))
                .expect("mtime");
        }
        fill(&d, 10, 1000);
        assert!(d.sweep_due());
        assert!(d.start_sweep());
        let report = d.sweep().expect("sweep");
        assert!(report.removed >= 2 && d.usage() <= 9_000, "{report:?}");
        assert!(hidden.exists() && temp.exists(), "no walk");
    }

    #[test]
    fn disk_entries_unused_for_longer_than_the_ttl_expire_from_the_index() {
        let (_t, d) = disk(1 << 20);
        for n in 0..3u8 {
            d.write(&key(1), &key(100 + n), &entry(10)).expect("write");
        }
        assert!(d.start_sweep());
        d.sweep().expect("walk");
        assert!(!d.sweep_due());
        let now = secs(SystemTime::now());
        {
            let mut index = d.lock();
            let size = entry(10).encode().len() as u64;
            index.put(&key(1).0, &key(100).0, size, now - 7300);
            index.put(&key(1).0, &key(101).0, size, now - 7200);
            index.put(&key(1).0, &key(102).0, size, now);
        }
        assert!(d.sweep_due(), "the oldest outlived the TTL");
        assert!(d.start_sweep());
        assert_eq!(d.sweep().expect("sweep").removed, 2);
        assert!(!d.path(&key(1), &key(101)).exists());
        assert!(d.path(&key(1), &key(102)).exists());
        assert_eq!(d.entries(), 1);
    }

    #[test]
    fn disk_purge_drops_the_sources_records() {
        let (_t, d) = disk(1 << 20);
        for n in 0..3u8 {
            d.write(&key(1), &key(100 + n), &entry(10)).expect("write");
        }
        d.write(&key(9), &key(4), &entry(10)).expect("write");
        d.purge(&key(1)).expect("purge");
        assert_eq!(d.entries(), 1);
        assert_eq!(d.usage(), bytes_on_disk(&d));
        // A file deleted behind the tier's back is forgotten when missed.
        fs::remove_file(d.path(&key(9), &key(4))).expect("rm");
        assert_eq!(d.read(&key(9), &key(4)).expect("read"), Read::Miss);
        assert_eq!((d.entries(), d.usage()), (0, 0));
    }

    #[test]
    fn disk_keys_parse_from_their_hex_names_only() {
        assert_eq!(parse_hex(&key(0xab).hex()), Some([0xab; 32]));
        assert_eq!(parse_hex(&key(0xab).hex().to_uppercase()), None);
        assert_eq!(parse_hex(&key(1).hex()[..62]), None);
        assert_eq!(parse_hex(&format!("{}{TEMP_MARK}1.1", key(1).hex())), None);
        assert_eq!(parse_hex(&"é".repeat(32)), None);
    }
}
