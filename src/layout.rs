//! Geometry: where to crop, what size to resize to, and the final canvas, computed once from a
//! [`Transform`] and the (already EXIF-oriented) source size. Pure: no pixels, no I/O.

use crate::options::Transform;

/// A rectangle in source pixels; fractional so a crop can keep the box's exact aspect.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

/// What to do to the oriented source image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// Region of the oriented source that is resized (the whole image unless `fill` crops).
    pub crop: Rect,
    /// Size the cropped region is resized to. Never 0.
    pub resize: (u32, u32),
    /// Size of the output image (equals `resize` except for `pad`). Never 0.
    pub canvas: (u32, u32),
    /// Top-left corner of the resized image inside the canvas (non-zero only for `pad`).
    pub offset: (u32, u32),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("output {width}x{height} is larger than the limit of {limit} pixels")]
    OutputTooLarge { width: u32, height: u32, limit: u64 },
}

/// Compute the plan for a `src_w` x `src_h` (oriented) source.
pub fn plan(
    t: &Transform,
    src_w: u32,
    src_h: u32,
    max_output_pixels: u64,
) -> Result<Plan, LayoutError> {
    let _ = (t, src_w, src_h, max_output_pixels);
    todo!()
}
