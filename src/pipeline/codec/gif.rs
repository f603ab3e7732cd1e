//! GIF, still or animated, through the `gif` crate. Frames are counted and measured by our
//! own block walk (`frames`) before decoding: a frame larger than the logical screen is
//! allocated for, so it counts against the limits. A GIF with no colour table at all gets the
//! default palette browsers use ([`with_default_palette`]). No EXIF, no ICC.

use std::borrow::Cow;

use super::super::{decode, frames, Limits, PipelineError, Pixels};
use super::{Codec, DecodeAt, Header, Metadata};
use crate::format::Format;

pub(crate) const CODEC: Codec = Codec {
    format: Format::Gif,
    sniff,
    probe,
    decode,
    metadata,
    vector: false,
    // The screen as RGBA twice (canvas and output); a larger frame's indices and RGBA are
    // added from `frame_pixels` in `peak_memory`.
    decode_bytes_per_pixel: 8,
};

fn sniff(bytes: &[u8]) -> bool {
    bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a")
}

fn probe(bytes: &[u8], limits: &Limits) -> Result<Header, PipelineError> {
    let (width, height) = decode::dimensions(bytes, Format::Gif, limits)?;
    Ok(Header {
        width,
        height,
        orientation: 1,
        frames: frames::count(bytes, Format::Gif, limits.max_frames),
        frame_pixels: frames::gif_largest_frame(bytes, limits.max_frames),
        jpeg: None,
    })
}

fn decode(
    bytes: &[u8],
    header: &Header,
    at: &DecodeAt,
    limits: &Limits,
) -> Result<Pixels, PipelineError> {
    decode::decode(bytes, Format::Gif, header, at.page, limits)
}

fn metadata(_bytes: &[u8]) -> Metadata {
    Metadata::default()
}

/// `bytes` with a global colour table when it has none and some frame has no local one
/// either: the GIF spec leaves the colours to the decoder, browsers show such files, and the
/// `gif` crate refuses them. The table is black, white, then a grey ramp (256 entries, 768
/// bytes more). Any other GIF (or anything else) is borrowed unchanged.
pub(crate) fn with_default_palette(bytes: &[u8]) -> Cow<'_, [u8]> {
    let (Some(&flags), Some(head), Some(screen), Some(rest)) = (
        bytes.get(10),
        bytes.get(..10),
        bytes.get(11..13),
        bytes.get(13..),
    ) else {
        return Cow::Borrowed(bytes);
    };
    if !sniff(bytes) || flags & 0x80 != 0 || !frames::gif_frame_without_palette(bytes) {
        return Cow::Borrowed(bytes);
    }
    let mut fixed = Vec::with_capacity(bytes.len() + 768);
    fixed.extend_from_slice(head);
    // Global table present, 256 entries (size field 7), colour resolution kept.
    fixed.push(flags | 0x80 | 0x07);
    fixed.extend_from_slice(screen);
    fixed.extend_from_slice(&[0, 0, 0, 255, 255, 255]);
    for i in 2..=255u8 {
        fixed.extend_from_slice(&[i, i, i]);
    }
    fixed.extend_from_slice(rest);
    Cow::Owned(fixed)
}
