//! Header probe: format, dimensions and EXIF orientation, read without decoding any pixels.
//!
//! This is where `max_source_pixels` is enforced, before any pixel buffer exists. It does not
//! decode, and it does not apply the orientation (see `orient`).

use turbojpeg::Colorspace;

use super::codec::{self, Header};
use super::{Limits, PipelineError};
use crate::format::Format;

/// JPEG header facts the decoder needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JpegInfo {
    pub colorspace: Colorspace,
    pub progressive: bool,
    pub lossless: bool,
    /// libjpeg warned while reading the header: the `turbojpeg` crate then refuses to decode
    /// at all, so zune-jpeg decodes it (see `codec::jpeg`).
    pub header_warning: bool,
}

/// What the header says, before any pixel work.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Probe {
    pub format: Format,
    /// Stored (not oriented) size.
    pub width: u32,
    pub height: u32,
    /// EXIF orientation 1..=8 (1 when absent or unreadable).
    pub orientation: u8,
    pub jpeg: Option<JpegInfo>,
    /// Pixels of the largest frame a decoder allocates for: the image for most formats, but a
    /// GIF's frames may be larger than its logical screen (checked against
    /// `max_source_pixels` too).
    pub frame_pixels: u64,
    /// Animation frames (1 for a still; exact, since more than `max_frames` is refused, and
    /// for a truncated file the frames that begin in it).
    pub frames: u32,
}

impl Probe {
    /// The header facts a codec's decoder is given.
    pub fn header(&self) -> Header {
        Header {
            width: self.width,
            height: self.height,
            orientation: self.orientation,
            frames: self.frames,
            frame_pixels: self.frame_pixels,
            jpeg: self.jpeg,
        }
    }

