//! End-to-end tests of [`render`]: real fixtures (see `tests/fixtures/README.md`) and images
//! generated in code. Facts are asserted by decoding the output, never by comparing bytes.
//!
//! Stage-level unit tests live next to each stage; this file does not test `layout` tables.

use std::io::Cursor;
use std::time::Instant;

use image::{DynamicImage, GenericImageView, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};

use super::*;
use crate::options::{Fit, FormatChoice, Gravity, Rgb as Colour};

macro_rules! fixture {
    ($name:ident) => {
        std::fs::read(format!(
            "{}/tests/fixtures/{}",
            env!("CARGO_MANIFEST_DIR"),
            $name
        ))
        .expect("fixture present")
    };
    ($name:literal) => {
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/",
            $name
        ))
        .expect("fixture present")
    };
}

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

fn tf(w: Option<u32>, h: Option<u32>) -> Transform {
    Transform {
        width: w,
        height: h,
        ..Transform::default()
    }
}

fn with_format(mut t: Transform, f: Format) -> Transform {
    t.format = Some(FormatChoice::Fixed(f));
    t
}

fn render_with(bytes: &[u8], t: &Transform, accept: Accept) -> Result<Rendered, PipelineError> {
    render(
        bytes,
        &Request {
            transform: t,
            accept,
            default_quality: 80,
            codecs: Codecs::default(),
        },
        &LIMITS,
    )
}

#[track_caller]
fn ok(bytes: &[u8], t: &Transform) -> Rendered {
    render_with(bytes, t, Accept::default()).expect("render")
}

/// Decode an output, checking that its bytes really are the format it claims.
#[track_caller]
fn decoded(r: &Rendered) -> DynamicImage {
    assert_eq!(
        sniff(&r.bytes),
        Some(r.format),
        "bytes are not {}",
        r.format
    );
    let img = match r.format {
        Format::Avif => decode_avif(&r.bytes),
        f => image::load_from_memory_with_format(
            &r.bytes,
            decode::image_format(f).expect("image format"),
        )
        .expect("output decodes"),
    };
    assert_eq!(
        img.dimensions(),
        (r.width, r.height),
        "Rendered size vs decoded size"
    );
    img
}

/// Decode an AVIF with libavif's `avifdec` (Debian `libavif-bin`, which `.ci/run` installs):
/// there is no memory-safe AV1 decoder to put in the dev-dependencies.
fn decode_avif(bytes: &[u8]) -> DynamicImage {
    let dir = tempfile::tempdir().expect("tempdir");
    let (input, output) = (dir.path().join("in.avif"), dir.path().join("out.png"));
    std::fs::write(&input, bytes).expect("write avif");
    let run = std::process::Command::new("avifdec")
        .args(["--depth", "8"])
        .arg(&input)
        .arg(&output)
        .output()
        .expect("avifdec runs (apt install libavif-bin)");
    assert!(
        run.status.success(),
        "avifdec: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    image::open(&output).expect("avifdec output decodes")
}

fn mean_rgb(img: &DynamicImage) -> [f64; 3] {
    let rgb = img.to_rgb8();
    let mut sum = [0f64; 3];
    for p in rgb.pixels() {
        for (s, v) in sum.iter_mut().zip(p.0) {
            *s += f64::from(v);
        }
    }
    let n = f64::from(rgb.width() * rgb.height());
    sum.map(|s| s / n)
}

#[track_caller]
fn assert_close(a: [f64; 3], b: [f64; 3], tolerance: f64) {
    for (x, y) in a.iter().zip(b) {
        assert!(
            (x - y).abs() <= tolerance,
            "mean colours differ: {a:?} vs {b:?}"
        );
    }
}

#[track_caller]
fn assert_px_close(got: [u8; 3], want: [u8; 3], tolerance: u8) {
    for (g, w) in got.iter().zip(want) {
        assert!(
            g.abs_diff(w) <= tolerance,
            "pixel {got:?}, want {want:?} ±{tolerance}"
        );
    }
}

fn encode_with(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).expect("encode fixture");
    out.into_inner()
}

fn gradient(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        Rgb([
            (x * 255 / w) as u8,
            (y * 255 / h) as u8,
            ((x + y) % 256) as u8,
        ])
    })
}

fn tiny_jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = gradient(w, h);
    let image = turbojpeg::Image {
        pixels: img.as_raw().as_slice(),
        width: w as usize,
        pitch: w as usize * 3,
        height: h as usize,
        format: turbojpeg::PixelFormat::RGB,
    };
    turbojpeg::compress(image, 85, turbojpeg::Subsamp::Sub2x2)
        .expect("compress")
        .to_vec()
}

/// Left half fully transparent green, right half opaque red.
fn alpha_png(w: u32, h: u32) -> Vec<u8> {
    let img = RgbaImage::from_fn(w, h, |x, _| {
        if x < w / 2 {
            Rgba([0, 255, 0, 0])
        } else {
            Rgba([255, 0, 0, 255])
        }
    });
    encode_with(&DynamicImage::ImageRgba8(img), ImageFormat::Png)
}

// --- A tiny PNG writer, for files `image` will not write (palette, lying headers). ---

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
}

