//! `pipeline::render` on arbitrary bytes with a list of fixed transforms under tight limits.
//! Byte 0 picks the transform (modulo the list's length); byte 1 sets `Accept.webp` (bit 0),
//! `Accept.avif` (bit 1) and `Codecs.keep_copyright` (bit 2); the rest is the image. It must
//! never panic; every error is fine. When it succeeds, the output size is checked against the
//! reported dimensions' limit.
#![no_main]

use std::sync::OnceLock;

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

/// Option segments, parsed once; the first input byte picks one. Append new ones at the end so the
/// seeds' selector bytes keep their meaning.
const SEGMENTS: &[&str] = &[
    "w_64",
    "w_32,h_32,c_fill",
    "w_50,h_20,c_pad,g_ne,bg_102030",
    "f_webp",
    "f_png",
    "_",
    "w_40,h_40,c_scale,f_jpeg,q_30",
    "h_16,up_1,f_auto",
    "r_90,w_48,blur_2",
    "flip_hv,crop_3_5_40_30,w_32,sharpen_1",
    "r_270,flip_v,c_fill,w_20,h_30,f_png",
    "w_64,trim_10",
    "trim_0,f_png",
    "w_40,h_40,c_fill,g_auto",
    "w_24,h_48,c_fill,g_auto,f_webp",
    "page_2,w_32",
    "page_1,f_png",
    "f_gif,w_32",
    "f_gif",
    "f_lqip",
    "f_lqip,w_20,h_20,c_fill",
    "f_avif,w_24",
    "f_avif,w_16,h_16,c_pad,q_40",
    "w_50,blur_2,sharpen_1",
    "w_30,r_90,flip_h",
    "crop_1_1_20_20,w_16",
    "crop_0_0_8_8,trim_30,up_1,w_32",
    "f_auto,w_32",
];

fn transforms() -> &'static [Transform] {
    static T: OnceLock<Vec<Transform>> = OnceLock::new();
    T.get_or_init(|| SEGMENTS.iter().map(|s| options::parse(s).unwrap()).collect())
}

fuzz_target!(|data: &[u8]| {
    let &[selector, flags, ref bytes @ ..] = data else {
        return;
    };
    let ts = transforms();
    let transform = &ts[usize::from(selector) % ts.len()];
    let req = Request {
        transform,
        accept: Accept {
            webp: flags & 1 != 0,
            avif: flags & 2 != 0,
        },
        default_quality: 80,
        codecs: Codecs {
            keep_copyright: flags & 4 != 0,
            ..Codecs::default()
        },
    };
    if let Ok(out) = pipeline::render(bytes, &req, &LIMITS) {
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
