//! Geometry: where to crop, what size to resize to, and the final canvas, computed once from a
//! [`Transform`] and the (already EXIF-oriented) source size. Pure: no pixels, no I/O.
//!
//! What it deliberately does not do: it never looks at pixels, formats or EXIF (the caller passes
//! the oriented size), and it does not check source limits (the pipeline's header probe does).
//! Arithmetic is done in `f64`; every output size is rounded to nearest and is never 0.

use crate::options::{Fit, Gravity, Transform};

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
///
/// A zero source dimension is treated as 1 so the result is always well-formed; decoders never
/// report a 0-sized image, so this only keeps the function total.
pub fn plan(
    t: &Transform,
    src_w: u32,
    src_h: u32,
    max_output_pixels: u64,
) -> Result<Plan, LayoutError> {
    let (sw, sh) = (f64::from(src_w.max(1)), f64::from(src_h.max(1)));
    let whole = Rect {
        x: 0.0,
        y: 0.0,
        width: sw,
        height: sh,
    };
    let (resize, canvas, crop, offset) = match (t.width, t.height) {
        (None, None) => {
            let size = (src_w.max(1), src_h.max(1));
            (size, size, whole, (0, 0))
        }
        (Some(w), Some(h)) => {
            let (w, h) = (w.max(1), h.max(1));
            match t.fit {
                Fit::Fit => {
                    let size = fit_size(sw, sh, Some(w), Some(h), t.enlarge);
                    (size, size, whole, (0, 0))
                }
                Fit::Fill => {
                    let crop = fill_crop(sw, sh, w, h, t.gravity);
                    let size = if t.enlarge || crop.width + 1e-9 >= f64::from(w) {
                        (w, h)
                    } else {
                        (round_px(crop.width), round_px(crop.height))
                    };
                    (size, size, crop, (0, 0))
                }
                Fit::Scale => {
                    let size = if t.enlarge {
                        (w, h)
                    } else {
                        let (fw, fh) = (f64::from(w), f64::from(h));
                        let k = (sw / fw).min(sh / fh).min(1.0);
                        (round_px(fw * k), round_px(fh * k))
                    };
                    (size, size, whole, (0, 0))
                }
                Fit::Outside => {
                    let scale = (f64::from(w) / sw).max(f64::from(h) / sh);
                    let scale = if t.enlarge { scale } else { scale.min(1.0) };
                    let size = (round_px(sw * scale), round_px(sh * scale));
                    (size, size, whole, (0, 0))
                }
                Fit::Pad => {
                    let size = fit_size(sw, sh, Some(w), Some(h), t.enlarge);
                    let (gx, gy) = gravity_factors(t.gravity, sw, sh);
                    let offset = (
                        place(w.saturating_sub(size.0), gx),
                        place(h.saturating_sub(size.1), gy),
                    );
                    (size, (w, h), whole, offset)
                }
            }
        }
        (w, h) => {
            let size = fit_size(sw, sh, w, h, t.enlarge);
            (size, size, whole, (0, 0))
        }
    };
    let pixels = u64::from(canvas.0) * u64::from(canvas.1);
    if pixels > max_output_pixels {
        return Err(LayoutError::OutputTooLarge {
            width: canvas.0,
            height: canvas.1,
            limit: max_output_pixels,
        });
    }
    Ok(Plan {
        crop,
        resize,
        canvas,
        offset,
    })
}

/// Where a `w` x `h` window (at most the image) sits in an `sw` x `sh` image by gravity: the
/// top-left corner, the window inside the image. `fill`'s rule: compass gravities align to the
/// sides, a focal point is the window's centre as far as the image allows, `auto` is the centre.
pub fn window(sw: u32, sh: u32, w: u32, h: u32, gravity: Gravity) -> (u32, u32) {
    let (fw, fh) = (f64::from(sw.max(1)), f64::from(sh.max(1)));
    let (cw, ch) = (f64::from(w.min(sw)), f64::from(h.min(sh)));
    let (x, y) = match gravity {
        Gravity::Focal { .. } | Gravity::Point { .. } => {
            let (fx, fy) = gravity_factors(gravity, fw, fh);
            (fx * fw - cw / 2.0, fy * fh - ch / 2.0)
        }
        _ => {
            let (gx, gy) = gravity_factors(gravity, fw, fh);
            ((fw - cw) * gx, (fh - ch) * gy)
        }
    };
    // `as` saturates; the clamps keep the window inside.
    (
        x.clamp(0.0, fw - cw).round() as u32,
        y.clamp(0.0, fh - ch).round() as u32,
    )
}

