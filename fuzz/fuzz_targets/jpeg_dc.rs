//! The DC-only JPEG decoder (`pipeline::decode_jpeg_eighth`) against libjpeg-turbo's own 1/8
//! decode of the same bytes. Inputs are gated as the pipeline gates them: libjpeg must read
//! the header, and the image must be at most 4 MP. Never panics; whenever both decoders
//! accept the file (libjpeg without a warning), the sizes are equal and every channel of every
//! pixel is within ±1 — except progressive files whose chroma libjpeg reconstructs with a 2x2
//! IDCT (4:2:0 and other both-axes subsampling), which the DC-only path estimates by design.
//! The 1/4 decoder (`pipeline::decode_jpeg_quarter`) runs on every input too: never panics,
//! and when it answers, its size is libjpeg-turbo's 1/4 size whenever libjpeg decodes the file.
#![no_main]

use imgcdn::pipeline;
use libfuzzer_sys::fuzz_target;
use turbojpeg::{Decompressor, Image, PixelFormat, ScalingFactor, Subsamp};

fuzz_target!(|data: &[u8]| {
    let Ok(header) = turbojpeg::read_header(data) else {
        return;
    };
    if header.width.saturating_mul(header.height) > 4_000_000 {
        return;
    }
    if let Some((w, h, quarter)) = pipeline::decode_jpeg_quarter(data) {
        assert_eq!(quarter.len(), w as usize * h as usize * 3);
        if let Some((_, rw, rh)) = turbo_at(data, ScalingFactor::ONE_QUARTER) {
            assert_eq!((w, h), (rw, rh), "1/4 size");
        }
    }
    let Some((w, h, ours)) = pipeline::decode_jpeg_eighth(data) else {
        return;
    };
    assert_eq!(ours.len(), w as usize * h as usize * 3);
    let exact = !header.is_progressive
        || matches!(
            header.subsamp,
            Subsamp::None
                | Subsamp::Gray
                | Subsamp::Sub2x1
                | Subsamp::Sub1x2
                | Subsamp::Sub4x1
                | Subsamp::Sub1x4
        );
    let Some((reference, rw, rh)) = turbo_at(data, ScalingFactor::ONE_EIGHTH) else {
        return;
    };
    assert_eq!((w, h), (rw, rh), "size");
    if exact {
        let diff = (ours.iter().zip(&reference))
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap_or(0);
        assert!(diff <= 1, "off by {diff}");
    }
});

/// libjpeg-turbo's decode at `f` to RGB, `None` when it fails or warns.
fn turbo_at(bytes: &[u8], f: ScalingFactor) -> Option<(Vec<u8>, u32, u32)> {
    let mut d = Decompressor::new().ok()?;
    let header = d.read_header(bytes).ok()?;
    let (w, h) = (f.scale(header.width), f.scale(header.height));
    let mut buf = vec![0; w.checked_mul(h)?.checked_mul(3)?];
    d.set_scaling_factor(f).ok()?;
    let image = Image {
        pixels: buf.as_mut_slice(),
        width: w,
        pitch: w * 3,
        height: h,
        format: PixelFormat::RGB,
    };
    d.decompress(bytes, image).ok()?;
    Some((buf, u32::try_from(w).ok()?, u32::try_from(h).ok()?))
}
