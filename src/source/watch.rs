//! Remembered identities of local files, kept true by inotify (Linux).
//!
//! A hit on a local source needs the file's identity (size, mtime, inode) so that a file
//! replaced in place is served fresh, and a `stat` per request costs a round trip through the
//! blocking pool. Instead the folder tree is watched, and identities are remembered until
//! something in it changes.
//!
//! **Why a remembered identity is never stale:** every lookup first drains the inotify queue
//! without blocking (one `read` returning `EAGAIN` when nothing changed). The kernel queues an
//! event before the write, rename or unlink that caused it returns, so every change that
//! happened before the request arrived is seen by that drain. Any change in the tree bumps a
//! generation and forgets every identity; an identity `stat`ed in an older generation is not
//! remembered.
//!
//! Folder-level changes make the watch rebuild itself on a background thread, and identities
//! come from `stat` until it is done:
//! - a folder created, moved or removed in the tree;
//! - a folder on the configured path, or on its canonical path, replaced (a `current` symlink
//!   flipped by a deploy);
//! - a queue overflow.
//!
//! The watch gives up, and every lookup `stat`s as before, in these cases: a folder that is
//! missing at start, more than [`MAX_DIRS`] folders, a kernel that refuses more watches, or a
//! file system whose changes inotify may not see (NFS, SMB, FUSE: only local file systems on
//! [`LOCAL_FILE_SYSTEMS`] are watched).
//!
//! What inotify does not see, and so neither does the watch: a file changed through a hard
//! link from outside the tree (the event goes to the folder of the path used), and writes
//! through a shared memory mapping. Folders deployed that way want `source.watch_folder =
//! false`.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};

/// Folders watched at most (one inotify watch each); beyond it the watch gives up.
pub(super) const MAX_DIRS: usize = 10_000;
/// Identities remembered at most; the memo is emptied when full.
const MAX_ENTRIES: usize = 65_536;
/// Pause before a rebuild, so that a burst of folder changes costs one walk.
const SETTLE: Duration = Duration::from_millis(100);

/// `statfs` magic numbers of file systems whose every change reaches inotify: ext2/3/4, XFS,
/// Btrfs, tmpfs, overlayfs, ZFS, F2FS, ramfs, bcachefs.
pub(super) const LOCAL_FILE_SYSTEMS: [u32; 9] = [
    0xEF53,
    0x5846_5342,
    0x9123_683E,
    0x0102_1994,
    0x794C_7630,
    0x2FC1_2FC1,
    0xF2F5_2010,
    0x8584_58F6,
    0xCA45_1A4E,
];

/// Changes to which folder a path names, in the folders on the way to the base.
const PATH_EVENTS: WatchMask = WatchMask::CREATE
    .union(WatchMask::DELETE)
    .union(WatchMask::MOVED_FROM)
    .union(WatchMask::MOVED_TO)
    .union(WatchMask::DELETE_SELF)
    .union(WatchMask::MOVE_SELF);
/// Changes to a file's identity, in tree folders: those, plus changes to a file's contents.
const TREE_EVENTS: WatchMask = PATH_EVENTS
    .union(WatchMask::MODIFY)
    .union(WatchMask::ATTRIB)
    .union(WatchMask::CLOSE_WRITE);
/// Events after which the tree must be walked again.
const REBUILD: EventMask = EventMask::ISDIR
    .union(EventMask::Q_OVERFLOW)
    .union(EventMask::IGNORED)
    .union(EventMask::DELETE_SELF)
    .union(EventMask::MOVE_SELF)
    .union(EventMask::UNMOUNT);

/// The watch on one local source folder. Shared by every clone of the fetcher.
pub(super) struct Watch {
    /// The configured folder made absolute, symlinks kept (they are watched too).
    base: PathBuf,
    state: Mutex<State>,
}

/// What a lookup found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Lookup {
    /// The identity remembered for the path; nothing changed since it was taken.
    Known(String),
    /// Not remembered: `stat` it, then [`Watch::remember`] it with this generation.
    Unknown(u64),
    /// The watch is (re)building or gave up: `stat`, and remember nothing.
    Off,
}

struct State {
    /// `None` while a build runs, and after the watch gave up.
    armed: Option<Armed>,
    /// Bumped on every change; identities of an older generation are not remembered.
    generation: u64,
    memo: HashMap<PathBuf, String>,
    building: bool,
    /// Room for the events of one `read` (at least one event of the longest name).
    buf: Vec<u8>,
}

struct Armed {
    inotify: Inotify,
    watched: HashMap<WatchDescriptor, Watched>,
}

