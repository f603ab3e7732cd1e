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
    try_turbo_at(bytes, ScalingFactor::ONE_EIGHTH)
}

#[test]
fn chroma_far_out_of_range_falls_back() {
    // Found by the `jpeg_dc` fuzz target: a 61x43 4x2-luma file whose chroma 2x2 IDCT goes far
    // out of range, where libjpeg-turbo's SIMD IDCT and its C range table disagree.
    let bytes = include_bytes!("../../../fuzz/regressions/jpeg_dc/chroma-2x2-out-of-range.jpg");
    assert!(decode(bytes).is_none(), "out of range: libjpeg decides");
}

#[test]
fn huffman_table_numbers_above_3_decline_and_never_panic() {
    // Found by the `jpeg_dc` fuzz target: a scan naming DC and AC table 5 (only 0..=3 exist)
    // indexed past the four-table arrays, at 1/8 and 1/4 alike.
    let bytes = include_bytes!("../../../fuzz/regressions/jpeg_dc/table-number-above-3.jpg");
    assert!(decode(bytes).is_none());
    assert!(decode_quarter(bytes, true).is_none());
    assert!(decode_quarter(bytes, false).is_none());
}

// ---- 1/4 scale (baseline) ----

/// libjpeg-turbo's decode at `f` to RGB, `None` when it fails or warns.
fn try_turbo_at(bytes: &[u8], f: ScalingFactor) -> Option<(Vec<u8>, u32, u32)> {
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
    Some((buf, w as u32, h as u32))
}

fn turbo_quarter(bytes: &[u8]) -> (Vec<u8>, u32, u32) {
    try_turbo_at(bytes, ScalingFactor::ONE_QUARTER).expect("libjpeg-turbo decodes the file")
}

const QUARTER_SAMPLINGS: [Subsamp; 3] = [Subsamp::None, Subsamp::Gray, Subsamp::Sub2x2];
const DECLINED_SAMPLINGS: [Subsamp; 4] = [
    Subsamp::Sub2x1,
    Subsamp::Sub1x2,
    Subsamp::Sub4x1,
    Subsamp::Sub1x4,
];

#[test]
fn quarter_size_is_libjpeg_size_and_other_samplings_decline() {
    for (w, h) in [(1, 1), (5, 3), (9, 17), (64, 3), (33, 35), (317, 197)] {
        for subsamp in QUARTER_SAMPLINGS {
            for optimize in [false, true] {
                let bytes = jpeg_at(w, h, subsamp, false, 85, optimize);
                let q = quarter(&bytes).expect("4:4:4, grey and 4:2:0 are taken");
                let (_, tw, th) = turbo_quarter(&bytes);
                assert_eq!((q.width, q.height), (tw, th), "{w}x{h} {subsamp:?}");
                assert_eq!(
                    (q.width, q.height),
                    (w.div_ceil(4) as u32, h.div_ceil(4) as u32)
                );
                assert_eq!(q.buf.len(), tw as usize * th as usize * 3);
                assert!(!q.alpha);
            }
        }
        for subsamp in DECLINED_SAMPLINGS {
            let bytes = jpeg_at(w, h, subsamp, false, 85, false);
            assert!(quarter(&bytes).is_none(), "{w}x{h} {subsamp:?}");
        }
    }
}

/// With libjpeg's own 2x2 IDCT for the full-resolution components (every coefficient
/// decoded), the 1/4 path is libjpeg-turbo's 1/4 decode byte for byte: the geometry, the 4x4
/// chroma IDCT, cropping and colour conversion are exact, only the transform is estimated.
#[test]
fn quarter_with_libjpeg_transform_is_byte_identical_to_libjpeg() {
    for subsamp in QUARTER_SAMPLINGS {
        for (w, h) in [(1, 1), (9, 17), (64, 3), (317, 197)] {
            for (quality, optimize) in [(30, false), (90, true), (100, false)] {
                let bytes = jpeg_at(w, h, subsamp, false, quality, optimize);
                let q = decode_quarter_with(&bytes, Kernel::Exact).expect("taken");
                let (reference, tw, th) = turbo_quarter(&bytes);
                assert_eq!((q.width, q.height), (tw, th));
                let diff = max_diff(&q.buf, &reference);
                assert!(diff == 0, "{w}x{h} {subsamp:?} q{quality}: off by {diff}");
            }
        }
    }
    for name in [
        "base420-rst.jpg",
        "base420-nonint.jpg",
        "base-gray-rst.jpg",
        "photo-2560x1600.jpg",
        "gray-2560x1600.jpg",
        "exif-orient6.jpg",
    ] {
        let bytes = fixture(name);
        let q = decode_quarter_with(&bytes, Kernel::Exact).expect("taken");
        let (reference, tw, th) = turbo_quarter(&bytes);
        assert_eq!((q.width, q.height), (tw, th), "{name}");
        let diff = max_diff(&q.buf, &reference);
        assert!(diff == 0, "{name}: off by {diff}");
    }
}

