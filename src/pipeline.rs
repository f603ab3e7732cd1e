//! The image pipeline: sniff -> probe header -> plan -> decode (shrink-on-load) -> orient ->
//! crop/resize -> blur/sharpen -> pad/flatten -> encode. `r_`/`flip_` are folded into the
//! orientation, and `crop_` into the plan, so neither costs a pass over the pixels. Synchronous, pure functions over bytes; the server runs
//! [`render`] on its bounded worker pool. No async, no HTTP types, no I/O.
//!
//! Colour: an embedded ICC profile (Display P3, Adobe RGB, CMYK, ...) is converted to sRGB and
//! dropped (`color`); CMYK without a profile is converted naively. No metadata reaches the
//! output except, with `keep_copyright`, the EXIF artist and copyright (`metadata`). No caching. Each stage lives in a submodule; [`render`] reads
//! top to bottom in the order above.

mod animate;

mod codec;
mod color;
mod container;
mod decode;
mod encode;
mod filter;
mod frames;
mod jpeg;
mod jpeg_dc;
mod lqip;
mod metadata;
mod orient;
mod probe;
mod resize;
mod smartcrop;
mod summary;
#[cfg(test)]
mod tests;
mod tiff;
mod trim;

use std::time::{Duration, Instant};

use crate::format::{Format, FormatSet};
use crate::layout::{self, LayoutError, Rect};
use crate::options::{Fit, FormatChoice, Gravity, Transform};

pub use summary::Summary;

/// Resource limits, checked before any large allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest source width x height (read from the header, before decoding).
    pub max_source_pixels: u64,
    /// Largest output canvas width x height.
    pub max_output_pixels: u64,
    /// Largest single allocation a decoder may make, in bytes.
    pub max_decode_bytes: u64,
    /// Most animation frames a GIF/WebP source may have (counted before decoding).
    pub max_frames: u32,
    /// Largest frames x source canvas pixels of an animation (checked before decoding).
    pub max_animation_pixels: u64,
    /// Largest enlargement factor (output over source size, per axis) with `up_1`.
    pub max_upscale: u32,
    /// Largest output canvas encoded as AVIF for an explicit `f_avif`.
    pub max_avif_pixels: u64,
    /// When the job must stop: checked between stages (decode, resize, encode, each
    /// animation frame), so a job past it ends at the next stage with [`PipelineError::Timeout`].
    pub deadline: Option<Instant>,
}

impl Limits {
    /// [`PipelineError::Timeout`] once the deadline has passed.
    pub(crate) fn check_deadline(&self) -> Result<(), PipelineError> {
        match self.deadline {
            Some(d) if Instant::now() >= d => Err(PipelineError::Timeout),
            _ => Ok(()),
        }
    }
}

/// What the client's `Accept` header allows, for `f_auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Accept {
    pub webp: bool,
    pub avif: bool,
}

/// One render job.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub transform: &'a Transform,
    pub accept: Accept,
    /// Quality used when the transform has no `q_`.
    pub default_quality: u8,
    pub codecs: Codecs,
}

/// Codec settings: which decoding paths to use (`[pipeline]` in the config) and how to encode
/// AVIF (`output.avif_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Codecs {
    pub jpeg_decoder: JpegDecoder,
    /// Decode a JPEG from its DC coefficients (`pipeline::jpeg_dc`) when shrinking it by 8:
    /// the DC scans of a progressive file, the skipped AC codes of a baseline one.
    pub dc_only: bool,
    /// Decode a baseline JPEG shrunk by 4 from the low-frequency coefficients of each block
    /// (`pipeline::jpeg_dc`); false = libjpeg-turbo's 1/4 decode.
    pub jpeg_quarter: bool,
    pub avif: AvifSettings,
    /// libwebp's method for still WebP, 0 (fastest) ..= 6 (smallest); 4 is libwebp's and
    /// sharp's default (`output.webp_effort`).
    pub webp_effort: u8,
    /// Copy the source's EXIF `Artist` and `Copyright` into the output (`output.keep_copyright`).
    pub keep_copyright: bool,
    /// Sources in these formats are served as they are when the transform keeps their size
    /// and format (`source.passthrough`).
    pub passthrough: FormatSet,
    /// An SVG is served sanitised, as SVG, when the transform keeps its size and format
    /// (`output.svg_passthrough`).
    pub svg_passthrough: bool,
}

impl Default for Codecs {
    fn default() -> Self {
        Codecs {
            jpeg_decoder: JpegDecoder::Turbo,
            dc_only: true,
            jpeg_quarter: true,
            avif: AvifSettings::default(),
            webp_effort: 4,
            keep_copyright: false,
            passthrough: FormatSet::default(),
            svg_passthrough: false,
        }
    }
}

