//! The disk tier on a read-only or full volume: `/ready` stays 200, requests are answered from
//! memory, `imgcdn_disk_degraded` says so, and caching on disk resumes by itself once there is
//! room again (free space back above the watermark, or our own entries evicted).
//!
//! The volumes are small tmpfs mounts, which need root; elsewhere these tests print why and
//! pass (the read-only one falls back to a directory without write permission).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::*;

/// A tmpfs mounted on a temporary directory, unmounted (then the directory deleted) on drop,
/// also when the test fails.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` (with a message) where mounting is not allowed.
    fn mount(options: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("mount point");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir.path())
            .output();
        match mounted {
            Ok(out) if out.status.success() => Some(Tmpfs { dir }),
            Ok(out) => {
                eprintln!(
                    "skipped: cannot mount a tmpfs (needs root): {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("skipped: cannot run mount: {e}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy, so a file still open in a server being torn down cannot keep it mounted.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Free bytes on the filesystem holding `dir` (as the server sees them).
fn free(dir: &Path) -> u64 {
    let s = rustix::fs::statvfs(dir).expect("statvfs");
    s.f_bavail * s.f_frsize
}

/// Fill the filesystem of `dir` with a file of other data until `left` bytes are free.
fn fill_to(dir: &Path, left: u64) -> std::path::PathBuf {
    let filler = dir.join("filler");
    let len = free(dir).saturating_sub(left);
    std::fs::write(&filler, vec![0u8; usize::try_from(len).expect("len")]).expect("filler");
    filler
}

/// Cached files of ours under `dir` (everything but the filler).
fn ours(dir: &Path) -> usize {
    files_under(dir)
        .iter()
        .filter(|f| f.file_name().is_none_or(|n| n != "filler"))
        .count()
}

async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An origin with a small JPEG (a few tens of KB, so a 2 MiB volume holds it).
async fn small_origin() -> Origin {
    Origin::start(vec![(
        "/small.jpg",
        Reply::Body("image/jpeg", jpeg(800, 600)),
    )])
    .await
}

fn img(opts: &str, origin: &Origin) -> String {
    format!("/img/{opts}/{}", origin.url("/small.jpg"))
}

#[tokio::test]
async fn disk_read_only_volume_keeps_ready_and_serves_from_memory() {
    // As root a permission bit stops nothing, so a read-only tmpfs; otherwise mode 0555.
    let (_mount, _plain, dir) = match Tmpfs::mount("ro,size=1m") {
        Some(m) => {
            let dir = m.path().to_path_buf();
            (Some(m), None, dir)
        }
        None => {
            use std::os::unix::fs::PermissionsExt;
            let t = tempfile::tempdir().expect("dir");
            std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o555))
                .expect("chmod");
            if std::fs::write(t.path().join("probe"), b"x").is_ok() {
                eprintln!("skipped: a 0555 directory is writable here and tmpfs is not available");
                return;
            }
            let dir = t.path().to_path_buf();
            (None, Some(t), dir)
        }
    };
    let origin = small_origin().await;
    let d = dir.to_string_lossy().into_owned();
    let p = proxy_with(move |c| c.cache.dir = d).await;
    assert_eq!(p.get("/ready").await.status, 200);
    let first = p.get(&img("w_100", &origin)).await;
    first.assert_ok();
    assert_eq!(first.header("x-cache"), "MISS");
    assert_eq!(
        p.get(&img("w_100", &origin)).await.header("x-cache"),
        "HIT memory"
    );
    // The original the disk refused is kept in memory: another size fetches nothing.
    p.get(&img("w_200", &origin)).await.assert_ok();
    assert_eq!(origin.hits(), 1);
    let r = p.get("/ready").await;
    assert_eq!((r.status, r.text().trim()), (200, "ready"));
    assert_eq!(p.metric("imgcdn_disk_degraded").await, 1.0);
    assert!(p.metric("imgcdn_disk_write_failures_total").await >= 3.0);
}

#[tokio::test]
async fn disk_full_volume_skips_writes_and_caching_resumes_when_space_returns() {
    let Some(mount) = Tmpfs::mount("size=2m") else {
        return;
    };
    let origin = small_origin().await;
    let d = mount.path().to_string_lossy().into_owned();
    // Keep 1 MiB free (half of the 2 MiB volume would be 1 MiB too).
    let p = proxy_with(move |c| {
        c.cache.dir = d;
        c.cache.disk_min_free_mb = 1;
        c.cache.disk_min_free_percent = 50;
    })
    .await;
    let filler = fill_to(mount.path(), 512 * 1024);
    let first = p.get(&img("w_100", &origin)).await;
    first.assert_ok();
    assert_eq!(first.header("x-cache"), "MISS");
    assert_eq!(p.get("/ready").await.status, 200);
    assert_eq!(
        p.get(&img("w_100", &origin)).await.header("x-cache"),
        "HIT memory"
    );
    assert_eq!(ours(mount.path()), 0, "nothing written below the watermark");
    assert_eq!(p.metric("imgcdn_disk_degraded").await, 1.0);
    assert!(p.metric("imgcdn_disk_writes_skipped_total").await >= 1.0);
    assert_eq!(p.metric("imgcdn_disk_write_failures_total").await, 0.0);

    // Room again: the next writes go to disk and the degraded state clears.
    std::fs::remove_file(&filler).expect("remove filler");
    let made = p.get(&img("w_120", &origin)).await;
    made.assert_ok();
    assert_eq!(made.header("x-cache"), "MISS");
    assert!(ours(mount.path()) >= 1, "written to disk again");
    assert_eq!(p.metric("imgcdn_disk_degraded").await, 0.0);
    assert_eq!(p.get("/ready").await.status, 200);
    // A fresh server on the same volume finds it on disk.
    let d = mount.path().to_string_lossy().into_owned();
    let again = proxy_with(move |c| c.cache.dir = d).await;
    let hit = again.get(&img("w_120", &origin)).await;
    assert_eq!(hit.header("x-cache"), "HIT disk");
    assert_eq!(hit.body, made.body);
}

#[tokio::test]
async fn disk_below_the_watermark_evicts_our_entries_then_caches_again() {
    let Some(mount) = Tmpfs::mount("size=2m") else {
        return;
    };
    let origin = small_origin().await;
    let d = mount.path().to_string_lossy().into_owned();
    // Renditions only (a few KB each), so the arithmetic below has a wide margin.
    let p = proxy_with(move |c| {
        c.cache.dir = d;
        c.cache.disk_min_free_mb = 1;
        c.cache.disk_min_free_percent = 50;
        c.cache.keep_sources = false;
    })
    .await;
    for w in [100, 110, 120] {
        p.get(&img(&format!("w_{w}"), &origin)).await.assert_ok();
    }
    assert_eq!(ours(mount.path()), 3, "three renditions");
    // Other data leaves just under the 1 MiB mark: a write is skipped, and the sweeper
    // evicts what is ours until the high mark (1.25 MiB) or the tier is empty.
    fill_to(mount.path(), 1024 * 1024 - 4096);
    let skipped = p.get(&img("w_130", &origin)).await;
    skipped.assert_ok();
    assert_eq!(p.get("/ready").await.status, 200);
    eventually("the sweeper to evict our entries", || {
        ours(mount.path()) == 0
    })
    .await;
    assert!(p.metric("imgcdn_disk_writes_skipped_total").await >= 1.0);
    assert_eq!(p.metric("imgcdn_disk_degraded").await, 1.0);
    // Above the low mark again, with the filler still there: caching resumes by itself.
    assert!(free(mount.path()) >= 1024 * 1024);
    let made = p.get(&img("w_140", &origin)).await;
    made.assert_ok();
    assert_eq!(made.header("x-cache"), "MISS");
    assert!(ours(mount.path()) >= 1, "written to disk again");
    assert_eq!(p.metric("imgcdn_disk_degraded").await, 0.0);
}