/// zlib stream of `data` in stored (uncompressed) deflate blocks.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = if data.is_empty() {
        vec![&[][..]]
    } else {
        data.chunks(65535).collect()
    };
    for (i, block) in blocks.iter().enumerate() {
        out.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65521;
        b = (b + a) % 65521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

fn png_raw(
    w: u32,
    h: u32,
    depth: u8,
    color_type: u8,
    extra: &[(&[u8; 4], Vec<u8>)],
    scanlines: &[u8],
) -> Vec<u8> {
    let mut out = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[depth, color_type, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    for (kind, data) in extra {
        chunk(&mut out, kind, data);
    }
    chunk(&mut out, b"IDAT", &zlib_stored(scanlines));
    chunk(&mut out, b"IEND", &[]);
    out
}

/// 4x2 palette PNG: index 0 red, 1 blue (transparent with tRNS when `transparent`).
fn palette_png(transparent: bool) -> Vec<u8> {
    let plte = vec![255, 0, 0, 0, 0, 255];
    let mut extra = vec![(b"PLTE", plte)];
    if transparent {
        extra.push((b"tRNS", vec![255, 0]));
    }
    // Filter byte 0, then 4 indices a row.
    let scanlines = [0, 0, 1, 0, 1, 0, 1, 1, 0, 0];
    png_raw(4, 2, 8, 3, &extra, &scanlines)
}

// --- Every input kind ---

#[test]
fn render_baseline_jpeg_w300_gives_300x188_jpeg() {
    let r = ok(&fixture!("photo-2560x1600.jpg"), &tf(Some(300), None));
    assert_eq!((r.format, r.width, r.height), (Format::Jpeg, 300, 188));
    decoded(&r);
}

#[test]
fn render_progressive_jpeg_w300_matches_baseline_colours() {
    let t = with_format(tf(Some(300), None), Format::Png);
    let base = decoded(&ok(&fixture!("photo-2560x1600.jpg"), &t));
    let prog = decoded(&ok(&fixture!("progressive-2560x1600.jpg"), &t));
    assert_eq!(prog.dimensions(), (300, 188));
    // The two files hold the same coefficients (jpegtran, lossless).
    assert_close(mean_rgb(&prog), mean_rgb(&base), 0.5);
}

#[test]
fn render_cmyk_jpeg_colours_match_image_decoder() {
    let bytes = fixture!("cmyk-2560x1600.jpg");
    let r = ok(&bytes, &with_format(tf(Some(320), None), Format::Png));
    let ours = decoded(&r);
    assert_eq!(ours.dimensions(), (320, 200));
    let reference =
        image::load_from_memory_with_format(&bytes, ImageFormat::Jpeg).expect("image decodes cmyk");
    assert_close(mean_rgb(&ours), mean_rgb(&reference), 4.0);
}

#[test]
fn render_gray_jpeg_gives_gray_rgb_output() {
    let r = ok(
        &fixture!("gray-2560x1600.jpg"),
        &with_format(tf(Some(300), None), Format::Png),
    );
    let img = decoded(&r).to_rgb8();
    assert_eq!(img.dimensions(), (300, 188));
    assert!(img.pixels().all(|p| p.0[0] == p.0[1] && p.0[1] == p.0[2]));
    let [r_mean, ..] = mean_rgb(&DynamicImage::ImageRgb8(img));
    assert!(r_mean > 5.0 && r_mean < 250.0, "not blank: {r_mean}");
}

#[test]
fn render_exif_orient6_w300_gives_upright_300x188() {
    let bytes = fixture!("exif-orient6.jpg");
    let r = ok(&bytes, &with_format(tf(Some(300), None), Format::Png));
    assert_eq!((r.width, r.height), (300, 188));
    // Compare with a reference rotated by `image`: a wrong rotation direction differs a lot.
    let mut reference =
        image::load_from_memory_with_format(&bytes, ImageFormat::Jpeg).expect("decode");
    reference.apply_orientation(image::metadata::Orientation::Rotate90);
    let reference = reference
        .resize_exact(300, 188, image::imageops::FilterType::Triangle)
        .to_rgb8();
    let ours = decoded(&r).to_rgb8();
    let diff: f64 = ours
        .as_raw()
        .iter()
        .zip(reference.as_raw())
        .map(|(a, b)| f64::from(a.abs_diff(*b)))
        .sum::<f64>()
        / ours.as_raw().len() as f64;
    assert!(diff < 6.0, "mean abs difference {diff}");
}

#[test]
fn render_png16_reduces_exactly_to_8_bit() {
    let src = image::ImageBuffer::<Rgb<u16>, _>::from_fn(64, 32, |x, y| {
        Rgb([(x * 1000) as u16, (y * 2000) as u16, 65535])
    });
    let src = DynamicImage::ImageRgb16(src);
    let r = ok(&encode_with(&src, ImageFormat::Png), &Transform::default());
    assert_eq!(r.format, Format::Png);
    let out = decoded(&r);
    assert_eq!(out.color(), image::ColorType::Rgb8);
    assert_eq!(out.to_rgb8(), src.to_rgb8());
}

#[test]
fn render_palette_png_expands_colours() {
    let r = ok(&palette_png(false), &Transform::default());
    let out = decoded(&r).to_rgb8();
    assert_eq!(out.dimensions(), (4, 2));
    assert_eq!(out.get_pixel(0, 0).0, [255, 0, 0]);
    assert_eq!(out.get_pixel(1, 0).0, [0, 0, 255]);
    assert_eq!(out.get_pixel(3, 1).0, [255, 0, 0]);
}

#[test]
fn render_palette_png_with_trns_keeps_alpha() {
    let r = ok(&palette_png(true), &Transform::default());
    let out = decoded(&r);
    assert!(out.color().has_alpha());
    // tRNS [255, 0]: index 0 (red) opaque, index 1 (blue) fully transparent.
    assert_eq!(out.to_rgba8().get_pixel(0, 0).0, [255, 0, 0, 255]);
    assert_eq!(out.to_rgba8().get_pixel(1, 0).0[3], 0);
}

#[test]
fn render_alpha_png_keeps_alpha_in_png_webp_and_avif() {
    let bytes = alpha_png(40, 20);
    for format in [Format::Png, Format::Webp, Format::Avif] {
        let r = ok(&bytes, &with_format(tf(Some(20), None), format));
        let out = decoded(&r);
        assert_eq!(out.dimensions(), (20, 10));
        assert!(out.color().has_alpha(), "{format}");
        let rgba = out.to_rgba8();
        assert_eq!(
            rgba.get_pixel(1, 5).0[3],
            0,
            "{format}: transparent stays transparent"
        );
        assert_eq!(
            rgba.get_pixel(18, 5).0[3],
            255,
            "{format}: opaque stays opaque"
        );
    }
}

#[test]
fn render_alpha_png_as_jpeg_flattens_onto_background() {
    let mut t = with_format(tf(Some(20), None), Format::Jpeg);
    t.background = Colour([0, 0, 255]);
    let out = decoded(&ok(&alpha_png(40, 20), &t)).to_rgb8();
    assert_px_close(out.get_pixel(1, 5).0, [0, 0, 255], 12);
    assert_px_close(out.get_pixel(18, 5).0, [255, 0, 0], 12);
}

#[test]
fn render_lossy_webp_w300_gives_webp() {
    let r = ok(&fixture!("lossy-2560x1600.webp"), &tf(Some(300), None));
    assert_eq!((r.format, r.width, r.height), (Format::Webp, 300, 188));
    decoded(&r);
}

#[test]
fn render_animated_gif_stays_an_animated_gif_and_f_png_is_the_first_frame() {
    let bytes = fixture!("animated-480x300.gif");
    let r = ok(&bytes, &Transform::default());
    assert_eq!(
        (r.format, r.width, r.height, r.frames),
        (Format::Gif, 480, 300, 5)
    );
    assert_eq!(frames_of(&r).len(), 5);
    let r = ok(&bytes, &with_format(Transform::default(), Format::Png));
    assert_eq!(
        (r.format, r.width, r.height, r.frames),
        (Format::Png, 480, 300, 1)
    );
    let first = image::load_from_memory_with_format(&bytes, ImageFormat::Gif).expect("decode gif");
    assert_eq!(decoded(&r).to_rgba8(), first.to_rgba8());
}

/// The frames of an animated output (GIF or WebP), with their durations in ms.
fn frames_of(r: &Rendered) -> Vec<(RgbaImage, u32)> {
    use image::AnimationDecoder;
    let frames = match r.format {
        Format::Gif => image::codecs::gif::GifDecoder::new(Cursor::new(&r.bytes))
            .expect("gif")
            .into_frames(),
        Format::Webp => image::codecs::webp::WebPDecoder::new(Cursor::new(&r.bytes))
            .expect("webp")
            .into_frames(),
        f => panic!("{f} has no frames"),
    };
    frames
        .map(|f| {
            let f = f.expect("frame");
            let (n, d) = f.delay().numer_denom_ms();
            (f.into_buffer(), n / d)
        })
        .collect()
}

#[test]
fn render_animation_resizes_every_frame_and_keeps_durations() {
    let gif = rgb_animated_gif();
    let want = [
        ([255u8, 0, 0], 100u32),
        ([0, 255, 0], 200),
        ([0, 0, 255], 300),
    ];
    for format in [Format::Webp, Format::Gif] {
        let t = Transform {
            width: Some(20),
            ..with_format(Transform::default(), format)
        };
        let r = ok(&gif, &t);
        assert_eq!((r.format, r.width, r.height, r.frames), (format, 20, 15, 3));
        assert!(!r.alpha, "{format}: opaque frames");
        let frames = frames_of(&r);
        assert_eq!(frames.len(), 3, "{format}");
        for ((img, ms), (rgb, want_ms)) in frames.iter().zip(want) {
            assert_eq!(img.dimensions(), (20, 15), "{format}");
            assert_eq!(*ms, want_ms, "{format}: frame duration");
            let px = img.get_pixel(10, 7).0;
            for (got, want) in px.iter().zip(rgb) {
                assert!(got.abs_diff(want) <= 8, "{format}: {px:?} vs {rgb:?}");
            }
        }
    }
}

#[test]
fn render_animation_f_auto_is_webp_when_accepted_else_gif_and_stills_for_other_formats() {
    let gif = rgb_animated_gif();
    let auto = Transform {
        format: Some(FormatChoice::Auto),
        ..Transform::default()
    };
    let all = Accept {
        webp: true,
        avif: true,
    };
    let r = render_with(&gif, &auto, all).expect("render");
    assert_eq!((r.format, r.frames), (Format::Webp, 3));
    let r = render_with(&gif, &auto, Accept::default()).expect("render");
    assert_eq!((r.format, r.frames), (Format::Gif, 3));
    for f in [Format::Png, Format::Jpeg] {
        let r = ok(&gif, &with_format(Transform::default(), f));
        assert_eq!((r.format, r.frames), (f, 1));
        assert_close(mean_rgb(&decoded(&r)), [255.0, 0.0, 0.0], 3.0);
    }
    // An animated WebP source stays animated.
    let webp = ok(&gif, &with_format(Transform::default(), Format::Webp));
    let r = ok(&webp.bytes, &tf(Some(10), None));
    assert_eq!((r.format, r.width, r.frames), (Format::Webp, 10, 3));
    assert_eq!(frames_of(&r).len(), 3);
}

#[test]
fn render_still_as_gif_is_one_frame() {
    let r = ok(
        &tiny_jpeg(64, 48),
        &with_format(tf(Some(32), None), Format::Gif),
    );
    assert_eq!(
        (r.format, r.width, r.height, r.frames),
        (Format::Gif, 32, 24, 1)
    );
    assert_eq!(frames_of(&r).len(), 1);
}

#[test]
fn render_animation_over_summed_pixels_is_animation_too_large() {
    // Five frames of 480x300 = 720 000 pixels in all.
    let bytes = fixture!("animated-480x300.gif");
    let at = |max_animation_pixels| {
        let limits = Limits {
            max_animation_pixels,
            ..LIMITS
        };
        let t = Transform::default();
        render(
            &bytes,
            &Request {
                transform: &t,
                accept: Accept::default(),
                default_quality: 80,
                codecs: Codecs::default(),
            },
            &limits,
        )
    };
    assert_eq!(
        at(719_999).err(),
        Some(PipelineError::AnimationTooLarge {
            frames: 5,
            width: 480,
            height: 300,
            limit: 719_999
        })
    );
    assert!(at(720_000).is_ok());
    // A still image is bounded by `max_source_pixels` alone.
    let still = Limits {
        max_animation_pixels: 1,
        ..LIMITS
    };
    let t = tf(Some(100), None);
    let r = render(
        &tiny_jpeg(64, 64),
        &Request {
            transform: &t,
            accept: Accept::default(),
            default_quality: 80,
            codecs: Codecs::default(),
        },
        &still,
    );
    assert!(r.is_ok(), "{r:?}");
}

/// A 40x30 animated GIF of solid red, green, blue frames (delays 100, 200, 300 ms).
fn rgb_animated_gif() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = image::codecs::gif::GifEncoder::new(&mut out);
        let frames = [[255, 0, 0], [0, 255, 0], [0, 0, 255]]
            .into_iter()
            .zip([100, 200, 300])
            .map(|([r, g, b], ms)| {
                image::Frame::from_parts(
                    RgbaImage::from_pixel(40, 30, Rgba([r, g, b, 255])),
                    0,
                    0,
                    image::Delay::from_numer_denom_ms(ms, 1),
                )
            });
        enc.encode_frames(frames).expect("encode gif");
    }
    out
}

