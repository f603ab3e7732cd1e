//! WebP, still or animated, through `image-webp`. Our own RIFF walk (`container::webp_check`)
//! runs first: bitstream sizes against the canvas and every animation frame. EXIF orientation
//! and the ICC profile from the `EXIF` and `ICCP` chunks.

use super::super::{container, decode, frames, probe, Limits, PipelineError, Pixels};
use super::{Codec, DecodeAt, Header, Metadata};
use crate::format::Format;

pub(crate) const CODEC: Codec = Codec {
    format: Format::Webp,
    sniff,
    probe,
    decode,
    metadata,
    vector: false,
    decode_bytes_per_pixel: 8,
};

fn sniff(bytes: &[u8]) -> bool {
    bytes.len() >= 12 && bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP")
}

fn probe(bytes: &[u8], limits: &Limits) -> Result<Header, PipelineError> {
    container::webp_check(bytes)?;
    let (width, height) = decode::dimensions(bytes, Format::Webp, limits)?;
    Ok(Header {
        width,
        height,
        orientation: probe::exif_orientation(bytes),
        frames: frames::count(bytes, Format::Webp, limits.max_frames),
        ..Header::default()
    })
}

fn decode(
    bytes: &[u8],
    header: &Header,
    at: &DecodeAt,
    limits: &Limits,
) -> Result<Pixels, PipelineError> {
    decode::decode(bytes, Format::Webp, header, at.page, limits)
}

fn metadata(bytes: &[u8]) -> Metadata {
    Metadata {
        exif: container::webp_exif(bytes).map(<[u8]>::to_vec),
        icc: container::webp_profile(bytes).map(<[u8]>::to_vec),
    }
}
