use super::*;
use turbojpeg::{Compressor, Decompressor, Image, PixelFormat, ScalingFactor, Subsamp};

/// Smooth gradients with a hard-edged square and a little deterministic texture.
fn synthetic(w: usize, h: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            let edge = (x / 13 + y / 7) % 2 == 0 && x > w / 4 && x < w * 3 / 4;
            let t = ((x * 7 + y * 13) % 17) as u8;
            v.push((x * 255 / w.max(1)) as u8 ^ t);
            v.push(if edge {
                240
            } else {
                (y * 255 / h.max(1)) as u8
            });
            v.push(((x + y) * 3 % 256) as u8);
        }
    }
    v
}

fn jpeg(w: usize, h: usize, subsamp: Subsamp, progressive: bool) -> Vec<u8> {
    jpeg_at(w, h, subsamp, progressive, 90, false)
}

fn jpeg_at(
    w: usize,
    h: usize,
    subsamp: Subsamp,
    progressive: bool,
    quality: i32,
    optimize: bool,
) -> Vec<u8> {
    let mut rgb = synthetic(w, h);
    let mut format = PixelFormat::RGB;
    if subsamp == Subsamp::Gray {
        rgb = rgb.chunks(3).map(|p| p[1]).collect();
        format = PixelFormat::GRAY;
    }
    let mut c = Compressor::new().expect("compressor");
    c.set_quality(quality).expect("quality");
    c.set_optimize(optimize).expect("optimize");
    c.set_subsamp(subsamp).expect("subsamp");
    c.set_progressive(progressive).expect("progressive");
    let image = Image {
        pixels: rgb.as_slice(),
        width: w,
        pitch: w * format.size(),
        height: h,
        format,
    };
    c.compress_to_vec(image).expect("compress")
}

/// libjpeg-turbo's own 1/8 decode, the reference.
fn turbo_eighth(bytes: &[u8]) -> (Vec<u8>, u32, u32) {
    try_turbo_eighth(bytes).expect("libjpeg-turbo decodes the file without a warning")
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    let mse = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    10.0 * (255.0f64.powi(2) / mse.max(1e-9)).log10()
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(path).expect("fixture present")
}

/// The DC-only result and libjpeg-turbo's 1/8 decode, same size asserted.
fn both(bytes: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let dc = decode(bytes).expect("DC-only path takes this file");
    let (reference, w, h) = turbo_eighth(bytes);
    assert_eq!((dc.width, dc.height), (w, h));
    assert!(!dc.alpha);
    (dc.buf, reference)
}

#[test]
fn full_resolution_chroma_is_byte_identical_to_libjpeg_at_any_size() {
    for (w, h) in [(1, 1), (8, 8), (9, 17), (64, 3), (317, 197), (640, 480)] {
        for subsamp in [Subsamp::None, Subsamp::Gray] {
            let (dc, reference) = both(&jpeg(w, h, subsamp, true));
            assert!(dc == reference, "{w}x{h} {subsamp:?} differs");
        }
    }
}

#[test]
fn chroma_subsampled_on_one_axis_is_byte_identical_too() {
    // libjpeg replicates these at 1/8, as we do.
    for (w, h) in [(15, 9), (317, 197)] {
        for subsamp in [Subsamp::Sub2x1, Subsamp::Sub1x2] {
            let (dc, reference) = both(&jpeg(w, h, subsamp, true));
            assert!(dc == reference, "{w}x{h} {subsamp:?} differs");
        }
    }
}

#[test]
fn chroma_subsampled_on_both_axes_is_close_on_photos() {
    // libjpeg runs a 2x2 IDCT on 4:2:0 chroma at 1/8, with AC data we skip; on
    // pixel-scale colour stripes that differs a lot, on photographs little.
    let (w, h) = (317, 197);
    let (dc, reference) = both(&jpeg(w, h, Subsamp::Sub2x2, true));
    assert_eq!(dc.len(), reference.len());
    let (dc, reference) = both(&fixture("progressive-2560x1600.jpg"));
    let db = psnr(&dc, &reference);
    assert!(db > 36.0, "standard scan script, 4:2:0 photo: {db:.1} dB");
}

