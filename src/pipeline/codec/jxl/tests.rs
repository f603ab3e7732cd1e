//! The JPEG XL codec against `tests/fixtures/formats/jxl-*` (see the README there), each
//! compared with libjxl's `djxl` decoding of the same file.

use std::time::{Duration, Instant};

use super::*;

const LIMITS: Limits = Limits {
    max_source_pixels: 50_000_000,
    max_output_pixels: 25_000_000,
    max_decode_bytes: 1 << 30,
    max_frames: 1000,
    max_animation_pixels: 100_000_000,
    max_upscale: 4,
    max_avif_pixels: 2_100_000,
    deadline: None,
};

const FIRST: DecodeAt = DecodeAt {
    page: 1,
    shrink: 1,
    scale: 1.0,
    jpeg_decoder: crate::pipeline::JpegDecoder::Turbo,
    dc_only: false,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/formats/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn decode_with(bytes: &[u8], at: &DecodeAt, limits: &Limits) -> Result<Pixels, PipelineError> {
    let header = probe(bytes, limits)?;
    decode(bytes, &header, at, limits)
}

/// Decode `name.jxl` and compare it with `name.ref.png` (djxl): the largest and the mean
/// difference per sample must stay under the bounds.
#[track_caller]
fn matches_djxl(name: &str, max: u8, mean: f64) -> Pixels {
    let px = decode_with(&fixture(&format!("{name}.jxl")), &FIRST, &LIMITS).unwrap();
    let reference = image::load_from_memory(&fixture(&format!("{name}.ref.png"))).unwrap();
    let expected = if px.alpha {
        reference.to_rgba8().into_raw()
    } else {
        reference.to_rgb8().into_raw()
    };
    assert_eq!(
        (px.width, px.height),
        (reference.width(), reference.height()),
        "{name}"
    );
    assert_eq!(px.buf.len(), expected.len(), "{name}");
    let diffs = px.buf.iter().zip(&expected).map(|(a, b)| a.abs_diff(*b));
    let worst = diffs.clone().max().unwrap_or(0);
    let average = diffs.map(f64::from).sum::<f64>() / expected.len() as f64;
    assert!(
        worst <= max && average <= mean,
        "{name}: largest difference {worst}, mean {average:.2}"
    );
    px
}

#[test]
fn sniff_accepts_codestream_and_container_only() {
    assert!(sniff(&fixture("jxl-lossy.jxl")));
    assert!(sniff(&fixture("jxl-jpeg.jxl")));
    assert!(!sniff(b"\xFF\xD8\xFF\xE0"));
    assert!(!sniff(b"\0\0\0\x0CJXL "));
    assert!(!sniff(b""));
}

#[test]
fn probe_reports_oriented_size_and_frames() {
    let h = probe(&fixture("jxl-lossy.jxl"), &LIMITS).unwrap();
    assert_eq!((h.width, h.height, h.orientation, h.frames), (64, 40, 1, 1));
    // Stored 64x48 with orientation 6: reported as the 48x64 that decode produces.
    let h = probe(&fixture("jxl-orient6.jxl"), &LIMITS).unwrap();
    assert_eq!((h.width, h.height, h.orientation, h.frames), (48, 64, 1, 1));
    let h = probe(&fixture("jxl-anim.jxl"), &LIMITS).unwrap();
    assert_eq!((h.width, h.height, h.frames), (48, 30, 5));
}

#[test]
fn decode_lossy_and_lossless_match_djxl() {
    assert!(!matches_djxl("jxl-lossy", 3, 0.5).alpha);
    matches_djxl("jxl-lossless", 0, 0.0);
}

#[test]
fn decode_recompressed_jpeg_matches_djxl() {
    matches_djxl("jxl-jpeg", 3, 0.5);
}

#[test]
fn decode_alpha_is_rgba() {
    assert!(matches_djxl("jxl-alpha", 3, 0.5).alpha);
}

#[test]
fn decode_grey_becomes_rgb() {
    let px = matches_djxl("jxl-gray", 0, 0.0);
    assert!(px.buf.chunks(3).all(|p| p[0] == p[1] && p[1] == p[2]));
}

#[test]
fn decode_orientation_applied() {
    let px = matches_djxl("jxl-orient6", 3, 0.5);
    assert_eq!((px.width, px.height), (48, 64));
}

#[test]
fn decode_wide_gamut_icc_converted_to_srgb() {
    // ROMM RGB (ProPhoto) in an ICC profile: lossless keeps the profile (moxcms converts),
    // lossy is stored as XYB (jxl-oxide converts). The reference is djxl's output converted
    // to sRGB by ImageMagick (Little CMS), so the two CMMs may differ a little.
    matches_djxl("jxl-romm-lossless", 4, 1.0);
    matches_djxl("jxl-romm-lossy", 8, 1.0);
    assert_eq!(metadata(&fixture("jxl-romm-lossless.jxl")).icc, None);
}

#[test]
fn decode_animation_first_frame_and_a_later_one() {
    let first = matches_djxl("jxl-anim", 0, 0.0);
    assert!(first.alpha);
    let bytes = fixture("jxl-anim.jxl");
    let third = decode_with(&bytes, &DecodeAt { page: 3, ..FIRST }, &LIMITS).unwrap();
    assert_eq!((third.width, third.height), (48, 30));
    assert_ne!(first.buf, third.buf);
    let past = decode_with(&bytes, &DecodeAt { page: 6, ..FIRST }, &LIMITS);
    assert!(matches!(past, Err(PipelineError::Corrupt(_))), "{past:?}");
}

#[test]
fn interleave_matches_the_sample_stream() {
    let names = [
        "lossy",
        "lossless",
        "alpha",
        "jpeg",
        "orient6",
        "gray",
        "anim",
        "romm-lossless",
    ];
    let mut fast = 0;
    for name in names {
        let bytes = fixture(&format!("jxl-{name}.jxl"));
        let mut image = load(&codestream(&bytes).unwrap(), &LIMITS, 1).unwrap();
        image.request_color_encoding(EnumColourEncoding::srgb(RenderingIntent::Relative));
        let render = image.render_frame(0).unwrap();
        let mut stream = render.stream();
        let (w, h, c) = (
            stream.width() as usize,
            stream.height() as usize,
            stream.channels(),
        );
        let mut expected = vec![0u8; w * h * c as usize];
        stream.write_to_buffer::<u8>(&mut expected);
        let mut out = vec![0u8; expected.len()];
        if interleave(&render, w, c as usize, &mut out) {
            assert!(out == expected, "{name}");
            fast += 1;
        }
    }
    // All but the oriented image and the lossy one with alpha (an integer alpha plane).
    assert!(fast >= 3, "{fast}");
}

#[test]
fn metadata_exif_plain_and_brotli() {
    let plain = metadata(&fixture("jxl-exif.jxl")).exif.unwrap();
    assert!(plain.starts_with(b"MM\0*"));
    assert!(plain.windows(11).any(|w| w == b"imgcdn test"));
    // cjxl stores a recompressed JPEG's EXIF in a `brob` box.
    let brotli = metadata(&fixture("jxl-orient6.jxl")).exif.unwrap();
    assert!(brotli.starts_with(b"II*\0") || brotli.starts_with(b"MM\0*"));
    assert_eq!(metadata(&fixture("jxl-lossy.jxl")).exif, None);
}

#[test]
fn truncated_inputs_are_errors() {
    for name in [
        "jxl-lossy.jxl",
        "jxl-lossless.jxl",
        "jxl-jpeg.jxl",
        "jxl-orient6.jxl",
    ] {
        let bytes = fixture(name);
        for len in (0..bytes.len()).step_by(7) {
            let cut = &bytes[..len];
            let result = decode_with(cut, &FIRST, &LIMITS);
            assert!(result.is_err(), "{name} cut at {len} decoded");
            metadata(cut);
        }
    }
}

#[test]
fn truncated_animation_keeps_its_complete_frames() {
    // Like a truncated GIF: the frames wholly in the bytes decode, the rest do not exist.
    let bytes = fixture("jxl-anim.jxl");
    let full = decode_with(&bytes, &FIRST, &LIMITS).unwrap();
    for len in (0..bytes.len()).step_by(7) {
        let cut = &bytes[..len];
        match decode_with(cut, &FIRST, &LIMITS) {
            Ok(px) => assert_eq!(px.buf, full.buf, "cut at {len}"),
            Err(e) => assert!(
                matches!(e, PipelineError::Corrupt(_) | PipelineError::Unsupported(_)),
                "cut at {len}: {e:?}"
            ),
        }
        if let Ok(h) = probe(cut, &LIMITS) {
            assert!(h.frames <= 5);
        }
    }
}

#[test]
fn bit_flips_never_panic() {
    for name in [
        "jxl-lossy.jxl",
        "jxl-lossless.jxl",
        "jxl-alpha.jxl",
        "jxl-romm-lossless.jxl",
    ] {
        let bytes = fixture(name);
        for at in 0..bytes.len().min(400) {
            let mut flipped = bytes.clone();
            flipped[at] ^= 1 << (at % 8);
            let _ = decode_with(&flipped, &FIRST, &LIMITS);
            metadata(&flipped);
        }
    }
}

#[test]
fn limits_refuse_before_decoding() {
    let bytes = fixture("jxl-lossy.jxl");
    let small = Limits {
        max_source_pixels: 64 * 40 - 1,
        ..LIMITS
    };
    assert!(matches!(
        probe(&bytes, &small),
        Err(PipelineError::SourceTooLarge {
            width: 64,
            height: 40,
            ..
        })
    ));
    let tight = Limits {
        max_decode_bytes: 20_000,
        ..LIMITS
    };
    let result = decode(&bytes, &probe(&bytes, &LIMITS).unwrap(), &FIRST, &tight);
    assert!(
        matches!(result, Err(PipelineError::DecodeTooLarge { .. })),
        "{result:?}"
    );
    let few = Limits {
        max_frames: 2,
        ..LIMITS
    };
    let result = probe(&fixture("jxl-anim.jxl"), &few);
    assert!(
        matches!(result, Err(PipelineError::TooManyFrames { limit: 2 })),
        "{result:?}"
    );
}

#[test]
fn icc_profile_declared_too_large_is_refused_before_reading_it() {
    // The lossless ROMM fixture's header, then an ICC size of 8 MiB (U64: selector 3, twelve
    // bits, then 8-bit groups each after a continuation bit), LSB first as JPEG XL writes bits.
    let original = fixture("jxl-romm-lossless.jxl");
    let mut bits = Bitstream::new(&original);
    ImageHeader::parse(&mut bits, ()).unwrap();
    let kept = bits.num_read_bits();
    let mut out = vec![0u8; original.len()];
    let mut at = 0;
    let mut put = |value: u64, n: usize| {
        for i in 0..n {
            out[at / 8] |= (((value >> i) & 1) as u8) << (at % 8);
            at += 1;
        }
    };
    for i in 0..kept {
        put(u64::from(original[i / 8] >> (i % 8)), 1);
    }
    for (value, n) in [(3, 2), (0, 12), (1, 1), (0, 8), (1, 1), (0x08, 8), (0, 1)] {
        put(value, n);
    }
    let result = probe(&out, &LIMITS);
    assert!(
        matches!(
            result,
            Err(PipelineError::MetadataTooLarge {
                what: "ICC profile",
                ..
            })
        ),
        "{result:?}"
    );
}

#[test]
fn deadline_past_is_timeout() {
    let bytes = fixture("jxl-lossy.jxl");
    let late = Limits {
        deadline: Instant::now().checked_sub(Duration::from_secs(1)),
        ..LIMITS
    };
    let result = decode(&bytes, &probe(&bytes, &LIMITS).unwrap(), &FIRST, &late);
    assert_eq!(result.unwrap_err(), PipelineError::Timeout);
}

/// Decode times: `JXL_BENCH=a.jxl:b.jxl cargo test --lib pipeline::codec::jxl -- --ignored
/// --nocapture` (dependencies build at opt-level 2 in test builds; jxl-oxide is one).
#[test]
#[ignore = "timing, run by hand"]
fn decode_time() {
    let files = std::env::var("JXL_BENCH").unwrap_or_default();
    for path in files.split(':').filter(|p| !p.is_empty()) {
        let bytes = std::fs::read(path).unwrap();
        let header = probe(&bytes, &LIMITS).unwrap();
        let mut best = Duration::MAX;
        for _ in 0..5 {
            let start = Instant::now();
            let header = probe(&bytes, &LIMITS).unwrap();
            decode(&bytes, &header, &FIRST, &LIMITS).unwrap();
            best = best.min(start.elapsed());
        }
        println!(
            "{path}: {}x{} best of 5 {best:.1?}",
            header.width, header.height
        );
    }
}

/// Random byte corruption of every fixture: `JXL_FUZZ=<iterations> cargo test --lib
/// pipeline::codec::jxl -- --ignored fuzz`. Any result but a panic is fine.
#[test]
#[ignore = "slow, run by hand"]
fn fuzz_random_corruption() {
    let iterations: u64 = std::env::var("JXL_FUZZ")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let names = [
        "lossy",
        "lossless",
        "alpha",
        "jpeg",
        "orient6",
        "gray",
        "anim",
        "romm-lossless",
        "romm-lossy",
        "exif",
    ];
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for i in 0..iterations {
        let name = names[(i % names.len() as u64) as usize];
        let mut bytes = fixture(&format!("jxl-{name}.jxl"));
        for _ in 0..1 + next() % 4 {
            let at = (next() % bytes.len() as u64) as usize;
            bytes[at] = next() as u8;
        }
        let _ = decode_with(&bytes, &FIRST, &LIMITS);
        metadata(&bytes);
    }
}

#[test]
fn layers_loaded_before_a_keyframe_are_bounded_by_their_summed_area() {
    // Five 48x30 frames: 7200 pixels in all, each within the source limit.
    let anim = fixture("jxl-anim.jxl");
    let limits = Limits {
        max_source_pixels: 2000,
        max_animation_pixels: 2000,
        ..LIMITS
    };
    let err = decode(
        &anim,
        &probe(&anim, &LIMITS).expect("probe"),
        &DecodeAt { page: 5, ..FIRST },
        &limits,
    )
    .expect_err("refused");
    assert!(
        matches!(err, PipelineError::AnimationTooLarge { .. }),
        "{err}"
    );
}
