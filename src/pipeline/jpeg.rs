//! JPEG decoding through libjpeg-turbo, with DCT-domain shrink-on-load and CMYK conversion.
//!
//! Lenient like libjpeg and browsers, but truncated data is an error, never a grey-filled
//! image. TurboJPEG 3 returns -1 from `tj3Decompress8` whenever libjpeg emitted a warning (the
//! pixels are written to the last row, but the call fails), and the `turbojpeg` crate turns
//! that into `Err` carrying libjpeg's message for the *first* warning. So: a fatal error is
//! 422; a warning is accepted only when it is one that leaves the image whole (junk bytes
//! before a marker, a bad Huffman code or RST marker, an unknown Adobe transform, a bad ICC
//! marker: [`is_tolerable_warning`]) *and* the data does not end early ([`check_complete`]:
//! an EOI marker after the first scan — the first warning may hide a later "Premature end of
//! JPEG file"). The scan limit is set against progressive scan-count bombs. CMYK goes through the embedded CMYK profile when there is one
//! (RGB profiles are applied later, on the resized pixels, by `color`). It does not orient.

use turbojpeg::{Colorspace, Decompressor, Image, PixelFormat, ScalingFactor};

use super::codec::Header;
use super::color;
use super::probe::{first_scan, jpeg_segments};
use super::{alloc_zeroed, Limits, PipelineError, Pixels};

/// Most progressive scans we accept; real encoders write at most a few dozen.
const SCAN_LIMIT: u32 = 500;

/// The largest DCT shrink `k` in {8, 4, 2, 1} such that the crop region (in stored pixels),
/// divided by `k`, is still at least the target size along both axes.
pub(crate) fn choose_shrink(crop_w: f64, crop_h: f64, target_w: u32, target_h: u32) -> u32 {
    [8u32, 4, 2]
        .into_iter()
        .find(|&k| {
            crop_w / f64::from(k) >= f64::from(target_w)
                && crop_h / f64::from(k) >= f64::from(target_h)
        })
        .unwrap_or(1)
}

/// Decode with shrink factor `1/shrink` into RGB8 (grayscale and CMYK are converted).
pub(crate) fn decode(
    bytes: &[u8],
    probe: &Header,
    shrink: u32,
    limits: &Limits,
) -> Result<Pixels, PipelineError> {
    let info = probe
        .jpeg
        .ok_or_else(|| PipelineError::Internal("jpeg decode without jpeg header".into()))?;
    // Lossless JPEGs cannot be DCT-scaled.
    let factor = match shrink {
        _ if info.lossless => ScalingFactor::ONE,
        8 => ScalingFactor::ONE_EIGHTH,
        4 => ScalingFactor::ONE_QUARTER,
        2 => ScalingFactor::ONE_HALF,
        _ => ScalingFactor::ONE,
    };
    let cmyk = matches!(info.colorspace, Colorspace::CMYK | Colorspace::YCCK);
    let format = if cmyk {
        PixelFormat::CMYK
    } else {
        PixelFormat::RGB
    };
    let (w, h) = (probe.width as usize, probe.height as usize);
    let (sw, sh) = (factor.scale(w), factor.scale(h));
    let components: u64 = match info.colorspace {
        Colorspace::Gray => 1,
        Colorspace::CMYK | Colorspace::YCCK => 4,
        _ => 3,
    };
    let too_large = || PipelineError::DecodeTooLarge {
        width: probe.width,
        height: probe.height,
        limit: limits.max_decode_bytes,
    };
    let out_len = (sw as u64)
        .saturating_mul(sh as u64)
        .saturating_mul(format.size() as u64);
    // A progressive decode keeps every DCT coefficient of the whole image (2 bytes each),
    // whatever the scale.
    let coef_len = (w as u64)
        .saturating_mul(h as u64)
        .saturating_mul(components * 2);
    if out_len > limits.max_decode_bytes || (info.progressive && coef_len > limits.max_decode_bytes)
    {
        return Err(too_large());
    }
    let len = usize::try_from(out_len).map_err(|_| too_large())?;
    let mut buf = alloc_zeroed(len).ok_or_else(too_large)?;

    let tj = |e: turbojpeg::Error| PipelineError::Internal(format!("turbojpeg: {e}"));
    let mut d = Decompressor::new().map_err(tj)?;
    d.set_scan_limit(SCAN_LIMIT).map_err(tj)?;
    d.set_scaling_factor(factor).map_err(tj)?;
    let image = Image {
        pixels: buf.as_mut_slice(),
        width: sw,
        pitch: sw * format.size(),
        height: sh,
        format,
    };
    match d.decompress(bytes, image) {
        Ok(()) => {}
        Err(e) if is_tolerable_warning(&e.to_string()) => {
            check_complete(bytes)?;
            tracing::debug!("jpeg decoded with a libjpeg warning: {e}");
        }
        Err(e) => return Err(PipelineError::Corrupt(format!("jpeg: {e}"))),
    }

    if cmyk {
        // Through the embedded CMYK profile when there is one, naively otherwise.
        let adobe =
            jpeg_segments(bytes).any(|(code, seg)| code == 0xEE && seg.starts_with(b"Adobe"));
        match color::jpeg_profile(bytes)
            .and_then(|profile| color::cmyk_to_srgb(&buf, &profile, adobe))
        {
            Some(rgb) => buf = rgb,
            None => cmyk_to_rgb_in_place(&mut buf),
        }
    }
    let width = u32::try_from(sw).map_err(|_| too_large())?;
    let height = u32::try_from(sh).map_err(|_| too_large())?;
    Ok(Pixels {
        buf,
        width,
        height,
        alpha: false,
    })
}

