//! `cargo bench --bench pipeline`: the whole render through the public pipeline API
//! (`pipeline::render`, as the server calls it on its worker pool) on the shared corpus, next to
//! a **libjpeg-turbo floor** for the JPEG sources: the same scaled decode the pipeline picks
//! plus the same encoder on an image of the output size, with no resize, no orientation, no
//! limits. "pipeline / floor" is the issue-5 target (at most 1.2).
//!
//! Jobs: → 300 px JPEG q80 (`w_300,q_80,f_jpeg`) and → 1200 px WebP q80 (`w_1200,q_80,f_webp`).
//! Images: `../shared/corpus/` (or `$IMGCDN_CORPUS`); missing files are skipped with a message,
//! and a missing corpus skips everything (exit 0).
//!
//! Besides criterion's report, a markdown table is printed at the end: median wall ms per job,
//! the pipeline's own stage split (`Rendered::timings`), CPU ms per job of the whole process
//! (utime+stime from `/proc/self/stat`, 10 ms ticks summed over all samples; one thread, so
//! it equals wall time on a quiet machine and is the steadier number on a busy one) and both
//! ratios. The target is on CPU time.
//! `cargo test --benches` runs every job once (criterion's test mode).
//!
//! What it does not measure: fetching, caching, HTTP, queueing (see `bench/all.sh`).

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode};
use imgcdn::format::Format;
use imgcdn::options;
use imgcdn::pipeline::{self, Accept, Limits, Request, Timings};
use turbojpeg::{Compressor, Decompressor, Image, PixelFormat, ScalingFactor, Subsamp};

/// The corpus files, in the order of the issue.
const FILES: [&str; 6] = [
    "photo-5120x2880.jpg",  // baseline 4:4:4: shrink-on-load pays most
    "art-3840x2160.jpg",    // progressive q~100
    "art-5640x3172.jpg",    // progressive q~100, 16 MB
    "photo-2560x1600.jpg",  // baseline 4:2:0
    "alpha-1920x1200.png",  // RGBA, flattened for JPEG
    "lossy-2560x1600.webp", // VP8
];

/// (name, options segment, output format, quality).
const JOBS: [(&str, &str, Format, u8); 2] = [
    ("jpeg300", "w_300,q_80,f_jpeg", Format::Jpeg, 80),
    ("webp1200", "w_1200,q_80,f_webp", Format::Webp, 80),
];

/// The server's defaults (`limits.*` in config/default.toml).
const LIMITS: Limits = Limits {
    max_source_pixels: 50_000_000,
    max_output_pixels: 1 << 26,
    max_decode_bytes: 1 << 29,
    max_frames: 1000,
    max_animation_pixels: 100_000_000,
    max_upscale: 4,
    max_avif_pixels: 2_100_000,
    deadline: None,
};

/// Per-iteration wall times, CPU time and stage timings collected inside `iter_custom`.
#[derive(Default)]
struct Record {
    times: Vec<Duration>,
    stages: Vec<Timings>,
    cpu_ticks: u64,
    iters: u64,
}

impl Record {
    fn median_ms(&self) -> f64 {
        median(self.times.iter().map(Duration::as_secs_f64)) * 1e3
    }
    fn cpu_ms_per_job(&self) -> Option<f64> {
        // CLK_TCK is 100 on Linux.
        (self.iters > 0 && self.cpu_ticks > 0)
            .then(|| self.cpu_ticks as f64 * 10.0 / self.iters as f64)
    }
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// utime + stime of this process in clock ticks, all threads; 0 where /proc is absent.
fn process_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after "pid (comm) ": state is field 3, utime 14 and stime 15.
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)
}

