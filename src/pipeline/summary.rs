//! A summary of a rendered image for `/meta`: its dominant colour and a ThumbHash
//! (<https://evanw.github.io/thumbhash/>, ~25 bytes that decode to a blurry placeholder with
//! the right aspect ratio and alpha), both from a copy of the final pixels scaled to fit
//! 100 × 100 (ThumbHash's limit). Deterministic.

use super::{resize, PipelineError, Pixels};
use crate::layout::Rect;

/// What `/meta` reports besides the sizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The most common colour (4-bit-per-channel histogram, alpha-weighted; the mean of the
    /// winning bucket), as `[r, g, b]`.
    pub dominant: [u8; 3],
    /// The ThumbHash bytes.
    pub thumbhash: Vec<u8>,
}

/// Longest side ThumbHash accepts.
const THUMB_MAX: u32 = 100;

pub(crate) fn summarize(img: &Pixels) -> Result<Summary, PipelineError> {
    let (w, h) = (img.width, img.height);
    let scale = f64::from(THUMB_MAX) / f64::from(w.max(h));
    let to = if scale < 1.0 {
        (
            ((f64::from(w) * scale).round() as u32).clamp(1, THUMB_MAX),
            ((f64::from(h) * scale).round() as u32).clamp(1, THUMB_MAX),
        )
    } else {
        (w, h)
    };
    let copy = Pixels {
        buf: img.buf.clone(),
        width: w,
        height: h,
        alpha: img.alpha,
    };
    let whole = Rect {
        x: 0.0,
        y: 0.0,
        width: f64::from(w),
        height: f64::from(h),
    };
    let small = resize::resize(copy, whole, to)?;
    let rgba: Vec<u8> = if small.alpha {
        small.buf
    } else {
        small
            .buf
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect()
    };
    let (sw, sh) = (small.width as usize, small.height as usize);
    if rgba.len() != sw * sh * 4 || sw == 0 || sh == 0 || sw > 100 || sh > 100 {
        return Err(PipelineError::Internal("summary: bad thumbnail".into()));
    }
    Ok(Summary {
        dominant: dominant(&rgba),
        thumbhash: thumbhash::rgba_to_thumb_hash(sw, sh, &rgba),
    })
}

/// The mean colour of the most populated 4-bit-per-channel bucket, pixels weighted by alpha;
/// ties go to the lowest bucket. A fully transparent image is black.
fn dominant(rgba: &[u8]) -> [u8; 3] {
    let mut weight = vec![0u64; 4096];
    let mut sums = vec![[0u64; 3]; 4096];
    for p in rgba.chunks_exact(4) {
        let bucket =
            usize::from(p[0] >> 4) << 8 | usize::from(p[1] >> 4) << 4 | usize::from(p[2] >> 4);
        let a = u64::from(p[3]);
        weight[bucket] += a;
        for c in 0..3 {
            sums[bucket][c] += u64::from(p[c]) * a;
        }
    }
    let mut best = 0;
    for (i, &w) in weight.iter().enumerate() {
        if w > weight[best] {
            best = i;
        }
    }
    let w = weight[best];
    if w == 0 {
        return [0, 0, 0];
    }
    sums[best].map(|s| ((s + w / 2) / w) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid_with_patch(w: u32, h: u32) -> Pixels {
        // Mostly teal, with a red quarter.
        let mut buf = Vec::new();
        for y in 0..h {
            for x in 0..w {
                if x < w / 4 && y < h / 2 {
                    buf.extend_from_slice(&[250, 10, 10]);
                } else {
                    buf.extend_from_slice(&[20, 160, 170]);
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
    fn dominant_colour_is_the_majority_colour() {
        let s = summarize(&solid_with_patch(400, 200)).expect("summary");
        assert_eq!(s.dominant, [20, 160, 170]);
    }

    #[test]
    fn thumbhash_round_trips_to_the_right_aspect_and_colour() {
        let s = summarize(&solid_with_patch(400, 200)).expect("summary");
        assert!(s.thumbhash.len() <= 30, "{} bytes", s.thumbhash.len());
        let ratio = thumbhash::thumb_hash_to_approximate_aspect_ratio(&s.thumbhash).expect("ratio");
        // ThumbHash quantises the aspect (7 x 4 luminance terms here).
        assert!((ratio - 2.0).abs() < 0.3, "aspect {ratio}");
        let (r, g, b, a) = thumbhash::thumb_hash_to_average_rgba(&s.thumbhash).expect("avg");
        // 7/8 teal, 1/8 red.
        let want = [
            (7.0 * 20.0 + 250.0) / 8.0 / 255.0,
            (7.0 * 160.0 + 10.0) / 8.0 / 255.0,
            (7.0 * 170.0 + 10.0) / 8.0 / 255.0,
        ];
        for (got, want) in [r, g, b].into_iter().zip(want) {
            assert!((f64::from(got) - want).abs() < 0.05, "{got} vs {want}");
        }
        assert!(a > 0.99);
    }

    #[test]
    fn tiny_and_transparent_images_summarize() {
        let one = Pixels {
            buf: vec![1, 2, 3],
            width: 1,
            height: 1,
            alpha: false,
        };
        assert_eq!(summarize(&one).expect("1x1").dominant, [1, 2, 3]);
        let clear = Pixels {
            buf: vec![0; 300 * 7 * 4],
            width: 300,
            height: 7,
            alpha: true,
        };
        let s = summarize(&clear).expect("transparent");
        assert_eq!(s.dominant, [0, 0, 0]);
        assert!(!s.thumbhash.is_empty());
    }
}
