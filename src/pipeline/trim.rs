//! `trim_<tolerance>`: find the part of the image inside borders of one colour.
//!
//! The reference colour is the top-left pixel of the region (the whole image, or the `crop_`
//! rectangle); rows and columns at the edges whose every channel (alpha included) is within
//! `tolerance` of it are cut, on all four sides. If nothing would be left the region is kept.
//!
//! The box needs pixels, but the plan (and JPEG shrink-on-load) is made from the header. So
//! this runs first, on its own decode — for JPEG a DCT-scaled one whose long side is still at
//! least 1024 px (so the box is exact to about 1/1000 of the image, the extra border rounding
//! keeps being under one scaled pixel) — and hands the box to the normal path as a `crop_`
//! rectangle in displayed pixels. The cost is that extra decode (a few ms at 1/8 for large
//! JPEGs; a second full decode for PNG/GIF/WebP).

use super::codec::{Codec, DecodeAt};
use super::probe::Probe;
use super::{orient, Codecs, Limits, PipelineError, Pixels};
use crate::format::Format;
use crate::options::CropRect;

/// Long side the JPEG decode for trimming keeps at least.
const MIN_SIDE: u32 = 1024;

/// The trimmed rectangle, in displayed pixels, of `region` (`x, y, width, height`, displayed).
#[allow(clippy::too_many_arguments)]
pub(crate) fn find(
    bytes: &[u8],
    codec: &Codec,
    probe: &Probe,
    codecs: Codecs,
    limits: &Limits,
    region: (u32, u32, u32, u32),
    tolerance: u8,
    page: u32,
) -> Result<CropRect, PipelineError> {
    // JPEG at the DCT scale that keeps MIN_SIDE; other formats at full size.
    let long = probe.width.max(probe.height);
    let shrink = match probe.format {
        Format::Jpeg => [8, 4, 2]
            .into_iter()
            .find(|s| long / s >= MIN_SIDE)
            .unwrap_or(1),
        _ => 1,
    };
    let at = DecodeAt {
        shrink,
        jpeg_decoder: codecs.jpeg_decoder,
        ..DecodeAt::page(page)
    };
    let pixels = (codec.decode)(bytes, &probe.header(), &at, limits)?;
    let shown = orient::apply(pixels, probe.orientation)?;
    let (ow, oh) = probe.oriented_size();
    let fx = f64::from(shown.width) / f64::from(ow);
    let fy = f64::from(shown.height) / f64::from(oh);
    let (x, y, w, h) = region;
    let scaled = (
        ((f64::from(x) * fx).floor() as u32).min(shown.width.saturating_sub(1)),
        ((f64::from(y) * fy).floor() as u32).min(shown.height.saturating_sub(1)),
        ((f64::from(x + w) * fx).ceil() as u32).min(shown.width),
        ((f64::from(y + h) * fy).ceil() as u32).min(shown.height),
    );
    let whole = CropRect {
        x,
        y,
        width: w,
        height: h,
    };
    let Some((bx0, by0, bx1, by1)) = bounds(&shown, scaled, tolerance) else {
        return Ok(whole);
    };
    // Back to displayed pixels, rounding outwards, inside the region.
    let x0 = ((f64::from(bx0) / fx).floor() as u32).clamp(x, x + w - 1);
    let y0 = ((f64::from(by0) / fy).floor() as u32).clamp(y, y + h - 1);
    let x1 = ((f64::from(bx1) / fx).ceil() as u32).clamp(x0 + 1, x + w);
    let y1 = ((f64::from(by1) / fy).ceil() as u32).clamp(y0 + 1, y + h);
    Ok(CropRect {
        x: x0,
        y: y0,
        width: x1 - x0,
        height: y1 - y0,
    })
}

/// The smallest box `(x0, y0, x1, y1)` (exclusive ends) inside `region` of `p` holding every
/// pixel that differs from the region's top-left pixel by more than `tolerance`; `None` when
/// there is no such pixel (or the region is empty).
fn bounds(p: &Pixels, region: (u32, u32, u32, u32), tolerance: u8) -> Option<(u32, u32, u32, u32)> {
    let (rx0, ry0, rx1, ry1) = region;
    if rx0 >= rx1 || ry0 >= ry1 {
        return None;
    }
    let channels = if p.alpha { 4 } else { 3 };
    let width = p.width as usize;
    let at = |x: u32, y: u32| {
        let i = (y as usize * width + x as usize) * channels;
        p.buf.get(i..i + channels)
    };
    let reference: Vec<u8> = at(rx0, ry0)?.to_vec();
    let differs = |x: u32, y: u32| {
        at(x, y).is_some_and(|px| {
            px.iter()
                .zip(&reference)
                .any(|(a, b)| a.abs_diff(*b) > tolerance)
        })
    };
    let row_differs = |y: u32| (rx0..rx1).any(|x| differs(x, y));
    let top = (ry0..ry1).find(|&y| row_differs(y))?;
    let bottom = (top..ry1).rev().find(|&y| row_differs(y))?;
    let column_differs = |x: u32| (top..=bottom).any(|y| differs(x, y));
    let left = (rx0..rx1).find(|&x| column_differs(x))?;
    let right = (left..rx1).rev().find(|&x| column_differs(x))?;
    Some((left, top, right + 1, bottom + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(w: u32, h: u32, inner: (u32, u32, u32, u32), noise: u8) -> Pixels {
        let mut buf = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let inside = x >= inner.0 && x < inner.2 && y >= inner.1 && y < inner.3;
                if inside {
                    buf.extend_from_slice(&[200, 30, 40]);
                } else {
                    // A near-white border, off by up to `noise`.
                    let n = ((x * 7 + y * 13) % (u32::from(noise) + 1)) as u8;
                    buf.extend_from_slice(&[255 - n, 255, 255 - n / 2]);
                }
            }
        }
        Pixels {
            buf,
            width: w,
            height: h,
            alpha: false,
        }
    }

    #[test]
    fn bounds_find_the_subject_within_tolerance() {
        let p = framed(50, 40, (5, 7, 30, 33), 6);
        assert_eq!(bounds(&p, (0, 0, 50, 40), 6), Some((5, 7, 30, 33)));
        // Below the border's noise nothing is uniform enough: the noise counts as content.
        let tight = bounds(&p, (0, 0, 50, 40), 2).expect("content");
        assert!(tight.0 < 5 && tight.2 > 30, "{tight:?}");
        // Inside a sub-region.
        assert_eq!(bounds(&p, (10, 0, 50, 40), 6), Some((10, 7, 30, 33)));
    }

    #[test]
    fn bounds_of_a_uniform_image_is_none() {
        let p = framed(20, 20, (0, 0, 0, 0), 0);
        assert_eq!(bounds(&p, (0, 0, 20, 20), 0), None);
        assert_eq!(bounds(&p, (3, 3, 3, 9), 0), None);
    }
}
