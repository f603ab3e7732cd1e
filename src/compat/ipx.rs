//! IPX (`/_ipx/<modifiers>/<source>`), as Nuxt Image and unpic write it: modifiers joined by
//! `,` or `&`, each `key_value` (IPX also splits at `:` and `=`), `_` alone for none; the
//! source is read like a native source (percent-decoded once, as IPX does: a path under
//! `source.base`, or an absolute URL).
//!
//! Meanings follow IPX on sharp: `s_WxH` covers the box (`fit` defaults to sharp's `cover`);
//! `fit_contain|cover|fill|inside|outside` → `c_pad|fill|scale|fit|outside`, `contain`
//! padding with sharp's opaque black unless `b_` says otherwise; never enlarged without
//! `enlarge`; `flip` mirrors top-bottom and `flop` left-right, before `rotate_` turns (in
//! quarter turns, clockwise), as sharp does; `pos_` takes sharp's positions (`top`, `right top` or `right-top`, `north`…,
//! `entropy`/`attention` → `g_auto`); `blur_`/`sharpen_` are sigmas (rounded to a tenth);
//! `crop_`/`extract_` are `left_top_width_height` in source pixels; `trim_` is the
//! threshold (10 without a value). Deliberate differences: `w_` with `h_` is the `s_` box
//! (IPX applies only the last of two resizes), and a GIF stays animated with or without
//! `a`/`animated`. Modifiers sharp has and imgcdn does not (`median`, `gamma`, `negate`,
//! `normalize`, `threshold`, `modulate`, `tint`, `extend`, `flatten`, `kernel` other than
//! `lanczos3`, a sharpen with `flat`/`jagged`, arbitrary angles, named colours) are a 400.

use super::{bad, decimal, finish, hex_color, pixels, quality, request, sigma, Error, Request};
use crate::options::{CropRect, Fit, FormatChoice, Gravity, Rgb, Rotation, Transform};

/// sharp's `contain` background.
const CONTAIN_BACKGROUND: Rgb = Rgb([0, 0, 0]);

/// Parse what follows the route's prefix: `/<modifiers>/<source>`.
pub fn parse(rest: &str, query: Option<&str>) -> Result<Request, Error> {
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    let (modifiers, source) = rest.split_once('/').ok_or(Error::MissingSource)?;
    if source.is_empty() || source == "/" {
        return Err(Error::MissingSource);
    }
    let transform = modifiers_to_transform(modifiers)?;
    // Left percent-encoded: `source::parse` decodes it once, as IPX does.
    request(transform, source.trim_start_matches('/'), query)
}