/// Times `iters` runs of `job`, one by one, into `rec`; returns the total for criterion.
fn timed(rec: &RefCell<Record>, iters: u64, mut job: impl FnMut() -> Option<Timings>) -> Duration {
    let mut total = Duration::ZERO;
    let ticks = process_ticks();
    let mut r = rec.borrow_mut();
    for _ in 0..iters {
        let start = Instant::now();
        let stages = job();
        let t = start.elapsed();
        total += t;
        r.times.push(t);
        r.stages.extend(stages);
    }
    r.cpu_ticks += process_ticks() - ticks;
    r.iters += iters;
    total
}

/// The largest DCT shrink k in {8, 4, 2} keeping the scaled source at least the output size
/// on both axes, else 1. A copy of the pipeline's private `jpeg::choose_shrink` for a
/// whole-image crop (the corpus JPEGs have no EXIF rotation).
fn shrink_for(src: (usize, usize), out: (u32, u32)) -> ScalingFactor {
    [
        (8, ScalingFactor::ONE_EIGHTH),
        (4, ScalingFactor::ONE_QUARTER),
        (2, ScalingFactor::ONE_HALF),
    ]
    .into_iter()
    .find(|&(k, _)| src.0 / k >= out.0 as usize && src.1 / k >= out.1 as usize)
    .map_or(ScalingFactor::ONE, |(_, f)| f)
}

/// The floor: scaled decode to RGB, then encode the top-left `out` region of it with the
/// pipeline's encoder settings (JPEG: 4:2:0, optimised Huffman; WebP: libwebp defaults).
fn floor(bytes: &[u8], factor: ScalingFactor, out: (u32, u32), format: Format, q: u8) -> usize {
    let header = turbojpeg::read_header(bytes).expect("jpeg header");
    let (sw, sh) = (factor.scale(header.width), factor.scale(header.height));
    let mut buf = vec![0u8; sw * sh * 3];
    let mut d = Decompressor::new().expect("decompressor");
    d.set_scaling_factor(factor).expect("scaling factor");
    let image = Image {
        pixels: buf.as_mut_slice(),
        width: sw,
        pitch: sw * 3,
        height: sh,
        format: PixelFormat::RGB,
    };
    d.decompress(bytes, image).expect("decompress");
    let (ow, oh) = (out.0 as usize, out.1 as usize);
    assert!(ow <= sw && oh <= sh, "floor: {ow}x{oh} > decoded {sw}x{sh}");
    match format {
        Format::Jpeg => {
            let mut c = Compressor::new().expect("compressor");
            c.set_quality(i32::from(q)).expect("quality");
            c.set_subsamp(Subsamp::Sub2x2).expect("subsamp");
            c.set_optimize(true).expect("optimize");
            let image = Image {
                pixels: buf.as_slice(),
                width: ow,
                pitch: sw * 3,
                height: oh,
                format: PixelFormat::RGB,
            };
            c.compress_to_vec(image).expect("compress").len()
        }
        Format::Webp => {
            // libwebp wants packed rows: copy the region (about 0.1 ms at 1200 px).
            let packed: Vec<u8> = buf
                .chunks_exact(sw * 3)
                .take(oh)
                .flat_map(|row| &row[..ow * 3])
                .copied()
                .collect();
            let enc = webp::Encoder::from_rgb(&packed, out.0, out.1);
            enc.encode_simple(false, f32::from(q)).expect("webp").len()
        }
        _ => unreachable!("no floor for {format}"),
    }
}

/// One summary row for the final table.
struct Row {
    file: &'static str,
    job: &'static str,
    out: (u32, u32),
    bytes: usize,
    shrink: Option<u32>,
    pipeline: Record,
    floor: Option<Record>,
}