/// AVIF encoding, one thread per job: opaque images through libaom (libavif, 8-bit 4:2:0,
/// all-intra), images with alpha or kept EXIF through rav1e (ravif, 8-bit 4:4:4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AvifSettings {
    /// libaom's speed (cpu-used), 1 (slowest, smallest) ..= 10; rav1e runs one step faster
    /// (capped at 10), its own best trade-off at the default.
    pub speed: u8,
    /// Quality when the URL has no `q_` (AVIF's scale is not JPEG's: with libaom at speed 8,
    /// 66 is about the PSNR of WebP at 80 on photos, at 0.6-1.0x its bytes).
    pub quality: u8,
    /// `f_auto` answers AVIF only for outputs up to this many pixels (WebP beyond).
    pub max_pixels: u64,
}

impl Default for AvifSettings {
    fn default() -> Self {
        AvifSettings {
            speed: 8,
            quality: 66,
            max_pixels: 1_000_000,
        }
    }
}

/// The JPEG decoder for everything the DC-only path does not take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JpegDecoder {
    /// libjpeg-turbo (C, SIMD), with DCT-domain shrink-on-load: the fast default.
    #[default]
    Turbo,
    /// zune-jpeg through `image` (memory-safe Rust, full-size decode): slower, no C in the
    /// pixel path.
    Rust,
}

/// Time spent in each stage, for `Server-Timing`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    pub decode: Duration,
    pub resize: Duration,
    pub encode: Duration,
}

/// An encoded output image.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub bytes: Vec<u8>,
    pub format: Format,
    pub width: u32,
    pub height: u32,
    /// The output has an alpha channel.
    pub alpha: bool,
    /// Frames in the output (1 for a still).
    pub frames: u32,
    pub timings: Timings,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PipelineError {
    /// Not an image format we read (HTML, SVG, TIFF, random bytes, empty body). HTTP 415.
    #[error("unsupported image format: {0}")]
    Unsupported(String),
    /// Source dimensions over `max_source_pixels`. HTTP 413.
    #[error("source image {width}x{height} is larger than the limit of {limit} pixels")]
    SourceTooLarge { width: u32, height: u32, limit: u64 },
    /// Decoding would need more memory than `max_decode_bytes`. HTTP 413.
    #[error("decoding this {width}x{height} image needs more than the limit of {limit} bytes")]
    DecodeTooLarge { width: u32, height: u32, limit: u64 },
    /// Embedded metadata (an ICC profile) that would inflate past its bound. HTTP 413.
    #[error("the source's {what} is larger than the limit of {limit} bytes")]
    MetadataTooLarge { what: &'static str, limit: u64 },
    /// More animation frames than `max_frames`. HTTP 413.
    #[error("source has more than the limit of {limit} animation frames")]
    TooManyFrames { limit: u32 },
    /// Frames x canvas pixels over `max_animation_pixels`. HTTP 413.
    #[error(
        "animation of {frames} frames of {width}x{height} is larger than the limit of {limit} \
         pixels summed over its frames"
    )]
    AnimationTooLarge {
        frames: u32,
        width: u32,
        height: u32,
        limit: u64,
    },
    /// Output canvas over `max_output_pixels`. HTTP 413.
    #[error("output {width}x{height} is larger than the limit of {limit} pixels")]
    OutputTooLarge { width: u32, height: u32, limit: u64 },
    /// `crop_` names a rectangle that lies wholly outside the image. HTTP 422.
    #[error("crop {x},{y} {width}x{height} lies outside the {image_width}x{image_height} image")]
    CropOutside {
        x: u32,
        y: u32,
        width: u32,
        height: u32,
        image_width: u32,
        image_height: u32,
    },
    /// `page_` names a frame the source does not have. HTTP 422.
    #[error("page {page} asked for, but the source has {frames} frame(s)")]
    PageOutOfRange { page: u32, frames: u32 },
    /// Truncated or corrupt image data. HTTP 422.
    #[error("corrupt image: {0}")]
    Corrupt(String),
    /// Enlargement past `max_upscale`. HTTP 413.
    #[error("enlarging {factor:.1}x is more than the limit of {limit}x")]
    UpscaleTooLarge { factor: f64, limit: u32 },
    /// An explicit `f_avif` output over `max_avif_pixels`. HTTP 413.
    #[error("AVIF output {width}x{height} is larger than the limit of {limit} pixels")]
    AvifTooLarge { width: u32, height: u32, limit: u64 },
    /// The job ran past its deadline (`limits.job_timeout_ms`). HTTP 503.
    #[error("the image job ran past its time budget")]
    Timeout,
    /// A bug or an encoder failure on valid pixels. HTTP 500.
    #[error("internal pipeline error: {0}")]
    Internal(String),
}

/// Detect the format from magic bytes (never from a `Content-Type`).
pub fn sniff(bytes: &[u8]) -> Option<Format> {
    codec::sniff(bytes).map(|c| c.format)
}