#[test]
fn restart_markers_and_separate_dc_scans_decode() {
    let (dc, reference) = both(&fixture("prog444-rst.jpg"));
    assert!(dc == reference, "4:4:4 with restarts differs");
    // A dense 1/8-scale crop: the hardest case for 4:2:0 (about 32 dB).
    let (dc, reference) = both(&fixture("prog420-sepdc-rst.jpg"));
    let db = psnr(&dc, &reference);
    assert!(db > 30.0, "non-interleaved DC scans: {db:.1} dB");
}

#[test]
fn files_it_does_not_handle_exactly_fall_back() {
    // CMYK (4 components), then arithmetic coding and lossless, made here.
    assert!(decode(&fixture("cmyk-2560x1600.jpg")).is_none(), "CMYK");
    let rgb = synthetic(32, 32);
    let image = Image {
        pixels: rgb.as_slice(),
        width: 32,
        pitch: 96,
        height: 32,
        format: PixelFormat::RGB,
    };
    for progressive in [false, true] {
        let mut c = Compressor::new().expect("compressor");
        c.set_arithmetic(true).expect("arithmetic");
        c.set_progressive(progressive).expect("progressive");
        let arithmetic = c.compress_to_vec(image).expect("compress");
        assert!(
            decode(&arithmetic).is_none(),
            "arithmetic, progressive {progressive}"
        );
    }
    let mut c = Compressor::new().expect("compressor");
    c.set_lossless(true).expect("lossless");
    let lossless = c.compress_to_vec(image).expect("compress");
    assert!(decode(&lossless).is_none(), "lossless");
    assert!(decode(b"").is_none());
    assert!(decode(b"\xff\xd8").is_none());
}

#[test]
fn truncated_files_fall_back_wherever_they_are_cut() {
    // Cut inside the DC scans, inside the AC data, and just before EOI: the full decoder
    // must see every one of them (and call them corrupt).
    let bytes = fixture("prog420-sepdc-rst.jpg");
    for cut in (4..bytes.len())
        .step_by(97)
        .chain([bytes.len() - 2, bytes.len() - 1])
    {
        assert!(decode(&bytes[..cut]).is_none(), "cut at {cut}");
    }
    assert!(decode(&bytes).is_some());
}

#[test]
fn bit_flips_never_panic() {
    let bytes = fixture("prog444-rst.jpg");
    let mut flipped = bytes.clone();
    for i in (0..bytes.len()).step_by(7) {
        for bit in [0, 3, 7] {
            flipped[i] ^= 1 << bit;
            let _ = decode(&flipped);
            flipped[i] ^= 1 << bit;
        }
    }
}

/// The largest difference of any channel of any pixel.
fn max_diff(a: &[u8], b: &[u8]) -> u8 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(0)
}

#[test]
fn baseline_equals_libjpeg_in_every_sampling_size_and_quality() {
    // Every sampling turbojpeg writes, odd sizes (partial MCUs), qualities from coarse to
    // q100 (long AC runs, the largest magnitudes), standard and optimised Huffman tables.
    let samplings = [
        Subsamp::None,
        Subsamp::Gray,
        Subsamp::Sub2x1,
        Subsamp::Sub1x2,
        Subsamp::Sub2x2,
        Subsamp::Sub4x1,
        Subsamp::Sub1x4,
    ];
    for subsamp in samplings {
        for (w, h) in [(1, 1), (9, 17), (64, 3), (317, 197)] {
            for (quality, optimize) in [(30, false), (90, true), (100, false)] {
                let (dc, reference) = both(&jpeg_at(w, h, subsamp, false, quality, optimize));
                let diff = max_diff(&dc, &reference);
                assert!(diff == 0, "{w}x{h} {subsamp:?} q{quality}: off by {diff}");
            }
        }
    }
}

