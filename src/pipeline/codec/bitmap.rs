//! TIFF, BMP, ICO/CUR, QOI, PNM (PBM/PGM/PPM/PAM) and TGA: still formats that `image` decodes
//! in safe Rust under its limits (`decode`). One row each; only the signatures differ.
//! TIFF's orientation tag is read by our IFD0 reader (`tiff`); an embedded ICC profile (TIFF
//! tag 34675, BMP v5) comes from `image`'s decoder. Multi-page TIFFs give their first page;
//! an icon gives its largest entry.
//!
//! Checked before `image` reads a byte ([`precheck`]): a TIFF's compression must be one whose
//! cost is linear in the image (none, CCITT, LZW, Deflate, PackBits: JPEG-in-TIFF strips are
//! decoded at whatever size each embedded JPEG declares) and it may have at most
//! `MAX_TIFF_CHUNKS` strips or tiles; BigTIFF is not read. An icon has at most `MAX_ICO_ENTRIES`
//! entries, and a PNG inside one is held to the source limit and may carry no compressed
//! metadata (`image` decodes it with no limits at all, iCCP included).

use std::io::Cursor;

use image::ImageDecoder;

use super::super::container::{self, MAX_PROFILE_BYTES};
use super::super::{decode, probe, tiff, Limits, PipelineError, Pixels};
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

/// Classic TIFF, either byte order (BigTIFF is not read).
fn sniff_tiff(b: &[u8]) -> bool {
    b.starts_with(b"II*\0") || b.starts_with(b"MM\0*")
}

/// TIFF compressions read: none, CCITT RLE/G3/G4, LZW, Deflate (both codes), PackBits.
const TIFF_COMPRESSIONS: [u32; 8] = [1, 2, 3, 4, 5, 8, 32773, 32946];
/// Most strips or tiles of a TIFF (a 50 MP image in 16-row strips has about 500).
const MAX_TIFF_CHUNKS: u32 = 65_536;
/// Most entries of an icon (real ones have a handful).
const MAX_ICO_ENTRIES: usize = 64;