/// Round a size to the nearest pixel, never 0; saturates at `u32::MAX` (the output-size check
/// then rejects it).
fn round_px(v: f64) -> u32 {
    // `as` saturates for out-of-range floats and maps NaN to 0, which `max(1)` then fixes.
    (v.round() as u32).max(1)
}

/// The `fit` size: the whole source scaled to fit inside the given box dimensions.
fn fit_size(sw: f64, sh: f64, w: Option<u32>, h: Option<u32>, enlarge: bool) -> (u32, u32) {
    let scale = match (w, h) {
        (Some(w), Some(h)) => (f64::from(w) / sw).min(f64::from(h) / sh),
        (Some(w), None) => f64::from(w) / sw,
        (None, Some(h)) => f64::from(h) / sh,
        (None, None) => 1.0,
    };
    let scale = if enlarge { scale } else { scale.min(1.0) };
    (round_px(sw * scale), round_px(sh * scale))
}

/// The largest rectangle with aspect `w / h` inside the source, placed by gravity.
fn fill_crop(sw: f64, sh: f64, w: u32, h: u32, gravity: Gravity) -> Rect {
    let aspect = f64::from(w) / f64::from(h);
    let (cw, ch) = if sw / sh > aspect {
        ((sh * aspect).min(sw), sh)
    } else {
        (sw, (sw / aspect).min(sh))
    };
    let (x, y) = match gravity {
        // A focal point: the crop's centre on it, as near as the image allows.
        Gravity::Focal { .. } | Gravity::Point { .. } => {
            let (fx, fy) = gravity_factors(gravity, sw, sh);
            (fx * sw - cw / 2.0, fy * sh - ch / 2.0)
        }
        _ => {
            let (gx, gy) = gravity_factors(gravity, sw, sh);
            ((sw - cw) * gx, (sh - ch) * gy)
        }
    };
    Rect {
        x: x.clamp(0.0, sw - cw),
        y: y.clamp(0.0, sh - ch),
        width: cw,
        height: ch,
    }
}

/// Where gravity puts the kept region along each axis: 0 = left/top, 0.5 = centre, 1 =
/// right/bottom; a focal point's own position as a fraction of the `sw` x `sh` image.
fn gravity_factors(g: Gravity, sw: f64, sh: f64) -> (f64, f64) {
    match g {
        Gravity::Focal { x, y } => (f64::from(x) / 1000.0, f64::from(y) / 1000.0),
        Gravity::Point { x, y } => (
            (f64::from(x) / sw).clamp(0.0, 1.0),
            (f64::from(y) / sh).clamp(0.0, 1.0),
        ),
        // `g_auto` plans the centred crop; the pipeline moves it once it has the pixels.
        Gravity::Center | Gravity::Auto => (0.5, 0.5),
        Gravity::North => (0.5, 0.0),
        Gravity::South => (0.5, 1.0),
        Gravity::East => (1.0, 0.5),
        Gravity::West => (0.0, 0.5),
        Gravity::NorthEast => (1.0, 0.0),
        Gravity::NorthWest => (0.0, 0.0),
        Gravity::SouthEast => (1.0, 1.0),
        Gravity::SouthWest => (0.0, 1.0),
    }
}