fn modifiers_to_transform(modifiers: &str) -> Result<Transform, Error> {
    if modifiers.is_empty() {
        return Err(bad("", "no modifiers; use `_` for none"));
    }
    let mut t = Transform::default();
    if modifiers == "_" {
        return Ok(t);
    }
    let (mut fit, mut background) = (None, None);
    let (mut width, mut height, mut size) = (None, None, None);
    let mut seen = Vec::new();
    for token in modifiers.split(['&', ',']) {
        let (key, value) = match token.find(['_', ':', '=']) {
            Some(i) => (&token[..i], &token[i + 1..]),
            None => (token, ""),
        };
        let value = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
        // IPX joins the arguments back with `_`.
        let value = value.replace([':', '='], "_");
        let value = value.as_str();
        let name = canonical_name(key).ok_or_else(|| unsupported(token, key))?;
        if seen.contains(&name) {
            return Err(bad(token, "modifier given more than once"));
        }
        seen.push(name);
        match name {
            "width" => width = Some(size_value(token, value)?),
            "height" => height = Some(size_value(token, value)?),
            "resize" => {
                let (w, h) = match value.split_once('x') {
                    Some((w, h)) => (w, h),
                    None => (value, value),
                };
                size = Some((size_value(token, w)?, size_value(token, h)?));
            }
            "fit" => {
                fit = Some(match value {
                    "cover" => Fit::Fill,
                    "contain" => Fit::Pad,
                    "fill" => Fit::Scale,
                    "inside" => Fit::Fit,
                    "outside" => Fit::Outside,
                    _ => {
                        return Err(bad(
                            token,
                            "fit must be cover, contain, fill, inside or outside",
                        ))
                    }
                });
            }
            "position" => t.gravity = position(token, value)?,
            "background" => {
                background = Some(hex_color(value).ok_or_else(|| {
                    bad(
                        token,
                        "background must be a hex colour (fff or ffffff, # optional)",
                    )
                })?);
            }
            "enlarge" => t.enlarge = flag(token, value)?,
            "kernel" if value == "lanczos3" => {}
            "kernel" => return Err(bad(token, "only the lanczos3 kernel is available")),
            "trim" => {
                t.trim = Some(if value.is_empty() {
                    10
                } else {
                    pixels(value)
                        .and_then(|v| u8::try_from(v).ok())
                        .ok_or_else(|| bad(token, "trim is a threshold from 0 to 255"))?
                });
            }
            "extract" => {
                let parts: Vec<_> = value.split('_').map(pixels).collect();
                t.crop = match parts[..] {
                    [Some(x), Some(y), Some(width), Some(height)] if width > 0 && height > 0 => {
                        Some(CropRect {
                            x,
                            y,
                            width,
                            height,
                        })
                    }
                    _ => {
                        return Err(bad(
                            token,
                            "crop is crop_<left>_<top>_<width>_<height> in pixels",
                        ))
                    }
                };
            }
            "rotate" => {
                t.rotation = quarter_turns(value)
                    .ok_or_else(|| bad(token, "rotate must be a multiple of 90 degrees"))?;
            }
            "flip" => {
                flag(token, value)?;
                t.flip.v = true;
            }
            "flop" => {
                flag(token, value)?;
                t.flip.h = true;
            }
            "sharpen" => {
                t.sharpen = Some(if value.is_empty() {
                    // sharp's argument-less "mild" sharpen.
                    crate::options::Sigma(5)
                } else {
                    decimal(value).and_then(|v| sigma(v, 10.0)).ok_or_else(|| {
                        bad(
                            token,
                            "sharpen takes one sigma from 0.1 to 10 (no flat or jagged)",
                        )
                    })?
                });
            }
            "blur" => {
                t.blur = Some(
                    decimal(value)
                        .and_then(|v| sigma(v, 100.0))
                        .ok_or_else(|| bad(token, "blur is a sigma from 0.1 to 100"))?,
                );
            }
            "grayscale" => t.grayscale = flag(token, value)?,
            "quality" => {
                t.quality = Some(
                    quality(value)
                        .ok_or_else(|| bad(token, "quality must be an integer from 1 to 100"))?,
                );
            }
            "format" => {
                t.format = Some(match value {
                    "auto" => FormatChoice::Auto,
                    _ => FormatChoice::Fixed(super::output_format(value).ok_or_else(|| {
                        bad(
                            token,
                            "format must be jpeg, jpg, png, webp, avif, gif or auto",
                        )
                    })?),
                });
            }
            // imgcdn keeps animations unless `page_` flattens them.
            "animated" => {
                flag(token, value)?;
            }
            _ => return Err(unsupported(token, key)),
        }
    }
    match (size, width, height) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(bad(modifiers, "give s_ or w_/h_, not both"));
        }
        (Some((w, h)), _, _) => {
            t.width = Some(w);
            t.height = Some(h);
            t.fit = fit.unwrap_or(Fit::Fill);
        }
        (None, w, h) => {
            t.width = w;
            t.height = h;
            t.fit = fit.unwrap_or(Fit::Fill);
        }
    }
    if let Some(bg) = background {
        t.background = bg;
    } else if t.fit == Fit::Pad {
        t.background = CONTAIN_BACKGROUND;
    }
    if t.gravity == Gravity::Auto && t.fit != Fit::Fill {
        t.gravity = Gravity::Center;
    }
    // sharp mirrors before it turns.
    super::mirror_before_turn(&mut t);
    let mut t = finish(t);
    if t.fit != Fit::Pad && background.is_none() {
        t.background = Rgb::default();
    }
    Ok(t)
}

/// IPX's modifier names and aliases, by canonical name; `None` for one it does not have.
fn canonical_name(key: &str) -> Option<&'static str> {
    Some(match key {
        "w" | "width" => "width",
        "h" | "height" => "height",
        "s" | "resize" => "resize",
        "fit" => "fit",
        "pos" | "position" => "position",
        "b" | "background" => "background",
        "enlarge" => "enlarge",
        "kernel" => "kernel",
        "trim" => "trim",
        "extract" | "crop" => "extract",
        "rotate" => "rotate",
        "flip" => "flip",
        "flop" => "flop",
        "sharpen" => "sharpen",
        "blur" => "blur",
        "grayscale" => "grayscale",
        "q" | "quality" => "quality",
        "f" | "format" => "format",
        "a" | "animated" => "animated",
        "median" | "gamma" | "negate" | "normalize" | "threshold" | "modulate" | "tint"
        | "extend" | "flatten" | "unflatten" => "unsupported",
        _ => return None,
    })
}