/// The checks `image` does not make, before it reads a byte (see the module doc).
fn precheck(bytes: &[u8], format: Format, limits: &Limits) -> Result<(), PipelineError> {
    let refuse = |why: String| Err(PipelineError::Unsupported(format!("{format}: {why}")));
    match format {
        Format::Tiff => {
            let compression = tiff::number(bytes, 259).unwrap_or(1);
            if !TIFF_COMPRESSIONS.contains(&compression) {
                return refuse(format!("compression {compression} is not read"));
            }
            for tag in [273, 324] {
                let n = tiff::declared_count(bytes, tag).unwrap_or(0);
                if n > MAX_TIFF_CHUNKS {
                    return refuse(format!("{n} strips or tiles"));
                }
            }
            Ok(())
        }
        Format::Ico => {
            let count = bytes
                .get(4..6)
                .map_or(0, |c| usize::from(u16::from_le_bytes([c[0], c[1]])));
            if count > MAX_ICO_ENTRIES {
                return refuse(format!("{count} entries"));
            }
            for i in 0..count {
                let Some(entry) = bytes.get(6 + 16 * i..6 + 16 * (i + 1)) else {
                    break;
                };
                let le32 = |at: usize| {
                    u32::from_le_bytes([entry[at], entry[at + 1], entry[at + 2], entry[at + 3]])
                        as usize
                };
                let Some(data) = bytes.get(le32(12)..) else {
                    continue;
                };
                if !data.starts_with(b"\x89PNG\r\n\x1a\n") {
                    continue;
                }
                for (kind, chunk) in container::png_chunks(data) {
                    match kind {
                        b"IHDR" => {
                            let dim = |at: usize| {
                                chunk.get(at..at + 4).map_or(u32::MAX, |d| {
                                    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
                                })
                            };
                            probe::check_pixels(dim(0), dim(4), limits)?;
                        }
                        b"iCCP" | b"zTXt" | b"iTXt" => {
                            return refuse("a PNG entry with compressed metadata".into())
                        }
                        b"IDAT" => break,
                        _ => {}
                    }
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
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
    precheck(bytes, format, limits)?;
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
    precheck(bytes, format, limits)?;
    decode::decode(bytes, format, header, 1, limits)
}

/// The ICC profile `image`'s decoder finds (it reads headers only). No EXIF: a TIFF's tags are
/// its own IFD0, not an EXIF block to copy.
fn metadata(bytes: &[u8], format: Format) -> Metadata {
    // ICO: only after `precheck` (a PNG entry is read with no limits); the profile of an
    // icon is not worth a second walk.
    if format == Format::Ico {
        return Metadata::default();
    }
    let icc = decode::image_format(format).and_then(|f| {
        let mut reader = image::ImageReader::with_format(Cursor::new(bytes), f);
        let mut limits = image::Limits::default();
        // Bounds the tag values tiff reads (the profile is at most MAX_PROFILE_BYTES).
        limits.max_alloc = Some(2 * MAX_PROFILE_BYTES as u64);
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

    const LIMITS: Limits = Limits {
        max_source_pixels: 1_000_000,
        max_output_pixels: 1_000_000,
        max_decode_bytes: 64 << 20,
        max_frames: 10,
        max_animation_pixels: 1_000_000,
        max_upscale: 4,
        max_avif_pixels: 1_000_000,
        deadline: None,
    };

    /// A little-endian TIFF header with one IFD0 of `(tag, type, count, value)` entries.
    fn tiff_with(entries: &[(u16, u16, u32, u32)]) -> Vec<u8> {
        let mut out = b"II*\0\x08\0\0\0".to_vec();
        out.extend((entries.len() as u16).to_le_bytes());
        for (tag, kind, n, v) in entries {
            out.extend(tag.to_le_bytes());
            out.extend(kind.to_le_bytes());
            out.extend(n.to_le_bytes());
            out.extend(v.to_le_bytes());
        }
        out.extend([0; 4]);
        out
    }

    #[test]
    fn tiff_with_jpeg_strips_or_too_many_strips_is_refused_before_image_reads_it() {
        for compression in [6, 7, 34712] {
            let t = tiff_with(&[(256, 3, 1, 64), (257, 3, 1, 64), (259, 3, 1, compression)]);
            let e = precheck(&t, Format::Tiff, &LIMITS).expect_err("refused");
            assert!(matches!(e, PipelineError::Unsupported(_)), "{e}");
        }
        let t = tiff_with(&[(259, 3, 1, 5), (273, 4, 200_000, 4096)]);
        assert!(matches!(
            precheck(&t, Format::Tiff, &LIMITS),
            Err(PipelineError::Unsupported(_))
        ));
        let t = tiff_with(&[(259, 3, 1, 5), (273, 4, 4, 4096)]);
        assert!(precheck(&t, Format::Tiff, &LIMITS).is_ok());
    }

    /// An icon whose one entry is `png`.
    fn ico_with_png(png: &[u8]) -> Vec<u8> {
        let mut out = vec![0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 32, 0];
        out.extend((png.len() as u32).to_le_bytes());
        out.extend(22u32.to_le_bytes());
        out.extend_from_slice(png);
        out
    }

    fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut out = (data.len() as u32).to_be_bytes().to_vec();
        out.extend(kind);
        out.extend(data);
        out.extend(crc32fast::hash(&[&kind[..], data].concat()).to_be_bytes());
        out
    }

    #[test]
    fn icon_png_entries_are_held_to_the_limits_and_carry_no_compressed_metadata() {
        let png = |w: u32, h: u32, extra: &[u8]| {
            let mut ihdr = w.to_be_bytes().to_vec();
            ihdr.extend(h.to_be_bytes());
            ihdr.extend([8, 6, 0, 0, 0]);
            let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
            out.extend(png_chunk(b"IHDR", &ihdr));
            out.extend_from_slice(extra);
            out.extend(png_chunk(b"IDAT", &[]));
            out
        };
        let ok = ico_with_png(&png(16, 16, &[]));
        assert!(precheck(&ok, Format::Ico, &LIMITS).is_ok());
        let big = ico_with_png(&png(20_000, 20_000, &[]));
        assert!(matches!(
            precheck(&big, Format::Ico, &LIMITS),
            Err(PipelineError::SourceTooLarge { .. })
        ));
        let iccp = ico_with_png(&png(16, 16, &png_chunk(b"iCCP", b"x\0\0\x78\x9c")));
        assert!(matches!(
            precheck(&iccp, Format::Ico, &LIMITS),
            Err(PipelineError::Unsupported(_))
        ));
    }
}
