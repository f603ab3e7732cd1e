//! `f_lqip`: a low-quality image placeholder for inline use (`data:` URI in the page), made
//! from the same transform: the planned box scaled to fit 32 × 32 (so shrink-on-load decodes
//! little), blurred (sigma 1 px unless `blur_` is given), encoded as lossy WebP — every current
//! browser shows WebP — at the highest quality of 40, 20, 5 that fits in 1 KB.

use super::{encode, filter, Codecs, PipelineError, Pixels};
use crate::format::Format;
use crate::options::Transform;

/// Longest side of a placeholder.
pub(crate) const SIDE: u32 = 32;
/// Largest placeholder, in bytes.
pub(crate) const MAX_BYTES: usize = 1024;

/// `t` with its box scaled to fit [`SIDE`] × [`SIDE`] (the shape kept); a box-less transform
/// gets a `SIDE` × `SIDE` box, which `c_fit` fits inside.
pub(crate) fn transform(t: &Transform) -> Transform {
    let mut out = t.clone();
    let fit = |v: u32, longest: u32| {
        let scaled = (u64::from(v) * u64::from(SIDE) + u64::from(longest) / 2) / u64::from(longest);
        scaled.clamp(1, u64::from(SIDE)) as u32
    };
    match (t.width, t.height) {
        (Some(w), Some(h)) if w.max(h) > SIDE => {
            let longest = w.max(h);
            out.width = Some(fit(w, longest));
            out.height = Some(fit(h, longest));
        }
        (Some(w), None) => out.width = Some(w.min(SIDE)),
        (None, Some(h)) => out.height = Some(h.min(SIDE)),
        (None, None) => {
            out.width = Some(SIDE);
            out.height = Some(SIDE);
        }
        (Some(_), Some(_)) => {}
    }
    out
}

/// Blur (unless the transform blurred already) and encode within [`MAX_BYTES`].
pub(crate) fn encode(img: Pixels, blurred: bool) -> Result<Vec<u8>, PipelineError> {
    let img = if blurred {
        img
    } else {
        filter::blur(img, 1.0)?
    };
    let mut smallest = Vec::new();
    for quality in [40, 20, 5] {
        let out = encode::encode(&img, Format::Webp, quality, &Codecs::default(), None)?;
        if out.len() <= MAX_BYTES {
            return Ok(out);
        }
        smallest = out;
    }
    // A 32 x 32 lossy WebP at quality 5 is a few hundred bytes; this is only a backstop.
    Ok(smallest)
}
