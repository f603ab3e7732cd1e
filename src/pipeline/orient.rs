//! EXIF orientation: mapping a rectangle of the displayed image back to stored pixels, and
//! turning stored pixels into displayed ones.
//!
//! The pipeline resizes in stored orientation and orients the small result, so no full-size
//! buffer is ever rotated. It does not read EXIF (see `probe`).

use image::metadata::Orientation;
use image::{DynamicImage, RgbImage, RgbaImage};

use super::{PipelineError, Pixels};
use crate::layout::Rect;
use crate::options::Flip;

/// Where `r`, a rectangle of the oriented (displayed) image, lies in the stored image of size
/// `sw` x `sh`. EXIF 2..=8: mirror, 180°, flip, transpose, 90° CW, transverse, 270° CW.
pub(crate) fn stored_rect(r: Rect, orientation: u8, sw: f64, sh: f64) -> Rect {
    let Rect {
        x,
        y,
        width: w,
        height: h,
    } = r;
    let (x, y, width, height) = match orientation {
        2 => (sw - x - w, y, w, h),
        3 => (sw - x - w, sh - y - h, w, h),
        4 => (x, sh - y - h, w, h),
        5 => (y, x, h, w),
        6 => (y, sh - x - w, h, w),
        7 => (sw - y - h, sh - x - w, h, w),
        8 => (sw - y - h, x, h, w),
        _ => (x, y, w, h),
    };
    Rect {
        x,
        y,
        width,
        height,
    }
}

/// An EXIF orientation as "mirror left-right if `.1`, then turn `.0` quarter turns clockwise".
fn parts(orientation: u8) -> (u8, bool) {
    match orientation {
        2 => (0, true),
        3 => (2, false),
        4 => (2, true),
        5 => (3, true),
        6 => (1, false),
        7 => (1, true),
        8 => (3, false),
        _ => (0, false),
    }
}

fn from_parts(turns: u8, mirror: bool) -> u8 {
    match (turns % 4, mirror) {
        (0, false) => 1,
        (0, true) => 2,
        (2, false) => 3,
        (2, true) => 4,
        (3, true) => 5,
        (1, false) => 6,
        (1, true) => 7,
        _ => 8,
    }
}

/// The one orientation that shows the stored image as EXIF `exif` does, then turned `turns`
/// quarter turns clockwise (`r_`), then mirrored (`flip_`: left-right, then top-bottom).
pub(crate) fn compose(exif: u8, turns: u8, flip: Flip) -> u8 {
    let (k, m) = parts(exif);
    let (mut k, mut m) = ((k + turns) % 4, m);
    // A mirror after a turn is the mirror first and the turn the other way round; top-bottom
    // is left-right and a half turn.
    if flip.h {
        (k, m) = ((4 - k) % 4, !m);
    }
    if flip.v {
        (k, m) = ((6 - k) % 4, !m);
    }
    from_parts(k, m)
}

/// Swap a (width, height) pair for orientations that turn the image by 90°.
pub(crate) fn stored_size(size: (u32, u32), orientation: u8) -> (u32, u32) {
    if orientation >= 5 {
        (size.1, size.0)
    } else {
        size
    }
}

/// Apply EXIF orientation to stored pixels (a no-op for 1).
pub(crate) fn apply(p: Pixels, orientation: u8) -> Result<Pixels, PipelineError> {
    let Some(o) = Orientation::from_exif(orientation).filter(|o| *o != Orientation::NoTransforms)
    else {
        return Ok(p);
    };
    let bad = || PipelineError::Internal("pixel buffer does not match its size".into());
    let mut image = if p.alpha {
        DynamicImage::ImageRgba8(RgbaImage::from_raw(p.width, p.height, p.buf).ok_or_else(bad)?)
    } else {
        DynamicImage::ImageRgb8(RgbImage::from_raw(p.width, p.height, p.buf).ok_or_else(bad)?)
    };
    image.apply_orientation(o);
    let (width, height) = (image.width(), image.height());
    let buf = match image {
        DynamicImage::ImageRgba8(i) => i.into_raw(),
        DynamicImage::ImageRgb8(i) => i.into_raw(),
        _ => return Err(bad()),
    };
    Ok(Pixels {
        buf,
        width,
        height,
        alpha: p.alpha,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compose_equals_applying_each_step_to_pixels() {
        // A 3x2 image with unique pixels; every EXIF value, turn and flip, applied step by step
        // with the image crate, must equal applying the composed orientation once.
        let base = RgbImage::from_fn(3, 2, |x, y| image::Rgb([x as u8, y as u8, 0]));
        let steps = [
            None,
            Some(Orientation::Rotate90),
            Some(Orientation::Rotate180),
            Some(Orientation::Rotate270),
        ];
        for exif in 1..=8u8 {
            for turns in 0..4u8 {
                for (h, v) in [(false, false), (true, false), (false, true), (true, true)] {
                    let mut stepwise = DynamicImage::ImageRgb8(base.clone());
                    if let Some(o) = Orientation::from_exif(exif) {
                        stepwise.apply_orientation(o);
                    }
                    if let Some(o) = steps[usize::from(turns)] {
                        stepwise.apply_orientation(o);
                    }
                    if h {
                        stepwise.apply_orientation(Orientation::FlipHorizontal);
                    }
                    if v {
                        stepwise.apply_orientation(Orientation::FlipVertical);
                    }
                    let mut once = DynamicImage::ImageRgb8(base.clone());
                    let o = compose(exif, turns, Flip { h, v });
                    if let Some(o) = Orientation::from_exif(o) {
                        once.apply_orientation(o);
                    }
                    assert_eq!(
                        stepwise.to_rgb8(),
                        once.to_rgb8(),
                        "exif {exif}, {turns} turns, flip h {h} v {v} -> {o}"
                    );
                }
            }
        }
    }

    /// A 5x3 image whose every pixel is unique, cropped in display space must equal the
    /// same crop taken in stored space through `stored_rect` and then oriented.
    #[test]
    fn stored_rect_every_orientation_matches_oriented_crop() {
        let stored = RgbImage::from_fn(5, 3, |x, y| image::Rgb([x as u8, y as u8, 7]));
        for o in 1..=8u8 {
            let mut shown = DynamicImage::ImageRgb8(stored.clone());
            shown.apply_orientation(Orientation::from_exif(o).expect("1..=8"));
            let shown = shown.into_rgb8();
            let (ow, oh) = shown.dimensions();
            for (x, y, w, h) in [
                (0, 0, 1, 1),
                (1, 0, 2, 2),
                (0, 1, ow, oh - 1),
                (ow - 2, oh - 2, 2, 1),
            ] {
                let want = image::imageops::crop_imm(&shown, x, y, w, h).to_image();
                let r = stored_rect(
                    Rect {
                        x: f64::from(x),
                        y: f64::from(y),
                        width: f64::from(w),
                        height: f64::from(h),
                    },
                    o,
                    5.0,
                    3.0,
                );
                let part = image::imageops::crop_imm(
                    &stored,
                    r.x as u32,
                    r.y as u32,
                    r.width as u32,
                    r.height as u32,
                )
                .to_image();
                let (pw, ph) = part.dimensions();
                let got = apply(
                    Pixels {
                        buf: part.into_raw(),
                        width: pw,
                        height: ph,
                        alpha: false,
                    },
                    o,
                )
                .expect("apply");
                assert_eq!(
                    (got.width, got.height),
                    want.dimensions(),
                    "orientation {o}"
                );
                assert_eq!(
                    got.buf,
                    want.into_raw(),
                    "orientation {o} rect {x},{y},{w},{h}"
                );
            }
        }
    }
}