/// The DC-only JPEG decoder on its own (`pipeline.dc_only`): `(width, height, RGB8)` at 1/8
/// scale, equal to libjpeg-turbo's 1/8 decode, or `None` when the file is not one it
/// reproduces exactly (the pipeline then decodes with libjpeg-turbo). For the benchmark and
/// the fuzz target that compare the two; the pipeline calls it itself. The caller bounds the
/// source's pixels first (it allocates about 3 bytes per 64 pixels).
pub fn decode_jpeg_eighth(bytes: &[u8]) -> Option<(u32, u32, Vec<u8>)> {
    jpeg_dc::decode(bytes).map(|p| (p.width, p.height, p.buf))
}

/// The 1/4-scale baseline JPEG decoder on its own (`pipeline.jpeg_quarter`): `(width,
/// height, RGB8)` at libjpeg-turbo's 1/4 output size, full-resolution components from their
/// low-frequency coefficients (close to libjpeg-turbo's 1/4 decode, not equal), 4:2:0 chroma
/// as libjpeg decodes it; `None` for progressive files and samplings other than 4:4:4, 4:2:0
/// and grayscale. For the benchmark and the fuzz target. The pipeline calls it itself for
/// 4:4:4 and grayscale only (4:2:0 measured slower than libjpeg-turbo's 1/4 decode: it goes
/// to libjpeg-turbo). The caller bounds the source's pixels first (it allocates about 1/16 of
/// a byte per pixel per component, plus the RGB output).
pub fn decode_jpeg_quarter(bytes: &[u8]) -> Option<(u32, u32, Vec<u8>)> {
    jpeg_dc::decode_quarter(bytes, true).map(|p| (p.width, p.height, p.buf))
}

/// The header facts and the plan every later stage works from.
struct Prepared {
    format: Format,
    codec: &'static codec::Codec,
    probe: probe::Probe,
    plan: layout::Plan,
    /// Crop rectangle and resize target in stored (not oriented) pixels.
    crop: Rect,
    /// The part of the source `crop_`/`trim_` keep (the whole image without them), in stored
    /// pixels: where `g_auto` may move the crop.
    region: Rect,
    target: (u32, u32),
    /// JPEG DCT shrink factor (1 for other formats).
    shrink: u32,
    /// The progressive DC-only path will be tried.
    dc_only: bool,
}

/// Steps 1-3: sniff, read the header, plan in displayed (oriented) geometry. Header-only work.
fn prepare(bytes: &[u8], req: &Request<'_>, limits: &Limits) -> Result<Prepared, PipelineError> {
    let codec =
        codec::sniff(bytes).ok_or_else(|| PipelineError::Unsupported(describe_unknown(bytes)))?;
    let format = codec.format;
    let mut probe = probe::probe(bytes, format, limits)?;
    if let Some(page) = req.transform.page.filter(|&p| p > probe.frames) {
        return Err(PipelineError::PageOutOfRange {
            page,
            frames: probe.frames,
        });
    }
    // From here on the orientation also carries `r_` and `flip_`: the displayed image is what
    // every other option sees.
    let t = req.transform;
    probe.orientation = orient::compose(probe.orientation, t.rotation.0, t.flip);
    let (ow, oh) = probe.oriented_size();
    let region = user_crop(t, ow, oh)?;
    // A vector source has no resolution to lose: it is rendered at the output size, larger
    // than its intrinsic size too.
    let vector_transform = codec.vector.then(|| Transform {
        enlarge: true,
        ..t.clone()
    });
    let plan_transform = vector_transform.as_ref().unwrap_or(t);
    let plan = layout::plan(plan_transform, region.2, region.3, limits.max_output_pixels).map_err(
        |e| match e {
            LayoutError::OutputTooLarge {
                width,
                height,
                limit,
            } => PipelineError::OutputTooLarge {
                width,
                height,
                limit,
            },
        },
    )?;
    // The costs the plan fixes, refused before any pixel work: enlargement, explicit AVIF.
    let factor = (f64::from(plan.resize.0) / plan.crop.width.max(1e-9))
        .max(f64::from(plan.resize.1) / plan.crop.height.max(1e-9));
    if factor > f64::from(limits.max_upscale) + 1e-6 && !codec.vector {
        return Err(PipelineError::UpscaleTooLarge {
            factor,
            limit: limits.max_upscale,
        });
    }
    let (cw, ch) = plan.canvas;
    if t.format == Some(FormatChoice::Fixed(Format::Avif))
        && u64::from(cw) * u64::from(ch) > limits.max_avif_pixels
    {
        return Err(PipelineError::AvifTooLarge {
            width: cw,
            height: ch,
            limit: limits.max_avif_pixels,
        });
    }
    let (sw, sh) = (f64::from(probe.width), f64::from(probe.height));
    let displayed = Rect {
        x: plan.crop.x + f64::from(region.0),
        y: plan.crop.y + f64::from(region.1),
        ..plan.crop
    };
    let crop = orient::stored_rect(displayed, probe.orientation, sw, sh);
    let region = orient::stored_rect(
        Rect {
            x: f64::from(region.0),
            y: f64::from(region.1),
            width: f64::from(region.2),
            height: f64::from(region.3),
        },
        probe.orientation,
        sw,
        sh,
    );
    let target = orient::stored_size(plan.resize, probe.orientation);
    let shrink = match format {
        Format::Jpeg => jpeg::choose_shrink(crop.width, crop.height, target.0, target.1),
        _ => 1,
    };
    // A JPEG shrunk by 8 needs only its DC coefficients (4:2:0 chroma: its blocks whole, for
    // libjpeg's 2x2 IDCT); a baseline one shrunk by 4 only the lowest few of each block (4:2:0
    // chroma: whole, for libjpeg's 4x4 IDCT). Lossless and 4-component files always go to
    // libjpeg; the rest `jpeg_dc` checks itself and declines what it does not take.
    let dc_only = match shrink {
        8 => req.codecs.dc_only,
        4 => req.codecs.jpeg_quarter && probe.jpeg.is_some_and(|j| !j.progressive),
        _ => false,
    } && probe.jpeg.is_some_and(|j| {
        !j.lossless
            && !matches!(
                j.colorspace,
                turbojpeg::Colorspace::CMYK | turbojpeg::Colorspace::YCCK
            )
    });
    Ok(Prepared {
        format,
        codec,
        probe,
        plan,
        crop,
        region,
        target,
        shrink,
        dc_only,
    })
}

