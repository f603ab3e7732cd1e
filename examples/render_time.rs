//! Time `pipeline::render` on one file: `cargo run --release --example render_time -- FILE W [N]`.
//! `DC_ONLY=0` turns the DC-only JPEG path off, `JPEG_QUARTER=0` the 1/4 baseline JPEG path, `WEBP_EFFORT=0..6` sets libwebp's method, `JPEG_DECODER=rust` picks the
//! pure-Rust JPEG decoder, `FORMAT=avif|webp|jpeg|png|gif` the output format, `OPTIONS=c_fill,h_300,g_auto`
//! more options, `ICC=p3` embeds a Display P3 profile in a JPEG source first, for A/B runs.
use std::time::Instant;

use imgcdn::options::Transform;
use imgcdn::pipeline::{render, Accept, Limits, Request};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(file), Some(w)) = (args.get(1), args.get(2).and_then(|w| w.parse().ok())) else {
        eprintln!("usage: render_time FILE WIDTH [N]");
        std::process::exit(2);
    };
    let n: usize = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(20);
    let mut bytes = std::fs::read(file).expect("read");
    if std::env::var("ICC").as_deref() == Ok("p3") {
        let profile = moxcms::ColorProfile::new_display_p3()
            .encode()
            .expect("profile");
        let mut app2 = vec![0xFF, 0xE2];
        app2.extend(
            u16::try_from(2 + 14 + profile.len())
                .expect("fits")
                .to_be_bytes(),
        );
        app2.extend(b"ICC_PROFILE\0\x01\x01");
        app2.extend(&profile);
        bytes.splice(2..2, app2);
    }
    let format = std::env::var("FORMAT").ok().and_then(|f| {
        imgcdn::options::parse(&format!("f_{f}"))
            .ok()
            .and_then(|t| t.format)
    });
    let extra = std::env::var("OPTIONS").unwrap_or_default();
    let base = if extra.is_empty() {
        Transform::default()
    } else {
        imgcdn::options::parse(&extra).expect("OPTIONS")
    };
    let t = Transform {
        width: Some(w),
        format: format.or(base.format),
        ..base
    };
    let limits = Limits {
        max_source_pixels: 50_000_000,
        max_output_pixels: 1 << 26,
        max_decode_bytes: 1 << 29,
        max_frames: 1000,
        max_animation_pixels: 100_000_000,
        max_upscale: 4,
        max_avif_pixels: 2_100_000,
        deadline: None,
    };
    let req = Request {
        transform: &t,
        accept: Accept::default(),
        default_quality: 80,
        codecs: imgcdn::pipeline::Codecs {
            dc_only: std::env::var("DC_ONLY").map_or(true, |v| v != "0"),
            jpeg_quarter: std::env::var("JPEG_QUARTER").map_or(true, |v| v != "0"),
            jpeg_decoder: match std::env::var("JPEG_DECODER").as_deref() {
                Ok("rust") => imgcdn::pipeline::JpegDecoder::Rust,
                _ => imgcdn::pipeline::JpegDecoder::Turbo,
            },
            webp_effort: std::env::var("WEBP_EFFORT")
                .ok()
                .and_then(|e| e.parse().ok())
                .unwrap_or(4),
            ..Default::default()
        },
    };
    let mut times = Vec::new();
    let mut stages = Vec::new();
    let mut last_len = 0;
    for _ in 0..n {
        let start = Instant::now();
        let r = render(&bytes, &req, &limits).expect("render");
        times.push(start.elapsed().as_secs_f64() * 1e3);
        last_len = r.bytes.len();
        stages.push(r.timings);
    }
    times.sort_by(f64::total_cmp);
    let mid = stages[n / 2];
    println!(
        "{file} w={w} {} {extra}: median {:.1} ms (min {:.1}); decode {:.1} resize {:.1} encode {:.1}; {} bytes",
        std::env::var("FORMAT").unwrap_or_default(),
        times[n / 2],
        times[0],
        mid.decode.as_secs_f64() * 1e3,
        mid.resize.as_secs_f64() * 1e3,
        mid.encode.as_secs_f64() * 1e3,
        last_len
    );
}