fn unsupported(token: &str, key: &str) -> Error {
    match canonical_name(key) {
        Some("unsupported") => bad(token, format!("imgcdn has no `{key}`")),
        _ => bad(token, "unknown IPX modifier"),
    }
}

fn size_value(token: &str, value: &str) -> Result<u32, Error> {
    pixels(value)
        .filter(|v| *v >= 1)
        .ok_or_else(|| bad(token, "a size is an integer from 1 to 65536"))
}

/// A flag modifier: no value, or `true`/`1` (`false`/`0` turns it off).
fn flag(token: &str, value: &str) -> Result<bool, Error> {
    match value {
        "" | "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(bad(token, "this modifier takes no value")),
    }
}

/// sharp's `position`: sides and corners (`right top`, `right-top`), compass names, or a
/// strategy.
fn position(token: &str, value: &str) -> Result<Gravity, Error> {
    let value = value.replace(['-', '_', '+'], " ");
    let mut words: Vec<&str> = value.split_whitespace().collect();
    words.sort_unstable();
    Ok(match words[..] {
        ["center"] | ["centre"] => Gravity::Center,
        ["top"] | ["north"] => Gravity::North,
        ["bottom"] | ["south"] => Gravity::South,
        ["right"] | ["east"] => Gravity::East,
        ["left"] | ["west"] => Gravity::West,
        ["right", "top"] | ["northeast"] => Gravity::NorthEast,
        ["left", "top"] | ["northwest"] => Gravity::NorthWest,
        ["bottom", "right"] | ["southeast"] => Gravity::SouthEast,
        ["bottom", "left"] | ["southwest"] => Gravity::SouthWest,
        ["attention"] | ["entropy"] => Gravity::Auto,
        _ => {
            return Err(bad(
                token,
                "position must be a side or corner (top, right top, …), a compass name, entropy or attention",
            ))
        }
    })
}