/// `source.passthrough` and `output.svg_passthrough`: the source as it is (an SVG sanitised)
/// when its format is listed and the transform asks for no change of size or format. `None`
/// when the source goes through the pipeline.
fn pass_through(
    bytes: &[u8],
    req: &Request<'_>,
    limits: &Limits,
) -> Option<Result<Rendered, PipelineError>> {
    let codecs = &req.codecs;
    if codecs.passthrough.is_empty() && !codecs.svg_passthrough {
        return None;
    }
    let t = req.transform;
    let format = codec::sniff(bytes)?.format;
    let listed = codecs.passthrough.contains(format);
    let svg = format == Format::Svg && codecs.svg_passthrough;
    let same_format = t.format.is_none() || t.format == Some(FormatChoice::Fixed(format));
    if !(listed || svg) || !same_format || !t.keeps_pixels() {
        return None;
    }
    let start = Instant::now();
    // Only what imgcdn would read itself goes out, within the same limits (a listed magic
    // number in front of anything else is no image); an SVG always sanitised.
    let (width, height) = match probe::probe(bytes, format, limits) {
        Ok(p) => p.oriented_size(),
        Err(e) => return Some(Err(e)),
    };
    let bytes = if format == Format::Svg {
        match codec::sanitize_svg(bytes, limits) {
            Ok(clean) => clean,
            Err(e) => return Some(Err(e)),
        }
    } else {
        bytes.to_vec()
    };
    Some(Ok(Rendered {
        bytes,
        format,
        width,
        height,
        alpha: false,
        frames: 1,
        timings: Timings {
            encode: start.elapsed(),
            ..Timings::default()
        },
    }))
}

/// How much larger or smaller than its stored size a vector source is rendered: the size it
/// is resized to (`target` over the crop), at most `max_source_pixels`; the resize step covers
/// the rest. 1 for raster sources.
fn render_scale(
    codec: &codec::Codec,
    crop: Rect,
    target: (u32, u32),
    (sw, sh): (f64, f64),
    limits: &Limits,
) -> f64 {
    if !codec.vector {
        return 1.0;
    }
    let wanted = (f64::from(target.0) / crop.width.max(1e-9))
        .max(f64::from(target.1) / crop.height.max(1e-9));
    let most = (limits.max_source_pixels as f64 / (sw * sh).max(1.0)).sqrt();
    wanted.min(most).max(1e-3)
}

/// `trim_`: the transform with the trimmed region as its `crop_` (and no `trim`), or `None`
/// without `trim_`. Decodes the image once more (see `trim`).
fn resolve_trim(
    bytes: &[u8],
    req: &Request<'_>,
    limits: &Limits,
) -> Result<Option<Transform>, PipelineError> {
    let t = req.transform;
    let Some(tolerance) = t.trim else {
        return Ok(None);
    };
    let codec =
        codec::sniff(bytes).ok_or_else(|| PipelineError::Unsupported(describe_unknown(bytes)))?;
    let mut probe = probe::probe(bytes, codec.format, limits)?;
    probe.orientation = orient::compose(probe.orientation, t.rotation.0, t.flip);
    let (ow, oh) = probe.oriented_size();
    let region = user_crop(t, ow, oh)?;
    let page = t.page.unwrap_or(1);
    let rect = trim::find(
        bytes, codec, &probe, req.codecs, limits, region, tolerance, page,
    )?;
    Ok(Some(Transform {
        crop: Some(rect),
        window: None,
        trim: None,
        ..t.clone()
    }))
}