#[test]
fn render_page_flattens_to_that_frame() {
    let gif = rgb_animated_gif();
    for (page, want) in [(1, [255, 0, 0]), (2, [0, 255, 0]), (3, [0, 0, 255])] {
        let t = Transform {
            page: Some(page),
            width: Some(20),
            ..with_format(Transform::default(), Format::Png)
        };
        let r = ok(&gif, &t);
        assert_eq!((r.format, r.width, r.height), (Format::Png, 20, 15));
        assert_close(mean_rgb(&decoded(&r)), want.map(f64::from), 2.0);
    }
}

#[test]
fn render_page_beyond_frames_is_page_out_of_range() {
    let t = Transform {
        page: Some(4),
        ..Transform::default()
    };
    assert_eq!(
        render_with(&rgb_animated_gif(), &t, Accept::default()).err(),
        Some(PipelineError::PageOutOfRange { page: 4, frames: 3 })
    );
    let t = Transform {
        page: Some(2),
        ..Transform::default()
    };
    assert_eq!(
        render_with(&tiny_jpeg(16, 16), &t, Accept::default()).err(),
        Some(PipelineError::PageOutOfRange { page: 2, frames: 1 })
    );
}

// --- Fit modes, padding, formats, quality ---

#[test]
fn render_fit_modes_give_planned_sizes() {
    let bytes = tiny_jpeg(400, 200);
    for (fit, want) in [
        (Fit::Fit, (100, 50)),
        (Fit::Fill, (100, 100)),
        (Fit::Scale, (100, 100)),
        (Fit::Pad, (100, 100)),
    ] {
        let mut t = tf(Some(100), Some(100));
        t.fit = fit;
        let r = ok(&bytes, &t);
        assert_eq!((r.width, r.height), want, "{fit:?}");
        assert_eq!(decoded(&r).dimensions(), want);
    }
}

#[test]
fn render_fill_gravity_east_keeps_right_edge() {
    let img = RgbImage::from_fn(200, 100, |x, _| {
        if x < 100 {
            Rgb([0, 0, 0])
        } else {
            Rgb([255, 255, 255])
        }
    });
    let bytes = encode_with(&DynamicImage::ImageRgb8(img), ImageFormat::Png);
    let mut t = tf(Some(50), Some(50));
    t.fit = Fit::Fill;
    t.gravity = Gravity::East;
    let out = decoded(&ok(&bytes, &t)).to_rgb8();
    assert_eq!(out.dimensions(), (50, 50));
    // Lanczos pulls a little black from just outside the crop into the first columns only
    // (measured: 241, 255, 254, then 255); the kept half is the white one.
    assert!(out
        .enumerate_pixels()
        .all(|(x, _, p)| p.0.iter().all(|&v| v >= if x < 3 { 230 } else { 255 })));
}

#[test]
fn render_pad_fills_with_background_colour() {
    let mut t = with_format(tf(Some(100), Some(100)), Format::Png);
    t.fit = Fit::Pad;
    t.background = Colour([255, 0, 0]);
    let out = decoded(&ok(&tiny_jpeg(400, 200), &t)).to_rgb8();
    assert_eq!(out.dimensions(), (100, 100));
    assert_eq!(out.get_pixel(50, 2).0, [255, 0, 0]);
    assert_eq!(out.get_pixel(50, 97).0, [255, 0, 0]);
    assert_ne!(out.get_pixel(50, 50).0, [255, 0, 0]);
}

#[test]
fn render_pad_transparent_png_composites_onto_background() {
    let mut t = tf(Some(40), Some(40));
    t.fit = Fit::Pad;
    t.background = Colour([0, 0, 255]);
    let r = ok(&alpha_png(40, 20), &t);
    let out = decoded(&r).to_rgba8();
    assert_eq!(out.get_pixel(20, 2).0, [0, 0, 255, 255]);
    assert_eq!(out.get_pixel(2, 20).0, [0, 0, 255, 255]);
}

#[test]
fn render_auto_format_picks_webp_png_or_jpeg() {
    let mut t = tf(Some(20), None);
    t.format = Some(FormatChoice::Auto);
    let yes = Accept {
        webp: true,
        avif: false,
    };
    assert_eq!(
        render_with(&tiny_jpeg(40, 20), &t, yes)
            .expect("render")
            .format,
        Format::Webp
    );
    let avif = Accept {
        webp: true,
        avif: true,
    };
    let r = render_with(&tiny_jpeg(40, 20), &t, avif).expect("render");
    assert_eq!(r.format, Format::Avif);
    decoded(&r);
    assert_eq!(
        render_with(&alpha_png(40, 20), &t, Accept::default())
            .expect("render")
            .format,
        Format::Png
    );
    let opaque = encode_with(&DynamicImage::ImageRgb8(gradient(40, 20)), ImageFormat::Png);
    let r = render_with(&opaque, &t, Accept::default()).expect("render");
    assert_eq!(r.format, Format::Jpeg);
    decoded(&r);
}

#[test]
fn render_webp_q100_is_lossless_round_trip() {
    let src = RgbImage::from_fn(33, 17, |x, y| {
        Rgb([(x * 7 + y * 13) as u8, (x * y) as u8, (x ^ y) as u8])
    });
    let bytes = encode_with(&DynamicImage::ImageRgb8(src.clone()), ImageFormat::Png);
    let mut t = with_format(Transform::default(), Format::Webp);
    t.quality = Some(100);
    assert_eq!(decoded(&ok(&bytes, &t)).to_rgb8(), src);
}