/// Offset of a placed image inside `free` spare pixels, `factor` of the way along (rounded
/// down, so the centre rounds down).
fn place(free: u32, factor: f64) -> u32 {
    if factor <= 0.0 {
        0
    } else if factor >= 1.0 {
        free
    } else {
        // `as` saturates; the product is below `free`.
        ((f64::from(free) * factor).floor() as u32).min(free)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(w: Option<u32>, h: Option<u32>, fit: Fit, gravity: Gravity, enlarge: bool) -> Transform {
        Transform {
            width: w,
            height: h,
            fit,
            gravity,
            enlarge,
            ..Transform::default()
        }
    }

    fn rect(x: f64, y: f64, width: f64, height: f64) -> Rect {
        Rect {
            x,
            y,
            width,
            height,
        }
    }

    #[track_caller]
    fn check(
        tr: Transform,
        src: (u32, u32),
        resize: (u32, u32),
        canvas: (u32, u32),
        offset: (u32, u32),
    ) {
        let p = plan(&tr, src.0, src.1, u64::MAX).expect("plan");
        assert_eq!(
            (p.resize, p.canvas, p.offset),
            (resize, canvas, offset),
            "{tr:?} on {src:?}"
        );
    }

    #[track_caller]
    fn check_crop(tr: Transform, src: (u32, u32), crop: Rect) {
        let p = plan(&tr, src.0, src.1, u64::MAX).expect("plan");
        let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
        assert!(
            close(p.crop.x, crop.x)
                && close(p.crop.y, crop.y)
                && close(p.crop.width, crop.width)
                && close(p.crop.height, crop.height),
            "{tr:?} on {src:?}: got {:?}, want {crop:?}",
            p.crop
        );
    }

    use Fit::{Fill, Pad, Scale};
    use Gravity::*;

    #[test]
    fn plan_no_size_keeps_source() {
        check(
            t(None, None, Fit::Fit, Center, false),
            (2560, 1600),
            (2560, 1600),
            (2560, 1600),
            (0, 0),
        );
        check(
            t(None, None, Fill, Center, true),
            (7, 3),
            (7, 3),
            (7, 3),
            (0, 0),
        );
        check_crop(
            t(None, None, Fill, Center, false),
            (7, 3),
            rect(0.0, 0.0, 7.0, 3.0),
        );
    }

    #[test]
    fn plan_fit_table_matches() {
        let f = |w, h, e| t(w, h, Fit::Fit, Center, e);
        check(
            f(Some(300), None, false),
            (2560, 1600),
            (300, 188),
            (300, 188),
            (0, 0),
        );
        check(
            f(None, Some(100), false),
            (2560, 1600),
            (160, 100),
            (160, 100),
            (0, 0),
        );
        check(
            f(Some(300), Some(300), false),
            (2560, 1600),
            (300, 188),
            (300, 188),
            (0, 0),
        );
        check(
            f(Some(300), Some(100), false),
            (2560, 1600),
            (160, 100),
            (160, 100),
            (0, 0),
        );
        // No enlargement without `up_1`, enlargement with it.
        check(
            f(Some(5000), None, false),
            (2560, 1600),
            (2560, 1600),
            (2560, 1600),
            (0, 0),
        );
        check(
            f(Some(5120), None, true),
            (2560, 1600),
            (5120, 3200),
            (5120, 3200),
            (0, 0),
        );
        // Extreme aspect never rounds to 0.
        check(
            f(Some(10), None, false),
            (20000, 1),
            (10, 1),
            (10, 1),
            (0, 0),
        );
    }

    #[test]
    fn plan_fill_table_matches() {
        let f = |g| t(Some(300), Some(300), Fill, g, false);
        check(f(Center), (2560, 1600), (300, 300), (300, 300), (0, 0));
        check_crop(f(Center), (2560, 1600), rect(480.0, 0.0, 1600.0, 1600.0));
        check_crop(f(North), (2560, 1600), rect(480.0, 0.0, 1600.0, 1600.0));
        check_crop(f(West), (2560, 1600), rect(0.0, 0.0, 1600.0, 1600.0));
        check_crop(f(East), (2560, 1600), rect(960.0, 0.0, 1600.0, 1600.0));
        check_crop(f(NorthWest), (2560, 1600), rect(0.0, 0.0, 1600.0, 1600.0));
        check_crop(f(SouthEast), (2560, 1600), rect(960.0, 0.0, 1600.0, 1600.0));
        // Portrait source: gravity moves the crop vertically.
        check_crop(f(North), (1600, 2560), rect(0.0, 0.0, 1600.0, 1600.0));
        check_crop(f(Center), (1600, 2560), rect(0.0, 480.0, 1600.0, 1600.0));
        check_crop(f(South), (1600, 2560), rect(0.0, 960.0, 1600.0, 1600.0));
        check_crop(f(NorthEast), (1600, 2560), rect(0.0, 0.0, 1600.0, 1600.0));
        check_crop(f(SouthWest), (1600, 2560), rect(0.0, 960.0, 1600.0, 1600.0));
        // Wide box on a landscape source.
        check_crop(
            t(Some(400), Some(100), Fill, Center, false),
            (2560, 1600),
            rect(0.0, 480.0, 2560.0, 640.0),
        );
    }

    #[test]
    fn plan_fill_small_source_gives_largest_box_aspect_without_enlarge() {
        let tr = t(Some(400), Some(200), Fill, Center, false);
        check(tr.clone(), (300, 300), (300, 150), (300, 150), (0, 0));
        check_crop(tr, (300, 300), rect(0.0, 75.0, 300.0, 150.0));
        check(
            t(Some(400), Some(200), Fill, Center, true),
            (300, 300),
            (400, 200),
            (400, 200),
            (0, 0),
        );
    }

    #[test]
    fn plan_fill_one_dimension_behaves_as_fit() {
        check(
            t(Some(300), None, Fill, Center, false),
            (2560, 1600),
            (300, 188),
            (300, 188),
            (0, 0),
        );
        check(
            t(None, Some(300), Scale, Center, false),
            (2560, 1600),
            (480, 300),
            (480, 300),
            (0, 0),
        );
        check(
            t(None, Some(300), Pad, Center, false),
            (2560, 1600),
            (480, 300),
            (480, 300),
            (0, 0),
        );
    }

    #[test]
    fn plan_scale_table_matches() {
        check(
            t(Some(300), Some(300), Scale, Center, false),
            (2560, 1600),
            (300, 300),
            (300, 300),
            (0, 0),
        );
        // Box larger than the source: shrink the box keeping its aspect.
        check(
            t(Some(400), Some(200), Scale, Center, false),
            (300, 300),
            (300, 150),
            (300, 150),
            (0, 0),
        );
        check(
            t(Some(100), Some(400), Scale, Center, false),
            (300, 300),
            (75, 300),
            (75, 300),
            (0, 0),
        );
        check(
            t(Some(400), Some(200), Scale, Center, true),
            (300, 300),
            (400, 200),
            (400, 200),
            (0, 0),
        );
    }

    #[test]
    fn plan_pad_places_image_by_gravity() {
        let p = |g| t(Some(300), Some(300), Pad, g, false);
        check(p(Center), (2560, 1600), (300, 188), (300, 300), (0, 56));
        check(p(North), (2560, 1600), (300, 188), (300, 300), (0, 0));
        check(p(South), (2560, 1600), (300, 188), (300, 300), (0, 112));
        check(p(West), (1600, 2560), (188, 300), (300, 300), (0, 0));
        check(p(East), (1600, 2560), (188, 300), (300, 300), (112, 0));
        check(p(SouthEast), (100, 50), (100, 50), (300, 300), (200, 250));
        check(p(NorthWest), (100, 50), (100, 50), (300, 300), (0, 0));
        check(
            t(Some(300), Some(300), Pad, Center, true),
            (100, 50),
            (300, 150),
            (300, 300),
            (0, 75),
        );
    }

    #[test]
    fn plan_output_over_limit_is_rejected() {
        let tr = t(Some(4000), Some(4000), Pad, Center, false);
        assert_eq!(
            plan(&tr, 10, 10, 1_000_000),
            Err(LayoutError::OutputTooLarge {
                width: 4000,
                height: 4000,
                limit: 1_000_000
            })
        );
        assert!(plan(
            &t(None, None, Fit::Fit, Center, false),
            1001,
            1000,
            1_000_000
        )
        .is_err());
        assert!(plan(
            &t(None, None, Fit::Fit, Center, false),
            1000,
            1000,
            1_000_000
        )
        .is_ok());
    }

    #[test]
    fn plan_focal_point_centres_the_fill_crop_as_far_as_the_image_allows() {
        let fill = |g| t(Some(100), Some(100), Fill, g, false);
        // 2000x1000 source: the crop is 1000x1000 and can move along x only.
        let focal = |x, y| Focal { x, y };
        check_crop(
            fill(focal(300, 500)),
            (2000, 1000),
            rect(100.0, 0.0, 1000.0, 1000.0),
        );
        check_crop(
            fill(focal(100, 0)),
            (2000, 1000),
            rect(0.0, 0.0, 1000.0, 1000.0),
        );
        check_crop(
            fill(focal(1000, 1000)),
            (2000, 1000),
            rect(1000.0, 0.0, 1000.0, 1000.0),
        );
        // The same in pixels, and a point beyond the image is clamped to it.
        check_crop(
            fill(Point { x: 600, y: 9 }),
            (2000, 1000),
            rect(100.0, 0.0, 1000.0, 1000.0),
        );
        check_crop(
            fill(Point { x: 65_536, y: 0 }),
            (2000, 1000),
            rect(1000.0, 0.0, 1000.0, 1000.0),
        );
        // Compass gravities are the focal points 0, 0.5 and 1.
        for (g, f) in [
            (Center, focal(500, 500)),
            (NorthWest, focal(0, 0)),
            (SouthEast, focal(1000, 1000)),
        ] {
            let a = plan(&fill(g), 1999, 1003, u64::MAX).unwrap();
            let b = plan(&fill(f), 1999, 1003, u64::MAX).unwrap();
            assert_eq!(a, b, "{g:?}");
        }
        // `pad` places the image that far along the free space.
        let pad = t(Some(300), Some(300), Pad, focal(250, 1000), false);
        check(pad, (2560, 1600), (300, 188), (300, 300), (0, 112));
        let pad = t(Some(300), Some(300), Pad, focal(500, 250), false);
        check(pad, (1600, 2560), (188, 300), (300, 300), (56, 0));
    }

    #[test]
    fn window_is_placed_by_gravity_inside_the_image() {
        assert_eq!(window(1000, 500, 200, 100, Center), (400, 200));
        assert_eq!(window(1000, 500, 200, 100, NorthEast), (800, 0));
        assert_eq!(window(1000, 500, 200, 100, SouthWest), (0, 400));
        assert_eq!(window(1000, 500, 200, 100, Auto), (400, 200));
        assert_eq!(
            window(1000, 500, 200, 100, Focal { x: 100, y: 500 }),
            (0, 200)
        );
        assert_eq!(
            window(1000, 500, 200, 100, Focal { x: 500, y: 900 }),
            (400, 400)
        );
        assert_eq!(
            window(1000, 500, 200, 100, Point { x: 700, y: 100 }),
            (600, 50)
        );
        // A window larger than the image is the image.
        assert_eq!(window(100, 50, 200, 100, SouthEast), (0, 0));
    }

    #[test]
    fn plan_outside_covers_the_box_without_cropping() {
        let outside = |w, h, enlarge| t(Some(w), Some(h), Fit::Outside, Center, enlarge);
        check(
            outside(300, 300, false),
            (2560, 1600),
            (480, 300),
            (480, 300),
            (0, 0),
        );
        check(
            outside(300, 100, false),
            (2560, 1600),
            (300, 188),
            (300, 188),
            (0, 0),
        );
        check_crop(
            outside(300, 300, false),
            (2560, 1600),
            rect(0.0, 0.0, 2560.0, 1600.0),
        );
        // Never enlarged unless asked.
        check(
            outside(300, 300, false),
            (100, 50),
            (100, 50),
            (100, 50),
            (0, 0),
        );
        check(
            outside(300, 300, true),
            (100, 50),
            (600, 300),
            (600, 300),
            (0, 0),
        );
    }

    fn any_fit() -> impl Strategy<Value = Fit> {
        prop_oneof![
            Just(Fit::Fit),
            Just(Fill),
            Just(Pad),
            Just(Scale),
            Just(Fit::Outside)
        ]
    }

    fn any_gravity() -> impl Strategy<Value = Gravity> {
        prop_oneof![
            Just(Center),
            Just(North),
            Just(South),
            Just(East),
            Just(West),
            Just(NorthEast),
            Just(NorthWest),
            Just(SouthEast),
            Just(SouthWest),
            (0u16..=1000, 0u16..=1000).prop_map(|(x, y)| Focal { x, y }),
            (0u32..=70000, 0u32..=70000).prop_map(|(x, y)| Point { x, y }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        #[test]
        fn plan_random_inputs_keep_invariants(
            sw in 1u32..=20000, sh in 1u32..=20000,
            w in proptest::option::of(1u32..=5000), h in proptest::option::of(1u32..=5000),
            fit in any_fit(), gravity in any_gravity(), enlarge in any::<bool>(),
        ) {
            let tr = t(w, h, fit, gravity, enlarge);
            let p = plan(&tr, sw, sh, u64::MAX).expect("no limit");
            prop_assert!(p.resize.0 >= 1 && p.resize.1 >= 1 && p.canvas.0 >= 1 && p.canvas.1 >= 1);
            // The crop is inside the source.
            let (fw, fh) = (f64::from(sw), f64::from(sh));
            let c = p.crop;
            prop_assert!(c.x >= 0.0 && c.y >= 0.0 && c.width > 0.0 && c.height > 0.0);
            prop_assert!(c.x + c.width <= fw + 1e-6 && c.y + c.height <= fh + 1e-6, "{c:?}");
            // The resized image sits inside the canvas.
            prop_assert!(p.offset.0 + p.resize.0 <= p.canvas.0 && p.offset.1 + p.resize.1 <= p.canvas.1);
            if !enlarge {
                // No enlargement: never more pixels than the crop along either axis.
                prop_assert!(f64::from(p.resize.0) <= c.width.round().max(1.0), "{p:?}");
                prop_assert!(f64::from(p.resize.1) <= c.height.round().max(1.0), "{p:?}");
            }
            if let (Some(w), Some(h), Fit::Outside) = (w, h, fit) {
                // Covers the box (unless that would enlarge), cropping nothing.
                if enlarge {
                    prop_assert!(p.canvas.0 >= w && p.canvas.1 >= h, "{p:?}");
                }
                prop_assert!(c.width == fw && c.height == fh);
            } else if let (Some(w), Some(h)) = (w, h) {
                // Never larger than the box, whatever `enlarge` says.
                prop_assert!(p.canvas.0 <= w && p.canvas.1 <= h, "{p:?}");
                if enlarge && fit != Fit::Fit {
                    prop_assert_eq!(p.canvas, (w, h));
                }
            } else if let Some(w) = w {
                if !enlarge { prop_assert!(p.canvas.0 <= w); }
            } else if let Some(h) = h {
                if !enlarge { prop_assert!(p.canvas.1 <= h); }
            }
            let fits = matches!(fit, Fit::Fit | Pad | Fit::Outside) || w.is_none() || h.is_none();
            if fits {
                // Aspect kept within 1 px (along at least one axis; rounding each side by half a
                // pixel can show as more than 1 px on the other, much shorter axis).
                let (rw, rh) = (f64::from(p.resize.0), f64::from(p.resize.1));
                let dh = (rh - rw * fh / fw).abs();
                let dw = (rw - rh * fw / fh).abs();
                prop_assert!(dh.min(dw) <= 1.0 + 1e-9, "{p:?} on {sw}x{sh}");
            }
        }
    }
}