/// The part of the `ow` x `oh` displayed image that `crop_` keeps, as `(x, y, width, height)`:
/// the whole image without `crop_`, the rectangle clipped to the image, or the window sized and
/// placed against it.
fn user_crop(t: &Transform, ow: u32, oh: u32) -> Result<(u32, u32, u32, u32), PipelineError> {
    if let Some(w) = t.window {
        // A window is sized and placed against the image, so it is always inside it.
        let (width, height) = (w.width.of(ow), w.height.of(oh));
        let (x, y) = crate::layout::window(ow, oh, width, height, w.gravity);
        return Ok((x, y, width, height));
    }
    let Some(c) = t.crop else {
        return Ok((0, 0, ow, oh));
    };
    let right = c.x.saturating_add(c.width).min(ow);
    let bottom = c.y.saturating_add(c.height).min(oh);
    if c.x >= right || c.y >= bottom {
        return Err(PipelineError::CropOutside {
            x: c.x,
            y: c.y,
            width: c.width,
            height: c.height,
            image_width: ow,
            image_height: oh,
        });
    }
    Ok((c.x, c.y, right - c.x, bottom - c.y))
}

/// About how many bytes [`render`] will hold at its peak for this job, from the header alone
/// (cheap enough for the async side). The pool admits jobs against a memory budget with it.
/// Inputs that will fail early (bad header, over a limit) cost little and estimate 0.
pub fn peak_memory(bytes: &[u8], req: &Request<'_>, limits: &Limits) -> u64 {
    let placeholder = placeholder_transform(req.transform);
    let req = &Request {
        transform: placeholder.as_ref().unwrap_or(req.transform),
        ..req.clone()
    };
    let Ok(p) = prepare(bytes, req, limits) else {
        return 0;
    };
    let (w, h) = (u64::from(p.probe.width), u64::from(p.probe.height));
    let px = |w: u64, h: u64| w.saturating_mul(h);
    let components = p.probe.jpeg.map_or(4, |j| match j.colorspace {
        turbojpeg::Colorspace::Gray => 1,
        turbojpeg::Colorspace::CMYK | turbojpeg::Colorspace::YCCK => 4,
        _ => 3,
    });
    let decode = match p.format {
        // zune-jpeg: its output, `image`'s copy, and a progressive file's coefficients.
        Format::Jpeg
            if req.codecs.jpeg_decoder == JpegDecoder::Rust
                || p.probe.jpeg.is_some_and(|j| j.header_warning) =>
        {
            let coefficients = if p.probe.jpeg.is_some_and(|j| j.progressive) {
                px(w, h).saturating_mul(2 * components)
            } else {
                0
            };
            px(w, h)
                .saturating_mul(6)
                .saturating_add(coefficients)
                .saturating_add(bytes.len() as u64)
        }
        Format::Jpeg => {
            let k = u64::from(p.shrink);
            // CMYK through a profile makes an RGB copy beside the CMYK buffer.
            let per_px = if components == 4 { 7 } else { 4 };
            let out = px(w.div_ceil(k), h.div_ceil(k)).saturating_mul(per_px);
            // libjpeg keeps every coefficient of a progressive file, 2 bytes each.
            let coefficients = if p.probe.jpeg.is_some_and(|j| j.progressive) {
                px(w, h).saturating_mul(2 * components)
            } else {
                0
            };
            out.saturating_add(coefficients)
        }
        // A GIF frame larger than the screen: image's decoder holds it as RGBA and gif its
        // palette indices, beside the screen-sized image.
        Format::Gif => px(w, h)
            .saturating_mul(8)
            .saturating_add(p.probe.frame_pixels.saturating_mul(5)),
        // The decoder's buffer, and a conversion to 8-bit RGBA beside it; a 16-bit PNG's
        // buffer is twice as wide (8 B/px RGBA16, then 4 B/px RGBA8).
        Format::Png if bytes.get(24) == Some(&16) => px(w, h).saturating_mul(12),
        _ if p.codec.vector => {
            let s = render_scale(p.codec, p.crop, p.target, (w as f64, h as f64), limits);
            let rendered = (w as f64 * s).ceil() * (h as f64 * s).ceil();
            (rendered as u64).saturating_mul(p.codec.decode_bytes_per_pixel)
        }
        // The coded size when it is larger than the shown one (a HEIF `clap` crop).
        _ => px(w, h)
            .max(p.probe.frame_pixels)
            .saturating_mul(p.codec.decode_bytes_per_pixel),
    };
    // The DC-only path: two bytes a block a component (four for a 2x2-IDCT component's
    // samples), and the 1/8 RGB image; at 1/4 (baseline), a byte a 1/4-scale sample a
    // component and the 1/4 RGB image. When it declines, the path above runs after it, so the
    // larger of the two is what a request may use (a progressive file whose DC scans decode
    // but whose end is missing still costs libjpeg's coefficient buffer).
    let decode = match (p.dc_only, p.shrink) {
        (true, 4) => decode.max(px(w.div_ceil(4), h.div_ceil(4)).saturating_mul(3 + components)),
        (true, _) => {
            decode.max(px(w.div_ceil(8), h.div_ceil(8)).saturating_mul(3 + 4 * components))
        }
        (false, _) => decode,
    };
    // `trim_` decodes first on its own (JPEG at a scale keeping 1024 px), freed before the
    // decode above.
    let decode = if req.transform.trim.is_some() {
        let s = match p.format {
            Format::Jpeg => [8u64, 4, 2]
                .into_iter()
                .find(|s| w.max(h) / s >= 1024)
                .unwrap_or(1),
            _ => 1,
        };
        decode.max(px(w.div_ceil(s), h.div_ceil(s)).saturating_mul(8))
    } else {
        decode
    };
    // `crop_`/`trim_` copy the kept region out of the decoded image before resizing.
    let decode = if req.transform.crop.is_some()
        || req.transform.window.is_some()
        || req.transform.trim.is_some()
    {
        let k = u64::from(p.shrink.max(1));
        decode.saturating_add(px(w.div_ceil(k), h.div_ceil(k)).saturating_mul(4))
    } else {
        decode
    };
    // Resized image, canvas, encoder output, and `/meta`'s copy of the canvas: RGBA each;
    // blur and sharpen work in f32 beside (two transients of 16 B/px).
    let (cw, ch) = p.plan.canvas;
    let filters = req.transform.blur.is_some() || req.transform.sharpen.is_some();
    let per_px = if filters { 16 + 32 } else { 16 };
    let out = px(u64::from(cw), u64::from(ch)).saturating_mul(per_px);
    // An AVIF encode: rav1e holds the frame as 16-bit YUV planes, its reconstruction and
    // per-tile state: about 24 B/px of the canvas, twice that with an alpha plane (counted).
    let avif = match req.transform.format {
        Some(FormatChoice::Fixed(Format::Avif)) => true,
        // `f_auto` picks AVIF only up to `output.avif_max_pixels` (see `encode`).
        Some(FormatChoice::Auto) => {
            req.accept.avif && u64::from(cw) * u64::from(ch) <= req.codecs.avif.max_pixels
        }
        _ => false,
    };
    let out = if avif {
        out.saturating_add(px(u64::from(cw), u64::from(ch)).saturating_mul(48))
    } else {
        out
    };
    // An animation kept as one: every shaped RGBA frame is held for the encoder, and
    // libwebp's animation encoder keeps an ARGB picture of each beside it.
    let animated = p.probe.frames > 1
        && req.transform.page.is_none()
        && placeholder.is_none()
        && animate::reads(p.format);
    let out = if animated {
        let frames = u64::from(p.probe.frames);
        out.saturating_add(px(u64::from(cw), u64::from(ch)).saturating_mul(8 * frames))
    } else {
        out
    };
    decode.saturating_add(out)
}