#[test]
fn render_quality_changes_jpeg_size() {
    let bytes = fixture!("photo-2560x1600.jpg");
    let mut t = tf(Some(600), None);
    t.quality = Some(30);
    let small = ok(&bytes, &t).bytes.len();
    t.quality = Some(95);
    let big = ok(&bytes, &t).bytes.len();
    assert!(small < big, "q30 {small} bytes, q95 {big} bytes");
}

#[test]
fn render_output_never_keeps_exif() {
    let r = ok(&fixture!("exif-orient6.jpg"), &tf(Some(100), None));
    assert_eq!(probe::exif_orientation(&r.bytes), 1);
    assert!(!r.bytes.windows(6).any(|w| w == b"Exif\0\0"));
}

// --- Broken, hostile and unsupported inputs ---

#[track_caller]
fn assert_corrupt(bytes: &[u8], what: &str) {
    match render_with(bytes, &tf(Some(50), None), Accept::default()) {
        Err(PipelineError::Corrupt(_)) => {}
        other => panic!(
            "{what}: expected Corrupt, got {:?}",
            other.map(|r| (r.format, r.width, r.height))
        ),
    }
}

#[test]
fn render_truncated_inputs_are_corrupt() {
    let png = encode_with(&DynamicImage::ImageRgb8(gradient(64, 64)), ImageFormat::Png);
    let gif = encode_with(&DynamicImage::ImageRgb8(gradient(64, 64)), ImageFormat::Gif);
    for (what, bytes) in [
        ("photo jpeg", fixture!("photo-2560x1600.jpg")),
        ("progressive jpeg", fixture!("progressive-2560x1600.jpg")),
        ("tiny jpeg", tiny_jpeg(64, 64)),
        ("png", png),
        ("lossy webp", fixture!("lossy-2560x1600.webp")),
        ("gif", gif),
    ] {
        let cut = bytes.len() * 6 / 10;
        assert_corrupt(&bytes[..cut], what);
    }
}

#[test]
fn render_truncated_animated_gif_is_corrupt_only_inside_first_frame() {
    let bytes = fixture!("animated-480x300.gif");
    // The first of five frames ends well after 10% of the file.
    assert_corrupt(&bytes[..bytes.len() / 10], "gif cut in frame 1");
    // As a still only the first frame is decoded; a cut in a later frame does not affect it.
    let first_only = with_format(Transform::default(), Format::Png);
    let r = ok(&bytes[..bytes.len() * 6 / 10], &first_only);
    let first = image::load_from_memory_with_format(&bytes, ImageFormat::Gif).expect("decode gif");
    assert_eq!(decoded(&r).to_rgba8(), first.to_rgba8());
    // Kept as an animation, the cut frame is an error.
    assert_corrupt(
        &bytes[..bytes.len() * 6 / 10],
        "gif cut in frame 3, animated",
    );
}

#[test]
fn render_jpeg_with_garbage_after_soi_is_corrupt() {
    let mut bytes = vec![0xFF, 0xD8, 0xFF];
    bytes.extend_from_slice(&[0x42; 100]);
    assert_corrupt(&bytes, "garbage jpeg");
}

#[test]
fn render_unrecognised_bodies_are_unsupported() {
    let random: Vec<u8> = (0u32..512)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for bytes in [
        &b""[..],
        b"<!DOCTYPE html><html><body>404</body></html>",
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
        b"BM\x36\0\0\0\0\0\0\0\x36\0\0\0",
        &random,
    ] {
        assert!(
            matches!(
                render_with(bytes, &tf(Some(50), None), Accept::default()),
                Err(PipelineError::Unsupported(_))
            ),
            "{:?}",
            &bytes[..bytes.len().min(16)]
        );
    }
}

#[test]
fn render_bit_flipped_inputs_never_panic() {
    let png = encode_with(&DynamicImage::ImageRgb8(gradient(24, 16)), ImageFormat::Png);
    let gif = encode_with(&DynamicImage::ImageRgb8(gradient(24, 16)), ImageFormat::Gif);
    let webp = encode_with(
        &DynamicImage::ImageRgb8(gradient(24, 16)),
        ImageFormat::WebP,
    );
    let mut progressive = {
        let mut c = turbojpeg::Compressor::new().expect("compressor");
        c.set_progressive(true).expect("progressive");
        let img = gradient(24, 16);
        let image = turbojpeg::Image {
            pixels: img.as_raw().as_slice(),
            width: 24,
            pitch: 72,
            height: 16,
            format: turbojpeg::PixelFormat::RGB,
        };
        c.compress_to_vec(image).expect("compress")
    };
    progressive.truncate(progressive.len());
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let t = tf(Some(10), None);
    for (what, bytes) in [
        ("jpeg", tiny_jpeg(24, 16)),
        ("progressive", progressive),
        ("png", png),
        ("gif", gif),
        ("webp", webp),
    ] {
        for _ in 0..300 {
            let mut b = bytes.clone();
            for _ in 0..(1 + next() % 4) {
                let bit = (next() % (b.len() as u64 * 8)) as usize;
                b[bit / 8] ^= 1 << (bit % 8);
            }
            // Any Ok or Err is fine; a panic fails the test.
            let _ = render_with(&b, &t, Accept::default());
        }
        let _ = what;
    }
}

#[test]
fn render_png_claiming_100000_squared_is_source_too_large_fast() {
    let bytes = png_raw(100_000, 100_000, 8, 2, &[], &[0, 0, 0, 0]);
    let start = Instant::now();
    let got = render_with(&bytes, &tf(Some(100), None), Accept::default());
    assert_eq!(
        got.map(|r| r.width).unwrap_err(),
        PipelineError::SourceTooLarge {
            width: 100_000,
            height: 100_000,
            limit: LIMITS.max_source_pixels
        }
    );
    assert!(
        start.elapsed().as_millis() < 500,
        "took {:?}",
        start.elapsed()
    );
}

#[test]
fn render_output_over_limit_is_output_too_large() {
    let mut t = tf(Some(6000), Some(6000));
    t.fit = Fit::Pad;
    let got = render_with(&tiny_jpeg(16, 16), &t, Accept::default()).map(|r| r.width);
    assert_eq!(
        got,
        Err(PipelineError::OutputTooLarge {
            width: 6000,
            height: 6000,
            limit: LIMITS.max_output_pixels
        })
    );
}

#[test]
fn render_progressive_jpeg_over_decode_budget_is_decode_too_large() {
    let limits = Limits {
        max_decode_bytes: 10_000_000,
        ..LIMITS
    };
    let t = tf(Some(100), None);
    let full_path = Codecs {
        dc_only: false,
        ..Codecs::default()
    };
    let got = render(
        &fixture!("progressive-2560x1600.jpg"),
        &Request {
            transform: &t,
            accept: Accept::default(),
            default_quality: 80,
            codecs: full_path,
        },
        &limits,
    );
    assert!(
        matches!(
            got,
            Err(PipelineError::DecodeTooLarge {
                width: 2560,
                height: 1600,
                ..
            })
        ),
        "{:?}",
        got.map(|r| r.width)
    );
    // The DC-only path needs two bytes per 8x8 block, and the baseline file at 1/8 only
    // 320x200x3 bytes.
    for name in ["progressive-2560x1600.jpg", "photo-2560x1600.jpg"] {
        let got = render(
            &fixture!(name),
            &Request {
                transform: &t,
                accept: Accept::default(),
                default_quality: 80,
                codecs: Codecs::default(),
            },
            &limits,
        );
        assert!(got.is_ok(), "{name}");
    }
}

