//! ICC colour management: read a source's embedded profile and convert its pixels to sRGB
//! (moxcms, pure Rust), so a Display P3 / Adobe RGB / CMYK photo looks the same after the
//! metadata is stripped as it did with its profile.
//!
//! The profile comes from the container (JPEG `APP2 ICC_PROFILE` chunks, PNG `iCCP`, WebP
//! `ICCP`; GIF has none). RGB profiles convert the resized pixels (a pass over the output, not
//! the source); CMYK profiles convert at decode time, since everything after decode is RGB.
//! A profile that is missing, unreadable, for another colour model, or already sRGB leaves the
//! pixels alone: like browsers, a broken profile never fails the request.

use std::sync::{Arc, Mutex};

use moxcms::{
    ColorProfile, DataColorSpace, Layout, ToneReprCurve, Transform8BitExecutor, TransformOptions,
};

use super::container::MAX_PROFILE_BYTES;
use super::probe::jpeg_segments;
use super::{PipelineError, Pixels};

/// A profile a codec found, if it is one worth parsing: not empty, within `MAX_PROFILE_BYTES`.
pub(crate) fn bounded(profile: Option<Vec<u8>>) -> Option<Vec<u8>> {
    profile.filter(|p| !p.is_empty() && p.len() <= MAX_PROFILE_BYTES)
}

/// A JPEG's profile, reassembled from its `APP2 "ICC_PROFILE\0" <seq> <count>` chunks (in
/// sequence order, each once); `None` when a chunk is missing.
pub(crate) fn jpeg_profile(bytes: &[u8]) -> Option<Vec<u8>> {
    const ID: &[u8] = b"ICC_PROFILE\0";
    let mut chunks: Vec<(u8, &[u8])> = Vec::new();
    let mut count = 0u8;
    for (code, segment) in jpeg_segments(bytes) {
        if code != 0xE2 {
            continue;
        }
        let Some([seq, n, data @ ..]) = segment.strip_prefix(ID) else {
            continue;
        };
        count = *n;
        if !chunks.iter().any(|(s, _)| s == seq) {
            chunks.push((*seq, data));
        }
    }
    chunks.sort_by_key(|(seq, _)| *seq);
    let complete = count > 0
        && chunks.len() == usize::from(count)
        && chunks
            .iter()
            .zip(1u16..)
            .all(|((seq, _), want)| u16::from(*seq) == want);
    if !complete {
        return None;
    }
    let len: usize = chunks.iter().map(|(_, d)| d.len()).sum();
    if len > MAX_PROFILE_BYTES {
        return None;
    }
    Some(chunks.iter().flat_map(|(_, d)| d.iter().copied()).collect())
}

/// Convert RGB(A) `pixels` from `profile` to sRGB in place. Leaves them alone when the profile
/// is not an RGB profile, is sRGB already, or cannot be read.
pub(crate) fn rgb_to_srgb(pixels: &mut Pixels, profile: &[u8]) -> Result<(), PipelineError> {
    let layout = if pixels.alpha {
        Layout::Rgba
    } else {
        Layout::Rgb
    };
    let Some(transform) = transform(profile, DataColorSpace::Rgb, layout, layout) else {
        return Ok(());
    };
    // In rows of a bounded block, so no second image-sized buffer is needed.
    let channels = if pixels.alpha { 4 } else { 3 };
    let block = 4096 * channels;
    let mut out = vec![0u8; block.min(pixels.buf.len())];
    for chunk in pixels.buf.chunks_mut(block) {
        let dst = &mut out[..chunk.len()];
        transform
            .transform(chunk, dst)
            .map_err(|e| PipelineError::Internal(format!("colour transform: {e}")))?;
        chunk.copy_from_slice(dst);
    }
    Ok(())
}

/// Convert CMYK (4 bytes a pixel, as libjpeg hands it out: inverted when `inverted`, the Adobe
/// convention) to sRGB through a CMYK `profile`, into a new RGB buffer. `None` when the
/// profile is not a usable CMYK profile (the caller falls back to the naive conversion).
pub(crate) fn cmyk_to_srgb(cmyk: &[u8], profile: &[u8], inverted: bool) -> Option<Vec<u8>> {
    let transform = transform(profile, DataColorSpace::Cmyk, Layout::Rgba, Layout::Rgb)?;
    let pixels = cmyk.len() / 4;
    let mut rgb = super::alloc_zeroed(pixels.checked_mul(3)?)?;
    const BLOCK: usize = 4096;
    let mut src = vec![0u8; BLOCK.min(pixels) * 4];
    for (i, chunk) in cmyk[..pixels * 4].chunks(BLOCK * 4).enumerate() {
        let src = &mut src[..chunk.len()];
        src.copy_from_slice(chunk);
        if inverted {
            src.iter_mut().for_each(|v| *v = 255 - *v);
        }
        let start = i * BLOCK * 3;
        let dst = rgb.get_mut(start..start + chunk.len() / 4 * 3)?;
        transform.transform(src, dst).ok()?;
    }
    Some(rgb)
}

