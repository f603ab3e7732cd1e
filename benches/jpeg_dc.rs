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
//!
//! A second row per baseline file times the 1/4 decoder (`pipeline::decode_jpeg_quarter`)
//! against libjpeg-turbo's 1/4 decode the same way; its outputs are close, not equal, so that
//! row gives their PSNR instead of the max difference.

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
    turbo_at(bytes, ScalingFactor::ONE_EIGHTH)
}

fn turbo_quarter(bytes: &[u8]) -> Vec<u8> {
    turbo_at(bytes, ScalingFactor::ONE_QUARTER)
}

fn turbo_at(bytes: &[u8], f: ScalingFactor) -> Vec<u8> {
    let mut d = Decompressor::new().expect("decompressor");
    let header = d.read_header(bytes).expect("header");
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

/// Median thread-CPU ms of `ours` and `theirs` over `rounds` alternating rounds.
fn race(rounds: usize, ours: &dyn Fn(), theirs: &dyn Fn()) -> (f64, f64) {
    let time = |f: &dyn Fn()| {
        let t0 = cpu();
        f();
        (cpu() - t0).as_secs_f64() * 1e3
    };
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        if round % 2 == 0 {
            a.push(time(ours));
            b.push(time(theirs));
        } else {
            b.push(time(theirs));
            a.push(time(ours));
        }
    }
    (median(a), median(b))
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    let mse = (a.iter().zip(b))
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum::<f64>()
        / a.len().max(1) as f64;
    10.0 * (255.0f64.powi(2) / mse.max(1e-9)).log10()
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
    println!(
        "| file | kind | MB | ours ms (DC-only 1/8, or quarter) | libjpeg-turbo ms (1/8, or 1/4) | ratio | max diff (1/4: PSNR) |"
    );
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
        if let Some((_, _, ours)) = pipeline::decode_jpeg_quarter(&bytes) {
            let reference = turbo_quarter(&bytes);
            let db = psnr(&ours, &reference);
            let (q, t) = race(
                rounds,
                &|| {
                    std::hint::black_box(pipeline::decode_jpeg_quarter(&bytes));
                },
                &|| {
                    std::hint::black_box(turbo_quarter(&bytes));
                },
            );
            println!(
                "| {name} | {kind}, **1/4** (quarter / libjpeg-turbo 1/4) | {mb:.1} | {q:.2} | {t:.2} | {:.2} | {db:.1} dB |",
                q / t
            );
        }
        let Some((_, _, ours)) = pipeline::decode_jpeg_eighth(&bytes) else {
            println!("| {name} | {kind} | {mb:.1} | falls back | | | |");
            continue;
        };
        let reference = turbo_eighth(&bytes);
        let diff = (ours.iter().zip(&reference))
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap_or(0);
        let (d, t) = race(
            rounds,
            &|| {
                std::hint::black_box(pipeline::decode_jpeg_eighth(&bytes));
            },
            &|| {
                std::hint::black_box(turbo_eighth(&bytes));
            },
        );
        println!(
            "| {name} | {kind} | {mb:.1} | {d:.2} | {t:.2} | {:.2} | {diff} |",
            d / t
        );
    }
}