/// Transform `bytes` as `req` says.
///
/// Limits are checked in this order, each before the allocation it guards: source pixels (from
/// the header), output pixels (from the plan), decoder buffer bytes (before decoding).
pub fn render(bytes: &[u8], req: &Request<'_>, limits: &Limits) -> Result<Rendered, PipelineError> {
    render_inner(bytes, req, limits, false).map(|(r, _)| r)
}

/// [`render`], and a [`Summary`] of the output pixels (dominant colour, ThumbHash) for `/meta`.
pub fn render_with_summary(
    bytes: &[u8],
    req: &Request<'_>,
    limits: &Limits,
) -> Result<(Rendered, Summary), PipelineError> {
    let (rendered, summary) = render_inner(bytes, req, limits, true)?;
    let summary =
        summary.ok_or_else(|| PipelineError::Internal("summary was not computed".into()))?;
    Ok((rendered, summary))
}

fn render_inner(
    bytes: &[u8],
    req: &Request<'_>,
    limits: &Limits,
    summarize: bool,
) -> Result<(Rendered, Option<Summary>), PipelineError> {
    let placeholder = placeholder_transform(req.transform);
    let req = &Request {
        transform: placeholder.as_ref().unwrap_or(req.transform),
        ..req.clone()
    };
    if !summarize {
        if let Some(passed) = pass_through(bytes, req, limits) {
            return passed.map(|r| (r, None));
        }
    }
    let palette_fixed = codec::with_default_palette(bytes);
    let bytes: &[u8] = &palette_fixed;
    let trimmed = resolve_trim(bytes, req, limits)?;
    let req = &Request {
        transform: trimmed.as_ref().unwrap_or(req.transform),
        ..req.clone()
    };
    let t = req.transform;
    let start = Instant::now();

    // 1-3. Sniff, read the header, plan in displayed (oriented) geometry.
    let Prepared {
        format,
        codec,
        probe,
        plan,
        crop,
        region,
        target,
        shrink,
        dc_only,
    } = prepare(bytes, req, limits)?;
    let (sw, sh) = (f64::from(probe.width), f64::from(probe.height));
    let meta = (codec.metadata)(bytes);
    let exif = req
        .codecs
        .keep_copyright
        .then(|| meta.exif.as_deref().and_then(metadata::copyright_exif))
        .flatten();

    // 5-8. Crop and resize the (small) stored image, ICC to sRGB, orient the result (no
    // full-size buffer is ever rotated), filters, pad onto the canvas.
    let mut shaper = Shaper {
        t,
        plan: &plan,
        crop,
        target,
        orientation: probe.orientation,
        source_size: (sw, sh),
        profile: color::bounded(meta.icc),
        clip: (t.crop.is_some() || t.window.is_some()).then_some(region),
    };
    // Animated JPEG XL (and any other source without an animation decoder) gives its first
    // frame, or the `page_` one.
    let animated =
        probe.frames > 1 && t.page.is_none() && placeholder.is_none() && animate::reads(format);
    if animated {
        let out_format = encode::choose(
            t.format,
            format,
            req.accept,
            plan.canvas,
            true,
            req.codecs.avif.max_pixels,
            true,
        );
        if encode::animates(out_format) {
            let quality = t.quality.unwrap_or(req.default_quality);
            let anim = animate::render(
                bytes, &probe, &shaper, out_format, quality, limits, summarize,
            )?;
            let anim = match &exif {
                Some(tiff) => animate::Animation {
                    bytes: metadata::embed(anim.bytes, out_format, tiff),
                    ..anim
                },
                None => anim,
            };
            let summary = match &anim.first {
                Some(first) if summarize => Some(summary::summarize(first)?),
                _ => None,
            };
            let rendered = Rendered {
                bytes: anim.bytes,
                format: out_format,
                width: plan.canvas.0,
                height: plan.canvas.1,
                alpha: anim.alpha,
                frames: anim.frames,
                timings: Timings {
                    decode: Duration::ZERO,
                    resize: Duration::ZERO,
                    encode: start.elapsed(),
                },
            };
            return Ok((rendered, summary));
        }
    }
    // 4. Decode in stored orientation; JPEG shrinks in the DCT as far as the crop allows.
    let at = codec::DecodeAt {
        page: req.transform.page.unwrap_or(1),
        shrink,
        scale: render_scale(codec, crop, target, (sw, sh), limits),
        jpeg_decoder: req.codecs.jpeg_decoder,
        dc_only,
    };
    let pixels = (codec.decode)(bytes, &probe.header(), &at, limits)?;

    limits.check_deadline()?;

    // `g_auto`: slide the fill crop over the most interesting part of the region.
    if t.gravity == Gravity::Auto && t.fit == Fit::Fill {
        shaper.crop = smart_crop(&pixels, crop, region, (sw, sh));
    }
    let mut decode_time = start.elapsed();

    let resize_start = Instant::now();
    let (img, orient_time) = shaper.shape_timed(pixels)?;
    decode_time += orient_time;
    let bg = t.background.0;
    let out_format = encode::choose(
        t.format,
        format,
        req.accept,
        plan.canvas,
        img.alpha,
        req.codecs.avif.max_pixels,
        false,
    );
    let img = if out_format == Format::Jpeg {
        resize::flatten(img, bg)
    } else {
        img
    };
    let resize_time = resize_start.elapsed().saturating_sub(orient_time);

    let summary = if summarize {
        Some(summary::summarize(&img)?)
    } else {
        None
    };

    // 9. Encode, without metadata.
    limits.check_deadline()?;
    let encode_start = Instant::now();
    let quality = match (t.quality, out_format) {
        (Some(q), _) => q,
        (None, Format::Avif) => req.codecs.avif.quality,
        (None, _) => req.default_quality,
    };
    let alpha = img.alpha;
    let out = if placeholder.is_some() {
        lqip::encode(img, t.blur.is_some())?
    } else {
        let encoded = encode::encode(&img, out_format, quality, &req.codecs, exif.as_deref())?;
        match &exif {
            Some(tiff) => metadata::embed(encoded, out_format, tiff),
            None => encoded,
        }
    };
    let rendered = Rendered {
        bytes: out,
        format: out_format,
        width: plan.canvas.0,
        height: plan.canvas.1,
        alpha,
        frames: 1,
        timings: Timings {
            decode: decode_time,
            resize: resize_time,
            encode: encode_start.elapsed(),
        },
    };
    Ok((rendered, summary))
}