#[test]
fn render_progressive_thumbnail_from_dc_scans_matches_full_decode() {
    let bytes = fixture!("progressive-2560x1600.jpg");
    let t = with_format(tf(Some(300), None), Format::Png);
    let run = |dc_only| {
        let req = Request {
            transform: &t,
            accept: Accept::default(),
            default_quality: 80,
            codecs: Codecs {
                dc_only,
                ..Codecs::default()
            },
        };
        decoded(&render(&bytes, &req, &LIMITS).expect("render")).to_rgb8()
    };
    let (dc, full) = (run(true), run(false));
    assert_eq!(dc.dimensions(), full.dimensions());
    let mse = (dc.as_raw().iter().zip(full.as_raw()))
        .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
        .sum::<f64>()
        / dc.as_raw().len() as f64;
    let db = 10.0 * (255.0f64.powi(2) / mse.max(1e-9)).log10();
    // 4:2:0 chroma is estimated (see jpeg_dc): about 39 dB here, invisible at this size.
    assert!(db > 37.0, "DC-only thumbnail vs full decode: {db:.1} dB");
}

#[test]
fn render_baseline_thumbnail_from_dc_only_is_the_full_decode() {
    // Baseline 4:2:0, grayscale, rotated: libjpeg's 1/8 result exactly, so the same bytes.
    for bytes in [
        fixture!("photo-2560x1600.jpg"),
        fixture!("gray-2560x1600.jpg"),
        fixture!("exif-orient6.jpg"),
    ] {
        let t = with_format(tf(Some(300), None), Format::Png);
        let run = |dc_only| {
            let req = Request {
                transform: &t,
                accept: Accept::default(),
                default_quality: 80,
                codecs: Codecs {
                    dc_only,
                    ..Codecs::default()
                },
            };
            render(&bytes, &req, &LIMITS).expect("render").bytes
        };
        assert!(run(true) == run(false));
    }
}

#[test]
fn render_with_rust_jpeg_decoder_matches_turbo() {
    let t = with_format(tf(Some(300), None), Format::Png);
    for name in [
        "photo-2560x1600.jpg",
        "cmyk-2560x1600.jpg",
        "exif-orient6.jpg",
    ] {
        let bytes = fixture!(name);
        let run = |jpeg_decoder| {
            let req = Request {
                transform: &t,
                accept: Accept::default(),
                default_quality: 80,
                codecs: Codecs {
                    jpeg_decoder,
                    ..Codecs::default()
                },
            };
            decoded(&render(&bytes, &req, &LIMITS).expect("render"))
        };
        let (rust, turbo) = (run(JpegDecoder::Rust), run(JpegDecoder::Turbo));
        assert_eq!(rust.dimensions(), turbo.dimensions(), "{name}");
        assert_close(mean_rgb(&rust), mean_rgb(&turbo), 2.0);
    }
}

#[test]
fn render_png_over_decode_budget_is_decode_too_large() {
    let limits = Limits {
        max_decode_bytes: 1000,
        ..LIMITS
    };
    let bytes = encode_with(&DynamicImage::ImageRgb8(gradient(64, 64)), ImageFormat::Png);
    let t = tf(Some(10), None);
    let got = render(
        &bytes,
        &Request {
            transform: &t,
            accept: Accept::default(),
            default_quality: 80,
            codecs: Codecs::default(),
        },
        &limits,
    );
    assert!(
        matches!(got, Err(PipelineError::DecodeTooLarge { .. })),
        "{:?}",
        got.map(|r| r.width)
    );
}

#[test]
fn render_timings_are_filled() {
    let r = ok(&fixture!("photo-2560x1600.jpg"), &tf(Some(300), None));
    assert!(r.timings.decode > Duration::ZERO && r.timings.encode > Duration::ZERO);
}

#[test]
fn render_tiny_and_extreme_shapes_follow_the_plan() {
    let sources = [
        tiny_jpeg(1, 1),
        tiny_jpeg(7, 1),
        tiny_jpeg(1, 9),
        tiny_jpeg(33, 17),
        alpha_png(2, 1),
        encode_with(&DynamicImage::ImageRgb8(gradient(1, 40)), ImageFormat::Png),
    ];
    let boxes = [
        (Some(1), Some(1)),
        (Some(5000), Some(1)),
        (Some(1), Some(3000)),
        (Some(3), None),
        (None, Some(2)),
    ];
    for bytes in &sources {
        for (w, h) in boxes {
            for fit in [Fit::Fit, Fit::Fill, Fit::Pad, Fit::Scale] {
                for (gravity, enlarge) in [
                    (Gravity::Center, false),
                    (Gravity::SouthEast, true),
                    (Gravity::North, false),
                ] {
                    let t = Transform {
                        width: w,
                        height: h,
                        fit,
                        gravity,
                        enlarge,
                        ..Transform::default()
                    };
                    // Extreme enlargements (1x1 to 5000x1) are the point here.
                    let limits = Limits {
                        max_upscale: u32::MAX,
                        ..LIMITS
                    };
                    let r = render(
                        bytes,
                        &Request {
                            transform: &t,
                            accept: Accept::default(),
                            default_quality: 80,
                            codecs: Codecs::default(),
                        },
                        &limits,
                    )
                    .expect("render");
                    let p =
                        probe::probe(bytes, sniff(bytes).expect("known"), &LIMITS).expect("probe");
                    let plan = layout::plan(&t, p.width, p.height, LIMITS.max_output_pixels)
                        .expect("plan");
                    assert_eq!((r.width, r.height), plan.canvas, "{t:?}");
                    decoded(&r);
                }
            }
        }
    }
}

#[test]
fn render_jpeg_cut_at_60_percent_reports_libjpeg_warning() {
    let bytes = fixture!("photo-2560x1600.jpg");
    let got = render_with(
        &bytes[..bytes.len() * 6 / 10],
        &tf(Some(300), None),
        Accept::default(),
    )
    .map(|r| r.width);
    assert!(
        matches!(&got, Err(PipelineError::Corrupt(m)) if m.contains("Premature end")),
        "{got:?}"
    );
}

// Property pass over the pipeline entry point (the fuzz target's invariant, run in CI): any
// bytes, and any small mutation of a real image in every format, give a result or an error,
// never a panic, and a result always has the planned size.
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// One small file of every other input format (`tests/fixtures/formats`).
    const FORMAT_SEEDS: &[&str] = &[
        "photo.tiff",
        "alpha16.tiff",
        "alpha.bmp",
        "icon.ico",
        "alpha.qoi",
        "alpha.pam",
        "photo-rle.tga",
        "jxl-lossy.jxl",
        "jxl-lossless.jxl",
        "jxl-orient6.jxl",
        "heif/alpha.heic",
        "heif/photo-exif.avif",
        "heif/grid-2x2.avif",
        "logo.svg",
    ];

    fn seeds() -> Vec<Vec<u8>> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/formats/");
        let files = FORMAT_SEEDS
            .iter()
            .map(|f| std::fs::read(format!("{dir}{f}")).expect("format fixture"));
        let mut seeds = vec![
            tiny_jpeg(24, 16),
            encode_with(&DynamicImage::ImageRgb8(gradient(24, 16)), ImageFormat::Png),
            encode_with(
                &DynamicImage::ImageRgba8(RgbaImage::from_pixel(12, 12, image::Rgba([1, 2, 3, 4]))),
                ImageFormat::Gif,
            ),
            encode_with(
                &DynamicImage::ImageRgb8(gradient(24, 16)),
                ImageFormat::WebP,
            ),
        ];
        seeds.extend(files);
        seeds
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn render_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = render(&bytes, &Request { transform: &tf(Some(8), None), accept: Accept::default(), default_quality: 80, codecs: Codecs::default() }, &LIMITS);
        }

        #[test]
        fn render_mutated_images_never_panic(
            which in any::<prop::sample::Index>(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
            w in 1u32..40,
        ) {
            let mut seeds = seeds();
            let mut bytes = seeds.swap_remove(which.index(seeds.len()));
            for (at, v) in edits {
                let i = at.index(bytes.len());
                bytes[i] = v;
            }
            bytes.truncate(cut.index(bytes.len() + 1).max(1));
            let t = tf(Some(w), None);
            if let Ok(r) = render(&bytes, &Request { transform: &t, accept: Accept::default(), default_quality: 80, codecs: Codecs::default() }, &LIMITS) {
                prop_assert!(r.width >= 1 && r.height >= 1);
                prop_assert!(r.width <= w, "width {} over the box {}", r.width, w);
            }
        }
    }
}

