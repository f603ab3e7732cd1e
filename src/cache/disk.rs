//! The disk tier: one file per entry, laid out by source so a source's variants can be found
//! and purged together: `<dir>/<first 2 hex of source>/<source hex>/<key hex>`.
//!
//! Writes go to a temporary file in the same directory and are renamed into place, so a reader
//! sees a whole file or none; every read is checked by `Entry::decode`, so a torn or corrupt
//! file (e.g. after `kill -9` mid-write, or a power cut before the data reached the disk) is
//! deleted and treated as a miss, never served. A read touches the file's modification time,
//! which is the "last used" clock of the sweeper; the sweeper keeps the tier under its cap by
//! deleting least-recently-used files first and removes stale temporaries. Nothing here runs at
//! start-up before serving: the first sweep runs in the background.
//!
//! All functions are blocking; callers run them on tokio's blocking threads. Errors are returned
//! to the caller, which logs them: a disk failure never fails a request.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::entry::Entry;
use super::key::Key;

/// Temporary files carry this in their name; ones older than [`STALE_TEMP`] are leftovers.
const TEMP_MARK: &str = ".tmp.";
const STALE_TEMP: Duration = Duration::from_secs(3600);
/// A sweep deletes down to this fraction of the cap, so it does not run on every write.
const LOW_WATER: f64 = 0.9;

#[derive(Debug)]
pub struct Disk {
    dir: PathBuf,
    cap: u64,
    ttl: Duration,
    /// Bytes on disk as last counted by a sweep plus what was written since.
    usage: AtomicU64,
    /// Files in the tier (approximate between sweeps, like `usage`).
    entries: AtomicU64,
    sweeping: AtomicBool,
}

/// What a read found.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    Hit(Entry),
    Miss,
    /// The file failed its check or expired and was deleted.
    Dropped,
}

impl Disk {
    pub fn new(dir: PathBuf, cap: u64, ttl: Duration) -> Self {
        Disk {
            dir,
            cap,
            ttl,
            usage: AtomicU64::new(0),
            entries: AtomicU64::new(0),
            sweeping: AtomicBool::new(false),
        }
    }

    #[cfg(test)]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory exists (or can be made) and takes a write: `/ready` asks this.
    pub fn writable(&self) -> bool {
        let probe = self.dir.join(".ready-probe");
        std::fs::create_dir_all(&self.dir).is_ok()
            && std::fs::write(&probe, b"ok").is_ok()
            && std::fs::remove_file(&probe).is_ok()
    }

    /// Files in the tier (approximate between sweeps).
    pub fn entries(&self) -> u64 {
        self.entries.load(Ordering::Relaxed)
    }

    /// Bytes in the tier (approximate between sweeps).
    pub fn usage(&self) -> u64 {
        self.usage.load(Ordering::Relaxed)
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
            Ok(_) | Err(_) => {
                if fs::remove_file(&path).is_ok() {
                    self.usage
                        .fetch_sub(len.min(self.usage()), Ordering::Relaxed);
                    let _ = self
                        .entries
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                            Some(n.saturating_sub(1))
                        });
                }
                Ok(Read::Dropped)
            }
        }
    }

    /// Write atomically (temporary file + rename). Returns true when the tier is now over its
    /// cap and a sweep should run.
    pub fn write(&self, source: &Key, key: &Key, entry: &Entry) -> io::Result<bool> {
        let dir = self.source_dir(source);
        fs::create_dir_all(&dir)?;
        let header = entry.header();
        let name = key.hex();
        let temp = dir.join(format!("{name}{TEMP_MARK}{}", unique()));
        let result = fs::File::create(&temp)
            .and_then(|mut f| {
                f.write_all(&header)?;
                f.write_all(&entry.body)
            })
            .and_then(|()| fs::rename(&temp, dir.join(&name)));
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result?;
        let len = (header.len() + entry.body.len()) as u64;
        let usage = self.usage.fetch_add(len, Ordering::Relaxed) + len;
        self.entries.fetch_add(1, Ordering::Relaxed);
        Ok(usage > self.cap)
    }

    /// Remove every entry of `source`.
    pub fn purge(&self, source: &Key) -> io::Result<()> {
        match fs::remove_dir_all(self.source_dir(source)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Claim the right to sweep; false when a sweep is already running.
    pub fn start_sweep(&self) -> bool {
        !self.sweeping.swap(true, Ordering::AcqRel)
    }

    /// Count the tier, remove stale temporaries and expired entries, and if over the cap delete
    /// least-recently-used files down to the low-water mark. Call after [`Disk::start_sweep`].
    pub fn sweep(&self) -> io::Result<Sweep> {
        let result = self.sweep_inner();
        self.sweeping.store(false, Ordering::Release);
        result
    }

    fn sweep_inner(&self) -> io::Result<Sweep> {
        let now = SystemTime::now();
        let mut files = Vec::new();
        let mut report = Sweep::default();
        let shards = match fs::read_dir(&self.dir) {
            Ok(shards) => shards,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(report),
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
                    files.push((used, meta.len(), path));
                }
                // Drop the source directory once it is empty (fails harmlessly otherwise).
                let _ = fs::remove_dir(&source);
            }
        }
        let mut total: u64 = files.iter().map(|(_, len, _)| len).sum();
        if total > self.cap {
            files.sort_by_key(|(used, _, _)| *used);
            let target = (self.cap as f64 * LOW_WATER) as u64;
            for (_, len, path) in &files {
                if total <= target {
                    break;
                }
                if fs::remove_file(path).is_ok() {
                    total -= len;
                    report.removed += 1;
                }
            }
        }
        report.bytes = total;
        self.usage.store(total, Ordering::Relaxed);
        let kept = files.iter().filter(|(_, _, path)| path.exists()).count();
        self.entries.store(kept as u64, Ordering::Relaxed);
        Ok(report)
    }
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

    fn disk(cap: u64) -> (tempfile::TempDir, Disk) {
        let dir = tempfile::tempdir().expect("tempdir");
        let disk = Disk::new(dir.path().join("cache"), cap, Duration::from_secs(3600));
        (dir, disk)
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
        assert_eq!(d.read(&key(1), &key(2)).expect("read"), Read::Dropped);
        assert!(!path.exists(), "a corrupt file is deleted");

        d.write(&key(1), &key(2), &entry(1000)).expect("write");
        let mut data = fs::read(&path).expect("read");
        let last = data.len() - 1;
        data[last] ^= 0x10;
        fs::write(&path, &data).expect("flip");
        assert_eq!(d.read(&key(1), &key(2)).expect("read"), Read::Dropped);
    }

    #[test]
    fn disk_expired_entry_is_dropped() {
        let (_t, d) = disk(1 << 20);
        let mut e = entry(10);
        e.created -= 7200;
        d.write(&key(1), &key(2), &e).expect("write");
        assert_eq!(d.read(&key(1), &key(2)).expect("read"), Read::Dropped);
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