/// The photos the quality tests use: fixtures, and the corpus's 4:4:4 one when present.
fn quarter_photos() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = [
        "photo-2560x1600.jpg",
        "gray-2560x1600.jpg",
        "exif-orient6.jpg",
    ]
    .into_iter()
    .map(|name| (name.to_string(), fixture(name)))
    .collect();
    let dir = std::env::var("IMGCDN_CORPUS").map_or_else(
        |_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"),
        std::path::PathBuf::from,
    );
    match std::fs::read(dir.join("photo-5120x2880.jpg")) {
        Ok(bytes) => out.push(("photo-5120x2880.jpg (4:4:4)".into(), bytes)),
        Err(_) => eprintln!("no corpus photo-5120x2880.jpg: 4:4:4 photo skipped"),
    }
    out
}

#[test]
fn quarter_is_close_to_libjpeg_quarter_on_photos() {
    // libjpeg-turbo's 2x2 IDCT is a 4x4 quadrant average using terms 1, 3, 5 and 7; ours
    // samples the low 2x2 terms at the quadrant centre. They differ by the block's fine
    // detail (aliasing in libjpeg's, a little extra contrast on ramps in ours): measured
    // 39-44 dB on these photos.
    for (name, bytes) in quarter_photos() {
        let q = quarter(&bytes).expect("taken");
        let (reference, tw, th) = turbo_quarter(&bytes);
        assert_eq!((q.width, q.height), (tw, th));
        let db = psnr(&q.buf, &reference);
        eprintln!("{name}: quarter vs libjpeg-turbo 1/4: {db:.2} dB");
        assert!(db >= 36.0, "{name}: {db:.2} dB");
    }
}

/// Resize RGB `buf` (`w` x `h`) to `to` with the pipeline's resizer (Lanczos3).
fn resized(buf: Vec<u8>, w: u32, h: u32, to: (u32, u32)) -> Vec<u8> {
    let src = Pixels {
        buf,
        width: w,
        height: h,
        alpha: false,
    };
    let whole = crate::layout::Rect {
        x: 0.0,
        y: 0.0,
        width: f64::from(w),
        height: f64::from(h),
    };
    super::super::resize::resize(src, whole, to)
        .expect("resize")
        .buf
}

/// The gate that matters: render at the final size (0.94 of the 1/4 size, as a 1200 px job
/// from a 5120 px source) from each 1/4 decode, and compare each to the same render from the
/// full-resolution decode. The quarter path must lose at most 0.3 dB against libjpeg-turbo's
/// 1/4 decode.
#[test]
fn quarter_renders_as_well_as_libjpeg_quarter() {
    for (name, bytes) in quarter_photos() {
        let (full, fw, fh) = try_turbo_at(&bytes, ScalingFactor::ONE).expect("full decode");
        let (turbo, tw, th) = turbo_quarter(&bytes);
        let to = (
            (f64::from(tw) * 0.94).round() as u32,
            (f64::from(th) * 0.94).round() as u32,
        );
        let reference = resized(full, fw, fh, to);
        let start = std::time::Instant::now();
        let q = quarter(&bytes).expect("taken");
        let low_ms = start.elapsed().as_secs_f64() * 1e3;
        let ours = psnr(&resized(q.buf, tw, th, to), &reference);
        let theirs = psnr(&resized(turbo, tw, th, to), &reference);
        eprintln!(
            "{name} -> {}x{}: vs full-resolution render: quarter {ours:.2} dB, libjpeg-turbo \
             1/4 {theirs:.2} dB ({:+.2}); quarter decode {low_ms:.1} ms",
            to.0,
            to.1,
            ours - theirs
        );
        // The alternatives measured (see the module doc): quadrant-average weights, and rows
        // and columns 3 too (zigzag 0..=24).
        for (label, kernel) in [
            ("low 2x2, quadrant-average weight", Kernel::Wide(7423, 0)),
            ("rows/cols 0-3, point weights", Kernel::Wide(8192, -8192)),
            (
                "rows/cols 0-3, libjpeg-turbo weights",
                Kernel::Wide(7423, -2607),
            ),
        ] {
            let start = std::time::Instant::now();
            let alt = decode_quarter_with(&bytes, kernel).expect("taken");
            let ms = start.elapsed().as_secs_f64() * 1e3;
            let db = psnr(&resized(alt.buf, tw, th, to), &reference);
            eprintln!("    {label}: {db:.2} dB ({:+.2}), {ms:.1} ms", db - theirs);
        }
        assert!(
            ours >= theirs - 0.3,
            "{name}: quarter {ours:.2} dB vs libjpeg-turbo {theirs:.2} dB"
        );
    }
}