/// Found by the `pipeline` fuzz target: a palette PNG whose PLTE is 14 bytes long (not a
/// multiple of 3). With valid CRCs (as in this file) png 0.18.1 panics on it in a normal build.
#[test]
fn regression_fuzz_palette_png_is_corrupt() {
    let bytes = fixture!("regressions/fuzz-pipeline-palette-png.png");
    let got = render(
        &bytes,
        &Request {
            transform: &tf(Some(8), None),
            accept: Accept::default(),
            default_quality: 80,
            codecs: Codecs::default(),
        },
        &LIMITS,
    );
    assert!(
        matches!(got, Err(PipelineError::Corrupt(_))),
        "{:?}",
        got.map(|r| r.width)
    );
}

#[test]
fn peak_memory_follows_the_decode_path() {
    let req = |t, dc_only| Request {
        transform: t,
        accept: Accept::default(),
        default_quality: 80,
        codecs: Codecs {
            dc_only,
            ..Codecs::default()
        },
    };
    let thumb = tf(Some(300), None);
    let prog = fixture!("progressive-2560x1600.jpg");
    // libjpeg keeps all coefficients of a progressive file: 2560x1600x3x2. The DC-only path
    // needs far less, but when it declines (a file whose end is missing) libjpeg runs after
    // it, so the reservation covers that too.
    let full = peak_memory(&prog, &req(&thumb, false), &LIMITS);
    assert!(full > 2560 * 1600 * 6, "{full}");
    assert_eq!(peak_memory(&prog, &req(&thumb, true), &LIMITS), full);
    // A baseline thumbnail is small; a big output costs its canvas.
    let base = fixture!("photo-2560x1600.jpg");
    assert!(peak_memory(&base, &req(&thumb, true), &LIMITS) < 2 << 20);
    let big = tf(Some(2560), None);
    assert!(peak_memory(&base, &req(&big, true), &LIMITS) > 2560 * 1600 * 12);
    // Garbage fails before any allocation: nothing to reserve.
    assert_eq!(peak_memory(b"not an image", &req(&thumb, true), &LIMITS), 0);
}

#[test]
fn peak_memory_counts_the_avif_encoder_only_where_avif_is_made() {
    let base = fixture!("photo-2560x1600.jpg");
    let est = |t: &Transform, avif: bool| {
        let req = Request {
            transform: t,
            accept: Accept { avif, webp: true },
            default_quality: 80,
            codecs: Codecs::default(),
        };
        peak_memory(&base, &req, &LIMITS)
    };
    let auto = |w| Transform {
        format: Some(FormatChoice::Auto),
        ..tf(Some(w), None)
    };
    // f_auto picks AVIF only up to avif max_pixels (1 MP): a big f_auto costs no AVIF encoder,
    // so an AVIF-capable browser is not refused a large image.
    assert_eq!(est(&auto(2560), true), est(&auto(2560), false));
    // Under the cap, and for an explicit f_avif, the encoder's 48 B/px are counted.
    let small = (800 * 500) as u64;
    assert!(est(&auto(800), true) >= est(&auto(800), false) + small * 48);
    let explicit = with_format(tf(Some(800), None), Format::Avif);
    assert!(est(&explicit, false) >= est(&auto(800), false) + small * 48);
}

/// 64x32 PNG, four 16-px columns: red, green, blue, white (left to right).
fn columns_png() -> Vec<u8> {
    const COLOURS: [[u8; 3]; 4] = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]];
    let img = RgbImage::from_fn(64, 32, |x, _| Rgb(COLOURS[(x / 16) as usize]));
    encode_with(&DynamicImage::ImageRgb8(img), ImageFormat::Png)
}

fn geometry(options: &str) -> RgbImage {
    let t = crate::options::parse(options).expect("options");
    decoded(&ok(&columns_png(), &with_format(t, Format::Png))).to_rgb8()
}

#[test]
fn render_rotation_and_flip_turn_the_image_before_sizing() {
    // r_90 (clockwise): the left (red) column ends up on top; w applies to the turned image.
    let img = geometry("r_90,w_16");
    assert_eq!(img.dimensions(), (16, 32));
    assert_px_close(img.get_pixel(8, 1).0, [255, 0, 0], 8);
    assert_px_close(img.get_pixel(8, 30).0, [255, 255, 255], 8);
    let img = geometry("r_270");
    assert_eq!(img.dimensions(), (32, 64));
    assert_px_close(img.get_pixel(16, 1).0, [255, 255, 255], 0);
    assert_px_close(img.get_pixel(16, 62).0, [255, 0, 0], 0);
    let img = geometry("r_180");
    assert_px_close(img.get_pixel(1, 16).0, [255, 255, 255], 0);
    let img = geometry("flip_h");
    assert_eq!(img.dimensions(), (64, 32));
    assert_px_close(img.get_pixel(1, 16).0, [255, 255, 255], 0);
    assert_px_close(img.get_pixel(62, 16).0, [255, 0, 0], 0);
    // Turn, then mirror: red goes to the top, then top-bottom to the bottom.
    let img = geometry("r_90,flip_v");
    assert_px_close(img.get_pixel(16, 62).0, [255, 0, 0], 0);
}

#[test]
fn render_rotation_composes_with_exif_orientation() {
    // exif-orient6.jpg is stored portrait (1600x2560) and displayed landscape; r_270 turns
    // the displayed image back to portrait.
    let bytes = fixture!("exif-orient6.jpg");
    let upright = ok(&bytes, &tf(Some(100), None));
    assert_eq!((upright.width, upright.height), (100, 63));
    let turned = ok(
        &bytes,
        &crate::options::parse("w_100,r_270").expect("options"),
    );
    assert_eq!((turned.width, turned.height), (100, 160));
}

#[test]
fn render_crop_cuts_source_pixels_before_resizing() {
    // The second and third columns only, then halved.
    let img = geometry("crop_16_0_32_32,w_16");
    assert_eq!(img.dimensions(), (16, 16));
    assert_px_close(img.get_pixel(1, 8).0, [0, 255, 0], 8);
    assert_px_close(img.get_pixel(14, 8).0, [0, 0, 255], 8);
    // Applies to the turned image: after r_90 the first 16 rows are the red column.
    let img = geometry("r_90,crop_0_0_32_16");
    assert_eq!(img.dimensions(), (32, 16));
    assert!(img.pixels().all(|p| p.0 == [255, 0, 0]));
    // Clipped to the image; wholly outside is an error.
    assert_eq!(geometry("crop_48_0_100_100").dimensions(), (16, 32));
    let t = crate::options::parse("crop_64_0_10_10").expect("options");
    assert!(matches!(
        render_with(&columns_png(), &t, Accept::default()),
        Err(PipelineError::CropOutside { .. })
    ));
}

#[test]
fn render_blur_and_sharpen_change_edges_only() {
    let sharp = geometry("_");
    let blurred = geometry("blur_3");
    // Inside a column nothing changes much; at a column edge the blur mixes both sides.
    assert_px_close(blurred.get_pixel(8, 16).0, [255, 0, 0], 10);
    let edge = blurred.get_pixel(16, 16).0;
    assert!(edge[0] > 40 && edge[1] > 40, "edge {edge:?} not mixed");
    assert_eq!(sharp.get_pixel(16, 16).0, [0, 255, 0]);
    let sharpened = geometry("w_32,sharpen_1");
    assert_eq!(sharpened.dimensions(), (32, 16));
}

#[test]
fn render_photo_as_avif_keeps_colour_and_is_smaller_than_webp() {
    let bytes = fixture!("photo-2560x1600.jpg");
    let render_as = |format| ok(&bytes, &with_format(tf(Some(321), None), format));
    let (avif, webp) = (render_as(Format::Avif), render_as(Format::Webp));
    assert_eq!(
        (avif.format, avif.width, avif.height),
        (Format::Avif, 321, 201)
    );
    let (a, w) = (decoded(&avif), decoded(&webp));
    assert!(!a.color().has_alpha(), "opaque source, no alpha plane");
    let (ma, mw) = (mean_rgb(&a), mean_rgb(&w));
    for c in 0..3 {
        assert!((ma[c] - mw[c]).abs() < 2.0, "channel {c}: {ma:?} vs {mw:?}");
    }
    // Default qualities (AVIF 70, WebP 80) give about the same PSNR; AVIF should be smaller.
    assert!(
        avif.bytes.len() < webp.bytes.len(),
        "avif {} B vs webp {} B",
        avif.bytes.len(),
        webp.bytes.len()
    );
}