/// libjpeg warnings (`JWRN_*` in jerror.h) after which the image is still whole. Not
/// "Premature end of JPEG file" nor "premature end of data segment": the data ended early.
/// (Not "bad Huffman code", "Inconsistent progression sequence" or "too many scanlines":
/// those lose data too.)
const TOLERABLE_WARNINGS: &[&str] = &[
    "Corrupt JPEG data: bad ICC marker",
    "extraneous bytes before marker",
    "instead of RST",
    "Invalid SOS parameters for sequential JPEG",
    "Unknown Adobe color transform code",
    "Warning: unknown JFIF revision number",
];

/// Whether `message` (a turbojpeg error) is a libjpeg warning that leaves the image whole.
pub(crate) fn is_tolerable_warning(message: &str) -> bool {
    TOLERABLE_WARNINGS.iter().any(|w| message.contains(w))
}

/// `Ok` when the data does not end early: an EOI marker follows the first scan. The scan is
/// found by walking the header's segments (an `FF DA` inside an EXIF thumbnail is not it);
/// entropy-coded data stuffs every `FF` as `FF 00`, so `FF D9` after it is a marker.
pub(crate) fn check_complete(bytes: &[u8]) -> Result<(), PipelineError> {
    let sos = first_scan(bytes);
    let eoi = memchr::memmem::rfind(bytes, &[0xFF, 0xD9]);
    match (sos, eoi) {
        (Some(s), Some(e)) if e > s => Ok(()),
        _ => Err(PipelineError::Corrupt(
            "jpeg: premature end of data (no end-of-image marker after the scans)".into(),
        )),
    }
}

/// Convert CMYK (4 bytes a pixel) to RGB (3 bytes) in the same buffer.
///
/// libjpeg hands out Adobe-style inverted CMYK for Adobe APP14 files (0 = full ink), so the
/// naive conversion on the decoded values is `R = C * K / 255` and so on. No ICC: a CMYK
/// profile would be needed for exact colour.
pub(crate) fn cmyk_to_rgb_in_place(buf: &mut Vec<u8>) {
    let n = buf.len() / 4;
    for i in 0..n {
        let (src, dst) = (i * 4, i * 3);
        let [c, m, y, k] = [buf[src], buf[src + 1], buf[src + 2], buf[src + 3]].map(u32::from);
        // Writing at 3i never overtakes reading at 4i, so the buffer can be shared.
        buf[dst] = ((c * k + 127) / 255) as u8;
        buf[dst + 1] = ((m * k + 127) / 255) as u8;
        buf[dst + 2] = ((y * k + 127) / 255) as u8;
    }
    buf.truncate(n * 3);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choose_shrink_2560_to_300_picks_eighth() {
        assert_eq!(choose_shrink(2560.0, 1600.0, 300, 188), 8);
    }

    #[test]
    fn choose_shrink_larger_targets_pick_smaller_shrinks() {
        assert_eq!(choose_shrink(2560.0, 1600.0, 600, 375), 4);
        assert_eq!(choose_shrink(2560.0, 1600.0, 1200, 750), 2);
        assert_eq!(choose_shrink(2560.0, 1600.0, 1300, 813), 1);
        assert_eq!(choose_shrink(2560.0, 1600.0, 2560, 1600), 1);
        // Both axes must stay large enough (a fill crop of a tall strip).
        assert_eq!(choose_shrink(2560.0, 1600.0, 100, 400), 4);
    }

    #[test]
    fn cmyk_to_rgb_inverted_values_convert() {
        let mut buf = vec![255, 255, 255, 255, 0, 0, 0, 255, 255, 128, 0, 128];
        cmyk_to_rgb_in_place(&mut buf);
        assert_eq!(buf, vec![255, 255, 255, 0, 0, 0, 128, 64, 0]);
    }
}