/// Everything after decode that turns one decoded frame (stored orientation, maybe shrunk on
/// load) into the output canvas; stills and every frame of an animation go through it.
pub(crate) struct Shaper<'a> {
    t: &'a Transform,
    plan: &'a layout::Plan,
    /// Crop rectangle in stored source pixels, and the size it is resized to.
    crop: Rect,
    target: (u32, u32),
    orientation: u8,
    /// The stored source size the crop refers to (the decoded frame may be smaller).
    source_size: (f64, f64),
    /// Embedded ICC profile, converted to sRGB after resizing.
    profile: Option<Vec<u8>>,
    /// With `crop_`/`trim_`: the kept region (stored pixels). The resampling filter then sees
    /// only pixels inside it, so nothing of what was cut away bleeds in at the edges.
    clip: Option<Rect>,
}

impl Shaper<'_> {
    /// Crop + resize, ICC, orient, blur, sharpen, pad. The result is `plan.canvas` sized.
    pub(crate) fn shape(&self, pixels: Pixels) -> Result<Pixels, PipelineError> {
        self.shape_timed(pixels).map(|(img, _)| img)
    }

    /// [`Shaper::shape`], and the time spent orienting (reported as decode work).
    fn shape_timed(&self, pixels: Pixels) -> Result<(Pixels, Duration), PipelineError> {
        let t = self.t;
        let (sw, sh) = self.source_size;
        let (fx, fy) = (f64::from(pixels.width) / sw, f64::from(pixels.height) / sh);
        let crop = Rect {
            x: self.crop.x * fx,
            y: self.crop.y * fy,
            width: self.crop.width * fx,
            height: self.crop.height * fy,
        };
        let (pixels, crop) = match self.clip {
            Some(region) => {
                let scaled = Rect {
                    x: region.x * fx,
                    y: region.y * fy,
                    width: region.width * fx,
                    height: region.height * fy,
                };
                resize::clip(pixels, scaled, crop)?
            }
            None => (pixels, crop),
        };
        let mut resized = resize::resize(pixels, crop, self.target)?;
        // ICC: convert to sRGB on the resized pixels (CMYK profiles were applied at decode).
        if let Some(profile) = &self.profile {
            color::rgb_to_srgb(&mut resized, profile)?;
        }
        let orient_start = Instant::now();
        let img = orient::apply(resized, self.orientation)?;
        let orient_time = orient_start.elapsed();
        let img = match t.blur {
            Some(sigma) => filter::blur(img, sigma.get())?,
            None => img,
        };
        let img = match t.sharpen {
            Some(sigma) => filter::sharpen(img, sigma.get())?,
            None => img,
        };
        let plan = self.plan;
        let img = if plan.canvas != plan.resize {
            resize::pad(&img, plan.canvas, plan.offset, t.background.0)?
        } else {
            img
        };
        let img = if t.grayscale {
            filter::grayscale(img)
        } else {
            img
        };
        if (img.width, img.height) != plan.canvas {
            return Err(PipelineError::Internal(format!(
                "produced {}x{}, planned {}x{}",
                img.width, img.height, plan.canvas.0, plan.canvas.1
            )));
        }
        Ok((img, orient_time))
    }
}

