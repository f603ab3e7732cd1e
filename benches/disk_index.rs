//! `cargo bench --bench disk_index`: what the disk tier's housekeeping costs at 300,000 entries
//! (`IMGCDN_BENCH_ENTRIES` to change it), next to a baseline measured in the same run: one walk
//! that stats every file of the tier into a `Vec`, which is what every sweep cost before the
//! index (a 10 GB tier of ~33 KB renditions holds about 300,000 files).
//!
//! The tier is made in a temporary directory (`IMGCDN_BENCH_DIR` to choose where) with the
//! real layout and entry format, small bodies, five entries a source. Then, through the public
//! `Cache`: the start-up walk that builds the index (CPU, wall time, RSS it adds, bytes an
//! entry); idle housekeeping (a sweep that finds nothing to do, which is at least what the
//! periodic check costs each minute); and a sweep over the cap (writes of 1 % more entries
//! cross it, the sweep they start evicts down to 90 % of the cap), as CPU per evicted entry and
//! as the housekeeping of a minute in which 1 % of the tier is replaced. CPU is the process's
//! (`CLOCK_PROCESS_CPUTIME_ID`, all threads), RSS is `VmRSS`. A measurement, not a test: it
//! prints figures and asserts nothing.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use imgcdn::cache::{Cache, Entry, Key};
use imgcdn::config::{Config, Settings};
use rustix::time::{clock_gettime, ClockId};

const DEFAULT_ENTRIES: usize = 300_000;
/// Entries a source (an original and renditions).
const PER_SOURCE: usize = 5;
/// Body bytes an entry: the files take a block each whatever this is.
const BODY: usize = 1000;
const MIB: u64 = 1 << 20;
/// Idle sweeps measured (one a minute in the server).
const IDLE_SWEEPS: u32 = 50;

