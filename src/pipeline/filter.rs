//! Filters on the resized image: `blur_` (an almost-Gaussian of three box passes, so its cost
//! does not grow with sigma) and `sharpen_` (an unsharp mask: add back the difference from a
//! Gaussian blur of that sigma). Both run on the small output, after resizing, and blur RGBA in
//! premultiplied alpha so transparent pixels do not bleed their hidden colour into the edges.
//! `gray_1` (`grayscale`) runs last, on the padded canvas, in place.

use image::imageops;
use image::{ImageBuffer, Pixel, RgbImage, RgbaImage};

use super::{PipelineError, Pixels};

/// Blur with a Gaussian-like kernel of standard deviation `sigma` pixels.
pub(crate) fn blur(p: Pixels, sigma: f32) -> Result<Pixels, PipelineError> {
    let (width, height, alpha) = (p.width, p.height, p.alpha);
    let buf = if alpha {
        let mut buf = p.buf;
        premultiply(&mut buf);
        let img = rgba(buf, width, height)?;
        let mut buf = imageops::fast_blur(&img, sigma).into_raw();
        unpremultiply(&mut buf);
        buf
    } else {
        imageops::fast_blur(&rgb(p.buf, width, height)?, sigma).into_raw()
    };
    Ok(Pixels {
        buf,
        width,
        height,
        alpha,
    })
}

/// Sharpen with an unsharp mask of radius `sigma` (threshold 1 level, so flat areas and
/// noise-free gradients are left alone).
pub(crate) fn sharpen(p: Pixels, sigma: f32) -> Result<Pixels, PipelineError> {
    const THRESHOLD: i32 = 1;
    let (width, height, alpha) = (p.width, p.height, p.alpha);
    let buf = if alpha {
        let img = rgba(p.buf, width, height)?;
        let mut out = imageops::unsharpen(&img, sigma, THRESHOLD);
        // The mask is for colour only: keep the alpha plane as it was.
        for (o, i) in out.pixels_mut().zip(img.pixels()) {
            o.channels_mut()[3] = i.channels()[3];
        }
        out.into_raw()
    } else {
        imageops::unsharpen(&rgb(p.buf, width, height)?, sigma, THRESHOLD).into_raw()
    };
    Ok(Pixels {
        buf,
        width,
        height,
        alpha,
    })
}

/// Shades of grey: every pixel's colour becomes its BT.601 luma (on the sRGB-encoded values,
/// as libjpeg and sharp's `grayscale` do); alpha is kept.
pub(crate) fn grayscale(mut p: Pixels) -> Pixels {
    let step = if p.alpha { 4 } else { 3 };
    for px in p.buf.chunks_exact_mut(step) {
        let [r, g, b] = [px[0], px[1], px[2]].map(u32::from);
        // 0.299, 0.587, 0.114 in 1/256ths (77 + 150 + 29 = 256), rounded.
        let y = ((77 * r + 150 * g + 29 * b + 128) >> 8) as u8;
        px[..3].fill(y);
    }
    p
}

fn mismatch() -> PipelineError {
    PipelineError::Internal("pixel buffer does not match its size".into())
}

fn rgb(buf: Vec<u8>, w: u32, h: u32) -> Result<RgbImage, PipelineError> {
    ImageBuffer::from_raw(w, h, buf).ok_or_else(mismatch)
}

fn rgba(buf: Vec<u8>, w: u32, h: u32) -> Result<RgbaImage, PipelineError> {
    ImageBuffer::from_raw(w, h, buf).ok_or_else(mismatch)
}

fn premultiply(buf: &mut [u8]) {
    for px in buf.chunks_exact_mut(4) {
        let a = u16::from(px[3]);
        for c in &mut px[..3] {
            *c = ((u16::from(*c) * a + 127) / 255) as u8;
        }
    }
}

fn unpremultiply(buf: &mut [u8]) {
    for px in buf.chunks_exact_mut(4) {
        let a = u16::from(px[3]);
        if a == 0 {
            px[..3].fill(0);
            continue;
        }
        for c in &mut px[..3] {
            *c = ((u16::from(*c) * 255 + a / 2) / a).min(255) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pixels(w: u32, h: u32, alpha: bool, f: impl Fn(u32, u32) -> [u8; 4]) -> Pixels {
        let n = if alpha { 4 } else { 3 };
        let mut buf = Vec::new();
        for y in 0..h {
            for x in 0..w {
                buf.extend_from_slice(&f(x, y)[..n]);
            }
        }
        Pixels {
            buf,
            width: w,
            height: h,
            alpha,
        }
    }

    /// Sum of absolute differences between horizontal neighbours: how much edge there is.
    fn edge(p: &Pixels) -> u64 {
        let n = if p.alpha { 4 } else { 3 };
        let row = p.width as usize * n;
        p.buf
            .chunks_exact(row)
            .flat_map(|r| r.windows(n + 1).map(|w| u64::from(w[0].abs_diff(w[n]))))
            .sum()
    }

    fn stripes(alpha: bool) -> Pixels {
        pixels(32, 8, alpha, |x, _| {
            let v = if (x / 4) % 2 == 0 { 40 } else { 200 };
            [v, v, v, 255]
        })
    }

    #[test]
    fn blur_softens_edges_and_keeps_the_size() {
        for alpha in [false, true] {
            let before = stripes(alpha);
            let e0 = edge(&before);
            let after = blur(before, 2.0).unwrap();
            assert_eq!((after.width, after.height, after.alpha), (32, 8, alpha));
            assert!(
                edge(&after) < e0 / 2,
                "alpha {alpha}: {} vs {e0}",
                edge(&after)
            );
        }
    }

    #[test]
    fn blur_does_not_bleed_hidden_colour_of_transparent_pixels() {
        // Left half opaque grey, right half transparent *red*: no red may appear.
        let p = pixels(16, 4, true, |x, _| {
            if x < 8 {
                [128, 128, 128, 255]
            } else {
                [255, 0, 0, 0]
            }
        });
        let out = blur(p, 3.0).unwrap();
        for px in out.buf.chunks_exact(4).filter(|px| px[3] > 0) {
            assert!(px[0].abs_diff(px[1]) <= 2, "colour bled: {px:?}");
        }
    }

    #[test]
    fn grayscale_equalises_channels_and_keeps_alpha() {
        let p = Pixels {
            buf: vec![
                255, 0, 0, 10, 0, 255, 0, 20, 0, 0, 255, 30, 200, 200, 200, 255,
            ],
            width: 2,
            height: 2,
            alpha: true,
        };
        let g = grayscale(p);
        assert_eq!(
            g.buf,
            vec![77, 77, 77, 10, 149, 149, 149, 20, 29, 29, 29, 30, 200, 200, 200, 255]
        );
        let p = Pixels {
            buf: vec![255, 255, 255, 0, 0, 0],
            width: 2,
            height: 1,
            alpha: false,
        };
        assert_eq!(grayscale(p).buf, vec![255, 255, 255, 0, 0, 0]);
    }

    #[test]
    fn sharpen_strengthens_edges_and_keeps_alpha() {
        let before = stripes(true);
        let e0 = edge(&before);
        let after = sharpen(before, 1.0).unwrap();
        assert!(edge(&after) > e0, "{} vs {e0}", edge(&after));
        assert!(after.buf.chunks_exact(4).all(|px| px[3] == 255));
        let flat = pixels(8, 8, false, |_, _| [90, 90, 90, 255]);
        assert!(sharpen(flat, 2.0).unwrap().buf.iter().all(|v| *v == 90));
    }
}
