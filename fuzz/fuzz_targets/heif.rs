//! `pipeline::render` on HEIF (HEIC and AVIF) bytes, so the fuzzer's time goes to libheif,
//! libde265 and dav1d and to our own `ftyp`/`meta` walk in front of them. The input is the
//! file itself (the seeds are plain `.heic`/`.avif` files); its length modulo the transform
//! list picks the transform, so no prefix bytes are spent. Inputs that do not sniff as HEIC or
//! AVIF are skipped. It must never panic; every error is fine. When it succeeds, the output size
//! is checked against the limit.
//!
//! Only the Rust side is instrumented for coverage: libheif is built by its own cmake with the
//! system C/C++ compiler, and libde265/dav1d are Debian's shared libraries, so libFuzzer sees
//! their crashes (and AddressSanitizer the ones that reach our heap) but does not steer by
//! their branches.
#![no_main]

use std::sync::OnceLock;

use imgcdn::format::Format;
use imgcdn::options::{self, Transform};
use imgcdn::pipeline::{self, Accept, Codecs, Limits, Request};
use libfuzzer_sys::fuzz_target;

const LIMITS: Limits = Limits {
    max_source_pixels: 4_000_000,
    max_output_pixels: 1_000_000,
    max_decode_bytes: 64 << 20,
    max_frames: 1000,
    max_animation_pixels: 100_000_000,
    max_upscale: 4,
    max_avif_pixels: 100_000,
    deadline: None,
};

/// Decoding is the point; these cover the paths after it that depend on what it returned
/// (alpha, orientation, EXIF with `keep_copyright`).
const SEGMENTS: &[&str] = &["w_32", "w_24,h_24,c_fill,f_png", "r_90,w_16,f_webp"];

fn transforms() -> &'static [Transform] {
    static T: OnceLock<Vec<Transform>> = OnceLock::new();
    T.get_or_init(|| SEGMENTS.iter().map(|s| options::parse(s).unwrap()).collect())
}

fuzz_target!(|data: &[u8]| {
    if !matches!(pipeline::sniff(data), Some(Format::Heic | Format::Avif)) {
        return;
    }
    let ts = transforms();
    let req = Request {
        transform: &ts[data.len() % ts.len()],
        accept: Accept {
            webp: true,
            avif: false,
        },
        default_quality: 80,
        codecs: Codecs {
            keep_copyright: true,
            ..Codecs::default()
        },
    };
    if let Ok(out) = pipeline::render(data, &req, &LIMITS) {
        assert!(out.width >= 1 && out.height >= 1, "empty output {}x{}", out.width, out.height);
        assert!(
            u64::from(out.width) * u64::from(out.height) <= LIMITS.max_output_pixels,
            "output {}x{} over the limit",
            out.width,
            out.height
        );
        assert!(!out.bytes.is_empty(), "empty encoded output");
    }
});