fn cpu() -> Duration {
    let t = clock_gettime(ClockId::ProcessCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

/// Resident set size in bytes (`VmRSS`).
fn rss() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn key(domain: u8, n: u64) -> Key {
    let mut h = blake3::Hasher::new();
    h.update(&[domain]);
    h.update(&n.to_le_bytes());
    Key(*h.finalize().as_bytes())
}

fn source_of(i: u64) -> Key {
    key(0, i / PER_SOURCE as u64)
}

fn entry() -> Entry {
    Entry::new(Bytes::from(vec![7u8; BODY]), "image/webp", "\"bench\"")
}

/// Write entries `range` the way the disk tier lays them out; older ones have older mtimes.
fn populate(dir: &Path, n: u64) -> u64 {
    let data = entry().encode();
    let start = SystemTime::now() - Duration::from_secs(n / 100 + 10);
    let write = |from: u64, to: u64| {
        for i in from..to {
            let source = source_of(i).hex();
            let sdir = dir.join(&source[..2]).join(&source);
            if i % PER_SOURCE as u64 == 0 || i == from {
                fs::create_dir_all(&sdir).expect("mkdir");
            }
            let path = sdir.join(key(1, i).hex());
            fs::write(&path, &data).expect("write");
            // A hundred entries a second of "last use", oldest first.
            let f = fs::File::options().write(true).open(&path).expect("open");
            f.set_modified(start + Duration::from_secs(i / 100))
                .expect("mtime");
        }
    };
    // Two writers on source boundaries (the machine has two cores).
    let half = (n / 2) / PER_SOURCE as u64 * PER_SOURCE as u64;
    std::thread::scope(|s| {
        s.spawn(|| write(0, half));
        s.spawn(|| write(half, n));
    });
    n * data.len() as u64
}

/// The old sweep's walk: stat every file into a `Vec` (the sort and deletions left out).
fn old_walk(dir: &Path) -> (usize, u64) {
    let mut files: Vec<(SystemTime, u64, PathBuf)> = Vec::new();
    let list = |p: &Path| fs::read_dir(p).into_iter().flatten().flatten();
    for shard in list(dir) {
        for source in list(&shard.path()) {
            for file in list(&source.path()) {
                let Ok(meta) = file.metadata() else { continue };
                if meta.is_file() {
                    let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                    files.push((used, meta.len(), file.path()));
                }
            }
        }
    }
    let peak = rss();
    (files.len(), peak)
}

fn settings(dir: &Path, cap: u64) -> imgcdn::cache::Settings {
    let mut c = Config::default();
    c.cache.dir = dir.to_string_lossy().into_owned();
    c.cache.disk_mb = cap.div_ceil(MIB);
    c.cache.disk_min_free_mb = 0;
    c.cache.memory_mb = 1;
    Settings::try_from(c).expect("bench config").cache
}

async fn levels(cache: &Cache) -> (u64, u64) {
    let (_, _, bytes, entries) = cache.levels().await;
    (bytes, entries)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let n: u64 = std::env::var("IMGCDN_BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_ENTRIES as u64);
    let parent = std::env::var_os("IMGCDN_BENCH_DIR").map(PathBuf::from);
    let tmp = match &parent {
        Some(p) => tempfile::tempdir_in(p),
        None => tempfile::tempdir(),
    }
    .expect("temp dir");
    let dir = tmp.path().join("cache");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    let t = Instant::now();
    let total = populate(&dir, n);
    println!(
        "{n} entries, {} MB, made in {:.1} s",
        total / 1_000_000,
        t.elapsed().as_secs_f64()
    );

    // Baseline: what every sweep cost before the index.
    let (rss0, cpu0) = (rss(), cpu());
    let (walked, peak) = old_walk(&dir);
    let old_cpu = cpu() - cpu0;
    let old_rss = peak.saturating_sub(rss0);
    assert_eq!(walked as u64, n, "the walk found every file");
    println!(
        "baseline (old sweep's walk):  {:8.1} ms CPU, {:6.1} MB RSS while it runs",
        ms(old_cpu),
        old_rss as f64 / 1e6
    );

    runtime.block_on(async {
        // Start-up: the index is built in the background.
        // 1 % more stays under it, 2 % more crosses it (whole MiB rounding included).
        let cap = total + total / 100 + total / 200;
        let (rss0, cpu0, t) = (rss(), cpu(), Instant::now());
        let cache = Arc::new(Cache::new(settings(&dir, cap)));
        let ready = Instant::now() - t;
        while levels(&cache).await.1 < n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (built, build_cpu) = (t.elapsed(), cpu() - cpu0);
        let index_rss = rss().saturating_sub(rss0);
        println!(
            "start-up walk (once):        {:8.1} ms CPU, {:.1} s wall; Cache::new returned in {:.2} ms",
            ms(build_cpu),
            built.as_secs_f64(),
            ms(ready)
        );
        println!(
            "index:                       {:6.1} MB RSS, {:.0} bytes an entry",
            index_rss as f64 / 1e6,
            index_rss as f64 / n as f64
        );

        // Idle housekeeping: a sweep with nothing to do.
        let cpu0 = cpu();
        for _ in 0..IDLE_SWEEPS {
            cache.sweep_now().await.expect("sweep");
        }
        let idle = (cpu() - cpu0) / IDLE_SWEEPS;
        println!(
            "idle sweep (a minute's check): {:8.3} ms CPU  = {:.5} of the baseline",
            ms(idle),
            idle.as_secs_f64() / old_cpu.as_secs_f64()
        );

        // Writes of 1 % of the tier, under the cap: their own cost.
        let body = Arc::new(entry());
        let batch = (n / 100).max(1);
        let put = |from: u64| {
            let cache = cache.clone();
            let body = body.clone();
            async move {
                for i in from..from + batch {
                    cache.put(&source_of(i), &key(1, i), body.clone(), 0).await;
                }
            }
        };
        let cpu0 = cpu();
        put(n).await;
        let put_cpu = cpu() - cpu0;
        // 1 % more crosses the cap: the sweep that starts evicts.
        let (_, before) = levels(&cache).await;
        let cpu0 = cpu();
        put(n + batch).await;
        let deadline = Instant::now() + Duration::from_secs(600);
        while levels(&cache).await.0 > cap && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Let the sweep finish (the write that started it is not waited for).
        let _ = cache.sweep_now().await;
        let sweep_cpu = (cpu() - cpu0).saturating_sub(put_cpu + idle);
        let (_, after) = levels(&cache).await;
        let evicted = (before + batch).saturating_sub(after);
        let per = sweep_cpu.as_secs_f64() / evicted.max(1) as f64;
        println!(
            "sweep over the cap:          {:8.1} ms CPU for {evicted} evicted = {:.1} µs an entry",
            ms(sweep_cpu),
            per * 1e6
        );
        let minute = idle.as_secs_f64() + per * (n / 100) as f64;
        println!(
            "a minute replacing 1 %:      {:8.1} ms CPU  = {:.3} of the baseline",
            minute * 1000.0,
            minute / old_cpu.as_secs_f64()
        );
        println!(
            "  (unlinking {} files, which the old sweep did on top of its walk)",
            n / 100
        );
    });
}