#[test]
fn baseline_fixtures_equal_libjpeg() {
    // Restart markers (every 3 MCUs, every MCU row), non-interleaved scans, 4x2 luma (2x2
    // chroma IDCT plus replication), grayscale, a real 4:2:0 photo and an EXIF-rotated one.
    for name in [
        "base420-rst.jpg",
        "base422-rst.jpg",
        "base420-nonint.jpg",
        "base-gray-rst.jpg",
        "base-4x2.jpg",
        "photo-2560x1600.jpg",
        "gray-2560x1600.jpg",
        "exif-orient6.jpg",
    ] {
        let (dc, reference) = both(&fixture(name));
        let diff = max_diff(&dc, &reference);
        assert!(diff == 0, "{name}: off by {diff}");
    }
}

/// Every JPEG in the shared corpus (`$IMGCDN_CORPUS` or `../shared/corpus`), when present:
/// the DC-only result within ±1 of libjpeg-turbo's 1/8 decode, except progressive 4:2:0
/// chroma, which is an estimate (PSNR checked instead).
#[test]
fn corpus_equals_libjpeg_where_present() {
    let dir = std::env::var("IMGCDN_CORPUS").map_or_else(
        |_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"),
        std::path::PathBuf::from,
    );
    let mut files: Vec<_> = walk(&dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("jpg")))
        .collect();
    files.sort();
    if files.is_empty() {
        eprintln!("no corpus at {}: skipped", dir.display());
        return;
    }
    let mut checked = 0;
    for path in files {
        let bytes = std::fs::read(&path).expect("read corpus file");
        let Some(dc) = decode(&bytes) else {
            continue;
        };
        let (reference, w, h) = turbo_eighth(&bytes);
        assert_eq!((dc.width, dc.height), (w, h), "{}", path.display());
        let header = turbojpeg::read_header(&bytes).expect("header");
        if header.is_progressive && header.subsamp == Subsamp::Sub2x2 {
            let db = psnr(&dc.buf, &reference);
            assert!(db > 30.0, "{}: {db:.1} dB", path.display());
        } else {
            let diff = max_diff(&dc.buf, &reference);
            assert!(diff <= 1, "{}: off by {diff}", path.display());
        }
        checked += 1;
    }
    eprintln!("{checked} corpus JPEGs checked");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn baseline_truncated_or_flipped_falls_back_or_equals_libjpeg() {
    // Cut anywhere: never an answer (the full decoder reports what is missing).
    let bytes = fixture("base420-rst.jpg");
    for cut in (4..bytes.len())
        .step_by(101)
        .chain([bytes.len() - 2, bytes.len() - 1])
    {
        assert!(decode(&bytes[..cut]).is_none(), "cut at {cut}");
    }
    // Flip bits in the headers and the entropy-coded data: whenever both decoders accept
    // the result, they agree (the fuzz target `jpeg_dc` does this at scale).
    let mut flipped = bytes.clone();
    let mut agreed = 0;
    for i in (2..bytes.len()).step_by(13) {
        for bit in [0, 4, 7] {
            flipped[i] ^= 1 << bit;
            if let Some(dc) = decode(&flipped) {
                if let Some((reference, w, h)) = try_turbo_eighth(&flipped) {
                    assert_eq!((dc.width, dc.height), (w, h), "flip {i}:{bit}");
                    let diff = max_diff(&dc.buf, &reference);
                    assert!(diff <= 1, "flip {i}:{bit}: off by {diff}");
                    agreed += 1;
                }
            }
            flipped[i] ^= 1 << bit;
        }
    }
    assert!(agreed > 0, "some flips leave a file both decode");
}

/// libjpeg-turbo's 1/8 decode, `None` when it fails or warns.
fn try_turbo_eighth(bytes: &[u8]) -> Option<(Vec<u8>, u32, u32)> {
    let mut d = Decompressor::new().ok()?;
    let header = d.read_header(bytes).ok()?;
    let f = ScalingFactor::ONE_EIGHTH;
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
    Some((buf, w as u32, h as u32))
}

#[test]
fn chroma_far_out_of_range_falls_back() {
    // Found by the `jpeg_dc` fuzz target: a 61x43 4x2-luma file whose chroma 2x2 IDCT goes far
    // out of range, where libjpeg-turbo's SIMD IDCT and its C range table disagree.
    let bytes = include_bytes!("../../../fuzz/regressions/jpeg_dc/chroma-2x2-out-of-range.jpg");
    assert!(decode(bytes).is_none(), "out of range: libjpeg decides");
}