/// Why a folder is watched (one folder may be both).
#[derive(Default)]
struct Watched {
    /// In the tree: every event changes some file's identity.
    tree: bool,
    /// On the way to the base: only events on these names matter, and they move the base.
    path_names: Vec<OsString>,
}

impl Watch {
    /// Start watching `base` (a background thread walks it). `None` when the folder has no
    /// absolute form.
    pub(super) fn start(base: &Path) -> Option<Arc<Watch>> {
        let base = std::path::absolute(base).ok()?;
        let watch = Arc::new(Watch {
            base,
            state: Mutex::new(State {
                armed: None,
                generation: 0,
                memo: HashMap::new(),
                building: true,
                buf: vec![0; 4096],
            }),
        });
        if !spawn_build(&watch, Duration::ZERO) {
            watch.lock().building = false;
        }
        Some(watch)
    }

    /// The identity remembered for `rel`, after taking in every change queued so far.
    pub(super) fn lookup(self: &Arc<Self>, rel: &Path) -> Lookup {
        let mut guard = self.lock();
        let st = &mut *guard;
        let rebuild = match st.armed.as_mut() {
            Some(armed) => drain(armed, &mut st.buf),
            None => return Lookup::Off,
        };
        match rebuild {
            Drained::Quiet => {}
            Drained::Changed => forget(st),
            Drained::Rebuild => {
                forget(st);
                st.armed = None;
                if !st.building {
                    st.building = spawn_build(self, SETTLE);
                }
                return Lookup::Off;
            }
        }
        match st.memo.get(rel) {
            Some(identity) => Lookup::Known(identity.clone()),
            None => Lookup::Unknown(st.generation),
        }
    }