/// A profile's transform to sRGB, `None` when there is nothing to do (unreadable, another
/// colour model than `space`, already sRGB). Building one parses the profile and fills its
/// tables (about a millisecond); the last few are kept, since most photos carry one of a
/// handful of profiles (Display P3, Adobe RGB, sRGB).
/// Most tags we let a profile have; real ones have about 10 to 30.
const MAX_PROFILE_TAGS: usize = 100;

/// The profile's tag table is small and names every tag once. moxcms parses each entry of
/// the table, so 175 000 entries all pointing at one 2 MB lookup table would cost minutes of
/// CPU; such a profile is ignored (the image is served without colour conversion, as browsers
/// do with a profile they cannot read).
fn tag_table_sane(profile: &[u8]) -> bool {
    let Some(count) = profile.get(128..132) else {
        return false;
    };
    let count = u32::from_be_bytes([count[0], count[1], count[2], count[3]]) as usize;
    if count > MAX_PROFILE_TAGS {
        return false;
    }
    let mut seen: Vec<[u8; 4]> = Vec::with_capacity(count);
    for i in 0..count {
        let Some(sig) = profile.get(132 + 12 * i..136 + 12 * i) else {
            return false;
        };
        let sig = [sig[0], sig[1], sig[2], sig[3]];
        if seen.contains(&sig) {
            return false;
        }
        seen.push(sig);
    }
    true
}

fn transform(
    profile: &[u8],
    space: DataColorSpace,
    src: Layout,
    dst: Layout,
) -> Option<Arc<Transform8BitExecutor>> {
    type Entry = (
        blake3::Hash,
        DataColorSpace,
        Layout,
        Option<Arc<Transform8BitExecutor>>,
    );
    const KEEP: usize = 16;
    static RECENT: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
    let hash = blake3::hash(profile);
    if let Ok(recent) = RECENT.lock() {
        if let Some((.., t)) = recent
            .iter()
            .find(|(h, s, l, _)| *h == hash && *s == space && *l == src)
        {
            return t.clone();
        }
    }
    // Tighter than moxcms's defaults (10 MB tables): real CMYK tables are well under 1 MB.
    let options = moxcms::ParsingOptions {
        max_profile_size: MAX_PROFILE_BYTES,
        max_allowed_clut_size: 2_000_000,
        max_allowed_trc_size: 40_000,
    };
    let made = tag_table_sane(profile)
        .then(|| ColorProfile::new_from_slice_with_options(profile, options).ok())
        .flatten()
        .and_then(|source| {
            if source.color_space != space || (space == DataColorSpace::Rgb && is_srgb(&source)) {
                return None;
            }
            let srgb = ColorProfile::new_srgb();
            source
                .create_transform_8bit(src, &srgb, dst, TransformOptions::default())
                .ok()
        });
    if let Ok(mut recent) = RECENT.lock() {
        if recent.len() >= KEEP {
            recent.remove(0);
        }
        recent.push((hash, space, src, made.clone()));
    }
    made
}

/// Whether a profile is (close enough to) sRGB that converting would only add rounding: sRGB
/// primaries and an sRGB tone curve on every channel.
fn is_srgb(p: &ColorProfile) -> bool {
    let srgb = ColorProfile::new_srgb();
    let close = |a: moxcms::Xyzd, b: moxcms::Xyzd| {
        (a.x - b.x).abs() < 0.003 && (a.y - b.y).abs() < 0.003 && (a.z - b.z).abs() < 0.003
    };
    let colorants = close(p.red_colorant, srgb.red_colorant)
        && close(p.green_colorant, srgb.green_colorant)
        && close(p.blue_colorant, srgb.blue_colorant);
    colorants
        && [&p.red_trc, &p.green_trc, &p.blue_trc]
            .into_iter()
            .all(|trc| trc.as_ref().is_some_and(is_srgb_curve))
}

