//! `cargo bench --bench jpeg_dc`: the DC-only JPEG decoder (`pipeline::decode_jpeg_eighth`)
//! next to libjpeg-turbo's own 1/8 scaled decode (the `turbojpeg` crate, RGB out: what
//! `djpeg -scale 1/8` does without the process, file and PPM costs) on every JPEG of the
//! shared corpus (`../shared/corpus/` or `$IMGCDN_CORPUS`; skipped with a message when
//! absent).
//!
//! Per file, `ROUNDS` (default 15, `$IMGCDN_BENCH_ROUNDS`) rounds each time both decoders once,
//! alternating which goes first, so drift on a noisy machine hits both; the table gives the
//! median thread-CPU ms of each and their ratio (the issue-18 figure: DC-only / libjpeg 1/8),
//! and checks the two outputs are equal (max channel difference). A measurement, not a test.

use std::path::{Path, PathBuf};
use std::time::Duration;

use imgcdn::pipeline;
use rustix::time::{clock_gettime, ClockId};
use turbojpeg::{Decompressor, Image, PixelFormat, ScalingFactor};

fn cpu() -> Duration {
    let t = clock_gettime(ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

fn turbo_eighth(bytes: &[u8]) -> Vec<u8> {
    let mut d = Decompressor::new().expect("decompressor");
    let header = d.read_header(bytes).expect("header");
    let f = ScalingFactor::ONE_EIGHTH;
    let (w, h) = (f.scale(header.width), f.scale(header.height));
    let mut buf = vec![0; w * h * 3];
    d.set_scaling_factor(f).expect("scale");
    let image = Image {
        pixels: buf.as_mut_slice(),
        width: w,
        pitch: w * 3,
        height: h,
        format: PixelFormat::RGB,
    };
    d.decompress(bytes, image).expect("decompress");
    buf
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn jpegs(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(jpegs(&path));
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg"))
        {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn main() {
    let corpus = std::env::var_os("IMGCDN_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"));
    let files = jpegs(&corpus);
    if files.is_empty() {
        eprintln!(
            "jpeg_dc bench: no JPEGs under {} (set IMGCDN_CORPUS); skipped",
            corpus.display()
        );
        return;
    }
    let rounds: usize = std::env::var("IMGCDN_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    println!("| file | kind | MB | DC-only ms | libjpeg-turbo 1/8 ms | ratio | max diff |");
    println!("|---|---|---|---|---|---|---|");
    for path in files {
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into());
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let Ok(header) = turbojpeg::read_header(&bytes) else {
            println!("| {name} | not read by libjpeg | | | | | |");
            continue;
        };
        let kind = format!(
            "{} {:?} {}x{}",
            if header.is_progressive {
                "progressive"
            } else {
                "baseline"
            },
            header.subsamp,
            header.width,
            header.height
        );
        let mb = bytes.len() as f64 / 1e6;
        let Some((_, _, ours)) = pipeline::decode_jpeg_eighth(&bytes) else {
            println!("| {name} | {kind} | {mb:.1} | falls back | | | |");
            continue;
        };
        let reference = turbo_eighth(&bytes);
        let diff = (ours.iter().zip(&reference))
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap_or(0);
        let (mut dc, mut turbo) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let time = |f: &dyn Fn()| {
                let t0 = cpu();
                f();
                (cpu() - t0).as_secs_f64() * 1e3
            };
            let run_dc = || {
                std::hint::black_box(pipeline::decode_jpeg_eighth(&bytes));
            };
            let run_turbo = || {
                std::hint::black_box(turbo_eighth(&bytes));
            };
            if round % 2 == 0 {
                dc.push(time(&run_dc));
                turbo.push(time(&run_turbo));
            } else {
                turbo.push(time(&run_turbo));
                dc.push(time(&run_dc));
            }
        }
        let (d, t) = (median(dc), median(turbo));
        println!(
            "| {name} | {kind} | {mb:.1} | {d:.2} | {t:.2} | {:.2} | {diff} |",
            d / t
        );
    }
}