    /// The size as displayed, after EXIF orientation (5..=8 swap the axes).
    pub fn oriented_size(&self) -> (u32, u32) {
        if self.orientation >= 5 {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }
}

/// Read the header of `bytes` (already sniffed as `format`) with its codec, and check the
/// limits every format shares: source pixels, the largest frame, frame count, animation.
pub(crate) fn probe(bytes: &[u8], format: Format, limits: &Limits) -> Result<Probe, PipelineError> {
    let codec = codec::get(format)
        .ok_or_else(|| PipelineError::Unsupported(format!("{format} input is not supported")))?;
    let header = (codec.probe)(bytes, limits)?;
    let Header {
        width,
        height,
        orientation,
        frames,
        frame_pixels,
        jpeg,
    } = header;
    if width == 0 || height == 0 {
        return Err(PipelineError::Corrupt(format!(
            "{format} header: zero dimension {width}x{height}"
        )));
    }
    check_pixels(width, height, limits)?;
    let frame_pixels = frame_pixels.max(u64::from(width) * u64::from(height));
    if frame_pixels > limits.max_source_pixels {
        return Err(PipelineError::SourceTooLarge {
            width,
            height,
            limit: limits.max_source_pixels,
        });
    }
    if frames > limits.max_frames {
        return Err(PipelineError::TooManyFrames {
            limit: limits.max_frames,
        });
    }
    // Every frame is decoded onto a full canvas: bound the summed work as well as the count.
    // A still image is bounded by `max_source_pixels` alone.
    if frames > 1
        && u64::from(frames) * u64::from(width) * u64::from(height) > limits.max_animation_pixels
    {
        return Err(PipelineError::AnimationTooLarge {
            frames,
            width,
            height,
            limit: limits.max_animation_pixels,
        });
    }
    Ok(Probe {
        format,
        width,
        height,
        orientation: if (1..=8).contains(&orientation) {
            orientation
        } else {
            1
        },
        jpeg,
        frame_pixels,
        frames: frames.max(1),
    })
}

pub(crate) fn check_pixels(width: u32, height: u32, limits: &Limits) -> Result<(), PipelineError> {
    if u64::from(width) * u64::from(height) > limits.max_source_pixels {
        return Err(PipelineError::SourceTooLarge {
            width,
            height,
            limit: limits.max_source_pixels,
        });
    }
    Ok(())
}

/// The EXIF orientation tag, or 1 when there is none or it cannot be read. A broken EXIF block
/// never fails the request: browsers also ignore it.
pub(crate) fn exif_orientation(bytes: &[u8]) -> u8 {
    exif_block(bytes)
        .and_then(super::tiff::orientation)
        .and_then(|v| u8::try_from(v).ok())
        .filter(|v| (1..=8).contains(v))
        .unwrap_or(1)
}

/// The EXIF (TIFF) block of a JPEG, PNG or WebP, found by our own walk of the container:
/// bounded by the bytes and by `MAX_EXIF_BYTES`, and never past the first JPEG scan (the
/// exif crate's container reader walks the entropy-coded data byte by byte).
pub(crate) fn exif_block(bytes: &[u8]) -> Option<&[u8]> {
    if bytes.starts_with(&[0xFF, 0xD8]) {
        jpeg_exif(bytes)
    } else if bytes.starts_with(b"\x89PNG") {
        super::container::png_exif(bytes)
    } else {
        super::container::webp_exif(bytes)
    }
}

/// The TIFF payload of a JPEG's `APP1 "Exif\0\0"` segment.
pub(crate) fn jpeg_exif(bytes: &[u8]) -> Option<&[u8]> {
    const EXIF_ID: &[u8] = b"Exif\0\0";
    jpeg_segments(bytes).find_map(|(code, segment)| {
        if code == 0xE1 {
            segment.strip_prefix(EXIF_ID)
        } else {
            None
        }
    })
}

/// The marker segments of a JPEG before its first scan, as `(marker code, payload)`, looking
/// only at the headers (where metadata must be). Ends quietly at the first scan, the end, or
/// a length past the end; junk between segments is skipped. One pass over the header bytes.
pub(crate) fn jpeg_segments(bytes: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    jpeg_markers(bytes).filter_map(|(code, _, segment)| (code != 0xDA).then_some((code, segment)))
}

/// The offset of the first SOS marker, found by walking the header's segments.
pub(crate) fn first_scan(bytes: &[u8]) -> Option<usize> {
    jpeg_markers(bytes).find_map(|(code, at, _)| (code == 0xDA).then_some(at))
}

/// The header's marker segments as `(code, offset of the marker, payload)`, ending with the
/// first SOS (with an empty payload) or at EOI, the end, or a length past the end.
fn jpeg_markers(bytes: &[u8]) -> impl Iterator<Item = (u8, usize, &[u8])> {
    let mut done = false;
    let mut at = if bytes.starts_with(&[0xFF, 0xD8]) {
        2
    } else {
        usize::MAX
    };
    std::iter::from_fn(move || loop {
        // Junk before a marker is skipped as libjpeg does (with a warning there): on to the
        // next 0xFF, past fill bytes (0xFF runs) and stuffed `FF 00` pairs.
        if *bytes.get(at)? != 0xFF {
            at += memchr::memchr(0xFF, bytes.get(at..)?)?;
        }
        while *bytes.get(at)? == 0xFF && *bytes.get(at.checked_add(1)?)? == 0xFF {
            at += 1;
        }
        let code = *bytes.get(at + 1)?;
        match code {
            0x00 => {
                at += 2;
                continue;
            }
            // Stand-alone markers carry no length.
            0x01 | 0xD0..=0xD7 => {
                at += 2;
                continue;
            }
            // Start of scan, end of image: no metadata after them.
            0xD9 => return None,
            0xDA if !done => {
                done = true;
                return Some((0xDA, at, &[][..]));
            }
            0xDA => return None,
            _ => {}
        }
        let len = usize::from(u16::from_be_bytes([
            *bytes.get(at + 2)?,
            *bytes.get(at + 3)?,
        ]));
        let segment = bytes.get(at + 4..(at + 2).checked_add(len)?)?;
        let marker = at;
        at += 2 + len;
        return Some((code, marker, segment));
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// `APP1` with an EXIF block whose IFD0 holds one Orientation entry (big-endian TIFF).
    fn app1_orientation(value: u8) -> Vec<u8> {
        let mut tiff = b"MM\0\x2a\0\0\0\x08\0\x01".to_vec();
        tiff.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, value, 0, 0]);
        tiff.extend_from_slice(&[0, 0, 0, 0]);
        let mut seg = vec![0xFF, 0xE1];
        seg.extend_from_slice(&(u16::try_from(tiff.len() + 8).unwrap()).to_be_bytes());
        seg.extend_from_slice(b"Exif\0\0");
        seg.extend_from_slice(&tiff);
        seg
    }

    #[test]
    fn exif_orientation_is_read_from_app1_after_other_segments() {
        assert_eq!(exif_orientation(&fixture("exif-orient6.jpg")), 6);
        // SOI, APP0 (JFIF), fill bytes, then APP1: found behind the others.
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 1, 2, 0xFF];
        jpeg.extend(app1_orientation(3));
        jpeg.extend_from_slice(&[0xFF, 0xD9]);
        assert_eq!(exif_orientation(&jpeg), 3);
    }

    #[test]
    fn exif_orientation_is_one_without_exif_or_after_the_first_scan() {
        assert_eq!(exif_orientation(&fixture("photo-2560x1600.jpg")), 1);
        // An APP1 after SOS is scan data, not EXIF.
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xDA, 0, 2];
        jpeg.extend(app1_orientation(6));
        assert_eq!(exif_orientation(&jpeg), 1);
    }

    #[test]
    fn exif_orientation_survives_every_truncation_and_bad_length() {
        let mut jpeg = vec![0xFF, 0xD8];
        jpeg.extend(app1_orientation(6));
        for cut in 0..jpeg.len() {
            let o = exif_orientation(&jpeg[..cut]);
            assert!((1..=8).contains(&o));
        }
        for len in [0u8, 1] {
            assert_eq!(exif_orientation(&[0xFF, 0xD8, 0xFF, 0xE1, 0, len, 0, 0]), 1);
        }
    }
}
