//! TIFF, BMP, ICO/CUR, QOI, PNM (PBM/PGM/PPM/PAM) and TGA: still formats that `image` decodes
//! in safe Rust under its limits (`decode`). One row each; only the signatures differ.
//! TIFF's orientation tag is read by our IFD0 reader (`tiff`); an embedded ICC profile (TIFF
//! tag 34675, BMP v5) comes from `image`'s decoder. Multi-page TIFFs give their first page;
//! an icon gives its largest entry.

use std::io::Cursor;

use image::ImageDecoder;

use super::super::{decode, tiff, Limits, PipelineError, Pixels};
use super::{Codec, DecodeAt, Header, Metadata};
use crate::format::Format;

macro_rules! bitmap_codec {
    ($name:ident, $format:expr, $sniff:expr) => {
        pub(crate) const $name: Codec = Codec {
            format: $format,
            sniff: $sniff,
            probe: |bytes, limits| probe(bytes, $format, limits),
            decode: |bytes, header, at, limits| decode(bytes, $format, header, at, limits),
            metadata: |bytes| metadata(bytes, $format),
            vector: false,
            // The decoder's buffer (up to 16-bit RGBA for TIFF) and the 8-bit copy.
            decode_bytes_per_pixel: 12,
        };
    };
}

bitmap_codec!(TIFF, Format::Tiff, sniff_tiff);
bitmap_codec!(BMP, Format::Bmp, sniff_bmp);
bitmap_codec!(ICO, Format::Ico, sniff_ico);
bitmap_codec!(QOI, Format::Qoi, |b| b.starts_with(b"qoif"));
bitmap_codec!(PNM, Format::Pnm, sniff_pnm);
bitmap_codec!(TGA, Format::Tga, sniff_tga);

/// Classic and BigTIFF, either byte order.
fn sniff_tiff(b: &[u8]) -> bool {
    [b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"]
        .iter()
        .any(|sig| b.starts_with(*sig))
}

/// `BM` and a known DIB header size (`BM` alone starts too much text).
fn sniff_bmp(b: &[u8]) -> bool {
    let dib = b
        .get(14..18)
        .map(|d| u32::from_le_bytes([d[0], d[1], d[2], d[3]]));
    b.starts_with(b"BM") && matches!(dib, Some(12 | 16 | 40 | 52 | 56 | 64 | 108 | 124))
}

/// Icon (type 1) or cursor (type 2) with at least one entry whose reserved byte is 0.
fn sniff_ico(b: &[u8]) -> bool {
    matches!(b.get(..4), Some([0, 0, 1 | 2, 0]))
        && matches!(b.get(4..6), Some(&[n, 0]) if n > 0)
        && b.get(9) == Some(&0)
}

/// `P1`..`P7` and whitespace.
fn sniff_pnm(b: &[u8]) -> bool {
    matches!(
        b.get(..3),
        Some([b'P', b'1'..=b'7', b' ' | b'\t' | b'\n' | b'\r'])
    )
}

/// TGA has no signature: a header whose every field is in range (image type, colour map,
/// depth, descriptor, a non-zero size). Tried last.
fn sniff_tga(b: &[u8]) -> bool {
    let Some(h) = b.get(..18) else { return false };
    let le = |i: usize| u16::from_le_bytes([h[i], h[i + 1]]);
    let colour_mapped = matches!(h[2], 1 | 9);
    let map_ok = match h[1] {
        0 => !colour_mapped && h[3..8].iter().all(|&v| v == 0),
        1 => colour_mapped && matches!(h[7], 15 | 16 | 24 | 32) && le(5) > 0,
        _ => false,
    };
    matches!(h[2], 1 | 2 | 3 | 9 | 10 | 11)
        && map_ok
        && matches!(h[16], 8 | 15 | 16 | 24 | 32)
        && h[17] & 0xC0 == 0
        && le(12) > 0
        && le(14) > 0
}

fn probe(bytes: &[u8], format: Format, limits: &Limits) -> Result<Header, PipelineError> {
    let (width, height) = decode::dimensions(bytes, format, limits)?;
    let orientation = match format {
        Format::Tiff => tiff::orientation(bytes)
            .and_then(|v| u8::try_from(v).ok())
            .filter(|v| (1..=8).contains(v))
            .unwrap_or(1),
        _ => 1,
    };
    Ok(Header {
        width,
        height,
        orientation,
        frames: 1,
        ..Header::default()
    })
}

fn decode(
    bytes: &[u8],
    format: Format,
    header: &Header,
    _at: &DecodeAt,
    limits: &Limits,
) -> Result<Pixels, PipelineError> {
    decode::decode(bytes, format, header, 1, limits)
}

/// The ICC profile `image`'s decoder finds (it reads headers only). No EXIF: a TIFF's tags are
/// its own IFD0, not an EXIF block to copy.
fn metadata(bytes: &[u8], format: Format) -> Metadata {
    let icc = decode::image_format(format).and_then(|f| {
        let mut reader = image::ImageReader::with_format(Cursor::new(bytes), f);
        let mut limits = image::Limits::default();
        limits.max_alloc = Some(64 << 20);
        reader.limits(limits);
        reader.into_decoder().ok()?.icc_profile().ok().flatten()
    });
    Metadata { exif: None, icc }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_recognised_and_text_is_not() {
        assert!(sniff_tiff(b"II*\0\x08\0\0\0") && sniff_tiff(b"MM\0*"));
        assert!(sniff_bmp(b"BM\x36\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0"));
        assert!(!sniff_bmp(b"BMW is a car maker, the text goes on"));
        assert!(sniff_ico(&[0, 0, 1, 0, 1, 0, 16, 16, 0, 0]));
        assert!(!sniff_ico(&[0, 0, 1, 0, 0, 0, 16, 16, 0, 0]));
        assert!(sniff_pnm(b"P6\n2 2\n255\n") && !sniff_pnm(b"PNG") && !sniff_pnm(b"P8 "));
        // A 2x2 24-bit truecolour TGA header, and text that is not one.
        let tga = [0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2, 0, 24, 0];
        assert!(sniff_tga(&tga));
        assert!(!sniff_tga(b"<!doctype html><html><body>"));
        assert!(!sniff_tga(&[0; 18]));
    }
}
