//! One table of the image formats imgcdn reads. Each format is one module behind the same
//! small interface — sniff the magic bytes, probe the header, decode (at a scale, one frame),
//! find its metadata — and one [`Codec`] row in [`CODECS`]. `sniff`, `probe`, `decode`,
//! `/meta` and the README's format table are all driven from that table, so a new input
//! format is one new file and one row.
//!
//! A codec's `probe` must not decode pixels and must bound anything it allocates by the input
//! (frame counts, tile counts, metadata) before allocating; the shared checks against
//! `max_source_pixels`, `max_frames` and `max_animation_pixels` run after it, in `probe`.
//! A codec's `decode` must respect `max_decode_bytes` and never return more pixels than the
//! header said (times the scale it was asked for).

use super::{Limits, PipelineError, Pixels};
use crate::format::Format;

/// What a codec's header probe found, before any pixel is decoded.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Header {
    /// Stored (not oriented) size in pixels; for a vector source its intrinsic size.
    pub width: u32,
    pub height: u32,
    /// EXIF orientation 1..=8 still to be applied (1 when absent, or when the decoder
    /// already applies the container's own transforms, as HEIF's `irot`/`imir`).
    pub orientation: u8,
    /// Animation frames (1 for a still).
    pub frames: u32,
    /// Pixels of the largest buffer one frame decodes into, when larger than the image (a GIF
    /// frame bigger than its screen); 0 otherwise.
    pub frame_pixels: u64,
    /// JPEG-only facts for the libjpeg-turbo path.
    pub jpeg: Option<super::probe::JpegInfo>,
}

/// How to decode: which frame, and how much smaller than the stored size the pixels may be.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DecodeAt {
    /// 1-based frame (1 for a still).
    pub page: u32,
    /// JPEG DCT shrink factor (1, 2, 4, 8); other codecs may ignore it.
    pub shrink: u32,
    /// Output size over stored size that the pipeline will resize to (<= 1 when shrinking).
    /// A vector codec renders at `ceil(width * scale) x ceil(height * scale)` (never larger
    /// than the stored size the probe reported); raster codecs may ignore it.
    pub scale: f64,
}

/// Metadata a codec found in its container, both bounded by their `MAX_*` constants.
#[derive(Debug, Clone, Default)]
pub(crate) struct Metadata {
    /// An EXIF (TIFF) block, for `keep_copyright`.
    pub exif: Option<Vec<u8>>,
    /// An ICC profile still to be applied to the decoded pixels (`None` when the decoder
    /// already produced sRGB).
    pub icc: Option<Vec<u8>>,
}

/// One input format.
pub(crate) struct Codec {
    pub format: Format,
    /// True when the bytes start with this format's signature.
    pub sniff: fn(&[u8]) -> bool,
    /// Header facts, without decoding pixels.
    pub probe: fn(&[u8], &Limits) -> Result<Header, PipelineError>,
    /// One frame as 8-bit RGB(A) in stored orientation.
    pub decode: fn(&[u8], &Header, &DecodeAt, &Limits) -> Result<Pixels, PipelineError>,
    /// EXIF and ICC found by the codec's own bounded container walk.
    pub metadata: fn(&[u8]) -> Metadata,
    /// A vector format: rendered at the output size rather than resized from a bitmap.
    pub vector: bool,
}
mod svg;