/// `crop` (stored source pixels) moved inside `region` to where [`smartcrop::place`] finds the
/// most interesting window of its size in the decoded `pixels` (maybe shrunk on load).
fn smart_crop(pixels: &Pixels, crop: Rect, region: Rect, (sw, sh): (f64, f64)) -> Rect {
    let (fx, fy) = (f64::from(pixels.width) / sw, f64::from(pixels.height) / sh);
    let scaled = Rect {
        x: region.x * fx,
        y: region.y * fy,
        width: region.width * fx,
        height: region.height * fy,
    };
    let (x, y) = smartcrop::place(pixels, scaled, (crop.width * fx, crop.height * fy));
    Rect {
        x: (x / fx).clamp(
            region.x,
            (region.x + region.width - crop.width).max(region.x),
        ),
        y: (y / fy).clamp(
            region.y,
            (region.y + region.height - crop.height).max(region.y),
        ),
        ..crop
    }
}

/// For `f_lqip`, the transform scaled down to the placeholder's size.
fn placeholder_transform(t: &Transform) -> Option<Transform> {
    (t.format == Some(FormatChoice::Lqip)).then(|| lqip::transform(t))
}

/// Decoded 8-bit pixels: RGB, or RGBA when `alpha`, rows packed without padding.
#[derive(Debug)]
pub(crate) struct Pixels {
    pub buf: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub alpha: bool,
}

/// A zeroed buffer of `len` bytes, or `None` when the allocator refuses (no abort on OOM).
pub(crate) fn alloc_zeroed(len: usize) -> Option<Vec<u8>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).ok()?;
    v.resize(len, 0);
    Some(v)
}

/// A short description of an unrecognised body, for the 415 message (never the whole body).
fn describe_unknown(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "empty body".into();
    }
    let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("unrecognised signature {}", head.join(" "))
}