    /// Remember `identity`, taken by a `stat` after [`Watch::lookup`] gave `generation`, unless
    /// something changed since.
    pub(super) fn remember(&self, rel: &Path, generation: u64, identity: &str) {
        let mut st = self.lock();
        if st.armed.is_none() || st.generation != generation {
            return;
        }
        if st.memo.len() >= MAX_ENTRIES {
            st.memo.clear();
        }
        st.memo.insert(rel.to_path_buf(), identity.to_owned());
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn forget(st: &mut State) {
    st.generation = st.generation.wrapping_add(1);
    st.memo.clear();
}

enum Drained {
    Quiet,
    Changed,
    Rebuild,
}

/// Read every queued event without blocking.
fn drain(armed: &mut Armed, buf: &mut [u8]) -> Drained {
    let mut changed = false;
    loop {
        let events = match armed.inotify.read_events(buf) {
            Ok(events) => events,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(_) => return Drained::Rebuild,
        };
        for event in events {
            let Some(watched) = armed.watched.get(&event.wd) else {
                // An overflow (no watch) or a watch from before a rebuild.
                if event.mask.intersects(REBUILD) {
                    return Drained::Rebuild;
                }
                continue;
            };
            let on_path = event
                .name
                .is_some_and(|name| watched.path_names.iter().any(|n| n == name));
            if on_path || event.mask.contains(EventMask::IGNORED) {
                return Drained::Rebuild;
            }
            if watched.tree {
                if event.mask.intersects(REBUILD) {
                    return Drained::Rebuild;
                }
                changed = true;
            }
        }
    }
    if changed {
        Drained::Changed
    } else {
        Drained::Quiet
    }
}

/// Walk the tree on a thread of its own after `settle`; false when no thread could start.
fn spawn_build(watch: &Arc<Watch>, settle: Duration) -> bool {
    let weak: Weak<Watch> = Arc::downgrade(watch);
    std::thread::Builder::new()
        .name("imgcdn-watch".to_owned())
        .spawn(move || {
            std::thread::sleep(settle);
            // A fetcher dropped meanwhile: nothing to build for.
            let Some(watch) = weak.upgrade() else {
                return;
            };
            let built = arm(&watch.base);
            let mut st = watch.lock();
            st.building = false;
            forget(&mut st);
            match built {
                Ok(armed) => st.armed = Some(armed),
                Err(why) => tracing::warn!(
                    folder = %watch.base.display(),
                    "not watching the source folder ({why}): each hit on a local source stats its file"
                ),
            }
        })
        .is_ok()
}

/// Watch the folders on the way to `base` and every folder under it.
fn arm(base: &Path) -> Result<Armed, String> {
    let inotify = Inotify::init().map_err(|e| format!("inotify: {e}"))?;
    let mut watched: HashMap<WatchDescriptor, Watched> = HashMap::new();
    let canonical = std::fs::canonicalize(base).map_err(|e| format!("{e}"))?;

    // Tree first: watches are added before each folder is listed, so a folder created during
    // the walk is either listed or queues an event.
    let root_dev = std::fs::metadata(&canonical)
        .map_err(|e| format!("{e}"))?
        .dev();
    check_file_system(&canonical)?;
    let mut stack = vec![(canonical.clone(), root_dev)];
    let mut dirs = 0usize;
    while let Some((dir, dev)) = stack.pop() {
        dirs += 1;
        if dirs > MAX_DIRS {
            return Err(format!("more than {MAX_DIRS} folders"));
        }
        let wd = inotify
            .watches()
            .add(
                &dir,
                TREE_EVENTS | WatchMask::ONLYDIR | WatchMask::DONT_FOLLOW | WatchMask::MASK_ADD,
            )
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        watched.entry(wd).or_default().tree = true;
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
            // `file_type` does not follow symlinks: a symlinked folder is watched where it
            // lives, if that is inside the tree (reads refuse it otherwise).
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let path = entry.path();
            let sub_dev = entry.metadata().map_err(|e| format!("{e}"))?.dev();
            if sub_dev != dev {
                check_file_system(&path)?;
            }
            stack.push((path, sub_dev));
        }
    }

    // Then the folders that lead to it, as configured and as resolved.
    for path in [base, canonical.as_path()] {
        let mut child = path;
        while let (Some(parent), Some(name)) = (child.parent(), child.file_name()) {
            let wd = inotify
                .watches()
                .add(
                    parent,
                    PATH_EVENTS | WatchMask::ONLYDIR | WatchMask::MASK_ADD,
                )
                .map_err(|e| format!("{}: {e}", parent.display()))?;
            let names = &mut watched.entry(wd).or_default().path_names;
            if !names.iter().any(|n| n == name) {
                names.push(name.to_owned());
            }
            child = parent;
        }
    }
    Ok(Armed { inotify, watched })
}

/// Refuse file systems whose changes may not reach inotify (network and FUSE mounts).
fn check_file_system(dir: &Path) -> Result<(), String> {
    let stat = rustix::fs::statfs(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // `f_type` is a signed or unsigned word depending on the target; the magic is 32 bits.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let magic = stat.f_type as u32;
    if LOCAL_FILE_SYSTEMS.contains(&magic) {
        Ok(())
    } else {
        Err(format!(
            "{} is on a file system (0x{magic:X}) whose changes inotify may miss",
            dir.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    /// Look up until the watch is armed (its thread walks the tree).
    fn armed(watch: &Arc<Watch>, rel: &str) -> Lookup {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match watch.lookup(Path::new(rel)) {
                Lookup::Off if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                other => return other,
            }
        }
    }

    fn remembered(watch: &Arc<Watch>, rel: &str) {
        let Lookup::Unknown(generation) = armed(watch, rel) else {
            panic!("{rel}: not unknown");
        };
        watch.remember(Path::new(rel), generation, "id");
        assert_eq!(
            watch.lookup(Path::new(rel)),
            Lookup::Known("id".into()),
            "{rel}"
        );
    }

    #[test]
    fn watch_forgets_on_any_change_in_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.jpg"), b"a").unwrap();
        std::fs::write(dir.path().join("b.jpg"), b"b").unwrap();
        let watch = Watch::start(dir.path()).unwrap();
        remembered(&watch, "a.jpg");
        // Reading the file changes nothing.
        assert_eq!(std::fs::read(dir.path().join("a.jpg")).unwrap(), b"a");
        assert_eq!(watch.lookup(Path::new("a.jpg")), Lookup::Known("id".into()));
        // Written in place; then replaced by a rename; then another file removed.
        std::fs::write(dir.path().join("a.jpg"), b"A").unwrap();
        assert!(matches!(
            watch.lookup(Path::new("a.jpg")),
            Lookup::Unknown(_)
        ));
        remembered(&watch, "a.jpg");
        std::fs::write(dir.path().join("new"), b"x").unwrap();
        std::fs::rename(dir.path().join("new"), dir.path().join("a.jpg")).unwrap();
        assert!(matches!(
            watch.lookup(Path::new("a.jpg")),
            Lookup::Unknown(_)
        ));
        remembered(&watch, "a.jpg");
        std::fs::remove_file(dir.path().join("b.jpg")).unwrap();
        assert!(matches!(
            watch.lookup(Path::new("a.jpg")),
            Lookup::Unknown(_)
        ));
    }

    #[test]
    fn watch_does_not_remember_what_was_stated_before_a_change() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.jpg"), b"a").unwrap();
        let watch = Watch::start(dir.path()).unwrap();
        let Lookup::Unknown(generation) = armed(&watch, "a.jpg") else {
            panic!("not unknown");
        };
        // The file changes between the lookup and the stat's answer being remembered.
        std::fs::write(dir.path().join("a.jpg"), b"A").unwrap();
        assert!(matches!(
            watch.lookup(Path::new("a.jpg")),
            Lookup::Unknown(_)
        ));
        watch.remember(Path::new("a.jpg"), generation, "stale");
        assert!(matches!(
            watch.lookup(Path::new("a.jpg")),
            Lookup::Unknown(_)
        ));
    }

    #[test]
    fn watch_follows_new_and_moved_folders() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("old")).unwrap();
        std::fs::write(dir.path().join("old/a.jpg"), b"a").unwrap();
        let watch = Watch::start(dir.path()).unwrap();
        remembered(&watch, "old/a.jpg");
        // A new folder: the watch rebuilds, and a file in it is watched.
        std::fs::create_dir_all(dir.path().join("new/deep")).unwrap();
        assert_eq!(watch.lookup(Path::new("old/a.jpg")), Lookup::Off);
        std::fs::write(dir.path().join("new/deep/b.jpg"), b"b").unwrap();
        remembered(&watch, "new/deep/b.jpg");
        std::fs::write(dir.path().join("new/deep/b.jpg"), b"B").unwrap();
        assert!(!matches!(
            watch.lookup(Path::new("new/deep/b.jpg")),
            Lookup::Known(_)
        ));
        // A folder swapped for another under the same name.
        remembered(&watch, "old/a.jpg");
        std::fs::create_dir(dir.path().join("next")).unwrap();
        std::fs::write(dir.path().join("next/a.jpg"), b"a2").unwrap();
        std::fs::rename(dir.path().join("old"), dir.path().join("gone")).unwrap();
        std::fs::rename(dir.path().join("next"), dir.path().join("old")).unwrap();
        assert!(!matches!(
            watch.lookup(Path::new("old/a.jpg")),
            Lookup::Known(_)
        ));
        // The swapped-in folder is watched once the rebuild is done.
        remembered(&watch, "old/a.jpg");
        std::fs::write(dir.path().join("old/a.jpg"), b"a3").unwrap();
        assert!(matches!(
            watch.lookup(Path::new("old/a.jpg")),
            Lookup::Unknown(_) | Lookup::Off
        ));
    }

