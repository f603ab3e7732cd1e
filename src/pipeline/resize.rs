//! Crop + resize (fast_image_resize, Lanczos3, alpha premultiplied), padding onto a canvas and
//! flattening alpha onto a background.
//!
//! It works on 8-bit RGB/RGBA only and does no colour management (no gamma-correct resize).
//! Geometry comes from `layout`; this module never decides sizes.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use super::{alloc_zeroed, PipelineError, Pixels};
use crate::layout::Rect;

/// Resize the `crop` region of `src` (in `src` pixels) to `to`. Returns `src` unchanged when
/// the crop is the whole image and the size already matches.
pub(crate) fn resize(src: Pixels, crop: Rect, to: (u32, u32)) -> Result<Pixels, PipelineError> {
    let (fw, fh) = (f64::from(src.width), f64::from(src.height));
    let whole = crop.x <= 0.0 && crop.y <= 0.0 && crop.width >= fw && crop.height >= fh;
    if whole && to == (src.width, src.height) {
        return Ok(src);
    }
    let internal = |e: &dyn std::fmt::Display| PipelineError::Internal(format!("resize: {e}"));
    let pixel_type = if src.alpha {
        PixelType::U8x4
    } else {
        PixelType::U8x3
    };
    let source =
        ImageRef::new(src.width, src.height, &src.buf, pixel_type).map_err(|e| internal(&e))?;
    let len = (to.0 as usize)
        .saturating_mul(to.1 as usize)
        .saturating_mul(pixel_type.size());
    let buf = alloc_zeroed(len).ok_or_else(|| internal(&"out of memory"))?;
    let mut dst = Image::from_vec_u8(to.0, to.1, buf, pixel_type).map_err(|e| internal(&e))?;
    // Keep the crop inside the image even after float rounding from the scale mapping.
    let x = crop.x.clamp(0.0, fw);
    let y = crop.y.clamp(0.0, fh);
    let w = crop.width.min(fw - x).max(f64::MIN_POSITIVE);
    let h = crop.height.min(fh - y).max(f64::MIN_POSITIVE);
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3))
        .crop(x, y, w, h);
    Resizer::new()
        .resize(&source, &mut dst, &options)
        .map_err(|e| internal(&e))?;
    Ok(Pixels {
        buf: dst.into_vec(),
        width: to.0,
        height: to.1,
        alpha: src.alpha,
    })
}

/// The part of `src` under `region` (in `src` pixels, rounded to whole pixels) as its own
/// image, and `crop` moved into its coordinates. `src` itself when the region is all of it.
pub(crate) fn clip(src: Pixels, region: Rect, crop: Rect) -> Result<(Pixels, Rect), PipelineError> {
    if src.width == 0 || src.height == 0 {
        return Ok((src, crop));
    }
    let (w, h) = (f64::from(src.width), f64::from(src.height));
    let x0 = region.x.round().clamp(0.0, w - 1.0).max(0.0);
    let y0 = region.y.round().clamp(0.0, h - 1.0).max(0.0);
    let x1 = (region.x + region.width)
        .round()
        .clamp(x0 + 1.0, w.max(x0 + 1.0));
    let y1 = (region.y + region.height)
        .round()
        .clamp(y0 + 1.0, h.max(y0 + 1.0));
    if x0 <= 0.0 && y0 <= 0.0 && x1 >= w && y1 >= h {
        return Ok((src, crop));
    }
    // Whole pixels inside the image (the casts are of clamped, non-negative values).
    let (x0, y0, x1, y1) = (x0 as usize, y0 as usize, x1 as usize, y1 as usize);
    let channels = if src.alpha { 4 } else { 3 };
    let stride = src.width as usize * channels;
    let row_len = (x1 - x0) * channels;
    let mut buf = Vec::new();
    buf.try_reserve_exact(row_len * (y1 - y0))
        .map_err(|_| PipelineError::Internal("clip: out of memory".into()))?;
    for y in y0..y1 {
        let start = y * stride + x0 * channels;
        let row = src
            .buf
            .get(start..start + row_len)
            .ok_or_else(|| PipelineError::Internal("clip: buffer smaller than image".into()))?;
        buf.extend_from_slice(row);
    }
    let clipped = Pixels {
        buf,
        width: u32::try_from(x1 - x0).map_err(|_| PipelineError::Internal("clip".into()))?,
        height: u32::try_from(y1 - y0).map_err(|_| PipelineError::Internal("clip".into()))?,
        alpha: src.alpha,
    };
    let moved = Rect {
        x: crop.x - x0 as f64,
        y: crop.y - y0 as f64,
        ..crop
    };
    Ok((clipped, moved))
}

