//! `cargo bench --bench formats`: decode time of every input format, next to the libjpeg-turbo
//! floor (`djpeg -scale 1/8` of the same photo, in process) measured in the same run, at 1/8
//! (`w_320` of a 2560 px photo: JPEG shrinks in the DCT, the others decode at full size and
//! resize) and at full size (`f_jpeg`, no resize). Plus SVG render time for a typical logo
//! and for a pathological one, which must stop at the job deadline.
//!
//! Inputs are made at start from `../shared/corpus/photo-2560x1600.jpg` (or `$IMGCDN_CORPUS`):
//! PNG, TIFF, BMP, QOI, PNM, TGA by `image`, AVIF by ravif, HEIC by `heif-enc` and JPEG XL by
//! `cjxl` when those Debian tools are installed (skipped with a message otherwise); the corpus
//! WebP. A missing corpus skips everything (exit 0). Figures are medians of `RUNS` renders,
//! `Rendered::timings.decode` (the pipeline's decode stage), one thread.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use imgcdn::options;
use imgcdn::pipeline::{self, Accept, Codecs, Limits, PipelineError, Request};
use turbojpeg::{Decompressor, Image, PixelFormat, ScalingFactor};

const RUNS: usize = 7;

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

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Median decode-stage and whole-render ms of `options` on `bytes`.
fn render_ms(bytes: &[u8], options: &str, limits: &Limits) -> Result<(f64, f64), PipelineError> {
    let transform = options::parse(options).expect("bench options parse");
    let req = Request {
        transform: &transform,
        accept: Accept::default(),
        default_quality: 80,
        codecs: Codecs::default(),
    };
    let (mut decode, mut total) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let start = Instant::now();
        let r = pipeline::render(bytes, &req, limits)?;
        total.push(ms(start.elapsed()));
        decode.push(ms(r.timings.decode));
    }
    Ok((median(decode), median(total)))
}

/// libjpeg-turbo's 1/8 decode of `jpeg` (what `djpeg -scale 1/8` does), median ms.
fn floor_ms(jpeg: &[u8]) -> f64 {
    let mut d = Decompressor::new().expect("decompressor");
    d.set_scaling_factor(ScalingFactor::ONE_EIGHTH)
        .expect("scale");
    let h = d
        .read_header(jpeg)
        .expect("header")
        .scaled(ScalingFactor::ONE_EIGHTH);
    let mut buf = vec![0u8; h.width * h.height * 3];
    let mut times = Vec::new();
    for _ in 0..RUNS * 3 {
        let start = Instant::now();
        let image = Image {
            pixels: buf.as_mut_slice(),
            width: h.width,
            pitch: h.width * 3,
            height: h.height,
            format: PixelFormat::RGB,
        };
        d.decompress(jpeg, image).expect("decompress");
        times.push(ms(start.elapsed()));
    }
    median(times)
}

/// `img` encoded as `format` by `image`.
fn encoded(img: &image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).expect("encode");
    out.into_inner()
}