#[test]
fn render_webp_effort_trades_time_for_bytes() {
    let bytes = fixture!("photo-2560x1600.jpg");
    let t = with_format(tf(Some(400), None), Format::Webp);
    let at = |webp_effort| {
        let req = Request {
            transform: &t,
            accept: Accept::default(),
            default_quality: 80,
            codecs: Codecs {
                webp_effort,
                ..Codecs::default()
            },
        };
        render(&bytes, &req, &LIMITS).expect("render")
    };
    let (fast, default, small) = (at(0), at(4), at(6));
    for r in [&fast, &default, &small] {
        assert_eq!((r.format, r.width, r.height), (Format::Webp, 400, 250));
        assert_eq!(decoded(r).dimensions(), (400, 250));
    }
    // Method 0 skips the rate-distortion search that 4 and 6 run.
    assert!(fast.bytes.len() > default.bytes.len());
    assert!(small.bytes.len() <= default.bytes.len());
}

#[test]
fn render_auto_beyond_avif_max_pixels_is_webp() {
    let mut t = tf(Some(40), None);
    t.format = Some(FormatChoice::Auto);
    let req = |max_pixels| Request {
        transform: &t,
        accept: Accept {
            webp: true,
            avif: true,
        },
        default_quality: 80,
        codecs: Codecs {
            avif: AvifSettings {
                max_pixels,
                ..AvifSettings::default()
            },
            ..Codecs::default()
        },
    };
    let bytes = tiny_jpeg(80, 40);
    let small = render(&bytes, &req(800), &LIMITS).expect("render");
    assert_eq!(small.format, Format::Avif);
    let big = render(&bytes, &req(799), &LIMITS).expect("render");
    assert_eq!(big.format, Format::Webp);
}

#[test]
fn render_lqip_is_a_tiny_webp_of_the_same_shape() {
    let bytes = fixture!("photo-2560x1600.jpg");
    let placeholder = |opts: &str| {
        let t = crate::options::parse(opts).expect("options");
        let r = ok(&bytes, &t);
        assert_eq!(r.format, Format::Webp, "{opts}");
        assert!(r.bytes.len() <= 1024, "{opts}: {} B", r.bytes.len());
        let img = decoded(&r);
        assert_eq!(img.dimensions(), (r.width, r.height));
        (r.width, r.height)
    };
    assert_eq!(placeholder("f_lqip"), (32, 20));
    assert_eq!(placeholder("w_300,f_lqip"), (32, 20));
    assert_eq!(placeholder("w_20,f_lqip"), (20, 13));
    assert_eq!(placeholder("w_600,h_300,c_fill,f_lqip"), (32, 16));
    assert_eq!(placeholder("w_300,h_300,c_pad,f_lqip"), (32, 32));
    // The placeholder keeps the colours of the image it stands for.
    let full = decoded(&ok(&bytes, &tf(Some(32), None)));
    let lqip = decoded(&ok(
        &bytes,
        &crate::options::parse("f_lqip").expect("options"),
    ));
    let (a, b) = (mean_rgb(&full), mean_rgb(&lqip));
    for c in 0..3 {
        assert!((a[c] - b[c]).abs() < 6.0, "{a:?} vs {b:?}");
    }
}

/// `w` x `h`, `border` colour everywhere except a busy `subject` rectangle (x0, y0, x1, y1).
fn bordered(w: u32, h: u32, subject: (u32, u32, u32, u32), border: Rgba<u8>) -> DynamicImage {
    DynamicImage::ImageRgba8(RgbaImage::from_fn(w, h, |x, y| {
        if x >= subject.0 && x < subject.2 && y >= subject.1 && y < subject.3 {
            Rgba([(x * 5 % 200) as u8 + 30, 90, (y * 3 % 200) as u8 + 20, 255])
        } else {
            border
        }
    }))
}

fn trim_t(opts: &str) -> Transform {
    crate::options::parse(opts).expect("options")
}

#[test]
fn render_trim_cuts_uniform_borders_before_sizing() {
    let white = Rgba([255, 255, 255, 255]);
    let png = encode_with(&bordered(100, 80, (10, 5, 70, 60), white), ImageFormat::Png);
    let r = ok(&png, &trim_t("trim_10,f_png"));
    assert_eq!((r.width, r.height), (60, 55));
    let out = decoded(&r).to_rgba8();
    assert_ne!(out.get_pixel(0, 0).0, white.0, "the border is gone");
    // Sizing sees the trimmed image: w_30 is 30 px of the subject.
    let r = ok(&png, &trim_t("trim_10,w_30,f_png"));
    assert_eq!((r.width, r.height), (30, 28));
    // r_90 turns first, then trims: the box turns with it.
    let r = ok(&png, &trim_t("trim_10,r_90,f_png"));
    assert_eq!((r.width, r.height), (55, 60));
    // crop_ first, then trim inside it.
    let r = ok(&png, &trim_t("crop_40_0_60_80,trim_10,f_png"));
    assert_eq!((r.width, r.height), (30, 55));
}

#[test]
fn render_trim_keeps_uniform_images_and_trims_transparent_borders() {
    let flat = encode_with(
        &bordered(40, 30, (0, 0, 0, 0), Rgba([9, 9, 9, 255])),
        ImageFormat::Png,
    );
    let r = ok(&flat, &trim_t("trim_0,f_png"));
    assert_eq!(
        (r.width, r.height),
        (40, 30),
        "nothing left to keep: unchanged"
    );
    let clear = encode_with(
        &bordered(50, 50, (20, 10, 30, 45), Rgba([0, 0, 0, 0])),
        ImageFormat::Png,
    );
    let r = ok(&clear, &trim_t("trim_0,f_png"));
    assert_eq!((r.width, r.height), (10, 35));
}

#[test]
fn render_trim_on_a_large_jpeg_uses_a_scaled_decode() {
    let img = bordered(
        3200,
        2000,
        (400, 300, 2000, 1300),
        Rgba([255, 255, 255, 255]),
    );
    let jpeg = encode_with(&DynamicImage::ImageRgb8(img.to_rgb8()), ImageFormat::Jpeg);
    let r = ok(&jpeg, &trim_t("trim_40,w_160"));
    assert_eq!(r.width, 160);
    // The 1600 x 1000 subject at 160 wide is 100 high (the scaled decode may keep a pixel of
    // border at the scale it found the box).
    assert!((99..=101).contains(&r.height), "{}", r.height);
    let out = decoded(&r).to_rgb8();
    let corner = out.get_pixel(0, 0).0;
    assert!(
        corner.iter().any(|&c| c < 200),
        "corner {corner:?} is subject, not border"
    );
}

#[test]
fn render_enlargement_past_max_upscale_is_upscale_too_large() {
    let bytes = tiny_jpeg(10, 10);
    let t = |w| Transform {
        width: Some(w),
        enlarge: true,
        ..Transform::default()
    };
    assert!(matches!(
        render_with(&bytes, &t(41), Accept::default()),
        Err(PipelineError::UpscaleTooLarge { limit: 4, .. })
    ));
    assert_eq!(ok(&bytes, &t(40)).width, 40);
    // Without up_1 nothing is enlarged, so nothing is refused.
    let no_up = Transform {
        enlarge: false,
        ..t(4000)
    };
    assert_eq!(ok(&bytes, &no_up).width, 10);
}