/// A tone curve within 0.5 % of the sRGB transfer function at a few points.
fn is_srgb_curve(trc: &ToneReprCurve) -> bool {
    [0.02f64, 0.1, 0.25, 0.5, 0.75, 0.9].iter().all(|&x| {
        let want = if x <= 0.04045 {
            x / 12.92
        } else {
            ((x + 0.055) / 1.055).powf(2.4)
        };
        eval_curve(trc, x).is_some_and(|got| (got - want).abs() < 0.005)
    })
}

/// An ICC tone curve at `x` in 0..=1 (the `curv` table or a `para` function).
fn eval_curve(trc: &ToneReprCurve, x: f64) -> Option<f64> {
    match trc {
        ToneReprCurve::Lut(lut) => match lut.len() {
            0 => Some(x),
            1 => Some(x.powf(f64::from(lut[0]) / 256.0)),
            n => {
                let pos = x * (n - 1) as f64;
                let i = (pos.floor() as usize).min(n - 2);
                let frac = pos - i as f64;
                let a = f64::from(*lut.get(i)?);
                let b = f64::from(*lut.get(i + 1)?);
                Some((a + (b - a) * frac) / 65535.0)
            }
        },
        ToneReprCurve::Parametric(p) => {
            let g = |i: usize| p.get(i).map(|v| f64::from(*v));
            let pow = |base: f64, e: f64| if base > 0.0 { base.powf(e) } else { 0.0 };
            Some(match p.len() {
                1 => pow(x, g(0)?),
                3 => {
                    let (gm, a, b) = (g(0)?, g(1)?, g(2)?);
                    if x >= -b / a {
                        pow(a * x + b, gm)
                    } else {
                        0.0
                    }
                }
                4 => {
                    let (gm, a, b, c) = (g(0)?, g(1)?, g(2)?, g(3)?);
                    if x >= -b / a {
                        pow(a * x + b, gm) + c
                    } else {
                        c
                    }
                }
                5 => {
                    let (gm, a, b, c, d) = (g(0)?, g(1)?, g(2)?, g(3)?, g(4)?);
                    if x >= d {
                        pow(a * x + b, gm)
                    } else {
                        c * x
                    }
                }
                7 => {
                    let (gm, a, b, c, d, e, f) = (g(0)?, g(1)?, g(2)?, g(3)?, g(4)?, g(5)?, g(6)?);
                    if x >= d {
                        pow(a * x + b, gm) + e
                    } else {
                        c * x + f
                    }
                }
                _ => return None,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn color_profiles_with_huge_or_repeated_tag_tables_are_ignored() {
        let table = |sigs: &[&[u8; 4]]| {
            let mut p = vec![0u8; 128];
            p.extend_from_slice(&(sigs.len() as u32).to_be_bytes());
            for sig in sigs {
                p.extend_from_slice(*sig);
                p.extend_from_slice(&[0; 8]);
            }
            p
        };
        assert!(tag_table_sane(&table(&[
            b"rXYZ", b"gXYZ", b"bXYZ", b"rTRC"
        ])));
        assert!(!tag_table_sane(&table(&[b"A2B0", b"rXYZ", b"A2B0"])));
        assert!(!tag_table_sane(&table(&vec![b"A2B0"; 101])));
        // A count larger than the table that follows.
        let mut short = table(&[b"rXYZ"]);
        short[131] = 5;
        assert!(!tag_table_sane(&short));
    }

    /// sRGB encoding of a linear value.
    fn srgb_encode(v: f64) -> f64 {
        let v = v.clamp(0.0, 1.0);
        if v <= 0.003_130_8 {
            v * 12.92
        } else {
            1.055 * v.powf(1.0 / 2.4) - 0.055
        }
    }

    /// The sRGB 8-bit value of a Display P3 8-bit colour, from the published matrices (P3 uses
    /// the sRGB transfer curve and a D65 white), independent of moxcms.
    pub(crate) fn p3_to_srgb_expected(rgb: [u8; 3]) -> [f64; 3] {
        let lin = rgb.map(|v| {
            let x = f64::from(v) / 255.0;
            if x <= 0.04045 {
                x / 12.92
            } else {
                ((x + 0.055) / 1.055).powf(2.4)
            }
        });
        // Linear P3 -> linear sRGB (both D65).
        let m = [
            [1.224_940_2, -0.224_940_2, 0.0],
            [-0.042_056_9, 1.042_056_9, 0.0],
            [-0.019_637_6, -0.078_636_0, 1.098_273_6],
        ];
        let mut out = [0.0; 3];
        for (o, row) in out.iter_mut().zip(m) {
            *o = srgb_encode(row[0] * lin[0] + row[1] * lin[1] + row[2] * lin[2]) * 255.0;
        }
        out
    }

    #[test]
    fn p3_pixels_convert_to_the_expected_srgb_values() {
        let profile = ColorProfile::new_display_p3().encode().expect("encode p3");
        let colours = [
            [200u8, 100, 50],
            [40, 160, 90],
            [128, 128, 128],
            [90, 60, 210],
        ];
        let mut px = Pixels {
            buf: colours.iter().flatten().copied().collect(),
            width: 4,
            height: 1,
            alpha: false,
        };
        rgb_to_srgb(&mut px, &profile).expect("convert");
        for (i, c) in colours.iter().enumerate() {
            let want = p3_to_srgb_expected(*c);
            for (ch, want) in want.iter().enumerate() {
                let got = f64::from(px.buf[i * 3 + ch]);
                assert!(
                    (got - want).abs() <= 2.0,
                    "{c:?} channel {ch}: got {got}, want {want:.1}"
                );
            }
        }
        // Saturated P3 red is outside sRGB: the conversion changes it.
        assert_ne!(&px.buf[..3], &[200, 100, 50]);
    }

    #[test]
    fn srgb_profile_and_garbage_leave_pixels_alone() {
        let srgb = ColorProfile::new_srgb().encode().expect("encode srgb");
        for profile in [srgb.as_slice(), b"not a profile", &[]] {
            let mut px = Pixels {
                buf: vec![200, 100, 50, 7],
                width: 1,
                height: 1,
                alpha: true,
            };
            rgb_to_srgb(&mut px, profile).expect("no error");
            assert_eq!(px.buf, vec![200, 100, 50, 7]);
        }
    }

    #[test]
    fn alpha_is_kept_through_conversion() {
        let profile = ColorProfile::new_adobe_rgb().encode().expect("encode");
        let mut px = Pixels {
            buf: vec![200, 100, 50, 77, 10, 20, 30, 0],
            width: 2,
            height: 1,
            alpha: true,
        };
        rgb_to_srgb(&mut px, &profile).expect("convert");
        assert_eq!((px.buf[3], px.buf[7]), (77, 0));
        assert_ne!(&px.buf[..3], &[200, 100, 50], "Adobe RGB differs from sRGB");
    }

    /// A JPEG header with the profile split over APP2 chunks (out of order).
    fn jpeg_with_chunks(chunks: &[(u8, u8, &[u8])]) -> Vec<u8> {
        let mut v = vec![0xFF, 0xD8];
        for (seq, n, data) in chunks {
            let mut payload = b"ICC_PROFILE\0".to_vec();
            payload.extend([*seq, *n]);
            payload.extend_from_slice(data);
            let len = u16::try_from(payload.len() + 2).expect("small");
            v.extend([0xFF, 0xE2]);
            v.extend(len.to_be_bytes());
            v.extend(payload);
        }
        v.extend([0xFF, 0xDA, 0x00, 0x02]);
        v
    }

    #[test]
    fn jpeg_profile_chunks_are_reassembled_in_order() {
        let jpeg = jpeg_with_chunks(&[(2, 2, b"world"), (1, 2, b"hello ")]);
        assert_eq!(jpeg_profile(&jpeg).as_deref(), Some(&b"hello world"[..]));
        // A missing chunk: no profile rather than half of one.
        let jpeg = jpeg_with_chunks(&[(1, 3, b"a"), (2, 3, b"b")]);
        assert_eq!(jpeg_profile(&jpeg), None);
        let jpeg = jpeg_with_chunks(&[]);
        assert_eq!(jpeg_profile(&jpeg), None);
    }

    #[test]
    fn srgb_curve_is_recognised_and_gamma_22_is_not() {
        let srgb = ColorProfile::new_srgb();
        assert!(is_srgb(&srgb));
        assert!(!is_srgb(&ColorProfile::new_display_p3()));
        assert!(!is_srgb_curve(&ToneReprCurve::Parametric(vec![2.2])));
        assert!(is_srgb_curve(&ToneReprCurve::Parametric(vec![
            2.4,
            1.0 / 1.055,
            0.055 / 1.055,
            1.0 / 12.92,
            0.04045
        ])));
    }
}
