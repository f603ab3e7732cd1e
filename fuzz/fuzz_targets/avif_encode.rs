//! The AVIF encoder (libaom through libavif, C) on hostile pixels: the input is a small RGB
//! image (first bytes: width 1-64, height 1-64, quality, speed; the rest are the pixels,
//! repeated to fill), written as a PPM and rendered by `pipeline::render` to `f_avif` at its own
//! size, so it takes the same path as a real request. The output is then decoded again by the
//! pipeline (libheif + dav1d). It must never panic; the encode must succeed, and the AVIF must
//! decode back to the same size.
//!
//! libaom is built by its own cmake, so libFuzzer sees its crashes (and AddressSanitizer the
//! ones that reach our heap) but does not steer by its branches; the pixels and sizes are what
//! varies.
#![no_main]

use imgcdn::options;
use imgcdn::pipeline::{self, Accept, AvifSettings, Codecs, Limits, Request};
use libfuzzer_sys::fuzz_target;

const LIMITS: Limits = Limits {
    max_source_pixels: 4_096,
    max_output_pixels: 4_096,
    max_decode_bytes: 64 << 20,
    max_frames: 1,
    max_animation_pixels: 4_096,
    max_upscale: 1,
    max_avif_pixels: 4_096,
    deadline: None,
};

fuzz_target!(|data: &[u8]| {
    let [w, h, quality, speed, pixels @ ..] = data else {
        return;
    };
    let (w, h) = (u32::from(w % 64) + 1, u32::from(h % 64) + 1);
    let quality = quality % 100 + 1;
    let speed = speed % 10 + 1;
    let mut ppm = format!("P6\n{w} {h}\n255\n").into_bytes();
    let len = (w * h * 3) as usize;
    if pixels.is_empty() {
        ppm.resize(ppm.len() + len, 0);
    } else {
        ppm.extend(pixels.iter().cycle().take(len));
    }
    let transform = options::parse(&format!("f_avif,q_{quality}")).unwrap();
    let codecs = Codecs {
        avif: AvifSettings {
            speed,
            ..AvifSettings::default()
        },
        ..Codecs::default()
    };
    let req = Request {
        transform: &transform,
        accept: Accept {
            webp: true,
            avif: true,
        },
        default_quality: 80,
        codecs,
    };
    let out = pipeline::render(&ppm, &req, &LIMITS).expect("a small RGB image encodes as AVIF");
    assert_eq!((out.width, out.height), (w, h));
    let png = options::parse("f_png").unwrap();
    let back = Request {
        transform: &png,
        ..req
    };
    let decoded = pipeline::render(&out.bytes, &back, &LIMITS).expect("our AVIF decodes");
    assert_eq!((decoded.width, decoded.height), (w, h));
});