#[test]
fn render_explicit_avif_over_max_avif_pixels_is_avif_too_large() {
    let bytes = tiny_jpeg(64, 64);
    let avif = |w| Transform {
        width: Some(w),
        format: Some(FormatChoice::Fixed(Format::Avif)),
        ..Transform::default()
    };
    let limits = Limits {
        max_avif_pixels: 1000,
        ..LIMITS
    };
    let at = |t: &Transform| {
        render(
            &bytes,
            &Request {
                transform: t,
                accept: Accept::default(),
                default_quality: 80,
                codecs: Codecs::default(),
            },
            &limits,
        )
    };
    assert!(matches!(
        at(&avif(64)),
        Err(PipelineError::AvifTooLarge { limit: 1000, .. })
    ));
    assert_eq!(at(&avif(31)).map(|r| r.format).ok(), Some(Format::Avif));
}

#[test]
fn render_past_the_deadline_is_timeout() {
    let bytes = tiny_jpeg(64, 64);
    let t = tf(Some(32), None);
    let limits = Limits {
        deadline: Some(std::time::Instant::now()),
        ..LIMITS
    };
    let got = render(
        &bytes,
        &Request {
            transform: &t,
            accept: Accept::default(),
            default_quality: 80,
            codecs: Codecs::default(),
        },
        &limits,
    );
    assert_eq!(got.err(), Some(PipelineError::Timeout));
}

#[test]
fn render_gif_frame_larger_than_its_screen_counts_against_the_source_limit() {
    // A 1x1 logical screen whose one frame claims 8000x8000: refused from the descriptor.
    let mut g = b"GIF89a\x01\0\x01\0\0\0\0".to_vec();
    g.extend_from_slice(&[
        0x2C, 0, 0, 0, 0, 0x40, 0x1F, 0x40, 0x1F, 0, 2, 2, 0x4C, 0x01, 0,
    ]);
    g.push(0x3B);
    let limits = Limits {
        max_source_pixels: 1_000_000,
        ..LIMITS
    };
    let t = tf(Some(1), None);
    let got = render(
        &g,
        &Request {
            transform: &t,
            accept: Accept::default(),
            default_quality: 80,
            codecs: Codecs::default(),
        },
        &limits,
    );
    assert!(
        matches!(got, Err(PipelineError::SourceTooLarge { .. })),
        "{got:?}"
    );
}

/// A big-endian EXIF (TIFF) block whose IFD0 holds one Orientation entry.
fn exif_orientation_block(value: u8) -> Vec<u8> {
    let mut tiff = b"MM\0\x2a\0\0\0\x08\0\x01".to_vec();
    tiff.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, value, 0, 0]);
    tiff.extend_from_slice(&[0, 0, 0, 0]);
    tiff
}

/// 4x2 RGB PNG (left half red, right half blue) with an `eXIf` orientation.
fn png_with_orientation(value: u8) -> Vec<u8> {
    let row = [0u8, 255, 0, 0, 255, 0, 0, 0, 0, 255, 0, 0, 255];
    let scanlines: Vec<u8> = row.iter().chain(row.iter()).copied().collect();
    png_raw(
        4,
        2,
        8,
        2,
        &[(b"eXIf", exif_orientation_block(value))],
        &scanlines,
    )
}

/// A lossless 4x2 WebP (left half red, right half blue) in a VP8X container with an `EXIF`
/// chunk holding `value`.
fn webp_with_orientation(value: u8) -> Vec<u8> {
    let rgb: Vec<u8> = (0..8)
        .flat_map(|i| if i % 4 < 2 { [255, 0, 0] } else { [0, 0, 255] })
        .collect();
    let simple = webp::Encoder::from_rgb(&rgb, 4, 2)
        .encode_lossless()
        .to_vec();
    // The simple file's only chunk (VP8L) follows the 12-byte RIFF header.
    let vp8l = &simple[12..];
    let mut body = b"WEBP".to_vec();
    let mut vp8x = vec![0x08, 0, 0, 0];
    vp8x.extend_from_slice(&3u32.to_le_bytes()[..3]);
    vp8x.extend_from_slice(&1u32.to_le_bytes()[..3]);
    riff_chunk(&mut body, b"VP8X", &vp8x);
    body.extend_from_slice(vp8l);
    riff_chunk(&mut body, b"EXIF", &exif_orientation_block(value));
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

fn riff_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(kind);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(0);
    }
}

#[test]
fn render_png_and_webp_apply_their_exif_orientation() {
    for (what, bytes) in [
        ("png", png_with_orientation(6)),
        ("webp", webp_with_orientation(6)),
    ] {
        let r = ok(&bytes, &with_format(tf(None, None), Format::Png));
        assert_eq!((r.width, r.height), (2, 4), "{what}");
        let img = decoded(&r).to_rgb8();
        // Orientation 6 turns the image 90 degrees clockwise: red (left) ends up on top.
        assert_px_close(img.get_pixel(0, 0).0, [255, 0, 0], 8);
        assert_px_close(img.get_pixel(1, 3).0, [0, 0, 255], 8);
        // Without the tag the stored layout is kept.
        let plain = match what {
            "png" => png_with_orientation(1),
            _ => webp_with_orientation(1),
        };
        let r = ok(&plain, &with_format(tf(None, None), Format::Png));
        assert_eq!((r.width, r.height), (4, 2), "{what}");
    }
}

#[test]
fn baseline_shrunk_by_four_takes_the_quarter_path_unless_turned_off() {
    let t = with_format(tf(Some(600), None), Format::Png);
    let req = |jpeg_quarter| Request {
        transform: &t,
        accept: Accept::default(),
        default_quality: 80,
        codecs: Codecs {
            jpeg_quarter,
            ..Codecs::default()
        },
    };
    // Grayscale baseline (4:4:4 and grayscale are what the pipeline takes at 1/4).
    let base = fixture!("gray-2560x1600.jpg");
    let on = prepare(&base, &req(true), &LIMITS).expect("prepare");
    assert_eq!((on.shrink, on.dc_only), (4, true));
    let off = prepare(&base, &req(false), &LIMITS).expect("prepare");
    assert_eq!((off.shrink, off.dc_only), (4, false));
    // Progressive files stay with libjpeg at 1/4.
    let prog = fixture!("progressive-2560x1600.jpg");
    let p = prepare(&prog, &req(true), &LIMITS).expect("prepare");
    assert_eq!((p.shrink, p.dc_only), (4, false));
    // The codec's decode at that plan is the quarter decoder's output (and not libjpeg's).
    let decode = |bytes: &[u8], p: &Prepared| {
        let at = codec::DecodeAt {
            page: 1,
            shrink: p.shrink,
            scale: 1.0,
            jpeg_decoder: JpegDecoder::Turbo,
            dc_only: p.dc_only,
        };
        (p.codec.decode)(bytes, &p.probe.header(), &at, &LIMITS).expect("decode")
    };
    let quarter = decode_jpeg_quarter(&base).expect("quarter path takes the file");
    let (with, without) = (decode(&base, &on), decode(&base, &off));
    assert!(
        with.buf == quarter.2,
        "jpeg_quarter = true decodes with jpeg_dc"
    );
    assert!(
        without.buf != quarter.2,
        "jpeg_quarter = false decodes with libjpeg"
    );
    assert_eq!((with.width, with.height), (without.width, without.height));
    // 4:2:0 goes to libjpeg even with jpeg_quarter on (measured faster there).
    let photo = fixture!("photo-2560x1600.jpg");
    let on = prepare(&photo, &req(true), &LIMITS).expect("prepare");
    let off = prepare(&photo, &req(false), &LIMITS).expect("prepare");
    assert!(
        decode(&photo, &on).buf == decode(&photo, &off).buf,
        "4:2:0 at 1/4"
    );
    // The renders differ, but little.
    let run = |q| decoded(&render(&base, &req(q), &LIMITS).expect("render")).to_rgb8();
    let (a, b) = (run(true), run(false));
    assert_eq!(a.dimensions(), b.dimensions());
    let mse = (a.as_raw().iter().zip(b.as_raw()))
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum::<f64>()
        / a.as_raw().len() as f64;
    let db = 10.0 * (255.0f64.powi(2) / mse.max(1e-9)).log10();
    assert!(
        db > 38.0 && db < 99.0,
        "quarter vs libjpeg render: {db:.1} dB"
    );
}