    #[test]
    fn watch_sees_the_base_symlink_flipped() {
        let root = tempfile::tempdir().unwrap();
        for release in ["r1", "r2"] {
            std::fs::create_dir_all(root.path().join(release).join("images")).unwrap();
            std::fs::write(root.path().join(release).join("images/a.jpg"), release).unwrap();
        }
        std::os::unix::fs::symlink("r1", root.path().join("current")).unwrap();
        let watch = Watch::start(&root.path().join("current/images")).unwrap();
        remembered(&watch, "a.jpg");
        // A deploy flips `current` atomically.
        std::os::unix::fs::symlink("r2", root.path().join("current.new")).unwrap();
        std::fs::rename(root.path().join("current.new"), root.path().join("current")).unwrap();
        assert_eq!(watch.lookup(Path::new("a.jpg")), Lookup::Off);
        // Rebuilt on the new release: its files are watched, the old release's are not.
        remembered(&watch, "a.jpg");
        std::fs::write(root.path().join("r1/images/a.jpg"), b"old").unwrap();
        assert_eq!(watch.lookup(Path::new("a.jpg")), Lookup::Known("id".into()));
        std::fs::write(root.path().join("r2/images/a.jpg"), b"new").unwrap();
        assert!(matches!(
            watch.lookup(Path::new("a.jpg")),
            Lookup::Unknown(_)
        ));
    }

    #[test]
    fn watch_gives_up_on_a_missing_folder() {
        let dir = tempfile::tempdir().unwrap();
        let watch = Watch::start(&dir.path().join("missing")).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(watch.lookup(Path::new("a.jpg")), Lookup::Off);
        watch.remember(Path::new("a.jpg"), 0, "id");
        assert_eq!(watch.lookup(Path::new("a.jpg")), Lookup::Off);
    }

    #[test]
    fn watch_file_system_check_knows_tmpfs_and_proc() {
        // /proc's changes never reach inotify.
        assert!(check_file_system(Path::new("/proc")).is_err());
        // /dev/shm is tmpfs wherever it exists.
        if Path::new("/dev/shm").is_dir() {
            assert_eq!(check_file_system(Path::new("/dev/shm")), Ok(()));
        }
    }
}
