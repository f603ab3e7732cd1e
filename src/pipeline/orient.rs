//! EXIF orientation: mapping a rectangle of the displayed image back to stored pixels, and
//! turning stored pixels into displayed ones.
//!
//! The pipeline resizes in stored orientation and orients the small result, so no full-size
//! buffer is ever rotated. It does not read EXIF (see `probe`).

use image::metadata::Orientation;
use image::{DynamicImage, RgbImage, RgbaImage};

use super::{PipelineError, Pixels};
use crate::layout::Rect;

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