#[test]
fn quarter_truncated_or_flipped_never_panics() {
    for bytes in [
        fixture("base420-rst.jpg"),
        jpeg(317, 197, Subsamp::None, false),
    ] {
        // Cut anywhere: never an answer (no EOI, or a scan short of blocks).
        for cut in (4..bytes.len())
            .step_by(89)
            .chain([bytes.len() - 2, bytes.len() - 1])
        {
            assert!(quarter(&bytes[..cut]).is_none(), "cut at {cut}");
        }
        assert!(quarter(&bytes).is_some());
        // Flip bits anywhere: no panic; an answer has libjpeg's size when libjpeg decodes.
        let mut flipped = bytes.clone();
        let mut answered = 0;
        for i in (2..bytes.len()).step_by(11) {
            for bit in [0, 4, 7] {
                flipped[i] ^= 1 << bit;
                if let Some(q) = quarter(&flipped) {
                    answered += 1;
                    assert_eq!(q.buf.len(), q.width as usize * q.height as usize * 3);
                    if let Some((_, w, h)) = try_turbo_at(&flipped, ScalingFactor::ONE_QUARTER) {
                        assert_eq!((q.width, q.height), (w, h), "flip {i}:{bit}");
                    }
                }
                flipped[i] ^= 1 << bit;
            }
        }
        assert!(answered > 0, "some flips leave a decodable file");
    }
}

#[test]
fn quarter_declines_progressive_cmyk_and_the_rest() {
    for name in [
        "prog444-rst.jpg",
        "prog420-sepdc-rst.jpg",
        "progressive-2560x1600.jpg",
        "cmyk-2560x1600.jpg",
        "base422-rst.jpg",
        "base-4x2.jpg",
    ] {
        assert!(quarter(&fixture(name)).is_none(), "{name}");
    }
    for subsamp in QUARTER_SAMPLINGS {
        assert!(
            quarter(&jpeg(64, 48, subsamp, true)).is_none(),
            "progressive"
        );
    }
    assert!(quarter(b"").is_none());
    assert!(quarter(b"\xff\xd8").is_none());
    let bytes = include_bytes!("../../../fuzz/regressions/jpeg_dc/chroma-2x2-out-of-range.jpg");
    let _ = quarter(bytes);
}

/// The 1/4 decoder with 4:2:0 taken (the pipeline's call declines it).
fn quarter(bytes: &[u8]) -> Option<Pixels> {
    decode_quarter(bytes, true)
}

#[test]
fn quarter_for_the_pipeline_leaves_4_2_0_to_libjpeg() {
    for (subsamp, taken) in [
        (Subsamp::None, true),
        (Subsamp::Gray, true),
        (Subsamp::Sub2x2, false),
    ] {
        let bytes = jpeg(64, 48, subsamp, false);
        assert_eq!(
            decode_quarter(&bytes, false).is_some(),
            taken,
            "{subsamp:?}"
        );
        assert!(quarter(&bytes).is_some(), "{subsamp:?}");
    }
    assert!(decode_quarter(&fixture("photo-2560x1600.jpg"), false).is_none());
}