/// Place `img` at `offset` on an opaque `canvas`-sized image filled with `bg`. The result is
/// RGB: transparent parts of `img` are composited onto `bg`.
pub(crate) fn pad(
    img: &Pixels,
    canvas: (u32, u32),
    offset: (u32, u32),
    bg: [u8; 3],
) -> Result<Pixels, PipelineError> {
    let (cw, ch) = (canvas.0 as usize, canvas.1 as usize);
    let len = cw.saturating_mul(ch).saturating_mul(3);
    let mut buf =
        alloc_zeroed(len).ok_or_else(|| PipelineError::Internal("pad: out of memory".into()))?;
    for px in buf.chunks_exact_mut(3) {
        px.copy_from_slice(&bg);
    }
    let channels = if img.alpha { 4 } else { 3 };
    let (iw, ox, oy) = (img.width as usize, offset.0 as usize, offset.1 as usize);
    let row_len = iw * channels;
    if row_len == 0 {
        return Ok(Pixels {
            buf,
            width: canvas.0,
            height: canvas.1,
            alpha: false,
        });
    }
    for (row_index, row) in img.buf.chunks_exact(row_len).enumerate() {
        let start = ((oy + row_index) * cw + ox) * 3;
        let Some(dst) = buf.get_mut(start..start + iw * 3) else {
            return Err(PipelineError::Internal(
                "pad: image does not fit the canvas".into(),
            ));
        };
        if img.alpha {
            for (d, s) in dst.chunks_exact_mut(3).zip(row.chunks_exact(4)) {
                composite(d, s);
            }
        } else {
            dst.copy_from_slice(row);
        }
    }
    Ok(Pixels {
        buf,
        width: canvas.0,
        height: canvas.1,
        alpha: false,
    })
}

/// Composite an RGBA image onto an opaque `bg`, giving RGB (in place, no second full buffer).
pub(crate) fn flatten(img: Pixels, bg: [u8; 3]) -> Pixels {
    if !img.alpha {
        return img;
    }
    let mut buf = img.buf;
    let n = buf.len() / 4;
    for i in 0..n {
        let (src, dst) = (i * 4, i * 3);
        let px = [buf[src], buf[src + 1], buf[src + 2], buf[src + 3]];
        let mut out = bg;
        composite(&mut out, &px);
        // Writing at 3i never overtakes reading at 4i.
        buf[dst..dst + 3].copy_from_slice(&out);
    }
    buf.truncate(n * 3);
    Pixels {
        buf,
        width: img.width,
        height: img.height,
        alpha: false,
    }
}

/// `dst` (opaque RGB) = `src` (straight RGBA) over `dst`.
fn composite(dst: &mut [u8], src: &[u8]) {
    let a = u32::from(src.get(3).copied().unwrap_or(255));
    for (d, s) in dst.iter_mut().zip(src.iter().take(3)) {
        *d = ((u32::from(*s) * a + u32::from(*d) * (255 - a) + 127) / 255) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flatten_transparent_pixel_becomes_background() {
        let img = Pixels {
            buf: vec![0, 255, 0, 0, 10, 20, 30, 255, 255, 255, 255, 128],
            width: 3,
            height: 1,
            alpha: true,
        };
        let out = flatten(img, [200, 100, 50]);
        assert_eq!(out.buf, vec![200, 100, 50, 10, 20, 30, 228, 178, 153]);
        assert!(!out.alpha);
    }

    #[test]
    fn pad_places_image_at_offset() {
        let img = Pixels {
            buf: vec![1, 2, 3, 4, 5, 6],
            width: 1,
            height: 2,
            alpha: false,
        };
        let out = pad(&img, (3, 2), (2, 0), [9, 9, 9]).expect("pad");
        assert_eq!(
            out.buf,
            vec![9, 9, 9, 9, 9, 9, 1, 2, 3, 9, 9, 9, 9, 9, 9, 4, 5, 6]
        );
    }

    #[test]
    fn resize_whole_same_size_is_noop() {
        let img = Pixels {
            buf: vec![7; 2 * 2 * 3],
            width: 2,
            height: 2,
            alpha: false,
        };
        let crop = Rect {
            x: 0.0,
            y: 0.0,
            width: 2.0,
            height: 2.0,
        };
        let out = resize(img, crop, (2, 2)).expect("resize");
        assert_eq!(out.buf, vec![7; 12]);
    }
}