/// Degrees that are a multiple of 90 (negative allowed), as clockwise quarter turns.
pub(crate) fn quarter_turns(value: &str) -> Option<Rotation> {
    let (negative, digits) = match value.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, value),
    };
    let degrees = pixels(digits)?;
    if degrees % 90 != 0 {
        return None;
    }
    let turns = (degrees / 90) % 4;
    let turns = if negative { (4 - turns) % 4 } else { turns };
    u8::try_from(turns).ok().map(Rotation)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options;

    #[track_caller]
    fn same(ipx: &str, native: &str) {
        let r = parse(&format!("/{ipx}/photo.jpg"), None).unwrap_or_else(|e| panic!("{ipx}: {e}"));
        assert_eq!(r.transform, options::parse(native).unwrap(), "{ipx}");
        assert_eq!(r.source, "photo.jpg");
    }

    #[track_caller]
    fn refused(ipx: &str, token: &str) {
        match parse(&format!("/{ipx}/photo.jpg"), None) {
            Err(Error::Option(e)) => assert_eq!(e.token, token, "{ipx}: {e}"),
            other => panic!("{ipx}: {other:?}"),
        }
    }

    #[test]
    fn every_modifier_maps_to_its_native_option() {
        let rows = [
            ("_", "_"),
            ("w_300", "w_300"),
            ("width_300", "w_300"),
            ("h_200", "h_200"),
            ("w_300&h_200", "w_300,h_200,c_fill"),
            ("s_300x200", "w_300,h_200,c_fill"),
            ("resize_300x200", "w_300,h_200,c_fill"),
            ("s_300", "w_300,h_300,c_fill"),
            ("fit_cover,s_300x200", "w_300,h_200,c_fill"),
            ("fit_contain,s_300x200", "w_300,h_200,c_pad,bg_000000"),
            ("fit_contain,s_300x200,b_fff", "w_300,h_200,c_pad"),
            (
                "fit_contain&s_300x200&background_%23ff0000",
                "w_300,h_200,c_pad,bg_ff0000",
            ),
            ("fit_fill,s_300x200", "w_300,h_200,c_scale"),
            ("fit_inside,s_300x200", "w_300,h_200"),
            ("fit_outside,s_300x200", "w_300,h_200,c_outside"),
            ("fit_contain,w_300", "w_300"),
            ("s_300x200,pos_top", "w_300,h_200,c_fill,g_n"),
            ("s_300x200,position_right%20top", "w_300,h_200,c_fill,g_ne"),
            ("s_300x200,pos_left-bottom", "w_300,h_200,c_fill,g_sw"),
            ("s_300x200,pos_southeast", "w_300,h_200,c_fill,g_se"),
            ("s_300x200,pos_attention", "w_300,h_200,c_fill,g_auto"),
            (
                "fit_contain,s_300x200,pos_top",
                "w_300,h_200,c_pad,g_n,bg_000000",
            ),
            ("fit_inside,s_300x200,pos_top", "w_300,h_200"),
            ("w_300,enlarge", "w_300,up_1"),
            ("w_300,kernel_lanczos3", "w_300"),
            ("trim", "trim_10"),
            ("trim_25", "trim_25"),
            ("crop_10_20_300_200", "crop_10_20_300_200"),
            ("extract_10_20_300_200", "crop_10_20_300_200"),
            ("rotate_90", "r_90"),
            ("rotate_-90", "r_270"),
            ("rotate_450", "r_90"),
            ("rotate_0", "_"),
            ("flip", "flip_v"),
            ("flop", "flip_h"),
            ("flip&flop", "flip_hv"),
            ("rotate_90&flip", "r_90,flip_h"),
            ("rotate_180&flop", "r_180,flip_h"),
            ("sharpen", "sharpen_0.5"),
            ("sharpen_1.5", "sharpen_1.5"),
            ("blur_2", "blur_2"),
            ("blur_0.33", "blur_0.3"),
            ("grayscale", "gray_1"),
            ("q_80", "q_80"),
            ("quality_80", "q_80"),
            ("f_jpg", "f_jpeg"),
            ("format_webp", "f_webp"),
            ("f_auto", "f_auto"),
            ("f_avif", "f_avif"),
            ("a", "_"),
            ("animated", "_"),
            ("w:300,q=80", "w_300,q_80"),
            ("w_300&f_webp&q_80", "w_300,q_80,f_webp"),
        ];
        for (ipx, native) in rows {
            same(ipx, native);
        }
    }

    #[test]
    fn every_error_names_its_modifier() {
        let rows = [
            ("w_0", "w_0"),
            ("w_abc", "w_abc"),
            ("w_300,w_400", "w_400"),
            ("w_300,width_400", "width_400"),
            ("s_300x", "s_300x"),
            ("fit_stretch", "fit_stretch"),
            ("pos_middle", "pos_middle"),
            ("pos_3", "pos_3"),
            ("b_red", "b_red"),
            ("b_ffff", "b_ffff"),
            ("kernel_nearest", "kernel_nearest"),
            ("trim_300", "trim_300"),
            ("crop_1_2_3", "crop_1_2_3"),
            ("crop_1_2_0_4", "crop_1_2_0_4"),
            ("rotate_45", "rotate_45"),
            ("flip_x", "flip_x"),
            ("sharpen_1_2_3", "sharpen_1_2_3"),
            ("blur_0", "blur_0"),
            ("blur_1000", "blur_1000"),
            ("q_0", "q_0"),
            ("q_101", "q_101"),
            ("f_tiff", "f_tiff"),
            ("f_heic", "f_heic"),
            ("median_3", "median_3"),
            ("gamma_2", "gamma_2"),
            ("negate", "negate"),
            ("normalize", "normalize"),
            ("modulate_1_2", "modulate_1_2"),
            ("tint_f00", "tint_f00"),
            ("extend_1_1_1_1", "extend_1_1_1_1"),
            ("bogus_1", "bogus_1"),
            ("w_300,,q_80", ""),
        ];
        for (ipx, token) in rows {
            refused(ipx, token);
        }
        assert!(matches!(
            parse("/s_300x200,w_300/photo.jpg", None),
            Err(Error::Option(_))
        ));
        assert_eq!(parse("/w_300", None), Err(Error::MissingSource));
        assert_eq!(parse("/w_300/", None), Err(Error::MissingSource));
        assert!(matches!(parse("//photo.jpg", None), Err(Error::Option(_))));
    }

    #[test]
    fn source_is_passed_on_as_written() {
        let r = parse("/w_300/https://origin.example.com/a%20b.jpg", Some("v=1")).unwrap();
        assert_eq!(r.source, "https://origin.example.com/a%20b.jpg");
        assert_eq!(r.query.as_deref(), Some("v=1"));
        let r = parse("/_//images/cat.jpg", None).unwrap();
        assert_eq!(r.source, "images/cat.jpg");
        let r = parse("/_/https%3A%2F%2Fo.example%2Fc.jpg%3Fx%3D1", Some("y=2")).unwrap();
        assert_eq!(r.source, "https%3A%2F%2Fo.example%2Fc.jpg%3Fx%3D1");
        assert_eq!(r.query.as_deref(), Some("y=2"));
    }
}