fn bench_file(c: &mut Criterion, corpus: &Path, file: &'static str, rows: &mut Vec<Row>) {
    let path = corpus.join(file);
    let Ok(bytes) = std::fs::read(&path) else {
        eprintln!("pipeline bench: {} not found, skipped", path.display());
        return;
    };
    let is_jpeg = pipeline::sniff(&bytes) == Some(Format::Jpeg);
    for (job, opts, format, q) in JOBS {
        let transform = options::parse(opts).expect("bench options parse");
        let req = Request {
            transform: &transform,
            accept: Accept::default(),
            default_quality: 80,
            codecs: pipeline::Codecs::default(),
        };
        // One render up front: the output size the floor must match, and a sanity check.
        let first = pipeline::render(&bytes, &req, &LIMITS).expect("render");
        assert_eq!(first.format, format, "{file} {job}: output format");
        let out = (first.width, first.height);
        let factor = is_jpeg.then(|| {
            let h = turbojpeg::read_header(&bytes).expect("jpeg header");
            shrink_for((h.width, h.height), out)
        });

        let mut group = c.benchmark_group(format!("{job}/{file}"));
        group.sampling_mode(SamplingMode::Flat);
        let pipe = RefCell::new(Record::default());
        group.bench_function("pipeline", |b| {
            b.iter_custom(|iters| {
                timed(&pipe, iters, || {
                    let r = pipeline::render(&bytes, &req, &LIMITS).expect("render");
                    Some(std::hint::black_box(r).timings)
                })
            })
        });
        let floor_rec = factor.map(|factor| {
            let rec = RefCell::new(Record::default());
            group.bench_function("turbojpeg-floor", |b| {
                b.iter_custom(|iters| {
                    timed(&rec, iters, || {
                        std::hint::black_box(floor(&bytes, factor, out, format, q));
                        None
                    })
                })
            });
            rec.into_inner()
        });
        group.finish();
        rows.push(Row {
            file,
            job,
            out,
            bytes: first.bytes.len(),
            shrink: factor.map(|f| (f.denom() / f.num()) as u32),
            pipeline: pipe.into_inner(),
            floor: floor_rec,
        });
    }
}

fn print_table(rows: &[Row]) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let opt = |v: Option<f64>, digits: usize| v.map_or("–".into(), |v| format!("{v:.digits$}"));
    println!();
    println!("| job | file | output | bytes | shrink | pipeline ms | decode | resize | encode | pipeline CPU ms/job | floor ms | floor CPU ms/job | pipeline / floor | CPU pipeline / floor |");
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    // Rows a command-line filter skipped have no samples.
    for r in rows.iter().filter(|r| !r.pipeline.times.is_empty()) {
        let stage =
            |f: fn(&Timings) -> Duration| median(r.pipeline.stages.iter().map(|t| ms(f(t))));
        let p = r.pipeline.median_ms();
        let f = r.floor.as_ref().map(Record::median_ms);
        let (pc, fc) = (
            r.pipeline.cpu_ms_per_job(),
            r.floor.as_ref().and_then(Record::cpu_ms_per_job),
        );
        println!(
            "| {} | {} | {}x{} | {} | {} | {:.1} | {:.1} | {:.2} | {:.2} | {} | {} | {} | {} | {} |",
            r.job,
            r.file,
            r.out.0,
            r.out.1,
            r.bytes,
            r.shrink.map_or("–".into(), |k| format!("1/{k}")),
            p,
            stage(|t| t.decode),
            stage(|t| t.resize),
            stage(|t| t.encode),
            opt(pc, 1),
            opt(f, 1),
            opt(fc, 1),
            opt(f.map(|f| p / f), 2),
            opt(pc.zip(fc).map(|(p, f)| p / f), 2),
        );
    }
}

fn main() {
    let corpus = std::env::var_os("IMGCDN_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"));
    if !corpus.is_dir() {
        eprintln!(
            "pipeline bench: corpus not found at {} (set IMGCDN_CORPUS); skipped",
            corpus.display()
        );
        return;
    }
    // Small samples so the whole bench takes a few minutes; override on the command line
    // (`cargo bench --bench pipeline -- --sample-size 30 --measurement-time 10`).
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut rows = Vec::new();
    for file in FILES {
        bench_file(&mut c, &corpus, file, &mut rows);
    }
    c.final_summary();
    print_table(&rows);
}
