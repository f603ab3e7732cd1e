//! PNG (and APNG's first frame), through `image`'s `png` decoder. Our own chunk walk
//! (`container::png_check`) runs first: the IHDR size against the limit, the iCCP profile
//! inflated with a bound, the walk reaching IDAT. EXIF orientation from `eXIf`.

use super::super::{container, decode, probe, Limits, PipelineError, Pixels};
use super::{Codec, DecodeAt, Header, Metadata};
use crate::format::Format;

pub(crate) const CODEC: Codec = Codec {
    format: Format::Png,
    sniff,
    probe,
    decode,
    metadata,
    vector: false,
    // The decoder's buffer and the 8-bit RGBA copy (16-bit sources: see `peak_memory`).
    decode_bytes_per_pixel: 8,
};

const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

fn sniff(bytes: &[u8]) -> bool {
    bytes.starts_with(&SIGNATURE)
}

fn probe(bytes: &[u8], limits: &Limits) -> Result<Header, PipelineError> {
    // The size sits at a fixed offset in IHDR: checked before the decoder reads further, so a
    // bomb that is nothing but a header still answers "too large".
    if let Some((w, h)) = ihdr_size(bytes) {
        probe::check_pixels(w, h, limits)?;
        container::png_check(bytes)?;
    }
    let (width, height) = decode::dimensions(bytes, Format::Png, limits)?;
    Ok(Header {
        width,
        height,
        orientation: probe::exif_orientation(bytes),
        frames: 1,
        ..Header::default()
    })
}

/// Width and height from a PNG's IHDR chunk (bytes 16..24 after the signature and chunk head).
fn ihdr_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.get(12..16)? != b"IHDR" {
        return None;
    }
    let w = u32::from_be_bytes(bytes.get(16..20)?.try_into().ok()?);
    let h = u32::from_be_bytes(bytes.get(20..24)?.try_into().ok()?);
    Some((w, h))
}

fn decode(
    bytes: &[u8],
    header: &Header,
    at: &DecodeAt,
    limits: &Limits,
) -> Result<Pixels, PipelineError> {
    decode::decode(bytes, Format::Png, header, at.page, limits)
}

fn metadata(bytes: &[u8]) -> Metadata {
    Metadata {
        exif: container::png_exif(bytes).map(<[u8]>::to_vec),
        icc: container::png_check(bytes).ok().flatten(),
    }
}
