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

mod bitmap;
mod gif;
mod heif;
mod jpeg;
mod jxl;
mod png;
mod svg;
mod webp;

use super::{JpegDecoder, Limits, PipelineError, Pixels};
use crate::format::Format;

/// Every input format, in the order their signatures are tried (TGA, which has none, last).
pub(crate) static CODECS: &[Codec] = &[
    jpeg::CODEC,
    png::CODEC,
    gif::CODEC,
    webp::CODEC,
    bitmap::TIFF,
    bitmap::BMP,
    bitmap::ICO,
    bitmap::QOI,
    bitmap::PNM,
    heif::AVIF,
    heif::HEIC,
    jxl::CODEC,
    svg::CODEC,
    bitmap::TGA,
];

/// The codec whose signature starts `bytes`.
pub(crate) fn sniff(bytes: &[u8]) -> Option<&'static Codec> {
    CODECS.iter().find(|c| (c.sniff)(bytes))
}

pub(crate) use gif::with_default_palette;

pub(crate) use svg::sanitize as sanitize_svg;

/// The codec reading `format`, if imgcdn reads it.
pub(crate) fn get(format: Format) -> Option<&'static Codec> {
    CODECS.iter().find(|c| c.format == format)
}

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
    /// Output size over stored size that the pipeline will resize to: below 1 when
    /// shrinking, above 1 when a vector is enlarged (the pipeline keeps the render within
    /// `max_source_pixels`). A vector codec renders at `ceil(width * scale) x ceil(height *
    /// scale)`; raster codecs ignore it.
    pub scale: f64,
    /// JPEG: libjpeg-turbo or the Rust decoder, and whether to try `jpeg_dc` first (at 1/8, or
    /// at 1/4 for a baseline file).
    pub jpeg_decoder: JpegDecoder,
    pub dc_only: bool,
}

impl DecodeAt {
    /// Frame `page` at full size.
    pub(crate) fn page(page: u32) -> DecodeAt {
        DecodeAt {
            page,
            shrink: 1,
            scale: 1.0,
            jpeg_decoder: JpegDecoder::Turbo,
            dc_only: false,
        }
    }
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
    /// About how many bytes decoding holds per source pixel at its peak (the decoder's own
    /// buffers and the 8-bit copy handed on), for the pool's memory admission.
    pub decode_bytes_per_pixel: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sniffed(bytes: &[u8]) -> Option<Format> {
        sniff(bytes).map(|c| c.format)
    }

    #[test]
    fn sniff_magic_bytes_detect_each_format() {
        assert_eq!(sniffed(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(Format::Jpeg));
        assert_eq!(sniffed(b"\x89PNG\r\n\x1a\n"), Some(Format::Png));
        assert_eq!(sniffed(b"GIF87a..."), Some(Format::Gif));
        assert_eq!(sniffed(b"GIF89a"), Some(Format::Gif));
        assert_eq!(sniffed(b"RIFF\x10\0\0\0WEBPVP8 "), Some(Format::Webp));
        assert_eq!(sniffed(b"II*\0\x08\0\0\0"), Some(Format::Tiff));
        assert_eq!(sniffed(b"MM\0*"), Some(Format::Tiff));
        assert_eq!(sniffed(b"qoif\0\0\0\x01"), Some(Format::Qoi));
        assert_eq!(sniffed(b"P5\n1 1\n255\n\0"), Some(Format::Pnm));
    }

    #[test]
    fn sniff_other_bytes_are_none() {
        for bytes in [
            &b""[..],
            b"<!doctype html><html></html>",
            b"BM\x36\0\0\0",
            b"RIFF\x10\0\0\0WAVEfmt ",
            b"RIFF",
            b"GIF88a",
            &[0xFF, 0xD8],
            &b"\x89PNG\r\n\x1a"[..],
            b"%PDF-1.7\n",
            b"{\"json\": true}",
        ] {
            assert_eq!(sniffed(bytes), None, "{bytes:?}");
        }
    }

    /// The README's format table has exactly one row per codec, naming its `f_` name.
    #[test]
    fn readme_format_table_lists_every_codec() {
        let readme = include_str!("../../README.md");
        let table = readme
            .split("<!-- formats:")
            .nth(1)
            .and_then(|t| t.split("<!-- /formats -->").next())
            .expect("README has the formats table");
        let names: Vec<&str> = table
            .lines()
            .filter_map(|l| l.split('|').nth(2))
            .map(|c| c.trim().trim_matches('`'))
            .filter(|c| Format::from_name(c).is_some())
            .collect();
        let mut want: Vec<&str> = CODECS.iter().map(|c| c.format.name()).collect();
        let mut got = names.clone();
        want.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, want, "README rows {names:?}");
    }

    #[test]
    fn every_format_has_at_most_one_codec() {
        for f in Format::ALL {
            assert!(CODECS.iter().filter(|c| c.format == f).count() <= 1, "{f}");
        }
    }
}