/// `tool <input.png> <output>` (a Debian encoder), or `None` when it is not installed.
fn with_tool(tool: &str, args: &[&str], png: &[u8], ext: &str) -> Option<Vec<u8>> {
    let dir = std::env::temp_dir().join(format!("imgcdn-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let (src, dst) = (dir.join("src.png"), dir.join(format!("out.{ext}")));
    std::fs::write(&src, png).ok()?;
    let mut cmd = Command::new(tool);
    cmd.arg(&src).args(args).arg(&dst);
    // heif-enc names its output with -o.
    if tool == "heif-enc" {
        cmd = Command::new(tool);
        cmd.args(args).arg("-o").arg(&dst).arg(&src);
    }
    let ok = cmd.output().map(|o| o.status.success()).unwrap_or(false);
    let bytes = ok.then(|| std::fs::read(&dst).ok()).flatten();
    let _ = std::fs::remove_dir_all(&dir);
    if bytes.is_none() {
        eprintln!("formats bench: `{tool}` not available, its row skipped");
    }
    bytes
}

/// A long SVG, light per row: `n` blurred discs down a 100 x 20n document (within the work
/// estimate, so only the job deadline stops it).
fn tall_svg(n: usize) -> Vec<u8> {
    let mut s = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="100" height="{}"><filter id="b"><feGaussianBlur stdDeviation="3"/></filter>"##,
        n * 20
    );
    for i in 0..n {
        s.push_str(&format!(
            r##"<circle cx="50" cy="{}" r="30" fill="red" filter="url(#b)"/>"##,
            i * 20
        ));
    }
    s.push_str("</svg>");
    s.into_bytes()
}

/// A pathological SVG: `n` full-canvas layers, each blurred with a large radius.
fn pathological_svg(n: usize) -> Vec<u8> {
    let mut s = String::from(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="2000" height="2000"><defs><filter id="b" x="-50%" y="-50%" width="200%" height="200%"><feGaussianBlur stdDeviation="80"/><feMorphology operator="dilate" radius="40"/></filter></defs>"#,
    );
    for i in 0..n {
        s.push_str(&format!(
            r##"<rect x="{}" y="0" width="1900" height="2000" fill="#{:06x}" opacity="0.5" filter="url(#b)"/>"##,
            i % 100,
            (i * 2_654_435_761) & 0xFF_FFFF
        ));
    }
    s.push_str("</svg>");
    s.into_bytes()
}

fn main() {
    let corpus = std::env::var_os("IMGCDN_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"));
    let Ok(jpeg) = std::fs::read(corpus.join("photo-2560x1600.jpg")) else {
        eprintln!(
            "formats bench: corpus not found at {} (set IMGCDN_CORPUS); skipped",
            corpus.display()
        );
        return;
    };
    let photo = image::load_from_memory(&jpeg).expect("photo decodes");
    let png = encoded(&photo, image::ImageFormat::Png);
    let rgb = photo.to_rgb8();
    let avif = ravif::Encoder::new()
        .with_quality(80.0)
        .with_speed(10)
        .with_num_threads(Some(1))
        .encode_rgb(ravif::Img::new(
            rgb::FromSlice::as_rgb(rgb.as_raw().as_slice()),
            rgb.width() as usize,
            rgb.height() as usize,
        ))
        .expect("avif")
        .avif_file;
    let mut inputs: Vec<(&str, Vec<u8>)> = vec![
        ("jpeg", jpeg.clone()),
        ("png", png.clone()),
        ("tiff", encoded(&photo, image::ImageFormat::Tiff)),
        ("bmp", encoded(&photo, image::ImageFormat::Bmp)),
        ("qoi", encoded(&photo, image::ImageFormat::Qoi)),
        ("pnm", encoded(&photo, image::ImageFormat::Pnm)),
        ("tga", encoded(&photo, image::ImageFormat::Tga)),
        ("avif", avif),
    ];
    if let Ok(webp) = std::fs::read(corpus.join("lossy-2560x1600.webp")) {
        inputs.insert(2, ("webp", webp));
    }
    if let Some(heic) = with_tool("heif-enc", &["-q", "80"], &png, "heic") {
        inputs.push(("heic", heic));
    }
    if let Some(jxl) = with_tool("cjxl", &["-d", "1", "--quiet"], &png, "jxl") {
        inputs.push(("jxl", jxl));
    }

    let floor = floor_ms(&jpeg);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    println!("\nCPU: {cpu}. Floor: libjpeg-turbo 1/8 decode of photo-2560x1600.jpg = {floor:.2} ms (median of {}).\n", RUNS * 3);
    println!("| input (2560x1600) | bytes | decode ms, w_320 | / floor | render ms, w_320 | decode ms, full | / floor | render ms, full (f_jpeg) |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, bytes) in &inputs {
        let small = render_ms(bytes, "w_320,f_jpeg", &LIMITS);
        let full = render_ms(bytes, "f_jpeg", &LIMITS);
        match (small, full) {
            (Ok((sd, st)), Ok((fd, ft))) => println!(
                "| {name} | {} | {sd:.1} | {:.1} | {st:.1} | {fd:.1} | {:.1} | {ft:.1} |",
                bytes.len(),
                sd / floor,
                fd / floor
            ),
            (a, b) => println!(
                "| {name} | {} | failed: {:?} {:?} | | | | | |",
                bytes.len(),
                a.err(),
                b.err()
            ),
        }
    }

    // SVG: a typical logo, and a pathological file under a 1 s job deadline.
    let logo_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/formats/logo.svg");
    println!("\n| SVG | job | render ms | result |");
    println!("|---|---|---:|---|");
    if let Ok(logo) = std::fs::read(&logo_path) {
        for job in ["w_300,f_png", "w_2000,f_png"] {
            match render_ms(&logo, job, &LIMITS) {
                Ok((_, t)) => println!("| logo.svg ({} B) | {job} | {t:.1} | ok |", logo.len()),
                Err(e) => println!("| logo.svg | {job} | – | {e} |"),
            }
        }
    } else {
        eprintln!(
            "formats bench: {} not found, SVG logo rows skipped",
            logo_path.display()
        );
    }
    let cases = [
        (
            "pathological: 200 blurred, dilated 2000 px layers",
            pathological_svg(200),
            "w_2000,f_png",
            1000,
        ),
        (
            "pathological: 1000 blurred discs down 100x20000",
            tall_svg(1000),
            "w_100,f_png",
            200,
        ),
    ];
    for (what, svg, job, budget_ms) in cases {
        let transform = options::parse(job).expect("parse");
        let req = Request {
            transform: &transform,
            accept: Accept::default(),
            default_quality: 80,
            codecs: Codecs::default(),
        };
        let start = Instant::now();
        let limits = Limits {
            deadline: Some(start + Duration::from_millis(budget_ms)),
            ..LIMITS
        };
        let result = pipeline::render(&svg, &req, &limits);
        let took = start.elapsed();
        let unbounded = pipeline::render(&svg, &req, &LIMITS).map(|_| ());
        let full = start.elapsed() - took;
        println!(
            "| {what} | {job}, deadline {budget_ms} ms | {:.0} | {} (without a deadline: {:.0} ms, {}) |",
            ms(took),
            match result {
                Ok(_) => "rendered".to_string(),
                Err(e) => e.to_string(),
            },
            ms(full),
            match unbounded {
                Ok(()) => "rendered".to_string(),
                Err(e) => e.to_string(),
            }
        );
    }
}
