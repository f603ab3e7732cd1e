//! JPEG: the header through libjpeg-turbo (or, when libjpeg only warns about it, our own SOF
//! reader), pixels through `pipeline::jpeg` (libjpeg-turbo with DCT shrink-on-load), the
//! DC-only progressive path, or zune-jpeg (asked for, or when libjpeg warned in the header:
//! the `turbojpeg` crate re-reads the header before decoding and gives up there). Lenient like browsers: a file libjpeg decodes to the
//! last row with only warnings (junk before a marker, a bad ICC marker, an unknown Adobe
//! transform) is served; data that ends early is 422 (see `pipeline::jpeg`).

use turbojpeg::{Colorspace, Decompressor};

use super::super::probe::{jpeg_exif, jpeg_segments, JpegInfo};
use super::super::{color, decode, jpeg, jpeg_dc, JpegDecoder, Limits, PipelineError, Pixels};
use super::{Codec, DecodeAt, Header, Metadata};
use crate::format::Format;

pub(crate) const CODEC: Codec = Codec {
    format: Format::Jpeg,
    sniff,
    probe,
    decode,
    metadata,
    vector: false,
    // Counted precisely in `pipeline::peak_memory` (scale, progressive coefficients, CMYK).
    decode_bytes_per_pixel: 4,
};

fn sniff(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xD8, 0xFF])
}

fn probe(bytes: &[u8], _limits: &Limits) -> Result<Header, PipelineError> {
    let mut d = Decompressor::new().map_err(|e| PipelineError::Internal(e.to_string()))?;
    let (width, height, info) = match d.read_header(bytes) {
        Ok(h) => {
            let info = JpegInfo {
                colorspace: h.colorspace,
                progressive: h.is_progressive,
                lossless: h.is_lossless,
                header_warning: false,
            };
            (dim(h.width)?, dim(h.height)?, info)
        }
        // libjpeg read the header but warned (TurboJPEG 3 fails the call): read the frame
        // header ourselves; the decode will meet the same warning and keep the pixels.
        Err(e) if jpeg::is_tolerable_warning(&e.to_string()) => {
            sof(bytes).ok_or_else(|| PipelineError::Corrupt(format!("jpeg header: {e}")))?
        }
        Err(e) => return Err(PipelineError::Corrupt(format!("jpeg header: {e}"))),
    };
    Ok(Header {
        width,
        height,
        orientation: super::super::probe::exif_orientation(bytes),
        frames: 1,
        frame_pixels: 0,
        jpeg: Some(info),
    })
}

fn dim(v: usize) -> Result<u32, PipelineError> {
    u32::try_from(v).map_err(|_| PipelineError::Corrupt(format!("dimension {v} out of range")))
}

/// Size and kind from the first SOFn segment, as libjpeg would read them.
fn sof(bytes: &[u8]) -> Option<(u32, u32, JpegInfo)> {
    let mut adobe_transform = None;
    for (code, seg) in jpeg_segments(bytes) {
        if code == 0xEE && seg.starts_with(b"Adobe") {
            adobe_transform = seg.get(11).copied();
        }
        // SOF0..SOF15 but DHT (C4), JPG (C8) and DAC (CC).
        if !(0xC0..=0xCF).contains(&code) || matches!(code, 0xC4 | 0xC8 | 0xCC) {
            continue;
        }
        let height = u32::from(u16::from_be_bytes([*seg.get(1)?, *seg.get(2)?]));
        let width = u32::from(u16::from_be_bytes([*seg.get(3)?, *seg.get(4)?]));
        let colorspace = match (seg.get(5)?, adobe_transform) {
            (1, _) => Colorspace::Gray,
            (3, Some(0)) => Colorspace::RGB,
            (3, _) => Colorspace::YCbCr,
            (4, Some(2)) => Colorspace::YCCK,
            (4, _) => Colorspace::CMYK,
            _ => return None,
        };
        let info = JpegInfo {
            colorspace,
            progressive: matches!(code, 0xC2 | 0xC6 | 0xCA | 0xCE),
            lossless: matches!(code, 0xC3 | 0xC7 | 0xCB | 0xCF),
            header_warning: true,
        };
        return Some((width, height, info));
    }
    None
}

fn decode(
    bytes: &[u8],
    header: &Header,
    at: &DecodeAt,
    limits: &Limits,
) -> Result<Pixels, PipelineError> {
    // The pipeline sets `dc_only` only at 1/8 (`pipeline.dc_only`) and, for baseline files,
    // at 1/4 (`pipeline.jpeg_quarter`).
    let fast = match at.shrink {
        _ if !at.dc_only => None,
        8 => jpeg_dc::decode(bytes),
        // 4:2:0 is left to libjpeg-turbo at 1/4 (measured faster there).
        4 => jpeg_dc::decode_quarter(bytes, false),
        _ => None,
    };
    if let Some(pixels) = fast {
        return Ok(pixels);
    }
    let header_warning = header.jpeg.is_some_and(|j| j.header_warning);
    match at.jpeg_decoder {
        JpegDecoder::Turbo if !header_warning => jpeg::decode(bytes, header, at.shrink, limits),
        JpegDecoder::Turbo | JpegDecoder::Rust => {
            jpeg::check_complete(bytes)?;
            // zune-jpeg keeps every coefficient of a progressive file (2 bytes each, every
            // component at full size), beyond what `image`'s limits count.
            if let Some(info) = header.jpeg.filter(|j| j.progressive) {
                let components: u64 = match info.colorspace {
                    Colorspace::Gray => 1,
                    Colorspace::CMYK | Colorspace::YCCK => 4,
                    _ => 3,
                };
                let coefficients = u64::from(header.width)
                    .saturating_mul(u64::from(header.height))
                    .saturating_mul(2 * components);
                if coefficients > limits.max_decode_bytes {
                    return Err(PipelineError::DecodeTooLarge {
                        width: header.width,
                        height: header.height,
                        limit: limits.max_decode_bytes,
                    });
                }
            }
            decode::decode(bytes, Format::Jpeg, header, 1, limits)
        }
    }
}

fn metadata(bytes: &[u8]) -> Metadata {
    Metadata {
        exif: jpeg_exif(bytes).map(<[u8]>::to_vec),
        icc: color::jpeg_profile(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sof_reads_size_and_kind() {
        // SOI, SOF2 (progressive) 3 components 300x200, then EOI.
        let jpeg = [
            0xFF, 0xD8, 0xFF, 0xC2, 0, 17, 8, 0, 200, 1, 44, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1,
            0xFF, 0xD9,
        ];
        let (w, h, info) = sof(&jpeg).expect("sof");
        assert_eq!((w, h), (300, 200));
        assert!(info.progressive && !info.lossless);
        assert_eq!(info.colorspace, Colorspace::YCbCr);
        assert!(sof(&jpeg[..8]).is_none());
    }
}
